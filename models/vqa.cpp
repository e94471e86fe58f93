#include "models/vqa.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "data/annotations.h"
#include "models/model_folder.h"
#include "models/vqa_metrics.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

Tensor sincos_2d_positions(int64_t grid, int64_t dim) {
  MINIVL_CHECK(grid > 0 && dim > 0 && dim % 4 == 0, "sincos_2d_positions: need grid > 0 and dim a multiple of 4, got ",
               grid, ", ", dim);
  const int64_t quarter = dim / 4;
  std::vector<double> table(size_t((1 + grid * grid) * dim), 0.0);
  for (int64_t r = 0; r < grid; ++r)
    for (int64_t c = 0; c < grid; ++c) {
      double* row = table.data() + (1 + r * grid + c) * dim;
      for (int64_t k = 0; k < quarter; ++k) {
        const double w = std::pow(10000.0, -double(k) / double(quarter));
        row[k] = std::sin(double(r) * w);
        row[quarter + k] = std::cos(double(r) * w);
        row[2 * quarter + k] = std::sin(double(c) * w);
        row[3 * quarter + k] = std::cos(double(c) * w);
      }
    }
  return from_vector(table, {1 + grid * grid, dim});
}

// ---- VQA model ----
json VqaConfig::to_json() const {
  json j = shared_json("minivl-vqa");
  j.update({{"max_question_len", max_question_len}, {"num_answers", num_answers},
            {"text_embedding_norm", text_embedding_norm}});
  return j;
}

VqaConfig VqaConfig::from_json(const json& j) {
  VqaConfig c;
  c.read_shared_json(j);
  c.max_question_len = j.at("max_question_len").get<int64_t>();
  c.num_answers = j.at("num_answers").get<int64_t>();
  c.text_embedding_norm = j.value("text_embedding_norm", false);  // absent in folders saved before it
  return c;
}

VqaModel::VqaModel(const VqaConfig& c) : config(c) {
  const int64_t H = c.joint.hidden;
  vision_model = register_vision_tower(*this, c.vision);
  image_proj = register_module("image_proj", std::make_shared<nn::Linear>(c.vision.hidden_size, H));
  word_embeddings = register_module("word_embeddings", std::make_shared<nn::Embedding>(c.vocab_size, H));
  text_position = register_module("text_position", std::make_shared<nn::Embedding>(c.max_question_len, H));
  image_position = register_module("image_position", std::make_shared<nn::Embedding>(vision_token_count(c.vision), H));
  token_type = register_module("token_type", std::make_shared<nn::Embedding>(2, H));
  if (c.text_embedding_norm)
    text_embedding_norm = register_module("text_embedding_norm", std::make_shared<nn::LayerNorm>(H));
  layers = register_layer_stack<nn::TransformerEncoderLayer>(*this, "layers", c.joint.layers, c.joint.layer_options());
  final_layer_norm = register_module("final_layer_norm", std::make_shared<nn::LayerNorm>(H));
  pooler = register_module("pooler", std::make_shared<nn::Linear>(H, H));
  head_fc1 = register_module("head_fc1", std::make_shared<nn::Linear>(H, 2 * H));
  head_norm = register_module("head_norm", std::make_shared<nn::LayerNorm>(2 * H));
  head_fc2 = register_module("head_fc2", std::make_shared<nn::Linear>(2 * H, c.num_answers));
}

Tensor VqaModel::forward(const Tensor& pixels, const Tensor& question_ids) const {
  const int64_t B = question_ids.size(0), T = question_ids.size(1);
  MINIVL_CHECK(T <= config.max_question_len, "vqa: question of ", T, " tokens, more than max_question_len ",
               config.max_question_len);
  const Device dev = question_ids.device();
  Tensor img = image_proj->forward(vision_model->encode(pixels));  // (B, S, H)
  const int64_t S = img.size(1);
  img = img + image_position->forward(arange(0, double(S), 1, DType::i64, dev)).unsqueeze(0) +
        token_type->forward(full({1}, 1, DType::i64, dev));
  Tensor txt = word_embeddings->forward(question_ids) +
               text_position->forward(arange(0, double(T), 1, DType::i64, dev)).unsqueeze(0) +
               token_type->forward(full({1}, 0, DType::i64, dev));   // (B, T, H)
  if (text_embedding_norm) txt = text_embedding_norm->forward(txt);
  Tensor x = cat({txt, img}, 1);                                    // (B, T + S, H)
  // Padding mask: the question's <pad> tokens; image tokens are never padding.
  const std::vector<double> ids = question_ids.to_vector();
  std::vector<double> m(size_t(B * (T + S)), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) m[size_t(b * (T + S) + t)] = ids[size_t(b * T + t)] == double(WordVocab::kPad);
  Tensor mask = from_vector(m, {B, T + S}, DType::boolean).to(dev);  // (B, T + S), true = padding
  for (const auto& layer : layers) x = layer->forward(x, mask);
  x = final_layer_norm->forward(x);
  Tensor pooled = tanh(pooler->forward(x.select(1, 0)));           // (B, H)
  Tensor h = gelu(head_norm->forward(head_fc1->forward(pooled)));  // (B, 2H)
  return head_fc2->forward(h);                                     // (B, answers)
}

Tensor VqaModel::loss(const Tensor& logits, const Tensor& targets) {
  // BCE with logits, stable: max(x, 0) - x y + log(1 + exp(-|x|)).
  Tensor l = relu(logits) - logits * targets + log(exp(neg(abs(logits))) + 1.0);
  return sum(l) * (1.0 / double(logits.size(0)));
}

// ---- bundle ----
void VqaBundle::save(const std::string& dir) const {
  save_model_folder(dir, model->config.to_json(), *model, *model->vision_model, vocab);
  std::ofstream(fs::path(dir) / "answers.json", std::ios::trunc) << json(answers).dump() << "\n";
}

VqaBundle VqaBundle::load(const std::string& dir) {
  const std::string kind = "VQA model folder";
  VqaBundle b;
  b.model = load_model_folder<VqaModel>(dir, "minivl-vqa", kind, b.vocab);
  b.answers = data::read_json_file_as((fs::path(dir) / "answers.json").string(), kind,
                                      [](const json& j) { return j.get<std::vector<std::string>>(); });
  return b;
}

std::vector<int64_t> VqaBundle::question_ids(const std::string& question) const {
  std::vector<int64_t> ids = {WordVocab::kBos};
  for (int64_t id : vocab.encode(question)) ids.push_back(id);
  if (int64_t(ids.size()) > model->config.max_question_len) ids.resize(size_t(model->config.max_question_len));
  return ids;
}

std::vector<std::string> build_answer_vocab(const std::vector<std::vector<std::string>>& answer_lists,
                                            int64_t min_count) {
  std::map<std::string, int64_t> counts;
  for (const auto& list : answer_lists)
    for (const auto& a : list) ++counts[vqa_normalize_answer(a)];
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> out;
  for (const auto& [a, c] : sorted)
    if (c >= min_count && !a.empty()) out.push_back(a);
  return out;
}

std::vector<float> vqa_soft_targets(const std::vector<std::string>& answers,
                                    const std::unordered_map<std::string, int64_t>& index, int64_t size) {
  std::unordered_map<int64_t, int64_t> counts;
  for (const auto& a : answers) {
    auto it = index.find(vqa_normalize_answer(a));
    if (it != index.end()) ++counts[it->second];
  }
  std::vector<float> t(size_t(size), 0.0f);
  for (const auto& [i, c] : counts) t[size_t(i)] = float(std::min(1.0, double(c) / 3.0));
  return t;
}

}  // namespace minivl::models
