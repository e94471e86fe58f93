#pragma once
// The CUDA backend's entry points shared with the CPU (kernels/kernel_entry_points.h), declared in
// minivl::cuda: each matches the KernelTable slot of its name and the CPU reference of the same
// name (kernels/cpu/cpu_kernels.h). Host-callable, no CUDA headers: core/register_cuda.cpp
// registers them. Each runs on the backend's stream (common.cuh: stream()) and returns without
// synchronising unless it says otherwise. Where they live:
//   elementwise.cu  copy (converts dtype; 128-bit path when contiguous), fill, random_fill, unary,
//                   unary_backward, binary, where, dropout (grid-stride loops over the output;
//                   OffsetCalc merges dims so most calls run with offset == index)
//   reduce.cu       reduce, argmax, topk
//   softmax.cu      softmax, softmax_backward, cross_entropy, cross_entropy_backward
//   embedding.cu    embedding, embedding_backward
// The fused kernels: fused.h (layernorm, contrastive), attention.h, adamw.h; GEMM: gemm.h.
#include <cstddef>

#include "kernels/kernel_entry_points.h"

namespace minivl::cuda {

MINIVL_SHARED_KERNELS(MINIVL_DECLARE_KERNEL)

// embedding.cu: the first out-of-range id an embedding forward met since the last call (and clears
// it); reads device memory, so call it where the host already waits for the stream (a copy to the host).
bool take_embedding_error(int64_t& id, int64_t& vocab);

// Host <-> device and device <-> device copies of contiguous bytes on the backend's stream;
// synchronises when the host is involved (the host buffer is free to reuse on return).
enum class CopyKind { host_to_device, device_to_host, device_to_device };
void memcpy_bytes(const void* src, void* dst, size_t nbytes, CopyKind kind);
void synchronize();

}  // namespace minivl::cuda
