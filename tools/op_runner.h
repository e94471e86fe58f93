#pragma once
// The op runner behind `minivl op NAME`: named input tensors and string
// attributes in, named output tensors out. One table maps each op name to how
// it reads its arguments, so the CLI, tests and other languages share it.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/tensor_io.h"

namespace minivl::tools {

struct OpCall {
  std::string op;
  std::map<std::string, Tensor> inputs;
  std::vector<std::string> input_order;  // file order (cat/stack take their inputs in it)
  std::map<std::string, std::string> attrs;

  const Tensor& input(const std::string& name) const;  // error naming the op and what the file holds
  Tensor optional_input(const std::string& name) const;
  std::string attr(const std::string& name, const std::string& fallback) const;
  double attr_double(const std::string& name, double fallback) const;
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  bool attr_bool(const std::string& name, bool fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> fallback) const;
};

using OpFn = std::function<NamedTensors(const OpCall&)>;
const std::map<std::string, OpFn>& op_runner_table();

// Runs one op; with `grad`, also reads grad_<output> inputs and returns grad.<input> outputs.
NamedTensors run_op(OpCall call, bool grad);

}  // namespace minivl::tools
