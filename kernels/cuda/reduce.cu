// Reductions (sum, mean, max over trailing dims), argmax and topk on CUDA.
//
// reduce: the op layer hands `in` with kept dims first and the n_reduced
// reduced dims last. Each output is reduced by a group of threads: 1 thread
// (reduced dims strided and many outputs: neighbouring threads read
// neighbouring kept elements, so loads coalesce), a warp (shuffle tree), or a
// whole block (warp shuffles, then one warp over the 32 warp results in shared
// memory). Few outputs with long ranges also split the range over gridDim.y
// blocks; the partials (in the accumulator type) are combined in a fixed order
// by a second kernel, so results do not depend on scheduling. Accumulation: f32
// for f32/bf16/f16 (the CPU reference uses f64: compare with dtype tolerances),
// f64 for f64, i64 for integers. max propagates NaN like the CPU. Bound: memory
// bandwidth, one read of `in`.
//
// argmax: a warp (or a block, for long rows) per row; (value, index) pairs
// combined as the CPU scans: the first NaN wins, else the first maximum.
// topk (v1): one block per row, k selection passes; pass j finds the largest
// element strictly after pass j-1's in the order (value desc, index asc), so
// ties keep the lower index first like the CPU's partial_sort. O(k * L) reads
// per row: fine for the usual small k (top-5 of a vocabulary), slow for
// k ~ L > 10^4 (a sort-based v2 would replace it there).
#include <algorithm>
#include <cfloat>
#include <climits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace minivl::cuda {

namespace {

template <typename T> struct AccOf { using type = int64_t; };
template <> struct AccOf<float> { using type = float; };
template <> struct AccOf<bf16> { using type = float; };
template <> struct AccOf<f16> { using type = float; };
template <> struct AccOf<double> { using type = double; };

template <typename Acc>
__device__ __forceinline__ Acc lowest() {
  if constexpr (std::is_same_v<Acc, int64_t>) return LLONG_MIN;
  else return Acc(-INFINITY);  // an all -inf range gives -inf, as on the CPU
}

template <typename Acc>
__device__ __forceinline__ Acc combine(bool is_max, Acc a, Acc b) {
  if (!is_max) return a + b;
  if constexpr (!std::is_same_v<Acc, int64_t>) {
    if (isnan(a) || isnan(b)) return a + b;  // NaN
  }
  return a > b ? a : b;
}

// Reduces `v` over groups of `group` consecutive threads (1, 32, or blockDim.x); every lane gets the result
// when group <= 32, thread 0 of the block when group == blockDim.x > 32.
template <typename Acc>
__device__ Acc group_reduce(bool is_max, Acc v, int group, Acc* scratch) {
  if (group == 1) return v;
  for (int o = 16; o > 0; o >>= 1) v = combine(is_max, v, __shfl_xor_sync(0xffffffffu, v, o));
  if (group == 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    // Lanes past the last warp bring the identity: a copy of scratch[0] is harmless to a max but
    // would be counted again by a sum.
    v = lane < warps ? scratch[lane] : (is_max ? scratch[0] : Acc(0));
    for (int o = 16; o > 0; o >>= 1) v = combine(is_max, v, __shfl_xor_sync(0xffffffffu, v, o));
  }
  return v;
}

template <typename T, typename Acc>
__device__ __forceinline__ void store_result(T* out, ReduceOp op, Acc acc, int64_t n_red) {
  if (op == ReduceOp::mean) {
    if constexpr (std::is_same_v<Acc, int64_t>) store(out, acc / (n_red ? n_red : 1));
    else store(out, acc / Acc(n_red));  // 0 / 0 = NaN for an empty range, like the CPU
  } else {
    store(out, acc);
  }
}

// grid: (ceil(n_out / outputs_per_block), splits). kept: (in, out) offsets over the kept shape.
template <typename T>
__global__ void reduce_kernel(ReduceOp op, const T* in, T* out, OffsetCalc<2> kept, OffsetCalc<1> red, int64_t n_out,
                              int64_t n_red, int group, typename AccOf<T>::type* partial) {
  using Acc = typename AccOf<T>::type;
  __shared__ Acc scratch[32];
  const bool is_max = op == ReduceOp::max;
  const int per_block = blockDim.x / group;
  const int64_t o = int64_t(blockIdx.x) * per_block + threadIdx.x / group;
  const int lane = threadIdx.x % group;
  const int splits = gridDim.y, s = blockIdx.y;
  const int64_t chunk = (n_red + splits - 1) / splits;
  const int64_t begin = s * chunk, end = min(n_red, begin + chunk);
  if (group <= 32 && o >= n_out) return;  // whole groups leave together
  int64_t koff[2];
  kept.offsets(o, koff);
  const T* base = in + koff[0];
  Acc acc = is_max ? lowest<Acc>() : Acc(0);
  for (int64_t i = begin + lane; i < end; i += group) {
    int64_t roff[1];
    red.offsets(i, roff);
    acc = combine(is_max, acc, Acc(load(base + roff[0])));
  }
  acc = group_reduce(is_max, acc, group, scratch);
  if (lane != 0) return;
  if (splits == 1) store_result(out + koff[1], op, acc, n_red);
  else partial[o * splits + s] = acc;
}

template <typename T>
__global__ void reduce_finish_kernel(ReduceOp op, const typename AccOf<T>::type* partial, int splits, T* out,
                                     OffsetCalc<2> kept, int64_t n_out, int64_t n_red) {
  using Acc = typename AccOf<T>::type;
  const bool is_max = op == ReduceOp::max;
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n_out; o += int64_t(gridDim.x) * blockDim.x) {
    Acc acc = partial[o * splits];
    for (int s = 1; s < splits; ++s) acc = combine(is_max, acc, partial[o * splits + s]);
    int64_t koff[2];
    kept.offsets(o, koff);
    store_result(out + koff[1], op, acc, n_red);
  }
}

// ---- argmax ----

struct ArgBest {
  double v;
  int64_t i;
};

__device__ __forceinline__ ArgBest arg_combine(ArgBest a, ArgBest b) {
  bool an = isnan(a.v), bn = isnan(b.v);
  if (an || bn) {
    if (an && bn) return a.i < b.i ? a : b;
    return an ? a : b;
  }
  if (a.v != b.v) return a.v > b.v ? a : b;
  return a.i < b.i ? a : b;
}

__device__ ArgBest arg_group_reduce(ArgBest v, int group, ArgBest* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    ArgBest w{__shfl_xor_sync(0xffffffffu, v.v, o), __shfl_xor_sync(0xffffffffu, v.i, o)};
    v = arg_combine(v, w);
  }
  if (group == 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : scratch[0];
  for (int o = 16; o > 0; o >>= 1) {
    ArgBest w{__shfl_xor_sync(0xffffffffu, v.v, o), __shfl_xor_sync(0xffffffffu, v.i, o)};
    v = arg_combine(v, w);
  }
  __syncthreads();  // scratch may be reused by the caller
  return v;
}

// in: (R, L); one group (a warp, or the block) per row.
template <typename T>
__global__ void argmax_kernel(const T* in, int64_t rows, int64_t len, int64_t rs, int64_t cs, int64_t* out,
                              int64_t os, int group) {
  __shared__ ArgBest scratch[32];
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x / group) + threadIdx.x / group;
  const int lane = threadIdx.x % group;
  if (group == 32 && r >= rows) return;
  ArgBest best{-INFINITY, LLONG_MAX};
  for (int64_t i = lane; i < len; i += group) best = arg_combine(best, ArgBest{double(load(in + r * rs + i * cs)), i});
  best = arg_group_reduce(best, group, scratch);
  if (lane == 0) out[r * os] = best.i;
}

// topk: pass j picks the best element strictly after `prev` in the order (value desc, index asc).
template <typename T>
__global__ void topk_kernel(const T* in, int64_t len, int64_t rs, int64_t cs, int64_t k, T* values, int64_t vrs,
                            int64_t vcs, int64_t* indices, int64_t irs, int64_t ics) {
  __shared__ ArgBest scratch[32];
  const int64_t r = blockIdx.x;
  const T* row = in + r * rs;
  ArgBest prev{INFINITY, -1};
  for (int64_t j = 0; j < k; ++j) {
    ArgBest best{-INFINITY, LLONG_MAX};
    bool found = false;
    for (int64_t i = threadIdx.x; i < len; i += blockDim.x) {
      double v = double(load(row + i * cs));
      bool after = v < prev.v || (v == prev.v && i > prev.i);
      if (after && (!found || v > best.v || (v == best.v && i < best.i))) {
        best = ArgBest{v, i};
        found = true;
      }
    }
    // Not-found lanes hold (-inf, INT64_MAX), which loses every tie against a real element.
    best = arg_group_reduce(best, blockDim.x, scratch);
    if (best.i == LLONG_MAX) best.i = prev.i >= 0 ? prev.i : 0;  // only NaNs left (the CPU's order is unspecified)
    if (threadIdx.x == 0) {
      values[r * vrs + j * vcs] = row[best.i * cs];
      indices[r * irs + j * ics] = best.i;
    }
    prev = best;
  }
}

}  // namespace

void reduce(ReduceOp op, const StridedView& in, int n_reduced, const StridedView& out) {
  const int n_kept = in.ndim - n_reduced;
  StridedView kept_in = sub_view(in, 0, n_kept);
  StridedView red = sub_view(in, n_kept, n_reduced);
  const int64_t n_out = kept_in.numel(), n_red = red.numel();
  if (n_out == 0) return;
  OffsetCalc<2> kept = make_offset_calc<2>({&kept_in, &out});
  OffsetCalc<1> red_calc = make_offset_calc<1>({&red});
  const bool red_contiguous = red_calc.strides[0][red_calc.ndim - 1] == 1 || n_red <= 1;
  const int sms = device_props().sm_count > 0 ? device_props().sm_count : 80;

  int group, splits = 1;
  if (!red_contiguous && n_out >= 4 * int64_t(sms) * 32) group = 1;
  else if (n_red <= 4096 || n_out >= 8 * int64_t(sms)) group = 32;
  else group = kThreads;
  if (group == kThreads && n_out < 2 * int64_t(sms)) {
    int64_t want = (2 * int64_t(sms) + n_out - 1) / n_out;
    int64_t most = n_red / 4096;
    splits = int(std::max<int64_t>(1, std::min<int64_t>({want, most, 1024})));
  }
  const int per_block = kThreads / group;
  const unsigned blocks = unsigned((n_out + per_block - 1) / per_block);

  dispatch_cuda_all(in.dtype, "reduce", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Acc = typename AccOf<T>::type;
    DeviceBuffer partial(splits > 1 ? size_t(n_out) * size_t(splits) * sizeof(Acc) : 0);
    reduce_kernel<T><<<dim3(blocks, unsigned(splits)), kThreads, 0, stream()>>>(
        op, in.ptr<T>(), out.ptr<T>(), kept, red_calc, n_out, n_red, group, partial.as<Acc>());
    CUDA_CHECK_LAUNCH();
    if (splits > 1) {
      reduce_finish_kernel<T><<<grid_for(n_out), kThreads, 0, stream()>>>(op, partial.as<Acc>(), splits,
                                                                           out.ptr<T>(), kept, n_out, n_red);
      CUDA_CHECK_LAUNCH();
    }
  });
}

void argmax(const StridedView& in, const StridedView& out) {
  const int64_t rows = in.sizes[0], len = in.sizes[1];
  if (rows == 0) return;
  const int group = len > 4096 ? kThreads : 32;
  const int per_block = kThreads / group;
  dispatch_cuda_all(in.dtype, "argmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    argmax_kernel<T><<<unsigned((rows + per_block - 1) / per_block), kThreads, 0, stream()>>>(
        in.ptr<T>(), rows, len, in.strides[0], in.strides[1], out.ptr<int64_t>(), out.strides[0], group);
    CUDA_CHECK_LAUNCH();
  });
}

void topk(const StridedView& in, int64_t k, const StridedView& values, const StridedView& indices) {
  const int64_t rows = in.sizes[0], len = in.sizes[1];
  if (rows == 0 || k == 0) return;
  dispatch_cuda_all(in.dtype, "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    topk_kernel<T><<<unsigned(rows), kThreads, 0, stream()>>>(in.ptr<T>(), len, in.strides[0], in.strides[1], k,
                                                              values.ptr<T>(), values.strides[0], values.strides[1],
                                                              indices.ptr<int64_t>(), indices.strides[0],
                                                              indices.strides[1]);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace minivl::cuda
