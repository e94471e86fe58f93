// Reductions (sum, mean, max), argmax and topk on the CPU.
// Accumulates in f64 for floating inputs (this is the reference backend).
// Parallel over outputs when there are many, over chunks of the reduced range
// when there is one output. Memory-bound: one read per input element.
//
// Adjacent reduced dims are merged first, so (B, T) summed out of (B, T, D) is one
// strided dim. f32 sums and means have two vectorised paths, still accumulating in
// f64: over the outer dims (bias gradients, (N, D) -> (D)) four rows are widened and
// added per pass through a block of f64 sums, and over a contiguous innermost dim
// an `omp simd` f64 reduction (8 lanes). Only the order of the f64 additions
// changes, so results match the sequential f64 sum to ~1e-16 relative before the
// final rounding to f32.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/strided_loop.h"

namespace minivl::cpu {
namespace {

// Merges adjacent dims of v when its strides allow it; drops size-1 dims.
StridedView coalesce_dims(const StridedView& v) {
  StridedView c = v;
  c.ndim = 0;
  for (int d = 0; d < v.ndim; ++d) {
    if (v.sizes[d] == 1) continue;
    if (c.ndim > 0 && c.strides[c.ndim - 1] == v.strides[d] * v.sizes[d]) {
      c.sizes[c.ndim - 1] *= v.sizes[d];
      c.strides[c.ndim - 1] = v.strides[d];
      continue;
    }
    c.sizes[c.ndim] = v.sizes[d];
    c.strides[c.ndim] = v.strides[d];
    ++c.ndim;
  }
  if (c.ndim == 0) {
    c.ndim = 1;
    c.sizes[0] = 1;
    c.strides[0] = 0;
  }
  return c;
}

// Sum of x[0, n) widened to f64, in eight interleaved partial sums (one AVX2 pair).
inline double sum_f32_contiguous(const float* x, int64_t n) {
  double acc = 0.0;
#pragma omp simd reduction(+ : acc) simdlen(8)
  for (int64_t i = 0; i < n; ++i) acc += double(x[i]);
  return acc;
}

template <typename Acc, typename T, typename Combine>
Acc reduce_range(const T* base, const StridedView& red, int64_t begin, int64_t end, Acc init, Combine combine,
                 bool is_sum) {
  Acc acc = init;
  if constexpr (std::is_same_v<T, float> && std::is_same_v<Acc, double>) {
    if (is_sum && red.ndim == 1 && red.strides[0] == 1) return acc + sum_f32_contiguous(base + begin, end - begin);
  }
  if (red.ndim == 1) {
    const int64_t st = red.strides[0];
    for (int64_t i = begin; i < end; ++i) acc = combine(acc, Acc(load(base + i * st)));
  } else {
    for (int64_t i = begin; i < end; ++i) acc = combine(acc, Acc(load(base + strided_offset(red, i))));
  }
  return acc;
}

}  // namespace

void reduce(ReduceOp op, const StridedView& in, int n_reduced, const StridedView& out) {
  const int n_kept = in.ndim - n_reduced;
  StridedView kept = sub_view(in, 0, n_kept);
  const StridedView red = coalesce_dims(sub_view(in, n_kept, n_reduced));  // nothing reduced: (1), a copy
  const int64_t n_out = kept.numel();
  const int64_t n_red = red.numel();
  dispatch_all(in.dtype, "reduce", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    using Acc = std::conditional_t<std::is_floating_point_v<compute_t<scalar_t>>, double, int64_t>;
    const scalar_t* ip = in.ptr<scalar_t>();
    scalar_t* op_ = out.ptr<scalar_t>();
    const bool is_max = op == ReduceOp::max;
    const Acc init = is_max ? std::numeric_limits<Acc>::lowest() : Acc(0);
    auto combine = [is_max](Acc a, Acc b) {
      if (!is_max) return a + b;
      if constexpr (std::is_floating_point_v<Acc>) {
        if (std::isnan(b) || std::isnan(a)) return std::numeric_limits<Acc>::quiet_NaN();
      }
      return a > b ? a : b;
    };
    auto finish = [&](Acc acc) -> Acc {
      if (op == ReduceOp::mean) return n_red ? acc / Acc(n_red) : std::numeric_limits<Acc>::quiet_NaN();
      return acc;
    };
    if (n_out == 1 && n_red >= kParallelGrain) {
      int threads = omp_get_max_threads();
      std::vector<Acc> partial(size_t(threads), init);
#pragma omp parallel num_threads(threads)
      {
        int t = omp_get_thread_num();
        int64_t begin = n_red * t / threads, end = n_red * (t + 1) / threads;
        partial[size_t(t)] = reduce_range<Acc>(ip, red, begin, end, init, combine, !is_max);
      }
      Acc acc = init;
      for (Acc p : partial) acc = combine(acc, p);
      store(op_, finish(acc));
      return;
    }
    // Kept dims innermost and contiguous (a bias gradient: sum over the rows of (N, D)):
    // accumulate whole rows into a block of f64 sums, reading memory in order, instead of
    // walking each column down with a stride (latency- and cache-bound).
    const bool kept_flat = kept.ndim >= 1 && op != ReduceOp::max && n_out >= 8 && kept.is_contiguous() &&
                           out.is_contiguous();
    if (kept_flat && n_red > 1) {
      constexpr int64_t kBlock = 512;
      const int64_t blocks = (n_out + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n_out * n_red >= kParallelGrain && blocks > 1)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t c0 = blk * kBlock, nc = std::min(kBlock, n_out - c0);
        Acc acc[kBlock];
        for (int64_t j = 0; j < nc; ++j) acc[j] = init;
        auto row_at = [&](int64_t i) {
          return ip + (red.ndim == 1 ? i * red.strides[0] : strided_offset(red, i)) + c0;
        };
        int64_t i = 0;
        if constexpr (std::is_same_v<scalar_t, float>) {
          // Four rows per pass: a quarter of the loads and stores of acc.
          for (; i + 4 <= n_red; i += 4) {
            const float *r0 = row_at(i), *r1 = row_at(i + 1), *r2 = row_at(i + 2), *r3 = row_at(i + 3);
#pragma omp simd
            for (int64_t j = 0; j < nc; ++j)
              acc[j] += (double(r0[j]) + double(r1[j])) + (double(r2[j]) + double(r3[j]));
          }
        }
        for (; i < n_red; ++i) {
          const scalar_t* row = row_at(i);
          for (int64_t j = 0; j < nc; ++j) acc[j] += Acc(load(row + j));
        }
        for (int64_t j = 0; j < nc; ++j) store(op_ + c0 + j, finish(acc[j]));
      }
      return;
    }
#pragma omp parallel for schedule(static) if (n_out * n_red >= kParallelGrain && n_out > 1)
    for (int64_t o = 0; o < n_out; ++o) {
      const scalar_t* base = ip + strided_offset(kept, o);
      Acc acc = reduce_range<Acc>(base, red, 0, n_red, init, combine, !is_max);
      store(op_ + strided_offset(out, o), finish(acc));
    }
  });
}

void argmax(const StridedView& in, const StridedView& out) {
  const int64_t rows = in.sizes[0], len = in.sizes[1];
  dispatch_all(in.dtype, "argmax", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    const scalar_t* ip = in.ptr<scalar_t>();
    int64_t* op_ = out.ptr<int64_t>();
#pragma omp parallel for schedule(static) if (rows * len >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = ip + r * in.strides[0];
      int64_t best = 0;
      double best_v = double(load(row));
      for (int64_t i = 1; i < len; ++i) {
        double v = double(load(row + i * in.strides[1]));
        if (std::isnan(best_v)) break;  // NaN is the maximum, as in PyTorch
        if (v > best_v || std::isnan(v)) {
          best_v = v;
          best = i;
        }
      }
      op_[r * out.strides[0]] = best;
    }
  });
}

void topk(const StridedView& in, int64_t k, const StridedView& values, const StridedView& indices) {
  const int64_t rows = in.sizes[0], len = in.sizes[1];
  dispatch_all(in.dtype, "topk", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    const scalar_t* ip = in.ptr<scalar_t>();
    scalar_t* vp = values.ptr<scalar_t>();
    int64_t* xp = indices.ptr<int64_t>();
#pragma omp parallel for schedule(static) if (rows * len >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* row = ip + r * in.strides[0];
      std::vector<int64_t> order(static_cast<size_t>(len));
      std::iota(order.begin(), order.end(), 0);
      auto value = [&](int64_t i) { return double(load(row + i * in.strides[1])); };
      // Larger first; ties keep the lower index first.
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
        double va = value(a), vb = value(b);
        if (va != vb) return va > vb;
        return a < b;
      });
      for (int64_t j = 0; j < k; ++j) {
        vp[r * values.strides[0] + j * values.strides[1]] = row[order[size_t(j)] * in.strides[1]];
        xp[r * indices.strides[0] + j * indices.strides[1]] = order[size_t(j)];
      }
    }
  });
}

}  // namespace minivl::cpu
