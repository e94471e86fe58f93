#pragma once
// The CPU backend: the reference every CUDA kernel is tested against. The entry points both
// backends share (kernels/kernel_entry_points.h), declared in minivl::cpu; each matches the
// KernelTable slot of its name (core/dispatch.h) and computes into a preallocated output; none
// allocates tensors or knows about autograd. Where they live:
//   elementwise_cpu.cpp  copy, fill, random_fill, unary, unary_backward, binary, where, dropout
//   reduce_cpu.cpp       reduce, argmax, topk
//   softmax_cpu.cpp      softmax, softmax_backward, cross_entropy, cross_entropy_backward
//   embedding_cpu.cpp    embedding, embedding_backward
// The fused kernels: fused_cpu.h (layernorm, contrastive), attention_cpu.h; GEMM: gemm_cpu.h.
#include "kernels/kernel_entry_points.h"

namespace minivl::cpu {

MINIVL_SHARED_KERNELS(MINIVL_DECLARE_KERNEL)

}  // namespace minivl::cpu
