#pragma once
// The CUDA backend's fused kernels: layernorm (kernels/cuda/layernorm.cu) and the
// contrastive losses (kernels/cuda/contrastive.cu), registered into the kernel table by
// register_fused_kernels (kernels/cuda/register_fused.cu). No CUDA headers here: host
// C++ (core/backends.cpp) includes this file. Each entry point matches a KernelTable slot.
#include "kernels/strided_view.h"

namespace minivl {
struct KernelTable;
namespace cuda {

void register_fused_kernels(KernelTable& table);

// The registered entry points (the numbered versions live in the .cu files and the benchmarks).
// For the contrastive losses the *_cuda functions below are v1 (SIMT, every dtype); the table
// holds selectors (register_fused.cu) that run v2 where contrastive_v2_supported, else v1.
void layernorm_forward_cuda(const StridedView& x, const StridedView& residual, const StridedView& weight,
                            const StridedView& bias, double eps, const StridedView& sum, const StridedView& y,
                            const StridedView& mean, const StridedView& rstd);
void layernorm_backward_cuda(const StridedView& dy, const StridedView& h, const StridedView& weight,
                             const StridedView& mean, const StridedView& rstd, const StridedView& dsum,
                             const StridedView& dh, const StridedView& dweight, const StridedView& dbias);
void clip_loss_forward_cuda(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                            const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col);
void clip_loss_backward_cuda(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                             const StridedView& lse_row, const StridedView& lse_col, const StridedView& grad_loss,
                             const StridedView& dimage, const StridedView& dtext, const StridedView& dlogit_scale);
void siglip_loss_forward_cuda(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                              const StridedView& logit_bias, const StridedView& loss);
void siglip_loss_backward_cuda(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                               const StridedView& logit_bias, const StridedView& grad_loss,
                               const StridedView& dimage, const StridedView& dtext,
                               const StridedView& dlogit_scale, const StridedView& dlogit_bias);

// Contrastive losses v2 (kernels/cuda/contrastive_mma.cu): tensor cores (mma.sync m16n8k16),
// bf16/f16 only. Applies when contrastive_v2_supported: image and text bf16 or f16, contiguous
// (N, d) with d % 8 == 0, 16-byte aligned, compute capability >= 8.0.
bool contrastive_v2_supported(const StridedView& image, const StridedView& text);
void clip_loss_forward_cuda_v2(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                               const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col);
void clip_loss_backward_cuda_v2(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                const StridedView& lse_row, const StridedView& lse_col,
                                const StridedView& grad_loss, const StridedView& dimage, const StridedView& dtext,
                                const StridedView& dlogit_scale);
void siglip_loss_forward_cuda_v2(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                 const StridedView& logit_bias, const StridedView& loss);
void siglip_loss_backward_cuda_v2(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                  const StridedView& logit_bias, const StridedView& grad_loss,
                                  const StridedView& dimage, const StridedView& dtext,
                                  const StridedView& dlogit_scale, const StridedView& dlogit_bias);
// Which contrastive version the registered entries run: 0 automatic (v2 where supported, else
// v1), 1, 2 or 3 that version wherever it applies (v3, kernels/cuda/contrastive_v3.h, falls back
// to the automatic choice, v2 to v1, where they do not). Starts
// from MINIVL_CONTRASTIVE_VERSION (0 when unset); the benchmark sets it per row.
void set_contrastive_version(int version);
int contrastive_version_for(const StridedView& image, const StridedView& text);

// Numbered layernorm forward versions, for the benchmark: 1 thread per row, 2 warp per
// row, 3 vectorised with the row in registers (falls back to 2 where it does not apply).
void layernorm_forward_cuda_version(int version, const StridedView& x, const StridedView& residual,
                                    const StridedView& weight, const StridedView& bias, double eps,
                                    const StridedView& sum, const StridedView& y, const StridedView& mean,
                                    const StridedView& rstd);
// Numbered layernorm backward versions: 1 thread per row, 2 warp per row + two-stage params.
void layernorm_backward_cuda_version(int version, const StridedView& dy, const StridedView& h,
                                     const StridedView& weight, const StridedView& mean, const StridedView& rstd,
                                     const StridedView& dsum, const StridedView& dh, const StridedView& dweight,
                                     const StridedView& dbias);

}  // namespace cuda
}  // namespace minivl
