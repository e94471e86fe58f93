#pragma once
// Pre-LN transformer blocks (CLIP's layout and names):
//   encoder: h = x + drop(self_attn(layer_norm1(x)));  out = h + drop(mlp(layer_norm2(h)))
//   decoder: h1 = x + drop(self_attn(layer_norm1(x), causal))
//            h2 = h1 + drop(cross_attn(layer_norm2(h1), memory))
//            out = h2 + drop(mlp(layer_norm3(h2)))
#include <cstdint>
#include <memory>

#include "nn/attention.h"
#include "nn/layers.h"

namespace minivl::nn {

struct TransformerLayerOptions {
  int64_t dim = 0;
  int64_t num_heads = 1;
  int64_t mlp_hidden = 0;  // 0: 4 * dim
  Activation activation = Activation::gelu;
  double dropout = 0.0;    // on each residual branch
  double layer_norm_eps = 1e-5;
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(const TransformerLayerOptions& options);
  // x (B, T, D); key_padding_mask (B, T) true = padding; causal for a text encoder (CLIP's).
  Tensor forward(const Tensor& x, const Tensor& key_padding_mask = Tensor(), bool causal = false,
                 KVCache* cache = nullptr) const;
  std::shared_ptr<MultiHeadAttention> self_attn;
  std::shared_ptr<LayerNorm> layer_norm1, layer_norm2;
  std::shared_ptr<MLP> mlp;
  std::shared_ptr<Dropout> dropout;
};

// The caches one decoder layer needs for incremental decoding.
struct DecoderLayerCache {
  KVCache self_attn, cross_attn;
};

class TransformerDecoderLayer : public Module {
 public:
  explicit TransformerDecoderLayer(const TransformerLayerOptions& options);
  // x (B, T, D) target tokens, memory (B, S, D) from the encoder.
  // self_padding_mask (B, T [+ cached]) and memory_padding_mask (B, S): true = padding.
  Tensor forward(const Tensor& x, const Tensor& memory, const Tensor& self_padding_mask = Tensor(),
                 const Tensor& memory_padding_mask = Tensor(), DecoderLayerCache* cache = nullptr) const;
  std::shared_ptr<MultiHeadAttention> self_attn, cross_attn;
  std::shared_ptr<LayerNorm> layer_norm1, layer_norm2, layer_norm3;
  std::shared_ptr<MLP> mlp;
  std::shared_ptr<Dropout> dropout;
};

}  // namespace minivl::nn
