// layernorm and add_layernorm: fused forward (saving mean and rstd) and fused backward.
// The kernels see contiguous (R, C) rows, C the last dim; see docs/kernels/layernorm.md.
#include <string>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/ops/op_helpers.h"

namespace minivl {
namespace {

struct LayerNormBackward final : Node {
  SavedTensor h, weight, mean, rstd;  // h: the normalised input (x, or x + residual), (R, C)
  Shape shape;                        // of x
  bool has_residual = false, has_weight = false, has_bias = false;
  const char* name() const override { return has_residual ? "AddLayerNormBackward" : "LayerNormBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor hv = h.get(name()), m = mean.get(name()), r = rstd.get(name());
    Tensor w = has_weight ? weight.get(name()) : Tensor();
    const int64_t rows = hv.size(0), cols = hv.size(1);
    // outputs: layernorm -> (y); add_layernorm -> (sum, y)
    Tensor dy = (has_residual ? grads[1] : grads[0]).to(hv.dtype()).contiguous().reshape({rows, cols});
    Tensor dsum = has_residual ? grads[0].to(hv.dtype()).contiguous().reshape({rows, cols}) : Tensor();
    Tensor dh = make_tensor({rows, cols}, hv.dtype(), hv.device());
    Tensor dw = has_weight ? make_tensor({cols}, hv.dtype(), hv.device()) : Tensor();
    Tensor db = has_bias ? make_tensor({cols}, hv.dtype(), hv.device()) : Tensor();
    if (hv.numel() > 0) {
      kernel_for(kernels().layernorm_backward, hv.device(), name())(dy.view(), hv.view(), view_or_none(w), m.view(),
                                                                   r.view(), view_or_none(dsum), dh.view(),
                                                                   view_or_none(dw), view_or_none(db));
    } else {
      if (dw.defined()) dw.zero_();
      if (db.defined()) db.zero_();
    }
    dh = dh.reshape(shape);
    if (has_residual) return {dh, dh, dw, db};
    return {dh, dw, db};
  }
  void release_saved() override {
    h.release();
    weight.release();
    mean.release();
    rstd.release();
  }
};

// residual undefined: plain layernorm (the first result is undefined).
std::pair<Tensor, Tensor> layernorm_impl(const char* op, const Tensor& x, const Tensor& residual,
                                         const Tensor& weight, const Tensor& bias, double eps) {
  MINIVL_CHECK(x.defined() && x.is_floating_point() && x.dim() >= 1, op,
               ": expected a floating tensor with at least 1 dim, got ", x.defined() ? x.desc() : "undefined");
  const int64_t cols = x.size(-1);
  if (residual.defined() || std::string(op) == "add_layernorm") {
    MINIVL_CHECK(residual.defined(), op, ": residual is undefined");
    MINIVL_CHECK(residual.shape() == x.shape() && residual.dtype() == x.dtype() && residual.device() == x.device(),
                 op, ": residual ", residual.desc(), " does not match x ", x.desc());
  }
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    MINIVL_CHECK(p->shape() == Shape{cols}, op, ": weight/bias must have shape (", cols, ",) for input ",
                 x.shape_str(), ", got ", p->shape_str());
    MINIVL_CHECK(p->dtype() == x.dtype() && p->device() == x.device(), op, ": parameter ", p->desc(),
                 " does not match input ", x.desc());
  }
  MINIVL_CHECK(eps >= 0.0, op, ": eps must be non-negative, got ", eps);
  const int64_t rows = cols ? x.numel() / cols : 0;
  Tensor xc = x.detach().contiguous().reshape({rows, cols});
  Tensor rc = residual.defined() ? residual.detach().contiguous().reshape({rows, cols}) : Tensor();
  Tensor w = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor b = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = make_tensor({rows, cols}, x.dtype(), x.device());
  Tensor sum = rc.defined() ? make_tensor({rows, cols}, x.dtype(), x.device()) : Tensor();
  Tensor mean = make_tensor({rows}, stats_dtype(x.dtype()), x.device());
  Tensor rstd = make_tensor({rows}, stats_dtype(x.dtype()), x.device());
  if (y.numel() > 0) {
    kernel_for(kernels().layernorm, x.device(), op)(xc.view(), view_or_none(rc), view_or_none(w), view_or_none(b),
                                                    eps, view_or_none(sum), y.view(), mean.view(), rstd.view());
  }
  Tensor y_out = y.reshape(x.shape());
  Tensor sum_out = sum.defined() ? sum.reshape(x.shape()) : Tensor();
  if (needs_grad({&x, &residual, &weight, &bias})) {
    auto node = std::make_shared<LayerNormBackward>();
    node->h = SavedTensor(rc.defined() ? sum : xc);
    if (w.defined()) node->weight = SavedTensor(w);
    node->mean = SavedTensor(mean);
    node->rstd = SavedTensor(rstd);
    node->shape = x.shape();
    node->has_residual = rc.defined();
    node->has_weight = weight.defined();
    node->has_bias = bias.defined();
    if (rc.defined()) {
      set_history(node, {x, residual, weight, bias}, {sum_out, y_out});
    } else {
      set_history(node, {x, weight, bias}, {y_out});
    }
  }
  return {sum_out, y_out};
}

}  // namespace

Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  return layernorm_impl("layernorm", x, Tensor(), weight, bias, eps).second;
}

std::pair<Tensor, Tensor> add_layernorm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                        const Tensor& bias, double eps) {
  return layernorm_impl("add_layernorm", x, residual, weight, bias, eps);
}

}  // namespace minivl
