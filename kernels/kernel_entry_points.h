#pragma once
// The kernel entry points every backend provides under one name and one signature: one line per
// KernelTable slot of the same name (core/dispatch.h says what each computes). The list is
// written once, here; kernels/cpu/cpu_kernels.h declares it in minivl::cpu,
// kernels/cuda/cuda_kernels.h in minivl::cuda, and core/register_cpu.cpp and
// core/register_cuda.cpp fill the table's slots from it. A new pointwise kernel is one line here,
// one function per backend, and one slot. (GEMM, the fused kernels and AdamW have per-backend
// entry points of their own: kernels/cpu/gemm_cpu.h, fused_cpu.h, attention_cpu.h and
// kernels/cuda/gemm.h, fused.h, attention.h, adamw.h.)
#include <cstdint>

#include "kernels/elementwise_ops.h"
#include "kernels/strided_view.h"

namespace minivl {

enum class RandomKind { uniform, normal };

}  // namespace minivl

// X(name, (parameters)); every entry point returns void and writes its outputs in place.
#define MINIVL_SHARED_KERNELS(X)                                                                              \
  X(copy, (const StridedView& src, const StridedView& dst))                                                   \
  X(fill, (const StridedView& dst, double value))                                                             \
  X(random_fill, (const StridedView& dst, RandomKind kind, uint64_t seed, uint64_t offset))                   \
  X(unary, (UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& out))                         \
  X(unary_backward, (UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& gy,                  \
                     const StridedView& gx))                                                                  \
  X(binary, (BinaryOp op, const StridedView& a, const StridedView& b, const StridedView& out))                \
  X(where, (const StridedView& cond, const StridedView& a, const StridedView& b, const StridedView& out))     \
  X(dropout, (const StridedView& x, const StridedView& out, double p, uint64_t seed, uint64_t offset))        \
  X(reduce, (ReduceOp op, const StridedView& in, int n_reduced, const StridedView& out))                      \
  X(argmax, (const StridedView& in, const StridedView& out))                                                  \
  X(topk, (const StridedView& in, int64_t k, const StridedView& values, const StridedView& indices))          \
  X(softmax, (const StridedView& x, const StridedView& y, bool log))                                          \
  X(softmax_backward, (const StridedView& y, const StridedView& gy, const StridedView& gx, bool log))         \
  X(cross_entropy, (const StridedView& logits, const StridedView& target, const StridedView& loss,            \
                    const StridedView& lse, int64_t ignore_index, double label_smoothing))                    \
  X(cross_entropy_backward, (const StridedView& logits, const StridedView& target, const StridedView& lse,    \
                             const StridedView& grow, const StridedView& glogits, int64_t ignore_index,       \
                             double label_smoothing))                                                         \
  X(embedding, (const StridedView& weight, const StridedView& ids, const StridedView& out))                   \
  X(embedding_backward, (const StridedView& gout, const StridedView& ids, const StridedView& gweight))

// Declares one entry point of the list: MINIVL_SHARED_KERNELS(MINIVL_DECLARE_KERNEL) in a namespace.
#define MINIVL_DECLARE_KERNEL(name, params) void name params;
