#pragma once
// Image captioning: a CLIP ViT encoder and a transformer decoder.
//
//   memory  = memory_proj(vision_model->encode(pixels))       (B, 1 + N, H)   once per image
//   x       = token_embedding(ids) + position_embedding(pos)  (B, T, H)
//   x       = decoder layers: causal self-attention, cross-attention to memory, MLP (pre-LN)
//   logits  = final_layer_norm(x) @ token_embedding^T         (tied; or lm_head when untied)
//
// Trained with teacher forcing: input <bos> w1 .. wn, target w1 .. wn <eos>, cross-entropy with label
// smoothing over the non-pad targets. Incremental decoding keeps, per layer, a KV cache for the
// self-attention (appended each step) and the cross-attention keys/values of the memory (computed on the
// first step and reused); see models/decoding.h.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/joint_encoder.h"
#include "models/vision_tower.h"
#include "models/word_vocab.h"
#include "nn/layers.h"
#include "nn/transformer.h"

namespace minivl::models {

struct CaptionerConfig : VisionLanguageConfig {  // vision, joint (the decoder), vocab_size
  int64_t max_length = 32;                       // positions, <bos> included
  bool tie_embeddings = true;
  nlohmann::json to_json() const;
  static CaptionerConfig from_json(const nlohmann::json& j);
};

using DecoderCache = std::vector<nn::DecoderLayerCache>;  // one per layer

class Captioner : public nn::Module {
 public:
  explicit Captioner(const CaptionerConfig& config);
  // pixels (B, C, R, R) -> memory (B, S, H)
  Tensor encode_image(const Tensor& pixels) const;
  // ids (B, T) i64 -> logits (B, T, V). Without a cache the ids are the whole prefix from position 0;
  // with one, they continue after cache->at(0).self_attn.length() cached positions and the cache grows.
  Tensor decode(const Tensor& ids, const Tensor& memory, DecoderCache* cache = nullptr) const;
  // Teacher-forcing loss: ids (B, T) = <bos> w.. <eos> <pad>..; predicts ids[:, 1:] from ids[:, :-1].
  Tensor loss(const Tensor& pixels, const Tensor& ids, double label_smoothing) const;
  DecoderCache new_cache() const { return DecoderCache(size_t(config.joint.layers)); }

  CaptionerConfig config;
  std::shared_ptr<VisionTower> vision_model;  // vision_model->set_frozen: no gradient reaches it
  std::shared_ptr<nn::Linear> memory_proj;
  std::shared_ptr<nn::Embedding> token_embedding, position_embedding;
  std::vector<std::shared_ptr<nn::TransformerDecoderLayer>> layers;
  std::shared_ptr<nn::LayerNorm> final_layer_norm;
  std::shared_ptr<nn::Linear> lm_head;  // only when !tie_embeddings
};

// A trained captioner folder: config.json, model.safetensors, vocab.json, preprocessor_config.json.
struct CaptionerBundle {
  std::shared_ptr<Captioner> model;
  WordVocab vocab;
  void save(const std::string& dir) const;
  static CaptionerBundle load(const std::string& dir);
};

}  // namespace minivl::models
