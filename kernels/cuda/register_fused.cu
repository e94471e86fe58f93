// Registers the fused CUDA kernels (layernorm, contrastive losses) into the kernel table;
// called from core/backends.cpp's register_cuda_kernels.
#include "core/dispatch.h"
#include "kernels/cuda/fused.h"

namespace minivl::cuda {

void register_fused_kernels(KernelTable& t) {
  const int d = int(DeviceType::CUDA);
  t.layernorm[d] = layernorm_forward_cuda;
  t.layernorm_backward[d] = layernorm_backward_cuda;
  t.clip_loss[d] = clip_loss_forward_cuda;
  t.clip_loss_backward[d] = clip_loss_backward_cuda;
  t.siglip_loss[d] = siglip_loss_forward_cuda;
  t.siglip_loss_backward[d] = siglip_loss_backward_cuda;
}

}  // namespace minivl::cuda
