// attention: fused scaled-dot-product attention with its own backward kernels
// (FlashAttention-2: the forward saves only the row log-sum-exp; the backward recomputes the
// probabilities tile by tile). See docs/kernels/attention.md.
#include <cmath>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/ops/op_helpers.h"

namespace minivl {
namespace {

struct AttentionBackward final : Node {
  SavedTensor q, k, v, mask, out, lse;
  bool causal = false;
  double scale = 1.0;
  const char* name() const override { return "AttentionBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor qs = q.get(name()), ks = k.get(name()), vs = v.get(name()), os = out.get(name()), ls = lse.get(name());
    Tensor m = mask.defined() ? mask.get(name()) : Tensor();
    Tensor dout = grads[0].to(qs.dtype()).contiguous();  // (B, H, Tq, D)
    Tensor dq = make_tensor(qs.shape(), qs.dtype(), qs.device());
    Tensor dk = make_tensor(ks.shape(), ks.dtype(), ks.device());
    Tensor dv = make_tensor(vs.shape(), vs.dtype(), vs.device());
    kernel_for(kernels().attention_backward, qs.device(), name())(
        qs.view(), ks.view(), vs.view(), view_or_none(m), causal, scale, os.view(), ls.view(), dout.view(), dq.view(),
        dk.view(), dv.view());
    return {dq, dk, dv};
  }
  void release_saved() override {
    q.release();
    k.release();
    v.release();
    mask.release();
    out.release();
    lse.release();
  }
};

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  MINIVL_CHECK(q.defined() && k.defined() && v.defined(), "attention: q, k or v is undefined");
  MINIVL_CHECK(q.dim() == 4 && q.is_floating_point(), "attention: q must be floating (B, H, Tq, D), got ", q.desc());
  MINIVL_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), "attention: dtypes differ: q ", q.desc(), ", k ",
               k.desc(), ", v ", v.desc());
  MINIVL_CHECK(k.device() == q.device() && v.device() == q.device(), "attention: devices differ: q ", q.desc(),
               ", k ", k.desc(), ", v ", v.desc());
  MINIVL_CHECK(k.dim() == 4 && v.shape() == k.shape() && k.size(0) == q.size(0) && k.size(1) == q.size(1) &&
                   k.size(3) == q.size(3),
               "attention: expected q (B, H, Tq, D) and k, v (B, H, Tk, D), got q ", q.shape_str(), ", k ",
               k.shape_str(), ", v ", v.shape_str());
  MINIVL_CHECK(q.size(3) > 0, "attention: head dim D must be >= 1, got q ", q.shape_str());
  if (mask.defined()) {
    MINIVL_CHECK(mask.dtype() == DType::boolean || mask.dtype() == DType::u8,
                 "attention: key_padding_mask must be bool or u8, got ", mask.desc());
    MINIVL_CHECK(mask.shape() == Shape({q.size(0), k.size(2)}), "attention: key_padding_mask must be (B, Tk) = (",
                 q.size(0), ", ", k.size(2), "), got ", mask.shape_str());
    MINIVL_CHECK(mask.device() == q.device(), "attention: key_padding_mask on ", mask.device().str(), ", q on ",
                 q.device().str());
  }
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const Tensor& mask_in = options.key_padding_mask;
  check_inputs(q, k, v, mask_in);
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), D = q.size(3);
  const double scale = options.scale.value_or(1.0 / std::sqrt(double(D)));
  Tensor qc = q.detach().contiguous(), kc = k.detach().contiguous(), vc = v.detach().contiguous();
  Tensor mask = mask_in.defined() ? mask_in.detach().contiguous() : Tensor();
  Tensor out = make_tensor(q.shape(), q.dtype(), q.device());              // (B, H, Tq, D)
  Tensor lse = make_tensor({B, H, Tq}, stats_dtype(q.dtype()), q.device());  // (B, H, Tq)
  kernel_for(kernels().attention, q.device(), "attention")(qc.view(), kc.view(), vc.view(), view_or_none(mask),
                                                           options.causal, scale, out.view(), lse.view());
  if (needs_grad({&q, &k, &v})) {
    auto node = std::make_shared<AttentionBackward>();
    node->q = SavedTensor(qc);
    node->k = SavedTensor(kc);
    node->v = SavedTensor(vc);
    if (mask.defined()) node->mask = SavedTensor(mask);
    node->out = SavedTensor(out);
    node->lse = SavedTensor(lse);
    node->causal = options.causal;
    node->scale = scale;
    set_history(node, {q, k, v}, {out});
  }
  return out;
}

}  // namespace minivl
