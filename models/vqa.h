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
// Also here, shared with the captioner: the word vocabulary both models use, the vision tower's token
// output, and loading a CLIP checkpoint's vision_model.* tensors (`vision_init`).
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "models/clip.h"
#include "nn/layers.h"
#include "nn/transformer.h"

namespace minivl::models {

// Words of caption_tokenize()d text; ids 0..3 are <pad>, <bos>, <eos>, <unk>.
class WordVocab {
 public:
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;
  WordVocab();
  // Words seen at least min_count times in `texts`, most frequent first (ties: alphabetical).
  static WordVocab build(const std::vector<std::string>& texts, int64_t min_count = 1);
  std::vector<int64_t> encode(const std::string& text) const;  // no <bos>/<eos>
  std::string decode(const std::vector<int64_t>& ids) const;   // stops at <eos>, skips <pad>/<bos>
  int64_t size() const { return int64_t(words_.size()); }
  const std::vector<std::string>& words() const { return words_; }
  nlohmann::json to_json() const { return words_; }
  static WordVocab from_json(const nlohmann::json& j);

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> index_;
};

// The vision tower's architecture from the model.* keys of a training config, or a CLIP checkpoint.
ClipTowerConfig vision_config_from_json(const nlohmann::json& j);
nlohmann::json vision_config_to_json(const ClipTowerConfig& c);
// All 1 + N tokens of the ViT, after post_layernorm: pixels (B, C, R, R) -> (B, 1 + N, Dv).
Tensor vision_tokens(const ClipVisionTransformer& vision, const Tensor& pixels);
// 2-d sine-cosine position table (MAE's) for a grid x grid of patches after one class token:
// (1 + grid^2, dim), the class token's row zero; the first dim/2 columns encode the row, the rest
// the column, each as sin/cos pairs at frequencies 10000^(-k/(dim/4)). dim % 4 == 0.
Tensor sincos_2d_positions(int64_t grid, int64_t dim);
// The CLIP model folder of `path`: path itself when it holds config.json, else path/model (a run dir).
std::string clip_model_folder(const std::string& path);
// The vision tower config of a CLIP checkpoint (a model folder or a run dir).
ClipTowerConfig clip_vision_config(const std::string& path);
// Copies the checkpoint's vision_model.* tensors into `vision` (strict on those names).
void load_clip_vision(ClipVisionTransformer& vision, const std::string& path);

struct VqaConfig {
  ClipTowerConfig vision;
  int64_t hidden = 128, layers = 2, heads = 4, mlp = 512;  // the joint encoder
  int64_t vocab_size = 4, max_question_len = 16, num_answers = 2;
  double dropout = 0.0;
  bool freeze_vision = false;  // the vision tower runs without gradients (and keeps its init)
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
  std::shared_ptr<ClipVisionTransformer> vision_model;
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

// (B, T) i64 tensor of rows padded with `pad` to the longest.
Tensor pad_id_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad);

}  // namespace minivl::models
