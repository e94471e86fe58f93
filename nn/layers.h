#pragma once
// The basic layers. Parameter names follow Hugging Face's CLIP so state_dict()
// maps onto its checkpoints: Linear {weight (out, in), bias (out)}, LayerNorm
// {weight, bias}, Embedding {weight (V, D)}, PatchEmbed {weight (D, C, P, P)},
// MLP {fc1, fc2}.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "nn/module.h"

namespace minivl::nn {

// y = x @ weight^T + bias over the last dim; x (..., in), weight (out, in), bias (out) or undefined.
// Under autocast the GEMM runs in the autocast dtype and y comes back in x's dtype.
// The one place Linear's math lives, so a fused GEMM+bias (cuBLASLt epilogue) op drops in here.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

class Linear : public Module {
 public:
  // weight: kaiming_uniform(a = sqrt(5)) and bias U(-1/sqrt(in), 1/sqrt(in)), as PyTorch.
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) const { return linear(x, weight, bias); }
  int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined when bias = false
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, bool affine = true);
  // Always computed in the weight's dtype (f32 under autocast); returns x's dtype.
  Tensor forward(const Tensor& x) const;
  // The pre-LN residual step in one fused op: (h = x + residual, forward(h)).
  std::pair<Tensor, Tensor> forward_add(const Tensor& x, const Tensor& residual) const;
  int64_t dim;
  double eps;
  Tensor weight, bias;
};

class Embedding : public Module {
 public:
  // weight ~ N(0, init_std^2).
  Embedding(int64_t num_embeddings, int64_t dim, double init_std = 0.02);
  // ids: any integer shape -> (..., dim)
  Tensor forward(const Tensor& ids) const;
  int64_t num_embeddings, dim;
  Tensor weight;
};

// A conv with kernel = stride = patch (ViT's patchify), as unfold + GEMM:
// images (B, C, H, W) -> (B, (H/P) * (W/P), D), patches in row-major order.
// Rows/columns past the last whole patch are dropped, as the convolution does.
class PatchEmbed : public Module {
 public:
  PatchEmbed(int64_t in_channels, int64_t embed_dim, int64_t patch_size, bool bias = false);
  Tensor forward(const Tensor& images) const;
  int64_t in_channels, embed_dim, patch_size;
  Tensor weight, bias;  // weight (D, C, P, P); bias (D) or undefined
};

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.1);
  Tensor forward(const Tensor& x) const;  // identity in eval mode or when p == 0
  double p;
};

enum class Activation { gelu, gelu_tanh, quick_gelu, relu };
Activation activation_from_name(const std::string& name);  // "gelu", "gelu_tanh", "quick_gelu", "relu"
Tensor activate(const Tensor& x, Activation act);

// fc2(act(fc1(x))): the transformer MLP.
class MLP : public Module {
 public:
  MLP(int64_t dim, int64_t hidden, Activation act = Activation::gelu);
  Tensor forward(const Tensor& x) const;
  Activation act;
  std::shared_ptr<Linear> fc1, fc2;
};

}  // namespace minivl::nn
