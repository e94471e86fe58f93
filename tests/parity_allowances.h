#pragma once
// Per-element allowance models of the fused ops' parity rows: for each result element, how far
// two correct implementations (the CPU's, CUDA's) can be apart, from the magnitudes of the terms
// behind it, computed in f64 from the case's inputs and loss weights.
//
// The shared numbers (u = 2^-24, the f32 unit roundoff; u_T the storage type's):
//  - a dot product of K terms in f32 is off by at most c_dot(K) u sum_k |a_k b_k|:
//    c_dot = 6 on CUDA cores (round to nearest over random signs: ~0.5 u sum|terms| per
//    implementation, so 6 is past 8 sigma for the pair), K / 4 + 4 for 16-bit inputs on tensor
//    cores (they truncate once per k-block of 8 or 16 products instead of rounding);
//  - a sum of n positive terms (softmax denominators, variances) kept in f32 and added in order,
//    as the CPU does: (2 sqrt(n) + 8) u relative (sequential rounding errors grow as sqrt(n));
//  - a result rounded from f32 to a 16-bit type: 1 of its ulps (in the bound, not here);
//  - a 16-bit intermediate the kernel rounds (attention's P and dS, the contrastive G, before
//    their tensor-core products): u_T per term, combined over the k terms as
//    min(u_T sum|terms|, 4 u_T sqrt(sum terms^2)): independent roundings add like a random walk,
//    4 is past 6 sigma of uniform errors, and the linear sum is the hard limit.
// Each model bounds one implementation's error from the exact result, then doubles it (the two
// devices err independently); terms that already compare the two (the saved output's difference
// in attention's Delta) are not doubled.
#include "tests/parity_cuda_table.h"

namespace minivl::parity_cuda {

// The dot-product coefficient above, for inputs of `dtype`.
double c_dot(int64_t k, DType dtype);

// softmax / log_softmax over `dim` (the case's inputs: x).
AllowanceFn softmax_allowance(int64_t dim, bool log);
// cross_entropy (inputs: logits (N, C), target (N)).
AllowanceFn cross_entropy_allowance(int64_t ignore_index, double smoothing, Reduction reduction);
// layernorm (inputs x, [weight], [bias]) or add_layernorm (inputs x, residual, [weight], [bias];
// outputs sum, y).
AllowanceFn layernorm_allowance(bool with_residual, bool has_weight, bool has_bias, double eps);
// attention (inputs q, k, v, [key padding mask]).
AllowanceFn attention_allowance(const AttentionShape& shape);
// clip_loss (inputs image, text, logit_scale) and siglip_loss (..., logit_bias).
AllowanceFn clip_allowance();
AllowanceFn siglip_allowance();

}  // namespace minivl::parity_cuda
