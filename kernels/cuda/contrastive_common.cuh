#pragma once
// Host pieces the CUDA contrastive-loss versions share (contrastive_v1.cu, contrastive_v2.cu,
// contrastive_v3.cu): the operand check of the tensor-core versions, the dtype dispatch, and a
// version's four entry points (ContrastiveKernels) built from its typed host functions.
#include <string>
#include <utility>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fused.h"

namespace minivl::cuda {

// Contiguous (n, d) rows at a 16-byte aligned address: what v2's and v3's tiles read by cp.async.
inline bool contrastive_rows_ok(const StridedView& v, int64_t n, int64_t d) {
  return v.ndim == 2 && v.sizes[0] == n && v.sizes[1] == d && v.strides[1] == 1 && v.strides[0] == d &&
         aligned16(v.data);
}

// Calls f(TypeTag<T>{}) for `dtype`: every floating dtype at version 1, bf16 and f16 above it.
template <int kVersion, typename F>
void contrastive_dispatch(DType dtype, const char* name, F&& f) {
  if constexpr (kVersion == 1) {
    dispatch_cuda_floating(dtype, name, std::forward<F>(f));
  } else {
    switch (dtype) {
      case DType::bf16: return f(TypeTag<bf16>{});
      case DType::f16: return f(TypeTag<f16>{});
      default:
        throw CudaError(std::string(name) + ": the v" + std::to_string(kVersion) + " kernels take bf16 or f16");
    }
  }
}

// A backward pass's operands: CLIP's reads the forward's lse_row and lse_col, SigLIP's has a bias
// and its gradient (logit_bias, dlogit_bias); the pointers a loss does not have are nullptr.
struct ContrastiveGrad {
  const StridedView& image;
  const StridedView& text;
  const StridedView& logit_scale;
  const StridedView* logit_bias;
  const StridedView* lse_row;
  const StridedView* lse_col;
  const StridedView& grad_loss;
  const StridedView& dimage;
  const StridedView& dtext;
  const StridedView& dlogit_scale;
  const StridedView* dlogit_bias;
};

// Version kVersion's typed host functions, which its file specializes: clip_loss and siglip_loss
// take the arguments of ContrastiveKernels' slots of those names, loss_backward<kClip> a
// ContrastiveGrad.
template <int kVersion, typename T>
struct ContrastivePasses;

// Version kVersion's four entry points: each dispatches on the image dtype and calls its pass of
// ContrastivePasses<kVersion, T>.
template <int kVersion>
const ContrastiveKernels& contrastive_entry_points() {
  static const ContrastiveKernels kernels{
      [](const StridedView& image, const StridedView& text, const StridedView& logit_scale, const StridedView& loss,
         const StridedView& lse_row, const StridedView& lse_col) {
        contrastive_dispatch<kVersion>(image.dtype, "clip_loss", [&](auto tag_) {
          using Passes = ContrastivePasses<kVersion, typename decltype(tag_)::type>;
          Passes::clip_loss(image, text, logit_scale, loss, lse_row, lse_col);
        });
      },
      [](const StridedView& image, const StridedView& text, const StridedView& logit_scale,
         const StridedView& lse_row, const StridedView& lse_col, const StridedView& grad_loss,
         const StridedView& dimage, const StridedView& dtext, const StridedView& dlogit_scale) {
        contrastive_dispatch<kVersion>(image.dtype, "clip_loss_backward", [&](auto tag_) {
          using Passes = ContrastivePasses<kVersion, typename decltype(tag_)::type>;
          Passes::template loss_backward<true>(ContrastiveGrad{image, text, logit_scale, nullptr, &lse_row, &lse_col,
                                                               grad_loss, dimage, dtext, dlogit_scale, nullptr});
        });
      },
      [](const StridedView& image, const StridedView& text, const StridedView& logit_scale,
         const StridedView& logit_bias, const StridedView& loss) {
        contrastive_dispatch<kVersion>(image.dtype, "siglip_loss", [&](auto tag_) {
          using Passes = ContrastivePasses<kVersion, typename decltype(tag_)::type>;
          Passes::siglip_loss(image, text, logit_scale, logit_bias, loss);
        });
      },
      [](const StridedView& image, const StridedView& text, const StridedView& logit_scale,
         const StridedView& logit_bias, const StridedView& grad_loss, const StridedView& dimage,
         const StridedView& dtext, const StridedView& dlogit_scale, const StridedView& dlogit_bias) {
        contrastive_dispatch<kVersion>(image.dtype, "siglip_loss_backward", [&](auto tag_) {
          using Passes = ContrastivePasses<kVersion, typename decltype(tag_)::type>;
          Passes::template loss_backward<false>(ContrastiveGrad{image, text, logit_scale, &logit_bias, nullptr,
                                                                nullptr, grad_loss, dimage, dtext, dlogit_scale,
                                                                &dlogit_bias});
        });
      }};
  return kernels;
}

}  // namespace minivl::cuda
