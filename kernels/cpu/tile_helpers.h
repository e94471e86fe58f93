#pragma once
// Small helpers shared by the CPU kernels that work tile by tile on top of the
// GEMM (attention, the contrastive losses): a single-matrix GEMM call, and a
// contiguous operand in the compute type.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm_cpu.h"
#include "kernels/cpu/vec_math_f32.h"
#include "kernels/strided_view.h"

namespace minivl::cpu {

// e^x for f32, branch-free so `omp simd` loops vectorise it: the reduction and polynomial of
// vec_math_f32.h (~1e-7 relative, 0.93 ulp measured) with 2^n applied in one step. Inputs below
// -87 give exp(-87) ~ 1.6e-38 instead of a denormal: harmless in a softmax sum that holds a
// term equal to 1. Callers never pass -inf; exp_f32 is the full-range form.
inline float exp_fast(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const ExpReduced<float> r = exp_reduce(x);
  return exp_poly(r.y) * pow2i<float>(int32_t(r.n));
}

// exp in the compute type: the fast f32 form, std::exp for f64 (the gradient checks).
template <typename C>
inline C exp_c(C x) {
  if constexpr (std::is_same_v<C, float>) {
    return exp_fast(x);
  } else {
    return std::exp(x);
  }
}

// C (row stride crs, unit column stride) = alpha * A @ B + beta * C, one matrix.
inline void gemm_single(int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t ars, int64_t acs,
                        const float* b, int64_t brs, int64_t bcs, float beta, float* c, int64_t crs) {
  gemm_f32(1, M, N, K, alpha, a, ars, acs, nullptr, b, brs, bcs, nullptr, beta, c, crs, 1, nullptr);
}
inline void gemm_single(int64_t M, int64_t N, int64_t K, double alpha, const double* a, int64_t ars, int64_t acs,
                        const double* b, int64_t brs, int64_t bcs, double beta, double* c, int64_t crs) {
  gemm_f64(1, M, N, K, alpha, a, ars, acs, nullptr, b, brs, bcs, nullptr, beta, c, crs, 1, nullptr);
}

// A contiguous operand in the compute type: the input itself for f32/f64, a
// widened copy for bf16/f16 (so the tiles can go through the f32 GEMM).
template <typename T>
struct WidenedOperand {
  using C = compute_t<T>;
  std::vector<C> owned;
  const C* data = nullptr;
  explicit WidenedOperand(const StridedView& v) {
    if constexpr (std::is_same_v<T, C>) {
      data = v.ptr<C>();
    } else {
      owned.resize(size_t(v.numel()));
      const T* src = v.ptr<T>();
#pragma omp parallel for schedule(static) if (owned.size() > (1u << 16))
      for (int64_t i = 0; i < int64_t(owned.size()); ++i) owned[size_t(i)] = load(src + i);
      data = owned.data();
    }
  }
};

}  // namespace minivl::cpu
