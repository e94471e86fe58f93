// Fused layernorm on the CPU (forward with the optional residual add, and backward).
//
// Forward, per row of C elements (OpenMP over rows): the row (x, or h = x + residual) is
// read from memory once into a compute-type row buffer (f32, or f64 for f64 input), and
// three vectorised loops over that L1-resident buffer give the mean, the biased variance
// (two-pass from the buffer, so no cancellation) and y = (h - mean) * rstd * w + b.
// Memory traffic: read x (+ residual) once, write y (+ sum) once, weights once per call;
// saves mean and rstd (R) for the backward. Bound: memory bandwidth.
//
// Backward, per row: xhat = (h - mean) * rstd, g = dy * w,
//   dh = rstd * (g - mean_C(g) - xhat * mean_C(g * xhat)) (+ dsum, the residual path),
// and dweight = sum_rows dy * xhat, dbias = sum_rows dy in two stages: fixed chunks of
// kChunkRows rows write partial sums (each chunk summed in row order), then the partials
// are summed per column in chunk order. The result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/cpu/fused_cpu.h"
#include "kernels/cpu/strided_loop.h"

namespace minivl::cpu {
namespace {

constexpr int64_t kChunkRows = 128;  // rows per dweight/dbias partial

// weight/bias (C) widened once per call; ones/zeros when absent.
template <typename T, typename C>
std::vector<C> widen_param(const StridedView& p, int64_t cols, C fallback) {
  std::vector<C> out(size_t(cols), fallback);
  if (p.data == nullptr) return out;
  const T* src = p.ptr<T>();
  for (int64_t i = 0; i < cols; ++i) out[size_t(i)] = C(load(src + i * p.strides[0]));
  return out;
}

template <typename T>
void forward_impl(const StridedView& x, const StridedView& residual, const StridedView& weight,
                  const StridedView& bias, double eps, const StridedView& sum, const StridedView& y,
                  const StridedView& mean, const StridedView& rstd) {
  using C = compute_t<T>;
  const int64_t cols = x.sizes[x.ndim - 1];
  const int64_t rows = cols ? x.numel() / cols : 0;
  const T* xp = x.ptr<T>();
  const T* rp = residual.data ? residual.ptr<T>() : nullptr;
  T* sp = residual.data ? sum.ptr<T>() : nullptr;
  T* yp = y.ptr<T>();
  C* mp = mean.ptr<C>();
  C* vp = rstd.ptr<C>();
  const std::vector<C> w = widen_param<T, C>(weight, cols, C(1));
  const std::vector<C> b = widen_param<T, C>(bias, cols, C(0));
  const C* wv = w.data();
  const C* bv = b.data();
  const C inv_cols = C(1) / C(cols);
#pragma omp parallel if (rows * cols >= kParallelGrain)
  {
    std::vector<C> buffer(static_cast<size_t>(cols));
    C* h = buffer.data();
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * cols;
      if (rp) {
        const T* rr = rp + r * cols;
        T* sr = sp + r * cols;
#pragma omp simd
        for (int64_t i = 0; i < cols; ++i) {
          h[i] = C(load(xr + i)) + C(load(rr + i));
          store(sr + i, h[i]);
        }
        if constexpr (!std::is_same_v<T, C>) {  // normalise what was stored, as the backward sees it
#pragma omp simd
          for (int64_t i = 0; i < cols; ++i) h[i] = C(load(sr + i));
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < cols; ++i) h[i] = C(load(xr + i));
      }
      C s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = 0; i < cols; ++i) s += h[i];
      const C mu = s * inv_cols;
      C v = 0;
#pragma omp simd reduction(+ : v)
      for (int64_t i = 0; i < cols; ++i) v += (h[i] - mu) * (h[i] - mu);
      const C inv_std = C(1) / std::sqrt(v * inv_cols + C(eps));
      T* yr = yp + r * cols;
#pragma omp simd
      for (int64_t i = 0; i < cols; ++i) store(yr + i, (h[i] - mu) * inv_std * wv[i] + bv[i]);
      mp[r] = mu;
      vp[r] = inv_std;
    }
  }
}

template <typename T>
void backward_impl(const StridedView& dy, const StridedView& hv, const StridedView& weight,
                   const StridedView& mean, const StridedView& rstd, const StridedView& dsum,
                   const StridedView& dh, const StridedView& dweight, const StridedView& dbias) {
  using C = compute_t<T>;
  const int64_t cols = hv.sizes[hv.ndim - 1];
  const int64_t rows = cols ? hv.numel() / cols : 0;
  const T* dyp = dy.ptr<T>();
  const T* hp = hv.ptr<T>();
  const T* dsp = dsum.data ? dsum.ptr<T>() : nullptr;
  T* dhp = dh.ptr<T>();
  const C* mp = mean.ptr<C>();
  const C* vp = rstd.ptr<C>();
  const std::vector<C> w = widen_param<T, C>(weight, cols, C(1));
  const C* wv = w.data();
  const bool want_params = dweight.data != nullptr || dbias.data != nullptr;
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  // partials: (chunks, 2, C): dweight then dbias of each chunk
  std::vector<C> partial(want_params ? size_t(chunks * 2 * cols) : 0, C(0));
  const C inv_cols = C(1) / C(cols);
#pragma omp parallel if (rows * cols >= kParallelGrain)
  {
    std::vector<C> buffer(size_t(2 * cols));
    C* g = buffer.data();
    C* xhat = g + cols;
#pragma omp for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      C* pw = want_params ? partial.data() + chunk * 2 * cols : nullptr;
      C* pb = want_params ? pw + cols : nullptr;
      const int64_t end = std::min(rows, (chunk + 1) * kChunkRows);
      for (int64_t r = chunk * kChunkRows; r < end; ++r) {
        const T* dyr = dyp + r * cols;
        const T* hr = hp + r * cols;
        const C mu = mp[r], inv_std = vp[r];
        C sum_g = 0, sum_gx = 0;
#pragma omp simd reduction(+ : sum_g, sum_gx)
        for (int64_t i = 0; i < cols; ++i) {
          const C d = load(dyr + i);
          xhat[i] = (C(load(hr + i)) - mu) * inv_std;
          g[i] = d;  // dy, kept for the parameter partials
          const C gi = d * wv[i];
          sum_g += gi;
          sum_gx += gi * xhat[i];
        }
        const C a = sum_g * inv_cols, bcoef = sum_gx * inv_cols;
        T* dhr = dhp + r * cols;
        if (dsp) {
          const T* dsr = dsp + r * cols;
#pragma omp simd
          for (int64_t i = 0; i < cols; ++i)
            store(dhr + i, inv_std * (g[i] * wv[i] - a - xhat[i] * bcoef) + C(load(dsr + i)));
        } else {
#pragma omp simd
          for (int64_t i = 0; i < cols; ++i) store(dhr + i, inv_std * (g[i] * wv[i] - a - xhat[i] * bcoef));
        }
        if (want_params) {
#pragma omp simd
          for (int64_t i = 0; i < cols; ++i) {
            pw[i] += g[i] * xhat[i];
            pb[i] += g[i];
          }
        }
      }
    }
  }
  if (!want_params) return;
  // Stage 2: per column, partials summed in chunk order.
#pragma omp parallel for schedule(static) if (chunks * cols >= kParallelGrain)
  for (int64_t i = 0; i < cols; ++i) {
    C sw = 0, sb = 0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      sw += partial[size_t(chunk * 2 * cols + i)];
      sb += partial[size_t(chunk * 2 * cols + cols + i)];
    }
    if (dweight.data) store(dweight.ptr<T>() + i * dweight.strides[0], sw);
    if (dbias.data) store(dbias.ptr<T>() + i * dbias.strides[0], sb);
  }
}

}  // namespace

void layernorm_forward(const StridedView& x, const StridedView& residual, const StridedView& weight,
                       const StridedView& bias, double eps, const StridedView& sum, const StridedView& y,
                       const StridedView& mean, const StridedView& rstd) {
  dispatch_floating(x.dtype, "layernorm", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    forward_impl<scalar_t>(x, residual, weight, bias, eps, sum, y, mean, rstd);
  });
}

void layernorm_backward(const StridedView& dy, const StridedView& h, const StridedView& weight,
                        const StridedView& mean, const StridedView& rstd, const StridedView& dsum,
                        const StridedView& dh, const StridedView& dweight, const StridedView& dbias) {
  dispatch_floating(h.dtype, "layernorm_backward", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    backward_impl<scalar_t>(dy, h, weight, mean, rstd, dsum, dh, dweight, dbias);
  });
}

}  // namespace minivl::cpu
