#pragma once
// The CUDA fused AdamW step (kernels/cuda/adamw.cu), by version number: which version runs is
// the version registry's choice (core/kernel_versions.h, core/register_cuda.cpp;
// MINIVL_ADAMW_VERSION=N picks one). No CUDA headers here.
#include <cstdint>

#include "kernels/adamw_kernel.h"
#include "kernels/scalar_types.h"

namespace minivl::cuda {

// 1: one launch per tensor; 2: one launch over every tensor (multi-tensor apply). Both f32.
bool adamw_version_supported(int version, DType dtype, int64_t tensors);
void adamw_step_cuda_version(int version, const AdamWTensor* tensors, int64_t count, const AdamWHyper& hyper);
void adamw_step_cuda_v1(const AdamWTensor* tensors, int64_t count, const AdamWHyper& hyper);
void adamw_step_cuda_v2(const AdamWTensor* tensors, int64_t count, const AdamWHyper& hyper);

}  // namespace minivl::cuda
