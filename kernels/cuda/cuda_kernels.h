#pragma once
// The CUDA backend's kernel entry points, one per KernelTable slot (the same
// signatures as kernels/cpu/cpu_kernels.h, which is the reference each must
// match). Host-callable, no CUDA headers: backend.cu registers them. Each runs
// on the backend's stream (common.cuh: stream()) and returns without
// synchronising unless it says otherwise.
#include <cstddef>
#include <cstdint>

#include "kernels/elementwise_ops.h"
#include "kernels/strided_view.h"

namespace minivl::cuda {

// elementwise.cu: memory-bound pointwise kernels (grid-stride loops over the
// output; OffsetCalc merges dims so most calls run with offset == index).
void copy(const StridedView& src, const StridedView& dst);  // converts dtype; 128-bit path when contiguous
void fill(const StridedView& dst, double value);
void random_fill(const StridedView& dst, int kind /*0 uniform, 1 normal*/, uint64_t seed, uint64_t offset);
void unary(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& out);
void unary_backward(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& gy, const StridedView& gx);
void binary(BinaryOp op, const StridedView& a, const StridedView& b, const StridedView& out);
void where(const StridedView& cond, const StridedView& a, const StridedView& b, const StridedView& out);
void dropout(const StridedView& x, const StridedView& out, double p, uint64_t seed, uint64_t offset);

// reduce.cu
void reduce(ReduceOp op, const StridedView& in, int n_reduced, const StridedView& out);
void argmax(const StridedView& in, const StridedView& out);
void topk(const StridedView& in, int64_t k, const StridedView& values, const StridedView& indices);

// softmax.cu
void softmax(const StridedView& x, const StridedView& y, bool log);
void softmax_backward(const StridedView& y, const StridedView& gy, const StridedView& gx, bool log);
void cross_entropy(const StridedView& logits, const StridedView& target, const StridedView& loss,
                   const StridedView& lse, int64_t ignore_index, double label_smoothing);
void cross_entropy_backward(const StridedView& logits, const StridedView& target, const StridedView& lse,
                            const StridedView& grow, const StridedView& glogits, int64_t ignore_index,
                            double label_smoothing);

// index.cu
void embedding(const StridedView& weight, const StridedView& ids, const StridedView& out);
void embedding_backward(const StridedView& gout, const StridedView& ids, const StridedView& gweight);
// The first out-of-range id an embedding forward met since the last call (and clears it); reads
// device memory, so call it where the host already waits for the stream (a copy to the host).
bool take_embedding_error(int64_t& id, int64_t& vocab);

// Host <-> device and device <-> device copies of contiguous bytes on the backend's stream;
// synchronises when the host is involved (the host buffer is free to reuse on return).
enum class CopyKind { host_to_device, device_to_host, device_to_device };
void memcpy_bytes(const void* src, void* dst, size_t nbytes, CopyKind kind);
void synchronize();

}  // namespace minivl::cuda
