// Row softmax / log-softmax, their backward, and the fused cross-entropy
// (forward: per-row loss and log-sum-exp; backward: softmax minus the
// smoothed target) on CUDA.
//
// Rows are contiguous (the op layer moves the softmax dim last). One warp per
// row for rows up to 1024 elements (shuffle reductions only, no shared
// memory), one 256-thread block per row beyond (warp shuffles + a 32-entry
// shared scratch). Each row is read two or three times (max, exp-sum, write);
// for rows that fit in L1/L2 the re-reads hit cache, so the bound is memory
// bandwidth: ~(reads + writes) x N x C x element size bytes. Math in f32 for
// f32/bf16/f16 (f64 for f64), exactly the CPU reference's formulas
// (kernels/cpu/softmax_cpu.cpp): an all -inf row keeps max 0; label smoothing
// eps gives loss = lse - (1 - eps) x[t] - eps / C * sum(x); ignored rows get
// loss 0 and gradient 0.
#include <cfloat>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace minivl::cuda {

namespace {

template <typename C, bool Max>
__device__ __forceinline__ C op2(C a, C b) {
  if constexpr (Max) return a > b ? a : b;
  else return a + b;
}

// All-reduce over a group (32 = one warp, or the whole block); every thread of the group gets the result.
template <bool Max, typename C>
__device__ C row_allreduce(C v, int group, C* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = op2<C, Max>(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (group == 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : (Max ? scratch[0] : C(0));  // the identity: a copy would be summed again
  for (int o = 16; o > 0; o >>= 1) v = op2<C, Max>(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // scratch is reused by the next reduction
  return v;
}

#define ROW_SETUP                                                                     \
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x / group) + threadIdx.x / group; \
  const int lane = threadIdx.x % group;                                               \
  if (group == 32 && r >= rows) return;

template <typename T>
__global__ void softmax_kernel(const T* x, T* y, int64_t rows, int64_t len, bool log_out, int group) {
  using C = compute_t<T>;
  __shared__ C scratch[32];
  ROW_SETUP
  const T* in = x + r * len;
  T* out = y + r * len;
  C m = neg_inf<C>();
  for (int64_t i = lane; i < len; i += group) m = max(m, C(load(in + i)));
  m = row_allreduce<true>(m, group, scratch);
  if (isinf(m) && m < 0) m = 0;  // an all -inf row: keep exp finite
  C s = 0;
  for (int64_t i = lane; i < len; i += group) s += exp(C(load(in + i)) - m);
  s = row_allreduce<false>(s, group, scratch);
  if (log_out) {
    const C lse = m + log(s);
    for (int64_t i = lane; i < len; i += group) store(out + i, C(load(in + i)) - lse);
  } else {
    const C inv = C(1) / s;
    for (int64_t i = lane; i < len; i += group) store(out + i, exp(C(load(in + i)) - m) * inv);
  }
}

// softmax: gx = y * (gy - sum(gy * y));  log_softmax: gx = gy - exp(y) * sum(gy)
template <typename T>
__global__ void softmax_backward_kernel(const T* y, const T* gy, T* gx, int64_t rows, int64_t len, bool log_out,
                                        int group) {
  using C = compute_t<T>;
  __shared__ C scratch[32];
  ROW_SETUP
  const T* yr = y + r * len;
  const T* gr = gy + r * len;
  T* out = gx + r * len;
  C dot = 0;
  if (log_out) {
    for (int64_t i = lane; i < len; i += group) dot += C(load(gr + i));
  } else {
    for (int64_t i = lane; i < len; i += group) dot += C(load(gr + i)) * C(load(yr + i));
  }
  dot = row_allreduce<false>(dot, group, scratch);
  if (log_out) {
    for (int64_t i = lane; i < len; i += group) store(out + i, C(load(gr + i)) - exp(C(load(yr + i))) * dot);
  } else {
    for (int64_t i = lane; i < len; i += group) store(out + i, C(load(yr + i)) * (C(load(gr + i)) - dot));
  }
}

template <typename T>
__global__ void cross_entropy_kernel(const T* logits, const int64_t* target, int64_t ts, T* loss, T* lse,
                                     int64_t rows, int64_t classes, int64_t ignore_index, double label_smoothing,
                                     int group) {
  using C = compute_t<T>;
  __shared__ C scratch[32];
  ROW_SETUP
  const T* row = logits + r * classes;
  const C eps = C(label_smoothing);
  C m = neg_inf<C>(), total = 0;
  for (int64_t i = lane; i < classes; i += group) {
    C v = load(row + i);
    m = max(m, v);
    total += v;
  }
  m = row_allreduce<true>(m, group, scratch);
  total = row_allreduce<false>(total, group, scratch);
  C s = 0;
  for (int64_t i = lane; i < classes; i += group) s += exp(C(load(row + i)) - m);
  s = row_allreduce<false>(s, group, scratch);
  if (lane != 0) return;
  const C row_lse = m + log(s);
  store(lse + r, row_lse);
  const int64_t t = target[r * ts];
  if (t == ignore_index) {
    store(loss + r, C(0));
    return;
  }
  const C picked = load(row + t);
  store(loss + r, row_lse - (C(1) - eps) * picked - eps / C(classes) * total);
}

// Pointwise over (N, C): glogits = grow[r] * (exp(x - lse[r]) - target_p), 0 on ignored rows.
template <typename T>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* target, int64_t ts, const T* lse,
                                              const T* grow, int64_t gs, T* glogits, int64_t rows, int64_t classes,
                                              int64_t ignore_index, double label_smoothing) {
  using C = compute_t<T>;
  const C eps = C(label_smoothing);
  const int64_t n = rows * classes;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / classes, i = e % classes;
    const int64_t t = target[r * ts];
    if (t == ignore_index) {
      store(glogits + e, C(0));
      continue;
    }
    const C g = load(grow + r * gs);
    const C target_p = eps / C(classes) + (i == t ? C(1) - eps : C(0));
    store(glogits + e, g * (exp(C(load(logits + e)) - C(load(lse + r))) - target_p));
  }
}

struct RowLaunch {
  int64_t rows, len;
  int group;
  unsigned blocks;
};
RowLaunch row_launch(int64_t rows, int64_t len) {
  const int group = len > 1024 ? kThreads : 32;
  const int per_block = kThreads / group;
  return {rows, len, group, unsigned((rows + per_block - 1) / per_block)};
}
// The rows of x's last dimension (a 0-d x is one row of one value).
RowLaunch last_dim_launch(const StridedView& x) {
  const int64_t len = x.ndim ? x.sizes[x.ndim - 1] : 1;
  return row_launch(len ? x.numel() / len : 0, len);
}

}  // namespace

void softmax(const StridedView& x, const StridedView& y, bool log_out) {
  const RowLaunch l = last_dim_launch(x);
  if (l.rows == 0) return;
  dispatch_cuda_floating(x.dtype, "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_kernel<T><<<l.blocks, kThreads, 0, stream()>>>(x.ptr<T>(), y.ptr<T>(), l.rows, l.len, log_out, l.group);
    CUDA_CHECK_LAUNCH();
  });
}

void softmax_backward(const StridedView& y, const StridedView& gy, const StridedView& gx, bool log_out) {
  const RowLaunch l = last_dim_launch(y);
  if (l.rows == 0) return;
  dispatch_cuda_floating(y.dtype, "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    softmax_backward_kernel<T><<<l.blocks, kThreads, 0, stream()>>>(y.ptr<T>(), gy.ptr<T>(), gx.ptr<T>(), l.rows,
                                                                    l.len, log_out, l.group);
    CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy(const StridedView& logits, const StridedView& target, const StridedView& loss,
                   const StridedView& lse, int64_t ignore_index, double label_smoothing) {
  const int64_t n = logits.sizes[0], classes = logits.sizes[1];
  if (n == 0) return;
  const RowLaunch l = row_launch(n, classes);
  dispatch_cuda_floating(logits.dtype, "cross_entropy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cross_entropy_kernel<T><<<l.blocks, kThreads, 0, stream()>>>(
        logits.ptr<T>(), target.ptr<int64_t>(), target.strides[0], loss.ptr<T>(), lse.ptr<T>(), n, classes,
        ignore_index, label_smoothing, l.group);
    CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy_backward(const StridedView& logits, const StridedView& target, const StridedView& lse,
                            const StridedView& grow, const StridedView& glogits, int64_t ignore_index,
                            double label_smoothing) {
  const int64_t n = logits.sizes[0], classes = logits.sizes[1];
  if (n * classes == 0) return;
  dispatch_cuda_floating(logits.dtype, "cross_entropy_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cross_entropy_backward_kernel<T><<<grid_for(n * classes), kThreads, 0, stream()>>>(
        logits.ptr<T>(), target.ptr<int64_t>(), target.strides[0], lse.ptr<T>(), grow.ptr<T>(), grow.strides[0],
        glogits.ptr<T>(), n, classes, ignore_index, label_smoothing);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace minivl::cuda
