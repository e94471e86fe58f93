// nn on CUDA: the fused multi-tensor AdamW kernel against the CPU kernel, and
// bf16/f16 autocast training (f32 master weights, f32 optimiser state).
// Without a GPU every case prints why it skipped.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>

#include "core/generator.h"
#include "core_test_util.h"
#include "nn/amp.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "nn/trainer.h"
#include "nn/transformer.h"
#include "nn_test_util.h"
#include "tests/cuda_test_util.h"

using namespace minivl;
using namespace minivl::nn;

TEST_SUITE_BEGIN("nn_cuda");

TEST_CASE("nn_cuda: fused multi-tensor AdamW matches the CPU kernel (sizes around the chunk, unaligned views)") {
  if (minivl::testing::skip_without_cuda("nn_cuda", "fused AdamW")) return;
  default_generator().manual_seed(21);
  std::vector<Tensor> cpu, gpu;
  for (int64_t n : {1, 3, 4095, 4096, 4097, 70001, 257}) {
    Tensor x = randn({n});
    cpu.push_back(x.clone().requires_grad_());
    gpu.push_back(x.to(Device::cuda()).requires_grad_());
  }
  {  // a leaf at element offset 1 of its storage: not 16-byte aligned (the scalar path)
    Tensor base = randn({1001});
    cpu.push_back(base.clone().narrow(0, 1, 1000).detach().requires_grad_());
    gpu.push_back(base.to(Device::cuda()).narrow(0, 1, 1000).detach().requires_grad_());
  }
  AdamW a(single_group(cpu, 0.05), {3e-3, 0.9, 0.95, 1e-8});
  AdamW b(single_group(gpu, 0.05), {3e-3, 0.9, 0.95, 1e-8});
  for (int step = 0; step < 4; ++step) {
    for (size_t i = 0; i < cpu.size(); ++i) {
      Tensor g = randn(cpu[i].shape());
      cpu[i].set_grad(g);
      gpu[i].set_grad(g.to(Device::cuda()));
    }
    a.step(0.5);
    b.step(0.5);
  }
  for (size_t i = 0; i < cpu.size(); ++i) {
    CAPTURE(i);
    minivl::testing::check_values(gpu[i], cpu[i].to_vector(), 1e-6, 1e-5);
  }
  auto sa = a.state_tensors(), sb = b.state_tensors();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) minivl::testing::check_values(sb[i].second, sa[i].second.to_vector(), 1e-7, 1e-5);
}

TEST_CASE("nn_cuda: bf16 autocast: Linear and attention close to f32, gradients f32 on f32 weights") {
  if (minivl::testing::skip_without_cuda("nn_cuda", "autocast")) return;
  default_generator().manual_seed(22);
  TransformerEncoderLayer layer({64, 4, 128});
  layer.to(Device::cuda());
  Tensor x = randn({2, 16, 64}).to(Device::cuda());
  Tensor ref = layer.forward(x);
  AutocastGuard amp(DType::bf16);
  Tensor y = layer.forward(x);
  CHECK(y.dtype() == DType::f32);
  minivl::testing::check_values(y, ref.to_vector(), 5e-2, 5e-2);
  sum(y).backward();
  for (const auto& p : layer.named_parameters()) {
    CAPTURE(p.name);
    REQUIRE(p.tensor.grad().defined());
    CHECK(p.tensor.grad().dtype() == DType::f32);
  }
}

TEST_CASE("nn_cuda: the toy trainer runs in f32, bf16 and f16 (loss scaling) on CUDA") {
  if (minivl::testing::skip_without_cuda("nn_cuda", "toy trainer")) return;
  register_toy_trainers();
  minivl::testing::NnTempDir dir;
  std::ofstream(dir.file("t.toml")) << "steps = 30\ndevice = \"cuda\"\n[model]\nname = \"mlp\"\n[optim]\nlr = 0.01\n";
  for (const char* precision : {"f32", "bf16", "f16"}) {
    CAPTURE(precision);
    TrainResult r = run_training({dir.file("t.toml"), {std::string("precision=") + precision},
                                  dir.file(std::string("run_") + precision), false, 0, true});
    REQUIRE(r.losses.size() == 30);
    CHECK(std::isfinite(r.losses.back()));
    CHECK(r.losses.back() < r.losses.front());
  }
}

TEST_SUITE_END();
