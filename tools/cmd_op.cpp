// `minivl ops` (the op x device coverage table; `--versions`: the kernel versions) and
// `minivl op NAME` (run one op on tensors from a safetensors file, write its outputs to another).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/kernel_versions.h"
#include "core/tensor_io.h"
#include "tools/commands.h"
#include "tools/op_runner.h"

namespace minivl::tools {
namespace {

void print_ops() {
  std::printf("%-16s %-14s %-5s %-5s %s\n", "op", "family", "cpu", "cuda", "grad");
  for (int i = 0; i < kNumOps; ++i) {
    const OpInfo& info = op_info(OpId(i));
    std::printf("%-16s %-14s %-5s %-5s %s\n", info.name, kernel_family_name(info.family),
                op_available(OpId(i), DeviceType::CPU) ? "yes" : "-",
                op_available(OpId(i), DeviceType::CUDA) ? "yes" : "-", info.differentiable ? "yes" : "no");
  }
  std::printf("\nCUDA at run time: %s\n", cuda_available() ? "available" : cuda_unavailable_reason().c_str());
}

struct OpOptions {
  std::string name, inputs, out, device = "cpu";
  std::vector<std::string> attrs;
  bool grad = false;
};

void run_op_command(const OpOptions& o) {
  OpCall call;
  call.op = o.name;
  Device device = parse_device(o.device);
  for (auto& [name, t] : load_safetensors(o.inputs)) {
    call.inputs[name] = device.is_cpu() ? t : t.to(device);
    call.input_order.push_back(name);
  }
  for (const std::string& kv : o.attrs) {
    size_t eq = kv.find('=');
    MINIVL_CHECK(eq != std::string::npos && eq > 0, "op: --attr expects key=value, got '", kv, "'");
    call.attrs[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  NamedTensors outputs = run_op(std::move(call), o.grad);
  save_safetensors(o.out, outputs);
  std::printf("%s: wrote", o.name.c_str());
  for (const auto& [name, t] : outputs) std::printf(" %s %s", name.c_str(), t.shape_str().c_str());
  std::printf(" to %s\n", o.out.c_str());
}

}  // namespace

void register_op_commands(CLI::App& app) {
  auto versions = std::make_shared<bool>(false);
  CLI::App* ops = app.add_subcommand("ops", "Print the op x device coverage table");
  ops->add_flag("--versions", *versions,
                "Instead, list every numbered kernel version: what it takes, its status, where it is the default");
  ops->callback([versions] {
    if (*versions) {
      std::fputs(kernel_versions().describe().c_str(), stdout);
    } else {
      print_ops();
    }
  });

  auto opts = std::make_shared<OpOptions>();
  CLI::App* op = app.add_subcommand("op", "Run one op on tensors from a safetensors file");
  op->add_option("name", opts->name, "Op name (see `minivl ops`)")->required();
  op->add_option("--inputs", opts->inputs, "Input tensors (safetensors)")->required();
  op->add_option("--out", opts->out, "Output file (safetensors)")->required();
  op->add_option("--device", opts->device, "cpu or cuda[:N]");
  op->add_option("--attr", opts->attrs, "Attribute key=value (repeatable)");
  op->add_flag("--grad", opts->grad, "Also backpropagate grad_<output> and write grad.<input>");
  op->callback([opts] { run_op_command(*opts); });
}

}  // namespace minivl::tools
