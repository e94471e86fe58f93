// Differentiable all-gather and the contrastive losses over a batch sharded
// across ranks (nn/distributed.h; the derivation is in docs/distributed.md).
//
// Rank r holds rows [r n, (r + 1) n) of the global batch (N = R n rows). The
// global logits are L = s I T^T (N x N, s = exp(logit_scale)); rank r builds
// only its n rows of L (its images against every text) and its n columns (its
// texts against every image, as rows of s T_r I^T): 2 n N logits instead of
// N^2, after gathering I and T (N x d each).
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/amp.h"
#include "nn/distributed.h"

namespace minivl::nn {
namespace {

// The gradient of a gather is the reduce-scatter of the gradient: the block of rank r in the
// gathered output fed every rank's loss, so rank r's input gets the sum of those gradients.
struct AllGatherBackward final : Node {
  std::shared_ptr<ProcessGroup> group;
  const char* name() const override { return "AllGatherBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override { return {group->reduce_scatter_sum(grads[0])}; }
};

// The dtype the losses compute in: f64 stays f64 (gradient checks), everything else is f32.
DType loss_dtype(const Tensor& t) { return t.dtype() == DType::f64 ? DType::f64 : DType::f32; }

void check_pair(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const char* op) {
  MINIVL_CHECK(image.defined() && text.defined() && logit_scale.defined(), op, ": undefined tensor argument");
  MINIVL_CHECK(image.dim() == 2 && image.shape() == text.shape(), op, ": image and text must be the same (n, d), got ",
               image.desc(), " and ", text.desc());
  MINIVL_CHECK(image.device() == text.device() && image.device() == logit_scale.device(), op,
               ": image, text and logit_scale must be on one device");
  MINIVL_CHECK(logit_scale.numel() == 1, op, ": logit_scale must hold one value, got ", logit_scale.desc());
}

}  // namespace

Tensor all_gather(const Tensor& x, ProcessGroup& group) {
  Tensor out = group.all_gather(x);
  if (needs_grad({&x})) {
    auto node = std::make_shared<AllGatherBackward>();
    node->group = group.shared_from_this();
    set_history(node, {x}, {out});
  }
  return out;
}

// Per rank: R / (2 N) [sum_{i in rank} CE(L[i, :], i) + sum_{j in rank} CE(L[:, j], j)].
// Summed over ranks the brackets cover every row and every column once, so the mean over ranks
// is the global loss (1 / (2 N)) [sum_i CE(row i) + sum_j CE(column j)] = clip_loss.
Tensor sharded_clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, ProcessGroup& group) {
  check_pair(image, text, logit_scale, "sharded_clip_loss");
  AutocastGuard full_precision(DType::bf16, false);  // the logits and their softmax stay in f32
  const DType dt = loss_dtype(image);
  const int64_t n = image.size(0), ranks = group.size(), r = group.rank();
  Tensor img = image.to(dt), txt = text.to(dt);
  Tensor all_img = all_gather(img, group);  // (N, d), rank order = global batch order
  Tensor all_txt = all_gather(txt, group);  // (N, d)
  Tensor scale = exp(logit_scale.to(dt).reshape({}));
  Tensor rows = mul(matmul(img, all_txt.t()), scale);  // (n, N): L[i, :] for this rank's i
  Tensor cols = mul(matmul(txt, all_img.t()), scale);  // (n, N): L[:, j]^T for this rank's j
  Tensor target = arange(double(r * n), double((r + 1) * n), 1.0, DType::i64, image.device());  // the diagonal
  Tensor ce = add(cross_entropy(rows, target, -100, 0.0, Reduction::sum),
                  cross_entropy(cols, target, -100, 0.0, Reduction::sum));
  return mul(ce, double(ranks) / (2.0 * double(n * ranks)));
}

// Per rank: -R / N sum_{i in rank, j} log sigmoid(z_ij (L_ij + b)); the rows split the global sum.
Tensor sharded_siglip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale,
                           const Tensor& logit_bias, ProcessGroup& group) {
  check_pair(image, text, logit_scale, "sharded_siglip_loss");
  MINIVL_CHECK(logit_bias.defined() && logit_bias.numel() == 1 && logit_bias.device() == image.device(),
               "sharded_siglip_loss: logit_bias must hold one value on the image's device");
  AutocastGuard full_precision(DType::bf16, false);
  const DType dt = loss_dtype(image);
  const int64_t n = image.size(0), ranks = group.size(), r = group.rank(), N = n * ranks;
  Tensor img = image.to(dt);
  Tensor all_txt = all_gather(text.to(dt), group);  // (N, d)
  Tensor logits = add(mul(matmul(img, all_txt.t()), exp(logit_scale.to(dt).reshape({}))),
                      logit_bias.to(dt).reshape({}));  // (n, N)
  std::vector<double> z(size_t(n * N), -1.0);           // +1 on the global diagonal
  for (int64_t i = 0; i < n; ++i) z[size_t(i * N + r * n + i)] = 1.0;
  Tensor x = mul(logits, from_vector(z, {n, N}, dt, image.device()));
  // log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)), finite for every x.
  Tensor log_sig = sub(clamp(x, std::nullopt, 0.0), log(add(exp(neg(abs(x))), 1.0)));
  return mul(sum(log_sig), -double(ranks) / double(N));
}

}  // namespace minivl::nn
