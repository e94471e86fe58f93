#include "nn/layers.h"

#include <cmath>

#include "core/error.h"
#include "core/ops.h"
#include "nn/amp.h"
#include "nn/init.h"

namespace minivl::nn {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  MINIVL_CHECK(x.defined() && weight.defined() && weight.dim() == 2, "linear: expected a (out, in) weight, got ",
               weight.defined() ? weight.shape_str() : "undefined");
  MINIVL_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), "linear: input ", x.shape_str(),
               " does not end in in_features = ", weight.size(1), " (weight ", weight.shape_str(), ")");
  Tensor y = matmul(autocast(x), autocast(weight).t());  // (..., out)
  if (bias.defined()) y = add(y, autocast(bias));
  return y.dtype() == x.dtype() ? y : y.to(x.dtype());
}

Linear::Linear(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  MINIVL_CHECK(in > 0 && out > 0, "Linear: in_features and out_features must be positive, got ", in, ", ", out);
  weight = register_parameter("weight", empty({out, in}), ParamKind::weight);
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    bias = register_parameter("bias", empty({out}), ParamKind::bias);
    const double bound = 1.0 / std::sqrt(double(in));
    init::uniform_(bias, -bound, bound);
  }
}

LayerNorm::LayerNorm(int64_t d, double e, bool affine) : dim(d), eps(e) {
  MINIVL_CHECK(d > 0, "LayerNorm: dim must be positive, got ", d);
  if (affine) {
    weight = register_parameter("weight", ones({d}), ParamKind::norm);
    bias = register_parameter("bias", zeros({d}), ParamKind::norm);
  }
}

Tensor LayerNorm::forward(const Tensor& x) const {
  MINIVL_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == dim, "LayerNorm(", dim, "): input ",
               x.defined() ? x.shape_str() : "undefined", " does not end in ", dim);
  if (!weight.defined() || x.dtype() == weight.dtype()) return layernorm(x, weight, bias, eps);
  return layernorm(x.to(weight.dtype()), weight, bias, eps).to(x.dtype());
}

std::pair<Tensor, Tensor> LayerNorm::forward_add(const Tensor& x, const Tensor& residual) const {
  MINIVL_CHECK(x.defined() && x.dim() >= 1 && x.size(-1) == dim, "LayerNorm(", dim, "): input ",
               x.defined() ? x.shape_str() : "undefined", " does not end in ", dim);
  if (weight.defined() && x.dtype() != weight.dtype()) {
    Tensor h = add(x, residual);
    return {h, forward(h)};
  }
  return add_layernorm(x, residual, weight, bias, eps);
}

Embedding::Embedding(int64_t n, int64_t d, double init_std) : num_embeddings(n), dim(d) {
  MINIVL_CHECK(n > 0 && d > 0, "Embedding: sizes must be positive, got ", n, ", ", d);
  weight = register_parameter("weight", empty({n, d}), ParamKind::embedding);
  init::normal_(weight, 0.0, init_std);
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight, ids); }

PatchEmbed::PatchEmbed(int64_t c, int64_t d, int64_t p, bool with_bias) : in_channels(c), embed_dim(d), patch_size(p) {
  MINIVL_CHECK(c > 0 && d > 0 && p > 0, "PatchEmbed: sizes must be positive, got channels ", c, ", dim ", d,
               ", patch ", p);
  weight = register_parameter("weight", empty({d, c, p, p}), ParamKind::weight);
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    bias = register_parameter("bias", empty({d}), ParamKind::bias);
    const double bound = 1.0 / std::sqrt(double(c * p * p));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor PatchEmbed::forward(const Tensor& images) const {
  MINIVL_CHECK(images.defined() && images.dim() == 4 && images.size(1) == in_channels,
               "PatchEmbed: expected images (B, ", in_channels, ", H, W), got ",
               images.defined() ? images.shape_str() : "undefined");
  const int64_t B = images.size(0), C = in_channels, P = patch_size;
  const int64_t hp = images.size(2) / P, wp = images.size(3) / P;
  MINIVL_CHECK(hp > 0 && wp > 0, "PatchEmbed: images ", images.shape_str(), " are smaller than one ", P, "x", P,
               " patch");
  Tensor x = images.narrow(2, 0, hp * P).narrow(3, 0, wp * P);
  // (B, C, hp, P, wp, P) -> (B, hp, wp, C, P, P) -> (B, N, C*P*P)
  x = x.reshape({B, C, hp, P, wp, P}).permute({0, 2, 4, 1, 3, 5}).contiguous().reshape({B, hp * wp, C * P * P});
  return linear(x, weight.reshape({embed_dim, C * P * P}), bias);
}

Dropout::Dropout(double prob) : p(prob) {
  MINIVL_CHECK(prob >= 0.0 && prob < 1.0, "Dropout: p must be in [0, 1), got ", prob);
}

Tensor Dropout::forward(const Tensor& x) const { return dropout(x, p, is_training()); }

Activation activation_from_name(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "gelu_tanh" || name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::gelu_tanh;
  if (name == "quick_gelu") return Activation::quick_gelu;
  if (name == "relu") return Activation::relu;
  MINIVL_FAIL("unknown activation '", name, "' (expected gelu, gelu_tanh, quick_gelu or relu)");
}

Tensor activate(const Tensor& x, Activation act) {
  switch (act) {
    case Activation::gelu: return gelu(x);
    case Activation::gelu_tanh: return gelu_tanh(x);
    case Activation::quick_gelu: return quick_gelu(x);
    case Activation::relu: return relu(x);
  }
  return x;
}

MLP::MLP(int64_t d, int64_t hidden, Activation a) : act(a) {
  fc1 = register_module("fc1", std::make_shared<Linear>(d, hidden));
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, d));
}

Tensor MLP::forward(const Tensor& x) const { return fc2->forward(activate(fc1->forward(x), act)); }

}  // namespace minivl::nn
