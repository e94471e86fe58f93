// The f32 fast paths of the CPU pointwise and reduction kernels: the branch-free
// exp / tanh / normal CDF (kernels/cpu/vec_math_f32.h) against libm in f64, the contiguous
// unary rows against the generic strided path and an f64 reference, and the
// vectorised f32 sums keeping f64 accumulation.
#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/ops.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/vec_math_f32.h"
#include "tests/core_test_util.h"

using namespace minivl;
using minivl::testing::check_values;

// F32x8 values here only meet forced-inline helpers: the ABI note GCC and Clang give for
// them on pre-AVX targets (-march=x86-64 builds) is noise.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {

// Every 251st f32 bit pattern in [lo, hi], both signs (~8M inputs for exp's range).
std::vector<float> sampled_floats(float lo, float hi) {
  std::vector<float> xs;
  for (uint32_t bits = 0; bits < 0x7f800000u; bits += 251) {
    for (uint32_t sign : {0u, 0x80000000u}) {
      const float x = std::bit_cast<float>(bits | sign);
      if (x >= lo && x <= hi) xs.push_back(x);
    }
  }
  return xs;
}

// exp_f32 / tanh_f32 / the normal CDF and PDF on every sample through the eight-lane form
// the kernels use (the last partial group through the scalar form); `scalar_mismatches`
// counts the lanes that differ from the scalar form, which must agree bit for bit.
enum class LaneFn { exp, tanh, normal_cdf, normal_pdf };
template <typename V>
V apply_lane_fn(LaneFn fn, V x) {
  switch (fn) {
    case LaneFn::exp: return cpu::exp_f32(x);
    case LaneFn::tanh: return cpu::tanh_f32(x);
    case LaneFn::normal_cdf: return cpu::normal_parts_f32<V, false>(x).cdf;
    case LaneFn::normal_pdf: return cpu::normal_parts_f32<V, true>(x).pdf;
  }
  return x;
}
std::vector<float> eval_lanes(const std::vector<float>& xs, LaneFn fn, int64_t& scalar_mismatches) {
  std::vector<float> out(xs.size());
  for (size_t i = 0; i + 8 <= xs.size(); i += 8)
    cpu::store8(out.data() + i, apply_lane_fn(fn, cpu::load8(xs.data() + i)));
  for (size_t i = xs.size() / 8 * 8; i < xs.size(); ++i) out[i] = apply_lane_fn(fn, xs[i]);
  scalar_mismatches = 0;
  for (size_t i = 0; i < xs.size(); ++i)
    scalar_mismatches += std::bit_cast<uint32_t>(out[i]) != std::bit_cast<uint32_t>(apply_lane_fn(fn, xs[i]));
  return out;
}

// Runs the unary kernel forward and backward (gy = 1.5) on f32 values, either
// contiguous (the fast path) or as a stride-2 view (the generic per-element path).
struct UnaryRun {
  std::vector<double> y, gx;
};
UnaryRun run_unary_f32(UnaryOp op, UnaryParams p, const std::vector<double>& v, bool strided) {
  const int64_t n = int64_t(v.size());
  Tensor x, y, gy, gx;
  if (strided) {
    std::vector<double> wide(v.size() * 2, 0.0);
    for (size_t i = 0; i < v.size(); ++i) wide[2 * i] = v[i];
    x = from_vector(wide, {n, 2}).select(1, 0);
    y = zeros({n, 2}).select(1, 0);
    gy = full({n, 2}, 1.5).select(1, 0);
    gx = zeros({n, 2}).select(1, 0);
  } else {
    x = from_vector(v, {n});
    y = zeros({n});
    gy = full({n}, 1.5);
    gx = zeros({n});
  }
  cpu::unary(op, p, x.view(), y.view());
  cpu::unary_backward(op, p, x.view(), gy.view(), gx.view());
  return {y.to_vector(), gx.to_vector()};
}

UnaryRun run_unary_f64(UnaryOp op, UnaryParams p, const std::vector<double>& v) {
  const int64_t n = int64_t(v.size());
  Tensor x = from_vector(v, {n}, DType::f64), y = zeros({n}, DType::f64), gx = zeros({n}, DType::f64);
  Tensor gy = full({n}, 1.5, DType::f64);
  cpu::unary(op, p, x.view(), y.view());
  cpu::unary_backward(op, p, x.view(), gy.view(), gx.view());
  return {y.to_vector(), gx.to_vector()};
}

// Largest error of `got` against `want`, in units of rtol * |want| + atol * max(1, |x|).
double worst_error(const std::vector<double>& got, const std::vector<double>& want, const std::vector<double>& x,
                   double rtol, double atol) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      if (!std::isnan(got[i])) return std::numeric_limits<double>::infinity();
      continue;
    }
    const double err = std::abs(got[i] - want[i]) / (rtol * std::abs(want[i]) + atol * std::max(1.0, std::abs(x[i])));
    worst = std::max(worst, err);
  }
  return worst;
}

}  // namespace

TEST_SUITE("cpu fast paths") {

TEST_CASE("exp_f32 is within 0.1 ppm of exp wherever the result is a normal float") {
  const std::vector<float> xs = sampled_floats(-110.0f, 95.0f);
  int64_t scalar_mismatches = -1;
  const std::vector<float> ys = eval_lanes(xs, LaneFn::exp, scalar_mismatches);
  double worst = 0;
  int64_t subnormal_off = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::exp(double(xs[i]));
    const float got = ys[i];
    const float want_f = float(want);
    if (std::isinf(want_f)) {
      subnormal_off += !std::isinf(got);
    } else if (want_f < std::numeric_limits<float>::min()) {  // subnormal or 0: one subnormal step
      subnormal_off += std::abs(double(got) - want) > 0x1p-149;
    } else {
      worst = std::max(worst, std::abs(double(got) - want) / want);
    }
  }
  CAPTURE(worst);
  CHECK(worst <= 1.0e-7);  // measured 7.9e-8 (0.93 ulp)
  CHECK(subnormal_off == 0);
  CHECK(scalar_mismatches == 0);
}

TEST_CASE("exp_f32 saturates like expf: +inf above 88.73, 0 far below, NaN through") {
  CHECK(cpu::exp_f32(88.72f) == doctest::Approx(std::exp(double(88.72f))).epsilon(1e-7));
  CHECK(std::isinf(cpu::exp_f32(88.73f)));
  CHECK(std::isinf(cpu::exp_f32(1000.0f)));
  CHECK(std::isinf(cpu::exp_f32(std::numeric_limits<float>::infinity())));
  CHECK(cpu::exp_f32(-200.0f) == 0.0f);
  CHECK(cpu::exp_f32(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(cpu::exp_f32(-100.0f) == std::exp(-100.0f));  // a subnormal, 3.78e-44
  CHECK(cpu::exp_f32(0.0f) == 1.0f);
  CHECK(std::isnan(cpu::exp_f32(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("tanh_f32 keeps its relative accuracy near 0 and saturates to +-1") {
  const std::vector<float> xs = sampled_floats(-20.0f, 20.0f);
  int64_t scalar_mismatches = -1;
  const std::vector<float> ys = eval_lanes(xs, LaneFn::tanh, scalar_mismatches);
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::tanh(double(xs[i]));
    if (std::abs(want) < double(std::numeric_limits<float>::min())) continue;
    worst = std::max(worst, std::abs(double(ys[i]) - want) / std::abs(want));
  }
  CAPTURE(worst);
  CHECK(worst <= 2.0e-7);  // measured 1.8e-7 (2.4 ulp)
  CHECK(scalar_mismatches == 0);
  CHECK(cpu::tanh_f32(1e-30f) == 1e-30f);
  CHECK(std::signbit(cpu::tanh_f32(-0.0f)));
  CHECK(cpu::tanh_f32(std::numeric_limits<float>::infinity()) == 1.0f);
  CHECK(cpu::tanh_f32(-std::numeric_limits<float>::infinity()) == -1.0f);
  CHECK(std::isnan(cpu::tanh_f32(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("normal_parts_f32 (exact GELU's Phi and phi) keep their relative accuracy into the far tails") {
  const std::vector<float> xs = sampled_floats(-16.0f, 16.0f);
  for (LaneFn fn : {LaneFn::normal_cdf, LaneFn::normal_pdf}) {
    CAPTURE(int(fn));
    int64_t scalar_mismatches = -1;
    const std::vector<float> ys = eval_lanes(xs, fn, scalar_mismatches);
    double worst = 0;
    int64_t subnormal_off = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double x = double(xs[i]);
      const double want = fn == LaneFn::normal_cdf ? 0.5 * std::erfc(-x / std::sqrt(2.0))
                                                   : std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
      if (want < double(std::numeric_limits<float>::min())) {  // subnormal or 0: the relative bound or 2 steps
        subnormal_off += std::abs(double(ys[i]) - want) > std::max(5.0e-7 * want, 0x1p-148);
      } else {
        worst = std::max(worst, std::abs(double(ys[i]) - want) / want);
      }
    }
    CAPTURE(worst);
    CHECK(worst <= 5.0e-7);  // measured 4.3e-7 (Phi, at x ~ -11.2) and 1.7e-7 (phi)
    CHECK(subnormal_off == 0);
    CHECK(scalar_mismatches == 0);
  }
  CHECK(cpu::normal_parts_f32<float, false>(0.0f).cdf == 0.5f);
  CHECK(cpu::normal_parts_f32<float, true>(40.0f).pdf == 0.0f);
  CHECK(cpu::normal_parts_f32<float, false>(-std::numeric_limits<float>::infinity()).cdf == 0.0f);
  CHECK(cpu::normal_parts_f32<float, false>(std::numeric_limits<float>::infinity()).cdf == 1.0f);
  CHECK(std::isnan(cpu::normal_parts_f32<float, false>(std::numeric_limits<float>::quiet_NaN()).cdf));
}

TEST_CASE("contiguous f32 unary rows match the generic path and an f64 reference, forward and backward") {
  struct Case {
    UnaryOp op;
    UnaryParams p;
    double lo, hi;
  };
  const Case cases[] = {
      {UnaryOp::exp, {}, -80, 80},          {UnaryOp::sigmoid, {}, -30, 30},     {UnaryOp::tanh, {}, -12, 12},
      {UnaryOp::quick_gelu, {}, -30, 30},  {UnaryOp::gelu_tanh, {}, -12, 12},   {UnaryOp::gelu, {}, -8, 8},
      {UnaryOp::neg, {}, -5, 5},            {UnaryOp::abs, {}, -5, 5},           {UnaryOp::relu, {}, -5, 5},
      {UnaryOp::affine, {0.5, -2}, -5, 5},  {UnaryOp::clamp, {-1, 2}, -5, 5},    {UnaryOp::log, {}, 0.01, 50},
      {UnaryOp::sqrt, {}, 0.01, 50},        {UnaryOp::rsqrt, {}, 0.01, 50},      {UnaryOp::pow, {2.5, 0}, 0.01, 5},
  };
  const int64_t n = 2053;  // odd: exercises the vector loop's tail
  for (const Case& c : cases) {
    CAPTURE(int(c.op));
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = double(float(c.lo + (c.hi - c.lo) * double(i) / double(n - 1)));
    const UnaryRun fast = run_unary_f32(c.op, c.p, v, false);
    const UnaryRun generic = run_unary_f32(c.op, c.p, v, true);
    const UnaryRun ref = run_unary_f64(c.op, c.p, v);
    // Tolerance: 0.5 ppm relative, plus 0.1 ppm of max(1, |x|) for the cancellation near the
    // roots (quick_gelu' at x ~ -0.75). The libm path computes 1 - t * t and 1 + t, which
    // cancel as |t| -> 1 (gelu_tanh' is off by 1.6 units there), so it gets twice the room.
    const double fast_fwd = worst_error(fast.y, ref.y, v, 5e-7, 1e-7);
    const double fast_bwd = worst_error(fast.gx, ref.gx, v, 5e-7, 1e-7);
    const double generic_fwd = worst_error(generic.y, ref.y, v, 5e-7, 1e-7);
    const double generic_bwd = worst_error(generic.gx, ref.gx, v, 5e-7, 1e-7);
    CAPTURE(fast_fwd);
    CAPTURE(fast_bwd);
    CAPTURE(generic_fwd);
    CAPTURE(generic_bwd);
    CHECK(fast_fwd <= 1.0);
    CHECK(fast_bwd <= 1.0);
    CHECK(generic_fwd <= 2.0);
    CHECK(generic_bwd <= 2.0);
  }
}

TEST_CASE("quick_gelu, sigmoid and exp on f32 rows give finite limits at large |x|, no NaN") {
  const std::vector<double> v = {-1e4, -100, -90, 90, 100, 1e4};
  const UnaryRun qg = run_unary_f32(UnaryOp::quick_gelu, {}, v, false);
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(v[i]);
    CHECK(qg.y[i] <= 0.0);
    CHECK(qg.y[i] > -1e-30);
    CHECK(qg.gx[i] == 0.0);
  }
  check_values(std::vector<double>(qg.y.begin() + 3, qg.y.end()), {90, 100, 1e4}, 0, 0);
  check_values(std::vector<double>(qg.gx.begin() + 3, qg.gx.end()), {1.5, 1.5, 1.5}, 0, 0);
  check_values(run_unary_f32(UnaryOp::sigmoid, {}, v, false).y, {0, 0, 0, 1, 1, 1}, 1e-38, 0);
  const UnaryRun e = run_unary_f32(UnaryOp::exp, {}, v, false);
  CHECK(e.y[0] == 0.0);
  CHECK(e.y[1] == double(std::exp(-100.0f)));
  CHECK(std::isinf(e.y[4]));
  CHECK(std::isinf(e.y[5]));
}

TEST_CASE("f32 sums keep f64 accumulation: 2^25 + 1 + ... - 2^25 loses none of the ones") {
  // Every column: 2^25, then k ones, then -2^25. An f32 accumulator (sequential or
  // pairwise) absorbs the ones into 2^25 (its ulp there is 4); f64 keeps them.
  const int64_t k = 9, rows = k + 2, cols = 70;
  std::vector<double> col(static_cast<size_t>(rows), 1.0);
  col.front() = 0x1p25;
  col.back() = -0x1p25;
  std::vector<double> outer(static_cast<size_t>(rows * cols)), inner(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      outer[size_t(r * cols + c)] = col[size_t(r)];  // (rows, cols): reduce dim 0
      inner[size_t(c * rows + r)] = col[size_t(r)];  // (cols, rows): reduce dim 1
    }
  check_values(sum(from_vector(outer, {rows, cols}), {0}), std::vector<double>(size_t(cols), double(k)), 0, 0);
  check_values(mean(from_vector(outer, {rows, cols}), {0}), std::vector<double>(size_t(cols), double(k) / rows),
               0, 1e-7);
  check_values(sum(from_vector(inner, {cols, rows}), {1}), std::vector<double>(size_t(cols), double(k)), 0, 0);
  // One output over a long contiguous range (the split-into-chunks path).
  std::vector<double> big(40000, 1.0);
  big.front() = 0x1p25;
  big.back() = -0x1p25;
  check_values(sum(from_vector(big, {40000})), {39998.0}, 0, 0);
}

TEST_CASE("f32 sums over several dims (merged or not) match an f64 reference") {
  const int64_t B = 5, T = 7, D = 33;
  std::vector<double> v(static_cast<size_t>(B * T * D));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(float(std::sin(0.37 * double(i)) * 3.0));
  Tensor x = from_vector(v, {B, T, D});
  auto ref = [&](bool rb, bool rt, bool rd) {
    std::vector<double> out;
    for (int64_t b = 0; b < (rb ? 1 : B); ++b)
      for (int64_t t = 0; t < (rt ? 1 : T); ++t)
        for (int64_t d = 0; d < (rd ? 1 : D); ++d) {
          double s = 0;
          for (int64_t bb = 0; bb < B; ++bb)
            for (int64_t tt = 0; tt < T; ++tt)
              for (int64_t dd = 0; dd < D; ++dd)
                if ((rb || bb == b) && (rt || tt == t) && (rd || dd == d)) s += v[size_t((bb * T + tt) * D + dd)];
          out.push_back(s);
        }
    return out;
  };
  check_values(sum(x, {0, 1}), ref(true, true, false), 1e-6, 1e-6);   // a bias gradient: merged (B*T)
  check_values(sum(x, {0}), ref(true, false, false), 1e-6, 1e-6);      // outer, kept (T, D)
  check_values(sum(x, {2}), ref(false, false, true), 1e-6, 1e-6);      // innermost, contiguous
  check_values(sum(x, {0, 2}), ref(true, false, true), 1e-6, 1e-6);    // not mergeable
  check_values(sum(x, {1, 2}), ref(false, true, true), 1e-6, 1e-6);    // innermost, merged (T*D)
  check_values(sum(x.transpose(1, 2), {2}), ref(false, true, false), 1e-6, 1e-6);  // kept dims strided
  std::vector<double> m = ref(true, true, false);
  for (double& e : m) e /= double(B * T);
  check_values(mean(x, {0, 1}), m, 1e-6, 1e-6);
}

}  // TEST_SUITE
