#pragma once
// VQA as classification over an answer vocabulary, ViLT-style single stream:
//
//   image:    CLIP ViT (vision_model.*, HF names; can start from a CLIP checkpoint) -> all 1 + N tokens,
//             post_layernorm'd -> image_proj (Dv -> H) + image position embedding + type embedding 1
//   question: [CLS] w1 .. wT (word ids, padded) -> word_embeddings + position + type embedding 0
//   joint:    cat(question, image) (B, T + 1 + N, H) -> pre-LN encoder (padding mask on the question's
//             pad tokens) -> final LayerNorm -> pooler tanh(Linear(x[:, 0]))
//   head:     Linear(H, 2H) -> LayerNorm -> GELU -> Linear(2H, answers)
//
// Targets are the soft VQA scores min(#annotators who gave the answer / 3, 1) over the answer
// vocabulary (normalised answers seen at least k times in the training annotations); the loss is binary
// cross-entropy with logits, summed over answers and averaged over the batch (ViLT's).
//
// The vision tower is models/vision_tower.h, the joint encoder's config models/joint_encoder.h, the
// question words models/word_vocab.h (the captioner has the same three).
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "models/joint_encoder.h"
#include "models/vision_tower.h"
#include "models/word_vocab.h"
#include "nn/layers.h"
#include "nn/transformer.h"

namespace minivl::models {

// 2-d sine-cosine position table (MAE's) for a grid x grid of patches after one class token:
// (1 + grid^2, dim), the class token's row zero; the first dim/2 columns encode the row, the rest
// the column, each as sin/cos pairs at frequencies 10000^(-k/(dim/4)). dim % 4 == 0.
Tensor sincos_2d_positions(int64_t grid, int64_t dim);

struct VqaConfig : VisionLanguageConfig {  // vision, joint, vocab_size (question words)
  int64_t max_question_len = 16, num_answers = 2;
  // LayerNorm over the question's embedding sum (word + position + type), as BERT's embeddings (and so
  // ViLT's text side) have; puts the text tokens at the image tokens' scale from the first step.
  bool text_embedding_norm = false;
  nlohmann::json to_json() const;
  static VqaConfig from_json(const nlohmann::json& j);
};

class VqaModel : public nn::Module {
 public:
  explicit VqaModel(const VqaConfig& config);
  // pixels (B, C, R, R); question ids (B, T) i64 starting with <bos> (the [CLS]), padded with <pad>
  // -> logits (B, answers).
  Tensor forward(const Tensor& pixels, const Tensor& question_ids) const;
  // Soft-score BCE with logits: sum over answers, mean over the batch. targets (B, answers) f32.
  static Tensor loss(const Tensor& logits, const Tensor& targets);

  VqaConfig config;
  std::shared_ptr<VisionTower> vision_model;  // vision_model->set_frozen: no gradient reaches it
  std::shared_ptr<nn::Linear> image_proj;
  std::shared_ptr<nn::Embedding> word_embeddings, text_position, image_position, token_type;
  std::vector<std::shared_ptr<nn::TransformerEncoderLayer>> layers;
  std::shared_ptr<nn::LayerNorm> final_layer_norm;
  std::shared_ptr<nn::Linear> pooler, head_fc1, head_fc2;
  std::shared_ptr<nn::LayerNorm> head_norm;
  std::shared_ptr<nn::LayerNorm> text_embedding_norm;  // null unless config.text_embedding_norm
};

// A trained VQA model folder: config.json, model.safetensors, vocab.json (question words),
// answers.json (the answer vocabulary), preprocessor_config.json.
struct VqaBundle {
  std::shared_ptr<VqaModel> model;
  WordVocab vocab;
  std::vector<std::string> answers;
  void save(const std::string& dir) const;
  static VqaBundle load(const std::string& dir);
  // Question text -> ids row (<bos> + words, truncated to max_question_len).
  std::vector<int64_t> question_ids(const std::string& question) const;
};

// Answer vocabulary: normalised answers (vqa_normalize_answer) given by annotators at least min_count
// times over all answer lists, most frequent first (ties alphabetical).
std::vector<std::string> build_answer_vocab(const std::vector<std::vector<std::string>>& answer_lists,
                                            int64_t min_count);
// Soft scores over the vocabulary: min(#annotators who gave it (normalised) / 3, 1).
std::vector<float> vqa_soft_targets(const std::vector<std::string>& answers,
                                    const std::unordered_map<std::string, int64_t>& answer_index, int64_t size);

}  // namespace minivl::models
