// Attention v4 (kernels/cuda/attention_v4.h) against the CPU reference, forward and backward, at the
// vision-language shapes (ViT-B/32 50, ViT-B/16 197, ViT-L/14 257, ViT-L/14@336 577, CLIP text 77,
// a captioner's 20 queries over 197 keys, and 77 queries over 50 keys for a causal frontier that
// leaves rows with no key), B and H scaled down, every mode (none, causal, padding bool / u8,
// causal + padding) x D (64, 128; 32 on two shapes) x bf16 / f16.
//
// v4 is called directly (its entry points say whether they ran), not through MINIVL_ATTENTION_VERSION:
// the op reads that variable once per process, so another test could have fixed it already. A
// backward that does not fit one block on this device goes through attention_backward_cuda_version(4)
// (v3's backward) and the case says so.
//
// Reference: the CPU kernels in f32 on the same dtype-rounded inputs; the reference backward reads
// the reference output rounded to the dtype (what the GPU backward reads). Outputs start as NaN, so
// an unwritten element fails. Tolerance per element: |got - ref| <= c u |ref| + c u max|ref| with u
// the dtype's unit roundoff (2^-8 bf16, 2^-11 f16), c = 4 for out (P is rounded to the dtype once
// before P V), 8 for dq, dk, dv (P and dS rounded); lse within 1e-4 (1 + |ref|); -inf exactly.
// dk, dv of padded keys, and out, dq of rows that see no key, must be exactly 0.
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
#include "core/ops.h"
#include "kernels/cpu/attention_cpu.h"

#if MINIVL_CUDA
#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_v4.h"
#endif

namespace minivl {
namespace {

bool skip_without_cuda(const char* test) {
  (void)kernels();  // registers the backends (and the CUDA allocator) before the first CUDA allocation
  if (cuda_available()) return false;
  const std::string why = "parity_attention_v4: skipped: " + cuda_unavailable_reason();
  static bool printed = false;
  if (!printed) {
    std::printf("%s\n", why.c_str());
    std::fflush(stdout);
    printed = true;
  }
  const std::string message = why + " (" + test + ")";
  MESSAGE(message);
  return true;
}

struct SeqShape {
  const char* name;
  int64_t B, H, Tq, Tk;
};
// B >= 3 so that batch 2 can have every key padded.
const SeqShape kShapes[] = {
    {"ViT-B/32", 3, 2, 50, 50},   {"ViT-B/16", 3, 1, 197, 197}, {"ViT-L/14", 3, 1, 257, 257},
    {"ViT-L/14@336", 3, 1, 577, 577}, {"text", 3, 2, 77, 77},   {"cross 20x197", 3, 2, 20, 197},
    {"77 queries, 50 keys", 3, 1, 77, 50},
};

enum class Mode { none, causal, pad_bool, pad_u8, causal_pad };
const Mode kModes[] = {Mode::none, Mode::causal, Mode::pad_bool, Mode::pad_u8, Mode::causal_pad};
const char* mode_name(Mode m) {
  switch (m) {
    case Mode::none: return "none";
    case Mode::causal: return "causal";
    case Mode::pad_bool: return "padding bool";
    case Mode::pad_u8: return "padding u8";
    default: return "causal + padding u8";
  }
}
bool mode_causal(Mode m) { return m == Mode::causal || m == Mode::causal_pad; }
bool mode_pad(Mode m) { return m == Mode::pad_bool || m == Mode::pad_u8 || m == Mode::causal_pad; }

// Inputs as f32 CPU tensors holding dtype-representable values, and the mask (B, Tk): batch 0 ~30%
// padded with its last key padded, batch 1 ~10%, batch 2 every key; the rest none.
struct Inputs {
  Tensor q, k, v, dout, mask;  // mask undefined: none
  std::vector<uint8_t> padded;  // (B, Tk)
};

Inputs make_inputs(const SeqShape& s, int64_t D, DType dt, Mode mode, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto tensor = [&](int64_t T) {
    std::vector<double> v(size_t(s.B * s.H * T * D));
    for (double& x : v) x = normal(rng);
    return from_vector(v, {s.B, s.H, T, D}).to(dt).to(DType::f32);
  };
  Inputs in;
  in.q = tensor(s.Tq);
  in.k = tensor(s.Tk);
  in.v = tensor(s.Tk);
  in.dout = tensor(s.Tq);
  in.padded.assign(size_t(s.B * s.Tk), 0);
  if (mode_pad(mode)) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t j = 0; j < s.Tk; ++j) {
        const double rate = b == 0 ? 0.3 : b == 1 ? 0.1 : 2.0;
        in.padded[size_t(b * s.Tk + j)] = u(rng) < rate || (b == 0 && j == s.Tk - 1);
      }
    std::vector<double> m(in.padded.begin(), in.padded.end());
    in.mask = from_vector(m, {s.B, s.Tk}, mode == Mode::pad_bool ? DType::boolean : DType::u8);
  }
  return in;
}

// "" or the first element outside |got - want| <= c u (|want| + max|want|); infinities must be equal.
std::string compare(const char* what, const Tensor& got_t, const Tensor& want_t, double c_u) {
  const std::vector<double> got = got_t.to(Device::cpu()).to_vector(), want = want_t.to_vector();
  if (got.size() != want.size()) return std::string(what) + ": sizes differ";
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::isfinite(w) ? std::abs(w) : 0.0);
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool ok = std::isinf(w) ? g == w : std::abs(g - w) <= c_u * (std::abs(w) + scale);
    if (!ok) {
      std::ostringstream os;
      os << what << ": element " << i << " of " << got.size() << ": cuda " << g << ", cpu " << w << " (bound "
         << c_u * (std::abs(w) + scale) << (std::isnan(g) ? "; NaN: an unwritten element?)" : ")");
      return os.str();
    }
  }
  return "";
}

// lse: within 1e-4 (1 + |ref|); -inf (a row that sees no key) exactly.
std::string compare_lse(const Tensor& got_t, const Tensor& want_t) {
  const std::vector<double> got = got_t.to(Device::cpu()).to_vector(), want = want_t.to_vector();
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (std::isinf(w) ? g == w : std::abs(g - w) <= 1e-4 * (1 + std::abs(w))) continue;
    std::ostringstream os;
    os << "lse: element " << i << " of " << got.size() << ": cuda " << g << ", cpu " << w;
    return os.str();
  }
  return "";
}

#if MINIVL_CUDA

// Rows (of a (B, H, T, D) tensor, as (b, t) pairs selected by `zero_row`) that must be exactly 0.
std::string check_zero_rows(const char* what, const Tensor& t_cuda, int64_t B, int64_t H, int64_t T, int64_t D,
                            const std::vector<uint8_t>& zero_row /* (B, T) */) {
  const std::vector<double> v = t_cuda.to(Device::cpu()).to_vector();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        if (!zero_row[size_t(b * T + i)]) continue;
        for (int64_t d = 0; d < D; ++d)
          if (v[size_t(((b * H + h) * T + i) * D + d)] != 0.0)
            return std::string(what) + ": row (b " + std::to_string(b) + ", " + std::to_string(i) + ") is not exactly 0";
      }
  return "";
}

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
  // CPU reference, f32.
  Tensor out_r = empty(qshape), lse_r = empty(lshape);
  const StridedView mask_cpu = in.mask.defined() ? in.mask.view() : StridedView{};
  cpu::attention_forward(in.q.view(), in.k.view(), in.v.view(), mask_cpu, causal, scale, out_r.view(), lse_r.view());
  const Tensor out_r_rounded = out_r.to(dt).to(DType::f32);
  Tensor dq_r = empty(qshape), dk_r = empty(kshape), dv_r = empty(kshape);
  cpu::attention_backward(in.q.view(), in.k.view(), in.v.view(), mask_cpu, causal, scale, out_r_rounded.view(),
                          lse_r.view(), in.dout.view(), dq_r.view(), dk_r.view(), dv_r.view());
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
  const double u = dt == DType::bf16 ? 1.0 / 256 : 1.0 / 2048;
  // Rows that see no key (padding, causal frontier) and padded keys: exact zeros.
  std::vector<uint8_t> empty_row(size_t(s.B * s.Tq), 0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t i = 0; i < s.Tq; ++i) {
      bool any = false;
      for (int64_t j = 0; j < s.Tk && !any; ++j)
        any = !in.padded[size_t(b * s.Tk + j)] && (!causal || j <= i + s.Tk - s.Tq);
      empty_row[size_t(b * s.Tq + i)] = !any;
    }
  const std::string checks[] = {
      compare("out", out, out_r, 4 * u),
      compare_lse(lse, lse_r),
      compare("dq", dq, dq_r, 8 * u),
      compare("dk", dk, dk_r, 8 * u),
      compare("dv", dv, dv_r, 8 * u),
      check_zero_rows("out", out, s.B, s.H, s.Tq, D, empty_row),
      check_zero_rows("dq", dq, s.B, s.H, s.Tq, D, empty_row),
      check_zero_rows("dk", dk, s.B, s.H, s.Tk, D, in.padded),
      check_zero_rows("dv", dv, s.B, s.H, s.Tk, D, in.padded),
  };
  for (const std::string& c : checks)
    if (!c.empty()) {
      r.failure = c;
      break;
    }
  return r;
}

#endif  // MINIVL_CUDA

TEST_SUITE("parity_cuda") {
  TEST_CASE("attention v4 is a candidate: the registered version stays v3") {
#if MINIVL_CUDA
    if (std::getenv("MINIVL_ATTENTION_VERSION") != nullptr) {
      MESSAGE("MINIVL_ATTENTION_VERSION is set: the registered version follows it");
      return;
    }
    for (DType dt : {DType::bf16, DType::f16})
      for (int64_t D : {32, 64, 128}) {
        CHECK(cuda::attention_registered_version(dt, D) == 3);
        CHECK(cuda::attention_version_supported(4, dt, D));
      }
    CHECK(!cuda::attention_version_supported(4, DType::f32, 64));
    CHECK(!cuda::attention_version_supported(4, DType::bf16, 96));
#else
    MESSAGE("parity_attention_v4: built without CUDA");
#endif
  }

  TEST_CASE("attention v4 forward and backward match the CPU at vision-language shapes, every mode") {
    if (skip_without_cuda("attention v4 parity")) return;
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

  TEST_CASE("attention_forward_cuda_version(4) runs v4") {
    if (skip_without_cuda("attention v4 version switch")) return;
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
    CHECK(compare("out", via, out_r, 4.0 / 256) == "");
    // The switch reached v4 itself: bit for bit its direct result (v3 rounds and sums differently).
    CHECK(via.to(Device::cpu()).to_vector() == direct.to(Device::cpu()).to_vector());
    CHECK(lse_via.to(Device::cpu()).to_vector() == lse_direct.to(Device::cpu()).to_vector());
#endif
  }
}

}  // namespace
}  // namespace minivl
