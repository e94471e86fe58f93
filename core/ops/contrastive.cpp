// clip_loss and siglip_loss: fused, tiled contrastive losses with their own backward
// kernels. The N x N logits are never materialised; the CLIP forward saves the row and
// column log-sum-exp (2N values). See docs/kernels/contrastive.md.
#include <string>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/ops/op_helpers.h"

namespace minivl {
namespace {

void check_features(const char* op, const Tensor& image, const Tensor& text) {
  MINIVL_CHECK(image.defined() && text.defined(), op, ": image or text is undefined");
  MINIVL_CHECK(image.dim() == 2 && image.is_floating_point(), op, ": image must be floating (N, d), got ",
               image.desc());
  MINIVL_CHECK(text.shape() == image.shape() && text.dtype() == image.dtype() && text.device() == image.device(),
               op, ": text ", text.desc(), " does not match image ", image.desc());
  MINIVL_CHECK(image.size(0) > 0 && image.size(1) > 0, op, ": needs N >= 1 and d >= 1, got ", image.shape_str());
}

// A one-element floating tensor on the features' device, as a 0-d tensor in the statistics dtype.
Tensor scalar_arg(const char* op, const char* what, const Tensor& s, const Tensor& image) {
  MINIVL_CHECK(s.defined() && s.numel() == 1 && s.is_floating_point(), op, ": ", what,
               " must be a one-element floating tensor, got ", s.defined() ? s.desc() : "undefined");
  MINIVL_CHECK(s.device() == image.device(), op, ": ", what, " on ", s.device().str(), ", image on ",
               image.device().str());
  return s.detach().reshape({}).to(stats_dtype(image.dtype())).contiguous();
}

// A scalar argument as the backward keeps it: its 0-d value in the statistics dtype (scalar_arg's),
// and the caller's shape and dtype, which its gradient goes back to.
struct SavedScalar {
  SavedTensor value;
  Shape shape;
  DType dtype = DType::f32;
  SavedScalar() = default;
  SavedScalar(const Tensor& stats_value, const Tensor& argument)
      : value(stats_value), shape(argument.shape()), dtype(argument.dtype()) {}
  Tensor grad(const Tensor& g) const { return g.to(dtype).reshape(shape); }
};

struct ClipLossBackward final : Node {
  SavedTensor image, text, lse_row, lse_col;
  SavedScalar scale;
  const char* name() const override { return "ClipLossBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor img = image.get(name()), txt = text.get(name()), s = scale.value.get(name());
    Tensor lr = lse_row.get(name()), lc = lse_col.get(name());
    Tensor g = grads[0].to(s.dtype()).reshape({}).contiguous();
    Tensor dimage = make_tensor(img.shape(), img.dtype(), img.device());
    Tensor dtext = make_tensor(txt.shape(), txt.dtype(), txt.device());
    Tensor dscale = make_tensor({}, s.dtype(), s.device());
    kernel_for(kernels().clip_loss_backward, img.device(), name())(img.view(), txt.view(), s.view(), lr.view(),
                                                                  lc.view(), g.view(), dimage.view(), dtext.view(),
                                                                  dscale.view());
    return {dimage, dtext, scale.grad(dscale)};
  }
  void release_saved() override {
    image.release();
    text.release();
    scale.value.release();
    lse_row.release();
    lse_col.release();
  }
};

struct SiglipLossBackward final : Node {
  SavedTensor image, text;
  SavedScalar scale, bias;
  const char* name() const override { return "SiglipLossBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor img = image.get(name()), txt = text.get(name()), s = scale.value.get(name()), b = bias.value.get(name());
    Tensor g = grads[0].to(s.dtype()).reshape({}).contiguous();
    Tensor dimage = make_tensor(img.shape(), img.dtype(), img.device());
    Tensor dtext = make_tensor(txt.shape(), txt.dtype(), txt.device());
    Tensor dscale = make_tensor({}, s.dtype(), s.device());
    Tensor dbias = make_tensor({}, s.dtype(), s.device());
    kernel_for(kernels().siglip_loss_backward, img.device(), name())(img.view(), txt.view(), s.view(), b.view(),
                                                                    g.view(), dimage.view(), dtext.view(),
                                                                    dscale.view(), dbias.view());
    return {dimage, dtext, scale.grad(dscale), bias.grad(dbias)};
  }
  void release_saved() override {
    image.release();
    text.release();
    scale.value.release();
    bias.value.release();
  }
};

// The loss is computed in the statistics dtype and returned in the features' dtype.
Tensor to_feature_dtype(const Tensor& loss, DType dtype) { return loss.dtype() == dtype ? loss : loss.to(dtype); }

}  // namespace

Tensor clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale) {
  check_features("clip_loss", image, text);
  Tensor scale = scalar_arg("clip_loss", "logit_scale", logit_scale, image);
  const int64_t n = image.size(0);
  const DType sd = stats_dtype(image.dtype());
  Tensor img = image.detach().contiguous(), txt = text.detach().contiguous();
  Tensor loss = make_tensor({}, sd, image.device());
  Tensor lse_row = make_tensor({n}, sd, image.device());
  Tensor lse_col = make_tensor({n}, sd, image.device());
  kernel_for(kernels().clip_loss, image.device(), "clip_loss")(img.view(), txt.view(), scale.view(), loss.view(),
                                                               lse_row.view(), lse_col.view());
  if (needs_grad({&image, &text, &logit_scale})) {
    auto node = std::make_shared<ClipLossBackward>();
    node->image = SavedTensor(img);
    node->text = SavedTensor(txt);
    node->scale = SavedScalar(scale, logit_scale);
    node->lse_row = SavedTensor(lse_row);
    node->lse_col = SavedTensor(lse_col);
    set_history(node, {image, text, logit_scale}, {loss});
  }
  return to_feature_dtype(loss, image.dtype());
}

Tensor siglip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const Tensor& logit_bias) {
  check_features("siglip_loss", image, text);
  Tensor scale = scalar_arg("siglip_loss", "logit_scale", logit_scale, image);
  Tensor bias = scalar_arg("siglip_loss", "logit_bias", logit_bias, image);
  const DType sd = stats_dtype(image.dtype());
  Tensor img = image.detach().contiguous(), txt = text.detach().contiguous();
  Tensor loss = make_tensor({}, sd, image.device());
  kernel_for(kernels().siglip_loss, image.device(), "siglip_loss")(img.view(), txt.view(), scale.view(),
                                                                   bias.view(), loss.view());
  if (needs_grad({&image, &text, &logit_scale, &logit_bias})) {
    auto node = std::make_shared<SiglipLossBackward>();
    node->image = SavedTensor(img);
    node->text = SavedTensor(txt);
    node->scale = SavedScalar(scale, logit_scale);
    node->bias = SavedScalar(bias, logit_bias);
    set_history(node, {image, text, logit_scale, logit_bias}, {loss});
  }
  return to_feature_dtype(loss, image.dtype());
}

}  // namespace minivl
