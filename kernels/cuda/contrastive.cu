// The CUDA contrastive losses' version switch: which numbered version takes a dtype and feature
// dim, and the passes that run version N (v1, SIMT: contrastive_v1.cu; v2, tensor cores:
// contrastive_v2.cu; v3, the four-GEMM-equivalent schedule: contrastive_v3.cu). Which version a
// call gets is the version registry's choice (core/kernel_versions.h; registered in
// core/register_cuda.cpp, MINIVL_CONTRASTIVE_VERSION=N picks one). v2 and v3 decline, at run
// time, features that are not contiguous and 16-byte aligned and GPUs below sm_80: what v3
// declines runs v2, what v2 declines runs v1.
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/contrastive_v3.h"
#include "kernels/cuda/fused.h"

namespace minivl::cuda {

bool contrastive_version_supported(int version, DType dtype, int64_t d) {
  switch (version) {
    case 1: return dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16 || dtype == DType::f16;
    case 2: return contrastive_v2_takes(dtype, d);
    case 3: return contrastive_v3_takes(dtype, d);
    default: return false;
  }
}

int contrastive_version_run(int version, const StridedView& image, const StridedView& text) {
  if (!contrastive_version_supported(version, image.dtype, image.sizes[1]))
    throw CudaError("contrastive losses: CUDA version " + std::to_string(version) + " does not take dtype " +
                    std::to_string(int(image.dtype)) + " with feature dim " + std::to_string(image.sizes[1]));
  if (version == 3 && contrastive_v3_supported(image, text)) return 3;
  if (version >= 2 && contrastive_v2_supported(image, text)) return 2;
  return 1;
}

const ContrastiveKernels& contrastive_kernels(int version, const StridedView& image, const StridedView& text) {
  switch (contrastive_version_run(version, image, text)) {
    case 3: return contrastive_v3_kernels();
    case 2: return contrastive_v2_kernels();
    default: return contrastive_v1_kernels();
  }
}

}  // namespace minivl::cuda
