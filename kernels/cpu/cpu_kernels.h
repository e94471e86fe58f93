#pragma once
// The CPU backend: the reference every CUDA kernel is tested against. Each
// function matches a KernelTable slot (core/dispatch.h) and computes into a
// preallocated output; none allocates tensors or knows about autograd.
#include <cstdint>

#include "kernels/elementwise_ops.h"
#include "kernels/strided_view.h"

namespace minivl::cpu {

// copy_cpu.cpp
void copy(const StridedView& src, const StridedView& dst);
void fill(const StridedView& dst, double value);
void random_fill(const StridedView& dst, int kind /*0 uniform, 1 normal*/, uint64_t seed, uint64_t offset);

// elementwise_cpu.cpp
void unary(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& out);
void unary_backward(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& gy, const StridedView& gx);
void binary(BinaryOp op, const StridedView& a, const StridedView& b, const StridedView& out);
void where(const StridedView& cond, const StridedView& a, const StridedView& b, const StridedView& out);
void dropout(const StridedView& x, const StridedView& out, double p, uint64_t seed, uint64_t offset);

// reduce_cpu.cpp
void reduce(ReduceOp op, const StridedView& in, int n_reduced, const StridedView& out);
void argmax(const StridedView& in, const StridedView& out);
void topk(const StridedView& in, int64_t k, const StridedView& values, const StridedView& indices);

// softmax_cpu.cpp
void softmax(const StridedView& x, const StridedView& y, bool log);
void softmax_backward(const StridedView& y, const StridedView& gy, const StridedView& gx, bool log);
void cross_entropy(const StridedView& logits, const StridedView& target, const StridedView& loss,
                   const StridedView& lse, int64_t ignore_index, double label_smoothing);
void cross_entropy_backward(const StridedView& logits, const StridedView& target, const StridedView& lse,
                            const StridedView& grow, const StridedView& glogits, int64_t ignore_index,
                            double label_smoothing);

// embedding_cpu.cpp
void embedding(const StridedView& weight, const StridedView& ids, const StridedView& out);
void embedding_backward(const StridedView& gout, const StridedView& ids, const StridedView& gweight);

}  // namespace minivl::cpu
