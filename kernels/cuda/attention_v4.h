#pragma once
// Attention v4: tensor-core attention sized for vision-language sequence lengths (T up to a few
// hundred: ViT-B/32 50, CLIP text 77, ViT-B/16 197, ViT-L/14 257, ViT-L/14@336 577, a captioner's
// 20 queries over 197 keys). kernels/cuda/attention_v4.cu (forward) and attention_v4_backward.cu
// (backward) hold the lesson; attention_v4_plan.h the tile arithmetic. Host C++: no CUDA headers.
//
// Contract (the KernelTable's, core/dispatch.h): contiguous q (B, H, Tq, D), k, v (B, H, Tk, D),
// out (B, H, Tq, D), lse (B, H, Tq) f32; key_padding_mask contiguous (B, Tk) bool/u8, nonzero =
// ignore that key, data == nullptr: none; causal: query i sees key j iff j <= i + (Tk - Tq). A row
// that sees no key gets out = 0, lse = -inf and zero gradients.
#include <cstdint>

#include "kernels/strided_view.h"

namespace minivl::cuda {

// Whether v4's forward kernel takes this problem (bf16/f16, D in {32, 64, 128}; any Tq, Tk, mask).
bool attention_v4_supports(DType dtype, int64_t head_dim, int64_t Tq, int64_t Tk, bool has_mask, bool causal);
// Whether v4's fused one-block-per-head backward fits this device's shared memory for the problem
// (otherwise attention_v4_backward declines and the caller runs v3's three-pass backward).
bool attention_v4_backward_fused(DType dtype, int64_t head_dim, int64_t Tq, int64_t Tk, bool has_mask, bool causal);

// Both return false, having launched nothing, when v4 does not take the problem (dtype, head dim,
// operands not 16-byte aligned; for the backward, a head that does not fit one block).
bool attention_v4_forward(const StridedView& q, const StridedView& k, const StridedView& v,
                          const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                          const StridedView& lse);
bool attention_v4_backward(const StridedView& q, const StridedView& k, const StridedView& v,
                           const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                           const StridedView& lse, const StridedView& dout, const StridedView& dq,
                           const StridedView& dk, const StridedView& dv);

}  // namespace minivl::cuda
