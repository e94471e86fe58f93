// Row softmax / log-softmax and the fused cross-entropy on the CPU.
// Rows are contiguous (the op layer moves the softmax dim last). Each row is
// read twice (max, then exp-sum) and written once; parallel over rows.
#include <cmath>
#include <limits>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/strided_loop.h"

namespace minivl::cpu {

void softmax(const StridedView& x, const StridedView& y, bool log) {
  const int64_t len = x.sizes[x.ndim - 1];
  const int64_t rows = len ? x.numel() / len : 0;
  dispatch_floating(x.dtype, "softmax", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* xp = x.ptr<scalar_t>();
    scalar_t* yp = y.ptr<scalar_t>();
#pragma omp parallel for schedule(static) if (rows * len >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* in = xp + r * len;
      scalar_t* out = yp + r * len;
      C m = -std::numeric_limits<C>::infinity();
      for (int64_t i = 0; i < len; ++i) m = std::max(m, C(load(in + i)));
      if (std::isinf(m) && m < 0) m = 0;  // an all -inf row: keep exp finite
      C s = 0;
      for (int64_t i = 0; i < len; ++i) s += std::exp(C(load(in + i)) - m);
      if (log) {
        C lse = m + std::log(s);
        for (int64_t i = 0; i < len; ++i) store(out + i, C(load(in + i)) - lse);
      } else {
        C inv = C(1) / s;
        for (int64_t i = 0; i < len; ++i) store(out + i, std::exp(C(load(in + i)) - m) * inv);
      }
    }
  });
}

// softmax:     gx = y * (gy - sum(gy * y))
// log_softmax: gx = gy - exp(y) * sum(gy)
void softmax_backward(const StridedView& y, const StridedView& gy, const StridedView& gx, bool log) {
  const int64_t len = y.sizes[y.ndim - 1];
  const int64_t rows = len ? y.numel() / len : 0;
  dispatch_floating(y.dtype, "softmax_backward", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* yp = y.ptr<scalar_t>();
    const scalar_t* gyp = gy.ptr<scalar_t>();
    scalar_t* gxp = gx.ptr<scalar_t>();
#pragma omp parallel for schedule(static) if (rows * len >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const scalar_t* yr = yp + r * len;
      const scalar_t* gr = gyp + r * len;
      scalar_t* out = gxp + r * len;
      C dot = 0;
      if (log) {
        for (int64_t i = 0; i < len; ++i) dot += C(load(gr + i));
        for (int64_t i = 0; i < len; ++i) store(out + i, C(load(gr + i)) - std::exp(C(load(yr + i))) * dot);
      } else {
        for (int64_t i = 0; i < len; ++i) dot += C(load(gr + i)) * C(load(yr + i));
        for (int64_t i = 0; i < len; ++i) store(out + i, C(load(yr + i)) * (C(load(gr + i)) - dot));
      }
    }
  });
}

// Per row: loss = lse - (1 - eps) * x[target] - (eps / C) * sum(x), which is
// (1 - eps) * (-log p[target]) + (eps / C) * sum_c(-log p[c]), PyTorch's label
// smoothing. Ignored rows get loss 0.
void cross_entropy(const StridedView& logits, const StridedView& target, const StridedView& loss,
                   const StridedView& lse, int64_t ignore_index, double label_smoothing) {
  const int64_t n = logits.sizes[0], classes = logits.sizes[1];
  const int64_t* tp = target.ptr<int64_t>();
  dispatch_floating(logits.dtype, "cross_entropy", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* xp = logits.ptr<scalar_t>();
    scalar_t* lp = loss.ptr<scalar_t>();
    scalar_t* sp = lse.ptr<scalar_t>();
    const C eps = C(label_smoothing);
#pragma omp parallel for schedule(static) if (n * classes >= kParallelGrain)
    for (int64_t r = 0; r < n; ++r) {
      const scalar_t* row = xp + r * classes;
      C m = -std::numeric_limits<C>::infinity(), total = 0;
      for (int64_t i = 0; i < classes; ++i) {
        C v = load(row + i);
        m = std::max(m, v);
        total += v;
      }
      C s = 0;
      for (int64_t i = 0; i < classes; ++i) s += std::exp(C(load(row + i)) - m);
      C row_lse = m + std::log(s);
      store(sp + r, row_lse);
      int64_t t = tp[r * target.strides[0]];
      if (t == ignore_index) {
        store(lp + r, C(0));
        continue;
      }
      C picked = load(row + t);
      store(lp + r, row_lse - (C(1) - eps) * picked - eps / C(classes) * total);
    }
  });
}

void cross_entropy_backward(const StridedView& logits, const StridedView& target, const StridedView& lse,
                            const StridedView& grow, const StridedView& glogits, int64_t ignore_index,
                            double label_smoothing) {
  const int64_t n = logits.sizes[0], classes = logits.sizes[1];
  const int64_t* tp = target.ptr<int64_t>();
  dispatch_floating(logits.dtype, "cross_entropy_backward", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* xp = logits.ptr<scalar_t>();
    const scalar_t* sp = lse.ptr<scalar_t>();
    const scalar_t* gp = grow.ptr<scalar_t>();
    scalar_t* gxp = glogits.ptr<scalar_t>();
    const C eps = C(label_smoothing);
#pragma omp parallel for schedule(static) if (n * classes >= kParallelGrain)
    for (int64_t r = 0; r < n; ++r) {
      scalar_t* out = gxp + r * classes;
      int64_t t = tp[r * target.strides[0]];
      if (t == ignore_index) {
        for (int64_t i = 0; i < classes; ++i) store(out + i, C(0));
        continue;
      }
      const scalar_t* row = xp + r * classes;
      C g = load(gp + r * grow.strides[0]);
      C row_lse = load(sp + r);
      for (int64_t i = 0; i < classes; ++i) {
        C target_p = eps / C(classes) + (i == t ? C(1) - eps : C(0));
        store(out + i, g * (std::exp(C(load(row + i)) - row_lse) - target_p));
      }
    }
  });
}

}  // namespace minivl::cpu
