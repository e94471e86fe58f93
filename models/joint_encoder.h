#pragma once
// The transformer that reads the vision tower's tokens with the text: the VQA model's joint encoder
// and the captioner's decoder have the same five numbers (hidden, layers, heads, mlp, dropout), the
// same TOML keys (model.hidden, ...) and the same config.json keys; and VisionLanguageConfig, what
// the two models' configs share around it (the tower, the word vocabulary's size).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "models/clip_tower.h"
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

// The VQA model's and the captioner's configs: the vision tower, the joint encoder / decoder, the
// word vocabulary's size; each adds its own.
struct VisionLanguageConfig {
  ClipTowerConfig vision;
  JointEncoderConfig joint;
  int64_t vocab_size = 4;  // words, the four specials included
  // config.json: {"architecture", "vision_config", "vocab_size", and the joint keys}.
  nlohmann::json shared_json(const std::string& architecture) const;
  void read_shared_json(const nlohmann::json& j);
};

}  // namespace minivl::models
