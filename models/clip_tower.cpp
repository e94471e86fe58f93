#include "models/clip_tower.h"

namespace minivl::models {

namespace {
nn::TransformerLayerOptions layer_options(const ClipTowerConfig& c) {
  nn::TransformerLayerOptions o;
  o.dim = c.hidden_size;
  o.num_heads = c.num_attention_heads;
  o.mlp_hidden = c.intermediate_size;
  o.activation = nn::activation_from_name(c.hidden_act);
  o.layer_norm_eps = c.layer_norm_eps;
  return o;
}
}  // namespace

ClipEncoder::ClipEncoder(const ClipTowerConfig& c)
    : layers(register_layer_stack<nn::TransformerEncoderLayer>(*this, "layers", c.num_hidden_layers, layer_options(c))) {}

Tensor ClipEncoder::forward(const Tensor& x, bool causal) const {
  Tensor h = x;
  for (const auto& layer : layers) h = layer->forward(h, Tensor(), causal);
  return h;
}

}  // namespace minivl::models
