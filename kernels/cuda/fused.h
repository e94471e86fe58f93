#pragma once
// The CUDA backend's fused kernels, layernorm (kernels/cuda/layernorm.cu) and the contrastive
// losses (contrastive.cu: the version switch; contrastive_v1.cu, contrastive_v2.cu, contrastive_v3.cu:
// the versions),
// run by version number. Which version a call gets is the version registry's choice
// (core/kernel_versions.h; the versions are registered in core/register_cuda.cpp, and
// MINIVL_LAYERNORM_VERSION / MINIVL_CONTRASTIVE_VERSION pick one). No CUDA headers here: host C++
// (core/register_cuda.cpp, the benchmarks) includes this file.
#include <cstdint>

#include "kernels/strided_view.h"

namespace minivl::cuda {

// ---- layernorm (layernorm.cu) ----
// Forward: 1 one thread per row, 2 one warp per row, 3 vectorised with the row in registers
// (f32/bf16/f16 rows of a multiple of 16 bytes, C <= 32768; unaligned pointers run v2's forward).
// Backward: 1 one thread per row (and per column for the parameters), 2 (and 3) one warp per row
// with the parameter gradients in two deterministic stages.
bool layernorm_version_supported(int version, DType dtype, int64_t cols);
// The version whose backward version `version` runs (3 runs 2's).
int layernorm_backward_version(int version);
void layernorm_forward_cuda_version(int version, const StridedView& x, const StridedView& residual,
                                    const StridedView& weight, const StridedView& bias, double eps,
                                    const StridedView& sum, const StridedView& y, const StridedView& mean,
                                    const StridedView& rstd);
void layernorm_backward_cuda_version(int version, const StridedView& dy, const StridedView& h,
                                     const StridedView& weight, const StridedView& mean, const StridedView& rstd,
                                     const StridedView& dsum, const StridedView& dh, const StridedView& dweight,
                                     const StridedView& dbias);

// ---- contrastive losses (contrastive.cu) ----
// A version's four passes; each matches the KernelTable slot of its name (core/dispatch.h).
struct ContrastiveKernels {
  using ClipForward = void (*)(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                               const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col);
  using ClipBackward = void (*)(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                const StridedView& lse_row, const StridedView& lse_col, const StridedView& grad_loss,
                                const StridedView& dimage, const StridedView& dtext, const StridedView& dlogit_scale);
  using SiglipForward = void (*)(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                 const StridedView& logit_bias, const StridedView& loss);
  using SiglipBackward = void (*)(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                  const StridedView& logit_bias, const StridedView& grad_loss,
                                  const StridedView& dimage, const StridedView& dtext,
                                  const StridedView& dlogit_scale, const StridedView& dlogit_bias);
  ClipForward clip_loss;
  ClipBackward clip_loss_backward;
  SiglipForward siglip_loss;
  SiglipBackward siglip_loss_backward;
};

// 1 SIMT (every floating dtype), 2 tensor cores (bf16/f16, d % 8 == 0), 3 the four-GEMM-equivalent
// schedule on tensor cores (bf16/f16, d % 8 == 0, d <= 65536).
bool contrastive_version_supported(int version, DType dtype, int64_t d);
// The passes that run version `version` on these features, and their version number. Where a
// version declines them at run time (features not contiguous and 16-byte aligned, a GPU below
// sm_80), v3 runs v2's passes and v2 runs v1's. Both throw, naming the version, where it does not
// take the dtype and d.
const ContrastiveKernels& contrastive_kernels(int version, const StridedView& image, const StridedView& text);
int contrastive_version_run(int version, const StridedView& image, const StridedView& text);

// The versions: v1 (contrastive_v1.cu), SIMT, every floating dtype; v2 (contrastive_v2.cu),
// mma.sync m16n8k16 logit tiles, bf16/f16; v3 (contrastive_v3.cu, contrastive_v3.h), a single-pass
// forward and a backward through a 16-bit G chunk and cuBLASLt, bf16/f16. contrastive_vN_takes:
// the dtype and d version N takes; contrastive_vN_supported (v3's in contrastive_v3.h): also the
// operands (contiguous (N, d), 16-byte aligned, N >= 1) and the device (compute capability >= 8.0).
const ContrastiveKernels& contrastive_v1_kernels();
const ContrastiveKernels& contrastive_v2_kernels();
const ContrastiveKernels& contrastive_v3_kernels();
bool contrastive_v2_takes(DType dtype, int64_t d);
bool contrastive_v3_takes(DType dtype, int64_t d);
bool contrastive_v2_supported(const StridedView& image, const StridedView& text);

}  // namespace minivl::cuda
