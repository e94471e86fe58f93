#pragma once
// Branch-free f32 exp, tanh, sigmoid and the normal CDF / PDF (exact GELU), on one float or on
// eight lanes at once: glibc's expf / tanhf / erff are scalar calls, so a loop that calls them
// never vectorises.
//
// exp: n = round(x log2 e) (the 1.5 * 2^23 trick), Cody-Waite reduction y = x - n ln 2 with
// |y| <= 0.35, a degree-7 Taylor polynomial (truncation < 6e-9 relative), times 2^n built in
// the exponent bits. Measured over every f32 input (AVX2+FMA build): max relative error
// 7.9e-8 (0.93 ulp) where the result is a normal float.
//
// exp_f32 covers the whole f32 range: 2^n is applied as two factors 2^(n/2) so results
// overflow to +inf above ~88.72 and round gradually into subnormals and 0 below ~-87.3, as
// expf does (+-inf give +inf and 0, NaN gives NaN). exp_fast (tile_helpers.h) is the cheaper
// form for softmax-style callers whose arguments are known to lie in [-87, 88].
//
// tanh_parts_f32: u = expm1(2|x|) (same reduction; e^y - 1 evaluated as y + y^2 q(y) so small
// x keep full relative accuracy), then tanh = sign(x) u / (u + 2), 1 + tanh and
// 1 - tanh^2 = tanh' from u directly (2 / (u + 2), ...), so neither cancels as |tanh| -> 1.
// tanh: max relative error 1.8e-7 (2.4 ulp) over every f32 input.
//
// Each function is a template over V = float or F32x8, a GCC / Clang vector of eight floats
// (one AVX2 register, two SSE ones). The vector form is what the kernels use: it is vector
// code whatever the compiler's if-conversion manages (without AVX-512 masks GCC will not
// vectorise an `omp simd` loop whose clamps and selects guard arithmetic).
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

// Forced inline: the vector forms rely on it, and GCC's heuristics give up on inlining in a
// file with many instantiations.
#if defined(__GNUC__)
#define MINIVL_SIMD_INLINE inline __attribute__((always_inline))
#else
#define MINIVL_SIMD_INLINE inline
#endif

// F32x8 arguments never cross a real call (everything here is forced inline), so the ABI
// note for them on pre-AVX targets (-march=x86-64 builds) is noise.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace minivl::cpu {

using F32x8 = float __attribute__((vector_size(32)));
using I32x8 = int32_t __attribute__((vector_size(32)));

// ---- lane helpers: the same spelling for float and F32x8 ----
template <typename V>
using IntOf = std::conditional_t<std::is_same_v<V, float>, int32_t, I32x8>;  // also a comparison's result

template <typename V>
MINIVL_SIMD_INLINE V splat(float c) {
  if constexpr (std::is_same_v<V, float>) {
    return c;
  } else {
    return V{} + c;
  }
}
template <typename V>
MINIVL_SIMD_INLINE IntOf<V> to_bits(V x) {
  return std::bit_cast<IntOf<V>>(x);
}
template <typename V>
MINIVL_SIMD_INLINE V from_bits(IntOf<V> b) {
  return std::bit_cast<V>(b);
}
// Truncating conversion (the callers pass integral values, or NaN, whose lanes end up NaN
// whatever integer they get: 0 for the scalar form, where converting NaN is undefined).
template <typename V>
MINIVL_SIMD_INLINE IntOf<V> to_int(V x) {
  if constexpr (std::is_same_v<V, float>) {
    return x == x ? int32_t(x) : 0;
  } else {
    return __builtin_convertvector(x, I32x8);
  }
}
// Lane-wise m ? a : b, m from a comparison (bool, or all-ones / all-zero lanes).
MINIVL_SIMD_INLINE float select(bool m, float a, float b) { return m ? a : b; }
MINIVL_SIMD_INLINE F32x8 select(I32x8 m, F32x8 a, F32x8 b) {
  return from_bits<F32x8>((m & to_bits(a)) | (~m & to_bits(b)));
}
// x clamped to [lo, hi]; NaN passes through.
template <typename V>
MINIVL_SIMD_INLINE V clamp(V x, float lo, float hi) {
  x = select(x < splat<V>(lo), splat<V>(lo), x);
  return select(x > splat<V>(hi), splat<V>(hi), x);
}
template <typename V>
MINIVL_SIMD_INLINE V abs_lanes(V x) {
  return from_bits<V>(to_bits(x) & 0x7fffffff);
}
// |a| with the sign of s.
template <typename V>
MINIVL_SIMD_INLINE V copysign_lanes(V a, V s) {
  return from_bits<V>((to_bits(a) & 0x7fffffff) | (to_bits(s) & int32_t(0x80000000u)));
}

MINIVL_SIMD_INLINE F32x8 load8(const float* p) {
  F32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
MINIVL_SIMD_INLINE void store8(float* p, F32x8 v) { std::memcpy(p, &v, sizeof v); }

// ---- exp and friends ----

// x = n ln 2 + y with n integral and |y| <= 0.35 (for |x| < 2^22).
template <typename V>
struct ExpReduced {
  V n;
  V y;
};
// round(x / ln 2) as a float (the 1.5 * 2^23 trick).
template <typename V>
MINIVL_SIMD_INLINE V round_over_ln2(V x) {
  return (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
}
// x - n ln 2 with ln 2 in two parts (Cody-Waite): exact in the first part for the n used here.
template <typename V>
MINIVL_SIMD_INLINE V minus_n_ln2(V x, V n) {
  return (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;
}
template <typename V>
MINIVL_SIMD_INLINE ExpReduced<V> exp_reduce(V x) {
  const V n = round_over_ln2(x);
  return {n, minus_n_ln2(x, n)};
}

// The inner Horner steps shared by exp_poly and expm1_poly: q(y) = 1/2 + y/6 + ... + y^5/5040,
// so that e^y = 1 + y + y^2 q(y) (the degree-7 Taylor polynomial).
template <typename V>
MINIVL_SIMD_INLINE V exp_poly_q(V y) {
  V p = y * (1.0f / 5040.0f) + 1.0f / 720.0f;
  p = p * y + 1.0f / 120.0f;
  p = p * y + 1.0f / 24.0f;
  p = p * y + 1.0f / 6.0f;
  return p * y + 0.5f;
}

// e^y on |y| <= 0.35: Horner form, (q y + 1) y + 1.
template <typename V>
MINIVL_SIMD_INLINE V exp_poly(V y) {
  return (exp_poly_q(y) * y + 1.0f) * y + 1.0f;
}

// e^y - 1 on |y| <= 0.35 without cancellation near 0: y + (q y) y.
template <typename V>
MINIVL_SIMD_INLINE V expm1_poly(V y) {
  return (exp_poly_q(y) * y) * y + y;
}

// 2^n as a float, n in [-126, 127].
template <typename V>
MINIVL_SIMD_INLINE V pow2i(IntOf<V> n) {
  return from_bits<V>((n + 127) << 23);
}

// v 2^n for integral n in [-252, 254], as two factors 2^(n/2) that are both normal scales, so a
// result beyond the float range overflows to +inf or rounds gradually into subnormals and 0.
template <typename V>
MINIVL_SIMD_INLINE V times_pow2(V v, V n) {
  const IntOf<V> ni = to_int(n), n1 = ni >> 1;
  return (v * pow2i<V>(n1)) * pow2i<V>(ni - n1);
}

// e^x over the whole f32 range (see the header comment).
template <typename V>
MINIVL_SIMD_INLINE V exp_f32(V x) {
  x = clamp(x, -104.0f, 89.0f);  // beyond these the result is 0 / +inf anyway: n in [-150, 129]
  const ExpReduced<V> r = exp_reduce(x);
  return times_pow2(exp_poly(r.y), r.n);
}

// e^(2a) - 1 for 0 <= a <= 44 (n in [0, 127], so 2^n is a normal scale), as 2^n (e^y - 1) + (2^n - 1):
// no cancellation for small a.
template <typename V>
MINIVL_SIMD_INLINE V expm1_twice(V a) {
  const ExpReduced<V> r = exp_reduce(a + a);
  const V s = pow2i<V>(to_int(r.n));
  return s * expm1_poly(r.y) + (s - 1.0f);
}

template <typename V>
struct TanhParts {
  V t, one_plus_t, one_minus_t2;  // tanh(x), 1 + tanh(x), 1 - tanh(x)^2 = tanh'(x)
};
template <typename V>
MINIVL_SIMD_INLINE TanhParts<V> tanh_parts_f32(V x) {
  const V u = expm1_twice(clamp(abs_lanes(x), 0.0f, 44.0f));  // e^(2|x|) - 1; beyond 44, 1 - t^2 < 1e-38
  const V q = 1.0f / (u + 2.0f);
  const V ta = u * q, one_minus_ta = q + q, one_plus_ta = ta + 1.0f;  // |t|, 1 - |t|, 1 + |t|
  return {copysign_lanes(ta, x), select(x < splat<V>(0.0f), one_minus_ta, one_plus_ta),
          one_minus_ta * one_plus_ta};
}

template <typename V>
MINIVL_SIMD_INLINE V tanh_f32(V x) {
  const V u = expm1_twice(clamp(abs_lanes(x), 0.0f, 9.0f));  // tanh(9) rounds to 1
  return copysign_lanes(u / (u + 2.0f), x);
}

template <typename V>
MINIVL_SIMD_INLINE V sigmoid_f32(V x) {
  return 1.0f / (1.0f + exp_f32(-x));
}

// ---- erfc and the normal CDF (exact GELU) ----

// e^(a + b) for a in [-113, 0] held exactly and |b| <= 2: the reduction subtracts n ln 2 from
// a alone, which is exact there, and adds b afterwards, so the rounding of a + b (up to 4e-6
// relative in the result at a = -100) never happens.
template <typename V>
MINIVL_SIMD_INLINE V exp_sum_f32(V a, V b) {
  const V n = round_over_ln2(a + b);  // in [-165, 3]
  return times_pow2(exp_poly(minus_n_ln2(a, n) + b), n);
}

// -x^2 / 2 as an exact head plus a small tail: x = h + l with h holding the top 12 bits of x,
// so h^2 is exact and l (h + x) carries the rest.
template <typename V>
struct HalfSquare {
  V head, tail;
};
template <typename V>
MINIVL_SIMD_INLINE HalfSquare<V> neg_half_square(V x) {
  const V h = from_bits<V>(to_bits(x) & int32_t(0xfffff000u)), l = x - h;
  return {-0.5f * (h * h), -0.5f * (l * (h + x))};
}

// Phi(x) = P(N(0, 1) <= x) = erfc(-x / sqrt 2) / 2, and phi(x) = e^(-x^2/2) / sqrt(2 pi).
// erfc(z) for z >= 0 is t e^(-z^2 + P(t)), t = 1 / (1 + z / 2), with the degree-9 Chebyshev fit
// P of Numerical Recipes' erfcc (fit error under 1.2e-7 relative for every z >= 0); -z^2 = -x^2/2
// is formed from x exactly (neg_half_square), so the tails keep relative accuracy.
// Measured against long double (AVX2+FMA build; an x86-64 build without FMA in brackets):
// Phi(-|x|) max relative error 4.3e-7 (4.8e-7) down to the smallest normal float, phi 1.7e-7
// (1.8e-7); on a 3e-6 grid over [-8, 8], x Phi(x) within 0.34 (0.39) and Phi + x phi within
// 0.76 (0.92) of the unary test's tolerance (5e-7 relative + 1e-7 max(1, |x|)), the latter
// at its root x ~ -0.75, where Phi and x phi cancel (the libm path cancels there too).
template <typename V>
struct NormalParts {
  V cdf, pdf;
};
template <typename V, bool WithPdf>
MINIVL_SIMD_INLINE NormalParts<V> normal_parts_f32(V x) {
  const V ax = clamp(abs_lanes(x), 0.0f, 15.0f);  // e^(-112.5) underflows: Phi(-15) and phi(15) are 0
  const V t = 1.0f / (1.0f + 0.35355339059327376f * ax);  // z / 2 = |x| / (2 sqrt 2)
  V p = t * 0.17087277f - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const HalfSquare<V> s = neg_half_square(ax);
  const V half_erfc = 0.5f * t * exp_sum_f32(s.head, s.tail + p);  // Phi(-|x|)
  const V cdf = select(x < splat<V>(0.0f), half_erfc, 1.0f - half_erfc);
  V pdf{};
  if constexpr (WithPdf) pdf = 0.3989422804014327f * exp_sum_f32(s.head, s.tail);
  return {cdf, pdf};
}

}  // namespace minivl::cpu

#pragma GCC diagnostic pop
