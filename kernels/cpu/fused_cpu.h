#pragma once
// The CPU backend's fused kernels: layernorm (plain and with the residual add)
// and the tiled contrastive losses (CLIP, SigLIP). Each function matches a
// KernelTable slot (core/dispatch.h); see docs/kernels/layernorm.md and
// docs/kernels/contrastive.md for the algorithms and the derivations.
#include <cstdint>

#include "kernels/strided_view.h"

namespace minivl::cpu {

// layernorm_cpu.cpp
// x, residual, sum, y: contiguous (R, C); weight, bias: (C) or data == nullptr; mean, rstd: (R) in
// the statistics dtype (f64 for f64 input, else f32). residual.data == nullptr: plain layernorm.
void layernorm_forward(const StridedView& x, const StridedView& residual, const StridedView& weight,
                       const StridedView& bias, double eps, const StridedView& sum, const StridedView& y,
                       const StridedView& mean, const StridedView& rstd);
// dh = rstd * (g - mean(g) - xhat * mean(g * xhat)) (+ dsum), g = dy * weight, xhat = (h - mean) * rstd;
// dweight = sum_rows dy * xhat, dbias = sum_rows dy (two stages over fixed row chunks: deterministic).
void layernorm_backward(const StridedView& dy, const StridedView& h, const StridedView& weight,
                        const StridedView& mean, const StridedView& rstd, const StridedView& dsum,
                        const StridedView& dh, const StridedView& dweight, const StridedView& dbias);

// contrastive_cpu.cpp
// image, text: contiguous (N, d); scalars are 0-d in the statistics dtype; lse_row, lse_col: (N).
void clip_loss_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                       const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col);
void clip_loss_backward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                        const StridedView& lse_row, const StridedView& lse_col, const StridedView& grad_loss,
                        const StridedView& dimage, const StridedView& dtext, const StridedView& dlogit_scale);
void siglip_loss_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                         const StridedView& logit_bias, const StridedView& loss);
void siglip_loss_backward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                          const StridedView& logit_bias, const StridedView& grad_loss, const StridedView& dimage,
                          const StridedView& dtext, const StridedView& dlogit_scale,
                          const StridedView& dlogit_bias);

// The tile edge of the contrastive kernels (rows and columns of a logits tile), for tests and docs.
inline constexpr int64_t kContrastiveTile = 128;

}  // namespace minivl::cpu
