#pragma once
// Small helpers shared by the CPU kernels that work tile by tile on top of the
// GEMM (attention, the contrastive losses): a single-matrix GEMM call, and a
// contiguous operand in the compute type.
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/strided_view.h"

namespace minivl::cpu {

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
