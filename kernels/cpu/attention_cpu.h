#pragma once
// The CPU backend's fused attention (kernels/cpu/attention_cpu.cpp): FlashAttention-2's tiled
// online softmax, forward and backward, plus the naive materialised version the tests and the
// benchmark hold it against. Each function matches a KernelTable slot (core/dispatch.h):
//   q (B, H, Tq, D), k, v (B, H, Tk, D), out, dout (B, H, Tq, D), dq, dk, dv: contiguous, one dtype
//   key_padding_mask: contiguous (B, Tk) bool/u8, nonzero = ignore that key; data == nullptr: none
//   causal: query i sees key j iff j <= i + (Tk - Tq) (the last query is aligned with the last key)
//   lse (B, H, Tq): log-sum-exp of the scaled, masked scores, f64 for f64 input and f32 otherwise;
//                   -inf where a row sees no key (its output and its gradients are zero)
// See docs/kernels/attention.md for the derivation, the tiling and the measurements.
#include <cstdint>

#include "kernels/strided_view.h"

namespace minivl::cpu {

// Query rows and key columns of one score tile.
inline constexpr int64_t kAttentionBlockQ = 64;
inline constexpr int64_t kAttentionBlockK = 64;

// Tiled: OpenMP over (batch, head, query block); O(Br x Bc + Br x D) scratch per thread.
void attention_forward(const StridedView& q, const StridedView& k, const StridedView& v,
                       const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                       const StridedView& lse);
// Tiled, recomputing P from lse: a key-block pass (dk, dv) and a query-block pass (dq), each
// output row owned by one thread (deterministic, no atomics).
void attention_backward(const StridedView& q, const StridedView& k, const StridedView& v,
                        const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                        const StridedView& lse, const StridedView& dout, const StridedView& dq,
                        const StridedView& dk, const StridedView& dv);

// Naive: the (Tq, Tk) scores and probabilities materialised per (batch, head), plain softmax.
// The backward recomputes the softmax itself (it does not read lse).
void attention_forward_naive(const StridedView& q, const StridedView& k, const StridedView& v,
                             const StridedView& key_padding_mask, bool causal, double scale,
                             const StridedView& out, const StridedView& lse);
void attention_backward_naive(const StridedView& q, const StridedView& k, const StridedView& v,
                              const StridedView& key_padding_mask, bool causal, double scale,
                              const StridedView& out, const StridedView& lse, const StridedView& dout,
                              const StridedView& dq, const StridedView& dk, const StridedView& dv);

}  // namespace minivl::cpu
