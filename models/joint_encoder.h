#pragma once
// The transformer that reads the vision tower's tokens with the text: the VQA model's joint encoder
// and the captioner's decoder have the same five numbers (hidden, layers, heads, mlp, dropout), the
// same TOML keys (model.hidden, ...) and the same config.json keys.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "nn/config.h"
#include "nn/transformer.h"

namespace minivl::models {

struct JointEncoderConfig {
  int64_t hidden = 128, layers = 2, heads = 4, mlp = 512;
  double dropout = 0.0;  // on the residual branches
  // Pre-LN layers of width hidden (GELU MLP of mlp units).
  nn::TransformerLayerOptions layer_options() const;
  // The config.json keys hidden, layers, heads, mlp, dropout, into `j` (the model's own object).
  void write_json(nlohmann::json& j) const;
  // From a model's config.json object; dropout may be absent (0).
  static JointEncoderConfig from_json(const nlohmann::json& j);
};

// model.hidden, model.layers, model.heads, model.mlp, model.dropout.
void add_joint_encoder_keys(nn::ConfigSchema& schema);
JointEncoderConfig joint_encoder_from_keys(const nn::Config& config);

}  // namespace minivl::models
