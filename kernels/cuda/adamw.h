#pragma once
// The CUDA fused AdamW step (kernels/cuda/adamw.cu). No CUDA headers here:
// core/backends.cpp includes this file to call the registration.
#include <cstdint>

#include "kernels/adamw_kernel.h"

namespace minivl {
struct KernelTable;
namespace cuda {

void register_adamw_kernels(KernelTable& table);

// The registered version: one launch over every tensor (see adamw.cu).
void adamw_step_cuda(const AdamWTensor* tensors, int64_t count, const AdamWHyper& hyper);
// v1, kept for the benchmark and parity: one launch per tensor.
void adamw_step_cuda_v1(const AdamWTensor* tensors, int64_t count, const AdamWHyper& hyper);

}  // namespace cuda
}  // namespace minivl
