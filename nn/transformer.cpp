#include "nn/transformer.h"

#include "core/error.h"
#include "core/ops.h"

// The residual add and the next norm run as one fused add_layernorm (LayerNorm::forward_add).

namespace minivl::nn {
namespace {
int64_t hidden_of(const TransformerLayerOptions& o) { return o.mlp_hidden > 0 ? o.mlp_hidden : 4 * o.dim; }
}  // namespace

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& o) {
  MINIVL_CHECK(o.dim > 0, "TransformerEncoderLayer: dim must be positive, got ", o.dim);
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(o.dim, o.num_heads));
  layer_norm1 = register_module("layer_norm1", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps));
  mlp = register_module("mlp", std::make_shared<MLP>(o.dim, hidden_of(o), o.activation));
  layer_norm2 = register_module("layer_norm2", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerEncoderLayer::forward(const Tensor& x, const Tensor& key_padding_mask, bool causal,
                                        KVCache* cache) const {
  AttentionArgs args;
  args.causal = causal;
  args.key_padding_mask = key_padding_mask;
  args.cache = cache;
  auto [h, normed] = layer_norm2->forward_add(dropout->forward(self_attn->forward(layer_norm1->forward(x), args)), x);
  return add(h, dropout->forward(mlp->forward(normed)));
}

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& o) {
  MINIVL_CHECK(o.dim > 0, "TransformerDecoderLayer: dim must be positive, got ", o.dim);
  self_attn = register_module("self_attn", std::make_shared<MultiHeadAttention>(o.dim, o.num_heads));
  layer_norm1 = register_module("layer_norm1", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps));
  cross_attn = register_module("cross_attn", std::make_shared<MultiHeadAttention>(o.dim, o.num_heads));
  layer_norm2 = register_module("layer_norm2", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps));
  mlp = register_module("mlp", std::make_shared<MLP>(o.dim, hidden_of(o), o.activation));
  layer_norm3 = register_module("layer_norm3", std::make_shared<LayerNorm>(o.dim, o.layer_norm_eps));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerDecoderLayer::forward(const Tensor& x, const Tensor& memory, const Tensor& self_padding_mask,
                                        const Tensor& memory_padding_mask, DecoderLayerCache* cache) const {
  AttentionArgs self_args;
  self_args.causal = true;
  self_args.key_padding_mask = self_padding_mask;
  self_args.cache = cache ? &cache->self_attn : nullptr;
  auto [h1, normed1] =
      layer_norm2->forward_add(dropout->forward(self_attn->forward(layer_norm1->forward(x), self_args)), x);

  AttentionArgs cross_args;
  cross_args.key_value = memory;
  cross_args.key_padding_mask = memory_padding_mask;
  cross_args.cache = cache ? &cache->cross_attn : nullptr;
  auto [h2, normed2] = layer_norm3->forward_add(dropout->forward(cross_attn->forward(normed1, cross_args)), h1);
  return add(h2, dropout->forward(mlp->forward(normed2)));
}

}  // namespace minivl::nn
