#pragma once
// The loop every pointwise CPU kernel runs: N operands of one shape, each with
// its own strides. Dims that are contiguous for every operand are merged, the
// innermost dim becomes a row handed to `row(offsets, count, inner_strides)`,
// and rows are spread over OpenMP threads when there is enough work.
#include <omp.h>

#include <array>
#include <cstdint>

#include "kernels/strided_view.h"

namespace minivl::cpu {

template <int N>
struct LoopShape {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];
};

// Merges adjacent dims when every operand's strides allow it; drops size-1 dims.
template <int N>
LoopShape<N> coalesce(const int64_t* sizes, int ndim, const std::array<const int64_t*, N>& strides) {
  LoopShape<N> s;
  for (int d = 0; d < ndim; ++d) {
    if (sizes[d] == 1) continue;
    if (s.ndim > 0) {
      int last = s.ndim - 1;
      bool mergeable = true;
      for (int k = 0; k < N; ++k) mergeable &= s.strides[k][last] == strides[k][d] * sizes[d];
      if (mergeable) {
        s.sizes[last] *= sizes[d];
        for (int k = 0; k < N; ++k) s.strides[k][last] = strides[k][d];
        continue;
      }
    }
    s.sizes[s.ndim] = sizes[d];
    for (int k = 0; k < N; ++k) s.strides[k][s.ndim] = strides[k][d];
    ++s.ndim;
  }
  if (s.ndim == 0) {  // a single element
    s.ndim = 1;
    s.sizes[0] = 1;
    for (int k = 0; k < N; ++k) s.strides[k][0] = 0;
  }
  return s;
}

inline constexpr int64_t kParallelGrain = 32768;  // elements below which threads cost more than they give

template <int N, typename RowFn>
void for_each_row(const int64_t* sizes, int ndim, const std::array<const int64_t*, N>& strides, RowFn&& row) {
  for (int d = 0; d < ndim; ++d)
    if (sizes[d] == 0) return;
  LoopShape<N> s = coalesce<N>(sizes, ndim, strides);
  const int inner = s.ndim - 1;
  const int64_t count = s.sizes[inner];
  int64_t rows = 1;
  for (int d = 0; d < inner; ++d) rows *= s.sizes[d];
  std::array<int64_t, N> inner_strides;
  for (int k = 0; k < N; ++k) inner_strides[k] = s.strides[k][inner];

  auto run_row = [&](int64_t r) {
    std::array<int64_t, N> off{};
    int64_t rem = r;
    for (int d = inner - 1; d >= 0; --d) {
      int64_t idx = rem % s.sizes[d];
      rem /= s.sizes[d];
      for (int k = 0; k < N; ++k) off[k] += idx * s.strides[k][d];
    }
    row(off, count, inner_strides);
  };
  if (rows > 1 && rows * count >= kParallelGrain) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) run_row(r);
  } else if (rows == 1 && count >= 4 * kParallelGrain) {
    // One long row: split it into chunks, one per thread.
    int64_t chunks = omp_get_max_threads();
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t begin = count * c / chunks, end = count * (c + 1) / chunks;
      std::array<int64_t, N> off;
      for (int k = 0; k < N; ++k) off[k] = begin * inner_strides[k];
      row(off, end - begin, inner_strides);
    }
  } else {
    for (int64_t r = 0; r < rows; ++r) run_row(r);
  }
}

}  // namespace minivl::cpu
