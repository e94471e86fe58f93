// Attention v4 (kernels/cuda/attention_v4.h) against the CPU reference, forward and backward, at the
// vision-language shapes (ViT-B/32 50, ViT-B/16 197, ViT-L/14 257, ViT-L/14@336 577, CLIP text 77,
// a captioner's 20 queries over 197 keys, and 77 queries over 50 keys for a causal frontier that
// leaves rows with no key), B and H scaled down, every mode (none, causal, padding bool / u8,
// causal + padding) x D (64, 128; 32 on two shapes) x bf16 / f16.
//
// v4 is called directly (its entry points say whether they ran), not through the op with
// MINIVL_ATTENTION_VERSION=4, so the test checks v4 itself and not the version switch's fallbacks. A
// backward that does not fit one block on this device goes through attention_backward_cuda_version(4)
// (v3's backward) and the case says so.
//
// Reference, tolerances and the exact-zero checks: tests/attention_v4_reference.h. Outputs start as
// NaN, so an unwritten element fails.
// Without a GPU every case prints why it skipped.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dispatch.h"
#include "core/kernel_versions.h"
#include "core/ops.h"
#include "kernels/cpu/attention_cpu.h"
#include "tests/attention_v4_reference.h"
#include "tests/cuda_test_util.h"

#if MINIVL_CUDA
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_v4.h"
#endif

namespace minivl {
namespace {

using namespace attention_v4_test;

// B >= 3 so that batch 2 can have every key padded.
const SeqShape kShapes[] = {
    {"ViT-B/32", 3, 2, 50, 50},   {"ViT-B/16", 3, 1, 197, 197}, {"ViT-L/14", 3, 1, 257, 257},
    {"ViT-L/14@336", 3, 1, 577, 577}, {"text", 3, 2, 77, 77},   {"cross 20x197", 3, 2, 20, 197},
    {"77 queries, 50 keys", 3, 1, 77, 50},
};

#if MINIVL_CUDA

struct CaseResult {
  std::string failure;  // "" when every check passed
  bool fused_backward = false;
};

CaseResult run_case(const SeqShape& s, int64_t D, DType dt, Mode mode, uint32_t seed) {
  const Inputs in = make_inputs(s, D, dt, mode, seed);
  const bool causal = mode_causal(mode);
  const double scale = 1.0 / std::sqrt(double(D));
  const Device gpu = Device::cuda();
  const Shape qshape = {s.B, s.H, s.Tq, D}, kshape = {s.B, s.H, s.Tk, D}, lshape = {s.B, s.H, s.Tq};
  const double nan = std::nan("");
  const Reference ref = reference(s, D, dt, mode, in, scale);
  // v4 on the GPU, outputs poisoned.
  const Tensor q = in.q.to(dt).to(gpu), k = in.k.to(dt).to(gpu), v = in.v.to(dt).to(gpu), g = in.dout.to(dt).to(gpu);
  const Tensor mask = in.mask.defined() ? in.mask.to(gpu) : Tensor();
  const StridedView mask_gpu = mask.defined() ? mask.view() : StridedView{};
  Tensor out = full(qshape, nan, dt, gpu), lse = full(lshape, nan, DType::f32, gpu);
  Tensor dq = full(qshape, nan, dt, gpu), dk = full(kshape, nan, dt, gpu), dv = full(kshape, nan, dt, gpu);
  CaseResult r;
  if (!cuda::attention_v4_forward(q.view(), k.view(), v.view(), mask_gpu, causal, scale, out.view(), lse.view())) {
    r.failure = "attention_v4_forward declined";
    return r;
  }
  r.fused_backward = cuda::attention_v4_backward(q.view(), k.view(), v.view(), mask_gpu, causal, scale, out.view(),
                                                 lse.view(), g.view(), dq.view(), dk.view(), dv.view());
  if (r.fused_backward != cuda::attention_v4_backward_fused(dt, D, s.Tq, s.Tk, mode_pad(mode), causal)) {
    r.failure = "attention_v4_backward and attention_v4_backward_fused disagree";
    return r;
  }
  if (!r.fused_backward)
    cuda::attention_backward_cuda_version(4, q.view(), k.view(), v.view(), mask_gpu, causal, scale, out.view(),
                                          lse.view(), g.view(), dq.view(), dk.view(), dv.view());
  auto host = [](const Tensor& t) { return t.to(Device::cpu()).to_vector(); };
  r.failure = check_all(s, D, dt, in, ref, host(out), host(lse), host(dq), host(dk), host(dv), true);
  return r;
}

#endif  // MINIVL_CUDA

TEST_SUITE("parity_cuda") {
  TEST_CASE("attention v4 is a candidate: the default stays v3") {
#if MINIVL_CUDA
    const KernelVersionFamily& attention = kernel_versions().family("attention");
    REQUIRE(attention.find(4) != nullptr);
    CHECK(attention.find(4)->candidate());
    for (DType dt : {DType::bf16, DType::f16})
      for (int64_t D : {32, 64, 128}) {
        CHECK(attention.default_version({dt, D}) == 3);
        CHECK(attention.takes(4, {dt, D}));
        CHECK(cuda::attention_version_supported(4, dt, D));
      }
    CHECK(!cuda::attention_version_supported(4, DType::f32, 64));
    CHECK(!cuda::attention_version_supported(4, DType::bf16, 96));
#else
    MESSAGE("parity_attention_v4: built without CUDA");
#endif
  }

  TEST_CASE("attention v4 forward and backward match the CPU at vision-language shapes, every mode") {
    if (minivl::testing::skip_without_cuda("parity_attention_v4", "attention v4 parity")) return;
#if MINIVL_CUDA
    int compared = 0, fused = 0, failed = 0;
    uint32_t seed = 20261127;
    for (const SeqShape& s : kShapes)
      for (int64_t D : {32, 64, 128}) {
        if (D == 32 && s.Tq != 50 && s.Tq != 197) continue;
        for (DType dt : {DType::bf16, DType::f16})
          for (Mode mode : kModes) {
            const CaseResult r = run_case(s, D, dt, mode, seed++);
            ++compared;
            fused += r.fused_backward;
            if (!r.failure.empty()) {
              ++failed;
              std::ostringstream os;
              os << s.name << " (" << s.B << ", " << s.H << ", " << s.Tq << ", " << s.Tk << "), D " << D << ", "
                 << (dt == DType::bf16 ? "bf16" : "f16") << ", " << mode_name(mode) << ", backward "
                 << (r.fused_backward ? "v4 fused" : "v3") << ": " << r.failure;
              FAIL_CHECK(os.str());
            }
          }
      }
    std::printf("parity_attention_v4: %d cases compared, %d with v4's fused backward, %d failed\n", compared, fused,
                failed);
    std::fflush(stdout);
    CHECK(compared == 7 * 2 * 2 * 5 + 2 * 2 * 5);
#endif
  }

  TEST_CASE("attention v4 parity, one case per kernel path (the subset for compute-sanitizer)") {
    if (minivl::testing::skip_without_cuda("parity_attention_v4", "attention v4 sanitizer subset")) return;
#if MINIVL_CUDA
    struct Sub {
      SeqShape s;
      int64_t D;
      Mode mode;
    };
    // One-chunk forward + fused backward; causal, two chunks; cross-attention; 197 (resident K/V,
    // fused backward on sm_90); 577 (the ring, v3's backward); rows that see no key.
    const Sub subset[] = {{{"ViT-B/32", 3, 1, 50, 50}, 64, Mode::pad_u8},
                          {{"text", 3, 1, 77, 77}, 64, Mode::causal_pad},
                          {{"cross 20x197", 3, 1, 20, 197}, 128, Mode::causal_pad},
                          {{"ViT-B/16", 3, 1, 197, 197}, 64, Mode::pad_bool},
                          {{"ViT-L/14@336", 1, 1, 577, 577}, 64, Mode::causal},
                          {{"77 queries, 50 keys", 3, 1, 77, 50}, 32, Mode::causal_pad}};
    uint32_t seed = 99;
    for (const Sub& c : subset) {
      const CaseResult r = run_case(c.s, c.D, DType::bf16, c.mode, seed++);
      CAPTURE(c.s.name);
      CAPTURE(mode_name(c.mode));
      CHECK(r.failure == "");
    }
#endif
  }

  TEST_CASE("attention_forward_cuda_version(4) and the op with version 4 asked for run v4") {
    if (minivl::testing::skip_without_cuda("parity_attention_v4", "attention v4 version switch")) return;
#if MINIVL_CUDA
    const SeqShape s{"text", 2, 2, 77, 77};
    const Inputs in = make_inputs(s, 64, DType::bf16, Mode::causal, 7);
    const Device gpu = Device::cuda();
    const Tensor q = in.q.to(DType::bf16).to(gpu), k = in.k.to(DType::bf16).to(gpu), v = in.v.to(DType::bf16).to(gpu);
    Tensor direct = empty({2, 2, 77, 64}, DType::bf16, gpu), via = full({2, 2, 77, 64}, std::nan(""), DType::bf16, gpu);
    Tensor lse_direct = empty({2, 2, 77}, DType::f32, gpu), lse_via = empty({2, 2, 77}, DType::f32, gpu);
    REQUIRE(cuda::attention_v4_forward(q.view(), k.view(), v.view(), StridedView{}, true, 0.125, direct.view(),
                                       lse_direct.view()));
    cuda::attention_forward_cuda_version(4, q.view(), k.view(), v.view(), StridedView{}, true, 0.125, via.view(),
                                         lse_via.view());
    Tensor out_r = empty({2, 2, 77, 64}), lse_r = empty({2, 2, 77});
    cpu::attention_forward(in.q.view(), in.k.view(), in.v.view(), StridedView{}, true, 0.125, out_r.view(), lse_r.view());
    CHECK(compare("out", via.to(Device::cpu()).to_vector(), out_r.to_vector(), 4.0 / 256) == "");
    // The switch reached v4 itself: bit for bit its direct result (v3 rounds and sums differently).
    CHECK(via.to(Device::cpu()).to_vector() == direct.to(Device::cpu()).to_vector());
    CHECK(lse_via.to(Device::cpu()).to_vector() == lse_direct.to(Device::cpu()).to_vector());
    // And the op reaches it when the registry is asked for v4 (as MINIVL_ATTENTION_VERSION=4 does).
    {
      ScopedVersionOverride v4(kernel_versions().family("attention"), 4);
      AttentionOptions options;
      options.causal = true;
      options.scale = 0.125;
      CHECK(attention(q, k, v, options).to(Device::cpu()).to_vector() == direct.to(Device::cpu()).to_vector());
    }
#endif
  }
}

}  // namespace
}  // namespace minivl
