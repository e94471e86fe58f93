#pragma once
// Pieces shared by the CUDA attention versions (attention_v1_v2.cu, attention_v3.cu,
// attention_v3_backward.cu, attention_v4*.cu): the problem geometry with the mask rule, the
// shared-memory opt-in, the backward's Delta pre-pass, and each version's entry points, which the
// version switch (attention.cu) calls.
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace minivl::cuda {

struct Geometry {
  int64_t B, H, Tq, Tk, D;
  const uint8_t* pad;  // (B, Tk) or nullptr
  bool causal;
  __host__ __device__ int64_t shift() const { return Tk - Tq; }
  __device__ __forceinline__ bool visible(int64_t b, int64_t i, int64_t j) const {
    return (pad == nullptr || pad[b * Tk + j] == 0) && (!causal || j <= i + shift());
  }
  __host__ __device__ int64_t key_end(int64_t i1) const {  // keys [0, key_end) seen by rows < i1
    if (!causal) return Tk;
    const int64_t e = i1 + shift();
    return e < 0 ? 0 : (e > Tk ? Tk : e);
  }
  __host__ __device__ int64_t query_begin(int64_t j0) const {  // rows [query_begin, Tq) see keys >= j0
    if (!causal) return 0;
    const int64_t s = j0 - shift();
    return s < 0 ? 0 : (s > Tq ? Tq : s);
  }
};

// Dynamic shared memory over the default 48 KiB per block needs the kernel's opt-in first.
template <typename Kernel>
void allow_dynamic_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// The backward's Delta pre-pass, one warp per row: delta[r] = sum_d dO[r, d] O[r, d], rows of D.
template <typename T>
__global__ void row_delta_kernel(int64_t rows, int64_t D, const T* o, const T* dout, compute_t<T>* delta) {
  using C = compute_t<T>;
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= rows) return;
  C acc = 0;
  for (int64_t d = lane; d < D; d += 32) acc += C(load(o + warp * D + d)) * C(load(dout + warp * D + d));
  acc = warp_sum(acc);
  if (lane == 0) delta[warp] = acc;
}

template <typename T>
void launch_row_delta(int64_t rows, int64_t D, const T* o, const T* dout, compute_t<T>* delta) {
  row_delta_kernel<T><<<unsigned((rows * 32 + kThreads - 1) / kThreads), kThreads, 0, stream()>>>(rows, D, o, dout,
                                                                                                  delta);
  CUDA_CHECK_LAUNCH();
}

inline Geometry geometry(const StridedView& q, const StridedView& k, const StridedView& mask, bool causal) {
  return {q.sizes[0], q.sizes[1], q.sizes[2], k.sizes[2], q.sizes[3],
          mask.data ? static_cast<const uint8_t*>(mask.data) : nullptr, causal};
}

// v1 (naive, f32/f64/bf16/f16, any D) and v2 (tiled SIMT, f32/bf16/f16, D <= 128):
// attention_v1_v2.cu; `version` is 1 or 2, and the call one its *_supported predicate takes.
bool attention_v1_supported(DType dtype, int64_t head_dim);
bool attention_v2_supported(DType dtype, int64_t head_dim);
void attention_forward_v1_v2(int version, const StridedView& q, const StridedView& k, const StridedView& v,
                             const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                             const StridedView& lse);
void attention_backward_v1_v2(int version, const StridedView& q, const StridedView& k, const StridedView& v,
                              const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                              const StridedView& lse, const StridedView& dout, const StridedView& dq,
                              const StridedView& dk, const StridedView& dv);

// v3 (tensor cores, bf16/f16, D in {32, 64, 128}) forward; false when it does not apply
// (dtype, head dim, or q/k/v not 16-byte aligned), so the caller can fall back.
bool attention_forward_v3(const StridedView& q, const StridedView& k, const StridedView& v,
                          const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                          const StridedView& lse);
// v3 backward (attention_v3_backward.cu): Delta pre-pass, key-block pass (dk, dv), query-block
// pass (dq); false when it does not apply, as above.
bool attention_backward_v3(const StridedView& q, const StridedView& k, const StridedView& v,
                           const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                           const StridedView& lse, const StridedView& dout, const StridedView& dq,
                           const StridedView& dk, const StridedView& dv);
bool attention_v3_supported(DType dtype, int64_t head_dim);

}  // namespace minivl::cuda
