#pragma once
// CLIP (Radford et al. 2021) in Hugging Face's CLIPModel layout: the parameter
// names are HF's, so state_dict() is the checkpoint and a model folder from the
// hub (config.json + model.safetensors + vocab.json + merges.txt) loads as is.
//
//   vision: the ViT tower (models/vision_tower.h) -> its class token -> visual_projection
//   text:   token_embedding + position_embedding -> causal pre-LN encoder -> final_layer_norm
//           -> x[b, eot_b] (first end-of-text token, the arg-max id 49407) -> text_projection
//   logits_per_image = exp(logit_scale) * normalize(image) normalize(text)^T
//
//   auto model = ClipModel::load_folder("clip-vit-base-patch32");
//   Tensor img = model->encode_image(pixels);   // (B, 3, R, R) -> (B, P), L2-normalised
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/clip_tower.h"
#include "models/vision_tower.h"
#include "nn/layers.h"
#include "nn/transformer.h"

namespace minivl::models {

// Hugging Face's CLIPConfig (config.json): text_config, vision_config, projection_dim,
// logit_scale_init_value. Missing keys keep HF's defaults (ViT-B/32).
struct ClipConfig {
  ClipTowerConfig text, vision;
  int64_t projection_dim = 512;
  double logit_scale_init_value = 2.6592;
  double initializer_range = 0.02;

  ClipConfig();  // ViT-B/32
  static ClipConfig from_json(const nlohmann::json& j);
  static ClipConfig load(const std::string& config_json_path);
  nlohmann::json to_json() const;
  int64_t num_patches() const { return (vision.image_size / vision.patch_size) * (vision.image_size / vision.patch_size); }
};

class ClipTextEmbeddings : public nn::Module {
 public:
  explicit ClipTextEmbeddings(const ClipTowerConfig& c);
  Tensor forward(const Tensor& ids) const;  // (B, T) -> (B, T, D)
  std::shared_ptr<nn::Embedding> token_embedding, position_embedding;
};

class ClipTextTransformer : public nn::Module {
 public:
  explicit ClipTextTransformer(const ClipTowerConfig& c);
  Tensor forward(const Tensor& ids) const;  // (B, T) i64 -> pooled (B, D) at the end-of-text token
  // The pooling position of each row: the first eos_token_id, or the arg-max id (legacy eos 2).
  std::vector<int64_t> pool_positions(const Tensor& ids) const;
  ClipTowerConfig config;
  std::shared_ptr<ClipTextEmbeddings> embeddings;
  std::shared_ptr<ClipEncoder> encoder;
  std::shared_ptr<nn::LayerNorm> final_layer_norm;
};

struct ClipOutput {
  Tensor image_embeds, text_embeds;  // (B, P), (N, P), L2-normalised
  Tensor logits_per_image;           // (B, N) = exp(logit_scale) image text^T
};

class ClipModel : public nn::Module {
 public:
  explicit ClipModel(const ClipConfig& config);  // initialised as OpenAI's CLIP (HF's _init_weights)
  // Projected, L2-normalised embeddings.
  Tensor encode_image(const Tensor& pixels) const;  // (B, C, R, R) f32 -> (B, P)
  Tensor encode_text(const Tensor& ids) const;      // (N, T) i64 -> (N, P)
  ClipOutput forward(const Tensor& pixels, const Tensor& ids) const;
  // The contrastive loss on a batch of matching pairs (fused clip_loss).
  Tensor loss(const Tensor& pixels, const Tensor& ids) const;
  // logit_scale <- min(logit_scale, ln 100), in place (after each optimiser step).
  void clamp_logit_scale();
  double logit_scale_value() const;

  // HF-layout folder: config.json, model.safetensors (f32), preprocessor_config.json.
  void save_folder(const std::string& dir) const;
  // Loads config.json + model.safetensors (f16/bf16 converted; position_ids buffers ignored), strict.
  static std::shared_ptr<ClipModel> load_folder(const std::string& dir);
  // Drops the "*.position_ids" buffers older checkpoints carry.
  static NamedTensors clean_state_dict(NamedTensors state);

  ClipConfig config;
  std::shared_ptr<ClipTextTransformer> text_model;
  std::shared_ptr<VisionTower> vision_model;
  std::shared_ptr<nn::Linear> visual_projection, text_projection;
  Tensor logit_scale;  // 0-d, log of the scale
};

// L2-normalises the rows of x (..., D) (autograd through public ops).
Tensor l2_normalize(const Tensor& x);

// Writes the tokenizer files for OpenAI's vocabulary (vocab.json + merges.txt) into dir, from
// OpenAI's gzipped merges file (bpe_simple_vocab_16e6.txt.gz).
void write_openai_vocab_as_hf(const std::string& openai_gz, const std::string& dir);
// tokenizer_config.json for Hugging Face's CLIPTokenizer (special tokens, model_max_length = context).
void write_tokenizer_config(const std::string& dir, int64_t context);
// Where OpenAI's merges file is: $MINIVL_CLIP_VOCAB, then ../shared/data/clip/ and
// shared/data/clip/ from the working directory and from the source tree. Empty when not found.
std::string default_clip_vocab_path();

}  // namespace minivl::models
