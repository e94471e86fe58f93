// Registers the fused CUDA kernels (layernorm, contrastive losses) into the kernel table;
// called from core/backends.cpp's register_cuda_kernels. The contrastive slots hold selectors:
// v2 (tensor cores, kernels/cuda/contrastive_mma.cu) for bf16/f16 where contrastive_v2_supported
// (contiguous (N, d), d % 8 == 0, 16-byte aligned, sm_80+), v1 (kernels/cuda/contrastive.cu)
// otherwise. MINIVL_CONTRASTIVE_VERSION=1 (or set_contrastive_version(1)) forces v1 everywhere;
// =3 runs the candidate v3 (kernels/cuda/contrastive_v3.cu) where contrastive_v3_supported, until
// a GPU run shows its parity and speed; it is not the default.
// v2 is the default where it applies because it is the faster and passes the parity tests on sm_90
// (bench/results/2026-11-27-h100-h200.md).
#include <atomic>
#include <cstdlib>

#include "core/dispatch.h"
#include "kernels/cuda/contrastive_v3.h"
#include "kernels/cuda/fused.h"

namespace minivl::cuda {
namespace {

std::atomic<int>& forced_version() {
  static std::atomic<int> v{[] {
    const char* env = std::getenv("MINIVL_CONTRASTIVE_VERSION");
    return env ? std::atoi(env) : 0;
  }()};
  return v;
}

void clip_loss_forward_registered(const StridedView& image, const StridedView& text,
                                  const StridedView& logit_scale, const StridedView& loss,
                                  const StridedView& lse_row, const StridedView& lse_col) {
  const int version = contrastive_version_for(image, text);
  if (version == 3) {
    clip_loss_forward_cuda_v3(image, text, logit_scale, loss, lse_row, lse_col);
  } else if (version == 2) {
    clip_loss_forward_cuda_v2(image, text, logit_scale, loss, lse_row, lse_col);
  } else {
    clip_loss_forward_cuda(image, text, logit_scale, loss, lse_row, lse_col);
  }
}

void clip_loss_backward_registered(const StridedView& image, const StridedView& text,
                                   const StridedView& logit_scale, const StridedView& lse_row,
                                   const StridedView& lse_col, const StridedView& grad_loss,
                                   const StridedView& dimage, const StridedView& dtext,
                                   const StridedView& dlogit_scale) {
  const int version = contrastive_version_for(image, text);
  if (version == 3) {
    clip_loss_backward_cuda_v3(image, text, logit_scale, lse_row, lse_col, grad_loss, dimage, dtext, dlogit_scale);
  } else if (version == 2) {
    clip_loss_backward_cuda_v2(image, text, logit_scale, lse_row, lse_col, grad_loss, dimage, dtext, dlogit_scale);
  } else {
    clip_loss_backward_cuda(image, text, logit_scale, lse_row, lse_col, grad_loss, dimage, dtext, dlogit_scale);
  }
}

void siglip_loss_forward_registered(const StridedView& image, const StridedView& text,
                                    const StridedView& logit_scale, const StridedView& logit_bias,
                                    const StridedView& loss) {
  const int version = contrastive_version_for(image, text);
  if (version == 3) {
    siglip_loss_forward_cuda_v3(image, text, logit_scale, logit_bias, loss);
  } else if (version == 2) {
    siglip_loss_forward_cuda_v2(image, text, logit_scale, logit_bias, loss);
  } else {
    siglip_loss_forward_cuda(image, text, logit_scale, logit_bias, loss);
  }
}

void siglip_loss_backward_registered(const StridedView& image, const StridedView& text,
                                     const StridedView& logit_scale, const StridedView& logit_bias,
                                     const StridedView& grad_loss, const StridedView& dimage,
                                     const StridedView& dtext, const StridedView& dlogit_scale,
                                     const StridedView& dlogit_bias) {
  const int version = contrastive_version_for(image, text);
  if (version == 3) {
    siglip_loss_backward_cuda_v3(image, text, logit_scale, logit_bias, grad_loss, dimage, dtext, dlogit_scale,
                                 dlogit_bias);
  } else if (version == 2) {
    siglip_loss_backward_cuda_v2(image, text, logit_scale, logit_bias, grad_loss, dimage, dtext, dlogit_scale,
                                 dlogit_bias);
  } else {
    siglip_loss_backward_cuda(image, text, logit_scale, logit_bias, grad_loss, dimage, dtext, dlogit_scale,
                              dlogit_bias);
  }
}

}  // namespace

void set_contrastive_version(int version) { forced_version().store(version); }

int contrastive_version_for(const StridedView& image, const StridedView& text) {
  const int forced = forced_version().load();
  if (forced == 1) return 1;
  if (forced == 3 && contrastive_v3_supported(image, text)) return 3;
  return contrastive_v2_supported(image, text) ? 2 : 1;
}

void register_fused_kernels(KernelTable& t) {
  const int d = int(DeviceType::CUDA);
  t.layernorm[d] = layernorm_forward_cuda;
  t.layernorm_backward[d] = layernorm_backward_cuda;
  t.clip_loss[d] = clip_loss_forward_registered;
  t.clip_loss_backward[d] = clip_loss_backward_registered;
  t.siglip_loss[d] = siglip_loss_forward_registered;
  t.siglip_loss_backward[d] = siglip_loss_backward_registered;
}

}  // namespace minivl::cuda
