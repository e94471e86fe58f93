// softmax, log_softmax and the fused cross-entropy.
#include <cmath>
#include <limits>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl {
namespace {

struct SoftmaxBackward final : Node {
  SavedTensor y;  // contiguous, the softmax dim last
  int64_t dim;
  bool log;
  const char* name() const override { return log ? "LogSoftmaxBackward" : "SoftmaxBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor yv = y.get(name());
    Tensor g = grads[0].transpose(dim, -1).contiguous();
    Tensor gx = make_tensor(yv.shape(), yv.dtype(), yv.device());
    kernel_for(kernels().softmax_backward, yv.device(), name())(yv.view(), g.view(), gx.view(), log);
    return {gx.transpose(dim, -1)};
  }
  void release_saved() override { y.release(); }
};

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  MINIVL_CHECK(x.defined() && x.is_floating_point(), name, ": expected a floating tensor, got ",
               x.defined() ? x.desc() : "undefined");
  if (x.dim() == 0) return softmax_impl(x.reshape({1}), 0, log).reshape({});
  int64_t d = wrap_dim(dim, x.dim(), name);
  Tensor xt = x.detach().transpose(d, -1).contiguous();
  Tensor y = make_tensor(xt.shape(), x.dtype(), x.device());
  if (y.numel() > 0) kernel_for(kernels().softmax, x.device(), name)(xt.view(), y.view(), log);
  Tensor out = y.transpose(d, -1);
  if (needs_grad({&x})) {
    auto node = std::make_shared<SoftmaxBackward>();
    node->y = SavedTensor(y);
    node->dim = d;
    node->log = log;
    set_history(node, {x}, {out});
  }
  return out;
}

struct CrossEntropyBackward final : Node {
  SavedTensor logits, target, lse;
  int64_t ignore_index;
  double label_smoothing;
  const char* name() const override { return "CrossEntropyBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor x = logits.get(name()), t = target.get(name()), l = lse.get(name());
    Tensor gx = make_tensor(x.shape(), x.dtype(), x.device());
    kernel_for(kernels().cross_entropy_backward, x.device(), "cross_entropy")(
        x.view(), t.view(), l.view(), grads[0].contiguous().view(), gx.view(), ignore_index, label_smoothing);
    return {gx, Tensor()};
  }
  void release_saved() override {
    logits.release();
    target.release();
    lse.release();
  }
};

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true); }

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double label_smoothing,
                     Reduction reduction) {
  MINIVL_CHECK(logits.defined() && target.defined(), "cross_entropy: undefined tensor argument");
  MINIVL_CHECK(logits.dim() == 2 && logits.is_floating_point(),
               "cross_entropy: logits must be floating (N, C), got ", logits.desc());
  MINIVL_CHECK(target.dim() == 1 && (target.dtype() == DType::i64 || target.dtype() == DType::i32),
               "cross_entropy: target must be integer (N,) class ids, got ", target.desc());
  MINIVL_CHECK(target.size(0) == logits.size(0), "cross_entropy: logits ", logits.shape_str(), " and target ",
               target.shape_str(), " disagree on N");
  MINIVL_CHECK(logits.device() == target.device(), "cross_entropy: logits on ", logits.device().str(),
               ", target on ", target.device().str());
  MINIVL_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0,
               "cross_entropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  const int64_t n = logits.size(0), classes = logits.size(1);
  Tensor t = target.to(DType::i64).contiguous();
  int64_t valid = 0;
  for (double v : t.to_vector()) {
    int64_t id = int64_t(v);
    if (id == ignore_index) continue;
    MINIVL_CHECK(id >= 0 && id < classes, "cross_entropy: target ", id, " out of range for ", classes,
                 " classes");
    ++valid;
  }
  Tensor x = logits.detach().contiguous();
  Tensor loss = make_tensor({n}, logits.dtype(), logits.device());
  Tensor lse = make_tensor({n}, logits.dtype(), logits.device());
  if (n > 0) {
    MINIVL_CHECK(classes > 0, "cross_entropy: logits have zero classes");
    kernel_for(kernels().cross_entropy, logits.device(), "cross_entropy")(x.view(), t.view(), loss.view(),
                                                                          lse.view(), ignore_index, label_smoothing);
  }
  if (needs_grad({&logits})) {
    auto node = std::make_shared<CrossEntropyBackward>();
    node->logits = SavedTensor(x);
    node->target = SavedTensor(t);
    node->lse = SavedTensor(lse);
    node->ignore_index = ignore_index;
    node->label_smoothing = label_smoothing;
    set_history(node, {logits, target}, {loss});
  }
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean:
      return valid > 0 ? mul(sum(loss), 1.0 / double(valid))
                       : mul(sum(loss), std::numeric_limits<double>::quiet_NaN());
  }
  return loss;
}

}  // namespace minivl
