#pragma once
// The CUDA backend's fused attention: numbered versions in kernels/cuda/attention_v1_v2.cu
// (v1 naive, v2 tiled SIMT), attention_v3.cu / attention_v3_backward.cu (tensor cores) and
// attention_v4.cu / attention_v4_backward.cu (tensor cores, sized for short sequences), run by
// number through the version switch (kernels/cuda/attention.cu). Which version a call gets is the
// version registry's choice (core/kernel_versions.h; the versions are registered in
// core/register_cuda.cpp, MINIVL_ATTENTION_VERSION=N picks one). No CUDA headers here: host C++
// (core/register_cuda.cpp, the benchmarks) includes this file. Layouts and the mask rule are the
// KernelTable's (core/dispatch.h): contiguous q (B, H, Tq, D), k, v (B, H, Tk, D), mask (B, Tk)
// bool/u8, lse (B, H, Tq) in f32 (f64 for f64 input). See docs/kernels/attention.md.
#include <cstdint>

#include "kernels/strided_view.h"

namespace minivl::cuda {

// Numbered versions, for the benchmark and the parity tests:
//   1  naive: S = scale q k^T materialised per (b, h) in global memory (B H Tq Tk compute-type
//      values), a row softmax, then P v; the backward materialises P and dS the same way.
//      f32, f64, bf16, f16 (compute in f32, f64 for f64); any D.
//   2  tiled SIMT online softmax (FlashAttention-2's loop order) in f32: one block per
//      (b, h, 16 query rows), keys in 32-wide tiles through shared memory; the backward is a
//      key-block pass (dk, dv) and a query-block pass (dq), no atomics. f32, bf16, f16; D <= 128.
//   3  FlashAttention-2 on tensor cores (mma.sync m16n8k16, ldmatrix, cp.async double buffering),
//      bf16/f16 with f32 accumulation, D in {32, 64, 128}; one block per (b, h, 64 query rows);
//      backward: Delta pre-pass, key-block pass (dk, dv), query-block pass (dq), no atomics.
//      Operands not 16-byte aligned run v2.
//   4  sized for vision-language sequence lengths (kernels/cuda/attention_v4.h): bf16/f16, D in
//      {32, 64, 128}; 16-row strips and 16-key steps, a head's K/V resident in shared memory where it
//      fits (a cp.async ring otherwise); the backward one block per (b, h) with dQ, dK, dV from one
//      recomputation of P where the head fits a block (else v3's backward). What v4 declines runs v3
//      (and what v3 declines, v2). A candidate: never a default until a GPU run shows its parity;
//      MINIVL_ATTENTION_VERSION=4 selects it.
// attention_version_supported says whether a version takes a dtype and head dim.
bool attention_version_supported(int version, DType dtype, int64_t head_dim);
void attention_forward_cuda_version(int version, const StridedView& q, const StridedView& k, const StridedView& v,
                                    const StridedView& key_padding_mask, bool causal, double scale,
                                    const StridedView& out, const StridedView& lse);
void attention_backward_cuda_version(int version, const StridedView& q, const StridedView& k,
                                     const StridedView& v, const StridedView& key_padding_mask, bool causal,
                                     double scale, const StridedView& out, const StridedView& lse,
                                     const StridedView& dout, const StridedView& dq, const StridedView& dk,
                                     const StridedView& dv);

}  // namespace minivl::cuda
