#pragma once
// What CLIP's two towers share: a tower's config (Hugging Face's CLIPTextConfig / CLIPVisionConfig,
// the text_config and vision_config of config.json) and the pre-LN encoder stack both run
// (encoder.layers.{i}.*). The image tower itself is models/vision_tower.h, the text tower models/clip.h.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "nn/module.h"
#include "nn/transformer.h"

namespace minivl::models {

struct ClipTowerConfig {
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_attention_heads = 8;
  int64_t num_hidden_layers = 12;
  std::string hidden_act = "quick_gelu";  // or "gelu"
  double layer_norm_eps = 1e-5;
  // vision only
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t num_channels = 3;
  // text only
  int64_t vocab_size = 49408;
  int64_t max_position_embeddings = 77;
  int64_t eos_token_id = 49407;  // 2: HF's legacy value, pooling at the arg-max id instead
};

class ClipEncoder : public nn::Module {
 public:
  explicit ClipEncoder(const ClipTowerConfig& c);
  Tensor forward(const Tensor& x, bool causal) const;  // (B, T, D) -> (B, T, D)
  std::vector<std::shared_ptr<nn::TransformerEncoderLayer>> layers;
};

// Registers `count` layers under owner's `name` as name.{i} (HF's "encoder.layers.0.self_attn..."),
// each built from `options`.
template <typename Layer>
std::vector<std::shared_ptr<Layer>> register_layer_stack(nn::Module& owner, const std::string& name, int64_t count,
                                                         const nn::TransformerLayerOptions& options) {
  auto list = owner.register_module(name, std::make_shared<nn::Module>());
  std::vector<std::shared_ptr<Layer>> layers;
  for (int64_t i = 0; i < count; ++i)
    layers.push_back(list->register_module(std::to_string(i), std::make_shared<Layer>(options)));
  return layers;
}

}  // namespace minivl::models
