#pragma once
// nn::Module: named parameters and buffers with dotted names, child modules,
// train/eval, device and dtype moves, and state_dict()/load_state_dict() that
// map 1:1 onto safetensors files (and onto Hugging Face's names for CLIP).
//
// A subclass registers its tensors and children in its constructor and keeps
// the returned handles as members:
//   weight_ = register_parameter("weight", empty({out, in}), ParamKind::weight);
//   fc1_ = register_module("fc1", std::make_shared<Linear>(d, 4 * d));
// Handles share their TensorImpl with the registry, and to(device)/to(dtype)/
// load_state_dict() rewrite that TensorImpl in place, so the members, the
// registry and any optimizer holding the parameters stay one and the same.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "core/tensor_io.h"

namespace minivl::nn {

// What a parameter is, for optimiser grouping (AdamW: no weight decay for
// biases, norms and embeddings unless configured).
enum class ParamKind { weight, bias, norm, embedding };
const char* param_kind_name(ParamKind kind);

struct NamedParameter {
  std::string name;  // dotted: "encoder.layers.0.self_attn.q_proj.weight"
  Tensor tensor;
  ParamKind kind;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (from a subclass's constructor) ----
  // Registers a leaf that requires grad; returns the handle to keep.
  Tensor register_parameter(const std::string& name, Tensor tensor, ParamKind kind = ParamKind::weight);
  // Registers a tensor that is saved in state_dict() but not trained.
  Tensor register_buffer(const std::string& name, Tensor tensor);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- traversal (dotted names, registration order, depth first) ----
  std::vector<NamedParameter> named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  int64_t num_parameters() const;  // elements

  // ---- modes and moves ----
  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter and buffer in place (the handles keep working; gradients are dropped).
  void to(Device device);
  // Converts the floating parameters and buffers; integer buffers keep their dtype.
  void to(DType dtype);
  void zero_grad();  // drops every parameter's .grad

  // ---- state ----
  // Parameters then buffers, each module's own before its children's.
  NamedTensors state_dict() const;
  // Copies values in place (converting dtype and device to the module's). Strict: every
  // missing, unexpected and mis-shaped name is listed in one error and nothing is changed.
  // Not strict: the matching names are loaded, the rest reported in the return value.
  struct LoadReport {
    std::vector<std::string> missing, unexpected, mismatched;
    bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  };
  LoadReport load_state_dict(const NamedTensors& state, bool strict = true);

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;

  std::vector<NamedParameter> params_;  // own only, names without prefix
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Rewrites dst's TensorImpl to hold src's storage, sizes, strides and dtype
// (the handle identity stays; PyTorch's `param.data = src`). dst's grad is dropped.
void set_data(const Tensor& dst, const Tensor& src);

}  // namespace minivl::nn
