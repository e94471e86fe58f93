#pragma once
// Scaled dot-product attention composed from public ops (matmul, mul, masked_fill,
// softmax; never the fused `attention` op), gradients through their autograd nodes:
// the materialised reference for the fused op, with the same semantics.
// nn::MultiHeadAttention uses the fused op and can be switched to this one
// (set_use_attention_reference) to compare the two.
#include "core/tensor.h"

namespace minivl::nn {

// q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) -> (B, H, Tq, Dv); Dv may differ from D.
// causal: query i attends to keys j <= i + (Tk - Tq) (the last query is aligned
//   with the last key, which is what incremental decoding with a KV cache needs).
// key_padding_mask: (B, Tk) bool or u8, true/nonzero = that key is padding and
//   ignored; undefined = none.
// A query row whose keys are all masked gives zeros (not NaN), and so does its gradient.
// scale: multiplies q.k (1/sqrt(D) is the usual).
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                           const Tensor& key_padding_mask, double scale);

// The (B or 1, 1, Tq, Tk) bool mask, true = masked, built on the host and moved to `device`;
// undefined when nothing is masked.
Tensor attention_mask(int64_t batch, int64_t tq, int64_t tk, bool causal, const Tensor& key_padding_mask,
                      Device device);

}  // namespace minivl::nn
