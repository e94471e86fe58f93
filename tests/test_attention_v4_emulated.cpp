// Attention v4's kernels (kernels/cuda/attention_v4_forward.cuh, attention_v4_backward.cuh), the
// device code itself, run on the CPU through the SIMT emulation of tests/simt_emulator.h and held
// against the CPU reference (tests/attention_v4_reference.h), so the fragment layouts, the masks, the
// causal frontier, the ragged edges and the barrier / cp.async schedule are checked without a GPU.
// Each case runs with cp.async copies landing as late as allowed (at the wait) and as early (at
// once), under a seeded random schedule of the threads. Small B and H: the emulation switches fibers
// at every warp collective. Skipped under AddressSanitizer / ThreadSanitizer (fibers on ucontext
// confuse both).
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#define MINIVL_V4_MMA_HEADER "tests/simt_mma_sm80.h"
#include "tests/simt_emulator.h"

namespace minivl::cuda::v4 {
namespace {
// The kernels' `extern __shared__ smem_raw[]`: one buffer, blocks run one at a time.
alignas(16) unsigned char smem_raw[256 * 1024];
}  // namespace
}  // namespace minivl::cuda::v4

#include "kernels/cuda/attention_v4_backward.cuh"
#include "kernels/cuda/attention_v4_forward.cuh"
#include "tests/attention_v4_reference.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MINIVL_EMULATION_SKIPPED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MINIVL_EMULATION_SKIPPED 1
#endif
#endif

namespace minivl {
namespace {

using namespace attention_v4_test;
using cuda::v4::BackwardPlan;
using cuda::v4::ForwardPlan;

std::vector<uint16_t> bits_of(const Tensor& t_f32, DType dt) {
  const std::vector<double> v = t_f32.to_vector();
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = dt == DType::bf16 ? to_bf16(float(v[i])).bits : to_f16(float(v[i])).bits;
  return out;
}
std::vector<double> values_of(const std::vector<uint16_t>& bits, DType dt) {
  std::vector<double> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) out[i] = dt == DType::bf16 ? to_float(bf16{bits[i]}) : to_float(f16{bits[i]});
  return out;
}
template <typename V>
void add_global(const std::vector<V>& v) {
  simt::register_global(v.data(), v.size() * sizeof(V));
}

struct Budget {
  int64_t per_block, per_sm;
};
const Budget kSm90{cuda::v4::kSmemPerBlockSm90, cuda::v4::kSmemPerSmSm90};

struct EmulatedRun {
  std::vector<double> out, lse, dq, dk, dv;
  ForwardPlan fplan;
  BackwardPlan bplan;
};

template <typename T, int D>
EmulatedRun run_emulated(const SeqShape& s, DType dt, Mode mode, const Inputs& in, double scale, Budget budget,
                         simt::CopyMode copies, uint64_t seed, bool backward) {
  const bool causal = mode_causal(mode);
  const std::vector<uint16_t> q = bits_of(in.q, dt), k = bits_of(in.k, dt), v = bits_of(in.v, dt),
                              g = bits_of(in.dout, dt);
  std::vector<uint8_t> pad;
  if (in.mask.defined())
    for (double x : in.mask.to(DType::f32).to_vector()) pad.push_back(x != 0.0);
  std::vector<uint16_t> out(q.size(), 0xffffu), dq(q.size(), 0xffffu), dk(k.size(), 0xffffu), dv(k.size(), 0xffffu);
  std::vector<float> lse(size_t(s.B * s.H * s.Tq), std::nanf(""));
  simt::clear_globals();
  add_global(q);
  add_global(k);
  add_global(v);
  add_global(g);
  add_global(out);
  EmulatedRun r;
  r.fplan = cuda::v4::plan_forward(s.Tq, s.Tk, D, budget.per_block, budget.per_sm);
  REQUIRE(r.fplan.fits);
  const cuda::v4::ForwardArgs fa{q.data(),  k.data(), v.data(), pad.empty() ? nullptr : pad.data(), out.data(),
                                 lse.data(), s.H,     s.Tq,     s.Tk,  causal,  float(scale * 1.4426950408889634),
                                 r.fplan};
  const unsigned smem_cap = sizeof(cuda::v4::smem_raw);
  simt::launch({unsigned(s.B * s.H * r.fplan.q_tiles), unsigned(r.fplan.warps * 32), size_t(r.fplan.smem_bytes), copies,
                seed},
               cuda::v4::smem_raw, smem_cap, [&] { cuda::v4::forward_v4_kernel<T, D>(fa); });
  r.out = values_of(out, dt);
  r.lse.assign(lse.begin(), lse.end());
  if (backward) {
    r.bplan = cuda::v4::plan_backward(s.Tq, s.Tk, D, budget.per_block);
    REQUIRE(r.bplan.fits);
    const cuda::v4::BackwardArgs ba{q.data(),  k.data(),  v.data(),  out.data(), g.data(),
                                    pad.empty() ? nullptr : pad.data(),  lse.data(), dq.data(), dk.data(), dv.data(),
                                    s.H,       s.Tq,      s.Tk,      causal,     float(scale),
                                    float(scale * 1.4426950408889634),   r.bplan};
    simt::launch({unsigned(s.B * s.H), unsigned(r.bplan.warps * 32), size_t(r.bplan.smem_bytes), copies, seed + 1},
                 cuda::v4::smem_raw, smem_cap, [&] { cuda::v4::backward_v4_kernel<T, D>(ba); });
    r.dq = values_of(dq, dt);
    r.dk = values_of(dk, dt);
    r.dv = values_of(dv, dt);
  }
  simt::clear_globals();
  return r;
}

struct Case {
  SeqShape s;
  int64_t D;
  DType dt;
  Mode mode;
  Budget budget;
  bool backward;
  int copy_modes = 2;  // 2: copies at the wait and at once; 1: at the wait; -1: at once (the costly cases)
};

EmulatedRun dispatch(const Case& c, const Inputs& in, double scale, simt::CopyMode copies, uint64_t seed) {
  const bool bf = c.dt == DType::bf16;
  switch (c.D) {
    case 32: return bf ? run_emulated<bf16, 32>(c.s, c.dt, c.mode, in, scale, c.budget, copies, seed, c.backward)
                       : run_emulated<f16, 32>(c.s, c.dt, c.mode, in, scale, c.budget, copies, seed, c.backward);
    case 64: return bf ? run_emulated<bf16, 64>(c.s, c.dt, c.mode, in, scale, c.budget, copies, seed, c.backward)
                       : run_emulated<f16, 64>(c.s, c.dt, c.mode, in, scale, c.budget, copies, seed, c.backward);
    default: return bf ? run_emulated<bf16, 128>(c.s, c.dt, c.mode, in, scale, c.budget, copies, seed, c.backward)
                       : run_emulated<f16, 128>(c.s, c.dt, c.mode, in, scale, c.budget, copies, seed, c.backward);
  }
}

void run_cases(const std::vector<Case>& cases) {
  uint32_t seed = 4242;
  for (const Case& c : cases)
    for (simt::CopyMode copies : {simt::CopyMode::deferred, simt::CopyMode::immediate}) {
      if ((c.copy_modes == 1 && copies != simt::CopyMode::deferred) ||
          (c.copy_modes == -1 && copies != simt::CopyMode::immediate))
        continue;
      const char* copy_name = copies == simt::CopyMode::deferred ? "copies at the wait" : "copies at once";
      CAPTURE(c.s.name);
      CAPTURE(c.s.Tq);
      CAPTURE(c.s.Tk);
      CAPTURE(c.D);
      CAPTURE(mode_name(c.mode));
      CAPTURE(copy_name);
      const Inputs in = make_inputs(c.s, c.D, c.dt, c.mode, ++seed);
      const double scale = 1.0 / std::sqrt(double(c.D));
      const Reference ref = reference(c.s, c.D, c.dt, c.mode, in, scale);
      const EmulatedRun r = dispatch(c, in, scale, copies, seed);
      CAPTURE(r.fplan.stages);
      CAPTURE(r.fplan.chunks);
      CHECK(check_all(c.s, c.D, c.dt, in, ref, r.out, r.lse, r.dq, r.dk, r.dv, c.backward) == "");
    }
}

TEST_SUITE("attention_v4_emulated") {
  TEST_CASE("v4 on the CPU emulation: short sequences, every mode, forward and backward") {
#ifdef MINIVL_EMULATION_SKIPPED
    MESSAGE("attention_v4_emulated: skipped under a sanitizer (ucontext fibers)");
#else
    std::vector<Case> cases;
    // ViT-B/32's 50 tokens, every mode; CLIP text's 77, causal; a one-warp block (13 rows).
    for (Mode m : kModes) cases.push_back({{"ViT-B/32", 3, 1, 50, 50}, 64, DType::bf16, m, kSm90, true});
    cases.push_back({{"text", 3, 1, 77, 77}, 64, DType::f16, Mode::causal, kSm90, true});
    cases.push_back({{"text", 3, 1, 77, 77}, 32, DType::bf16, Mode::causal_pad, kSm90, true});
    cases.push_back({{"13 tokens", 3, 1, 13, 13}, 128, DType::bf16, Mode::pad_u8, kSm90, true});
    // Causal with Tq > Tk: the first 27 rows see no key.
    cases.push_back({{"77 queries, 50 keys", 3, 1, 77, 50}, 64, DType::f16, Mode::causal_pad, kSm90, true});
    // One query over 300 keys (a decoding step), and 300 queries over 3 keys (the last 3 rows see any).
    // (With one key the only visible row has P = 1, so its dS and the whole dq are rounding noise.)
    cases.push_back({{"1 query, 300 keys", 3, 1, 1, 300}, 64, DType::bf16, Mode::causal_pad, kSm90, true});
    cases.push_back({{"300 queries, 3 keys", 2, 1, 300, 3}, 64, DType::bf16, Mode::causal, kSm90, true});
    run_cases(cases);
#endif
  }

  TEST_CASE("v4 on the CPU emulation: the captioner's cross-attention and ViT-B/16") {
#ifdef MINIVL_EMULATION_SKIPPED
    MESSAGE("attention_v4_emulated: skipped under a sanitizer (ucontext fibers)");
#else
    std::vector<Case> cases;
    cases.push_back({{"cross 20x197", 3, 1, 20, 197}, 64, DType::bf16, Mode::causal_pad, kSm90, true});
    cases.push_back({{"cross 20x197", 3, 1, 20, 197}, 128, DType::f16, Mode::pad_bool, kSm90, true});
    cases.push_back({{"ViT-B/16", 1, 1, 197, 197}, 64, DType::bf16, Mode::none, kSm90, true, 1});
    cases.push_back({{"ViT-B/16", 3, 1, 197, 197}, 64, DType::f16, Mode::causal_pad, kSm90, true, -1});
    run_cases(cases);
#endif
  }

  TEST_CASE("v4 on the CPU emulation: the forward's cp.async ring refills slots (long keys, small budgets)") {
#ifdef MINIVL_EMULATION_SKIPPED
    MESSAGE("attention_v4_emulated: skipped under a sanitizer (ucontext fibers)");
#else
    // 60 KB per block: 197 keys (4 chunks) in a 2-slot ring; 577 keys at sm_90's plan (5 slots of 10).
    const Budget small{60000, 120000};
    REQUIRE(cuda::v4::plan_forward(197, 197, 64, small.per_block, small.per_sm).stages == 2);
    REQUIRE(!cuda::v4::plan_forward(577, 577, 64, kSm90.per_block, kSm90.per_sm).resident());
    std::vector<Case> cases;
    cases.push_back({{"ViT-B/16, 2-slot ring", 1, 1, 197, 197}, 64, DType::bf16, Mode::none, small, false});
    cases.push_back({{"ViT-B/16, 2-slot ring", 3, 1, 197, 197}, 64, DType::f16, Mode::causal_pad, small, false});
    cases.push_back({{"ViT-L/14@336", 1, 1, 577, 577}, 64, DType::bf16, Mode::causal, kSm90, false, 1});
    run_cases(cases);
#endif
  }
}

}  // namespace
}  // namespace minivl
