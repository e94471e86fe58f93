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
#include "models/caption_metrics.h"
#include "models/vqa_metrics.h"
#include "nn/init.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

// ---- word vocabulary ----
WordVocab::WordVocab() {
  for (const char* w : {"<pad>", "<bos>", "<eos>", "<unk>"}) {
    index_[w] = int64_t(words_.size());
    words_.push_back(w);
  }
}

WordVocab WordVocab::build(const std::vector<std::string>& texts, int64_t min_count) {
  std::map<std::string, int64_t> counts;
  for (const std::string& t : texts) {
    std::string tok = caption_tokenize(t);
    std::size_t i = 0;
    while (i < tok.size()) {
      std::size_t j = tok.find(' ', i);
      if (j == std::string::npos) j = tok.size();
      if (j > i) ++counts[tok.substr(i, j - i)];
      i = j + 1;
    }
  }
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  WordVocab v;
  for (const auto& [w, c] : sorted) {
    if (c < min_count || v.index_.count(w)) continue;
    v.index_[w] = int64_t(v.words_.size());
    v.words_.push_back(w);
  }
  return v;
}

std::vector<int64_t> WordVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  const std::string tok = caption_tokenize(text);
  std::size_t i = 0;
  while (i < tok.size()) {
    std::size_t j = tok.find(' ', i);
    if (j == std::string::npos) j = tok.size();
    if (j > i) {
      auto it = index_.find(tok.substr(i, j - i));
      ids.push_back(it == index_.end() ? kUnk : it->second);
    }
    i = j + 1;
  }
  return ids;
}

std::string WordVocab::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    if (id == kEos) break;
    if (id == kPad || id == kBos || id < 0 || id >= size()) continue;
    if (!out.empty()) out.push_back(' ');
    out += words_[size_t(id)];
  }
  return out;
}

WordVocab WordVocab::from_json(const json& j) {
  MINIVL_CHECK(j.is_array() && j.size() >= 4, "vocab.json: expected a list of words starting with the 4 specials");
  WordVocab v;
  v.words_.clear();
  v.index_.clear();
  for (const auto& w : j) {
    v.index_[w.get<std::string>()] = int64_t(v.words_.size());
    v.words_.push_back(w.get<std::string>());
  }
  return v;
}

// ---- the vision tower ----
ClipTowerConfig vision_config_from_json(const json& j) {
  return ClipConfig::from_json(json{{"vision_config", j}}).vision;
}
json vision_config_to_json(const ClipTowerConfig& c) {
  ClipConfig cc;
  cc.vision = c;
  return cc.to_json().at("vision_config");
}

Tensor vision_tokens(const ClipVisionTransformer& vision, const Tensor& pixels) {
  Tensor x = vision.embeddings->forward(pixels);   // (B, 1 + N, Dv)
  x = vision.pre_layrnorm->forward(x);
  x = vision.encoder->forward(x, false);
  return vision.post_layernorm->forward(x);
}

std::string clip_model_folder(const std::string& path) {
  if (fs::exists(fs::path(path) / "config.json")) return path;
  MINIVL_CHECK(fs::exists(fs::path(path) / "model" / "config.json"), "vision_init: ", path,
               " is neither a CLIP model folder nor a run dir with model/config.json");
  return (fs::path(path) / "model").string();
}

ClipTowerConfig clip_vision_config(const std::string& path) {
  return ClipConfig::load((fs::path(clip_model_folder(path)) / "config.json").string()).vision;
}

void load_clip_vision(ClipVisionTransformer& vision, const std::string& path) {
  const std::string dir = clip_model_folder(path);
  NamedTensors all = load_safetensors((fs::path(dir) / "model.safetensors").string());
  NamedTensors mine;
  const std::string prefix = "vision_model.";
  for (auto& [name, t] : all)
    if (name.rfind(prefix, 0) == 0 && name.find("position_ids") == std::string::npos)
      mine.emplace_back(name.substr(prefix.size()), t);
  MINIVL_CHECK(!mine.empty(), "vision_init: ", dir, "/model.safetensors has no vision_model.* tensors");
  vision.load_state_dict(mine, true);
}

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

void init_vision_tower(ClipVisionTransformer& v, const ClipTowerConfig& c) {
  // OpenAI CLIP's init (as ClipModel's), for a tower built outside ClipModel.
  const double range = 0.02;
  nn::init::normal_(v.embeddings->class_embedding, 0.0, std::pow(double(c.hidden_size), -0.5));
  nn::init::normal_(v.embeddings->patch_embedding->weight, 0.0, range);
  nn::init::normal_(v.embeddings->position_embedding->weight, 0.0, range);
}

// ---- VQA model ----
json VqaConfig::to_json() const {
  return json{{"architecture", "minivl-vqa"}, {"vision_config", vision_config_to_json(vision)},
              {"hidden", hidden}, {"layers", layers}, {"heads", heads}, {"mlp", mlp},
              {"vocab_size", vocab_size}, {"max_question_len", max_question_len},
              {"num_answers", num_answers}, {"dropout", dropout}, {"freeze_vision", freeze_vision},
              {"text_embedding_norm", text_embedding_norm}};
}

VqaConfig VqaConfig::from_json(const json& j) {
  VqaConfig c;
  c.vision = vision_config_from_json(j.at("vision_config"));
  c.hidden = j.at("hidden").get<int64_t>();
  c.layers = j.at("layers").get<int64_t>();
  c.heads = j.at("heads").get<int64_t>();
  c.mlp = j.at("mlp").get<int64_t>();
  c.vocab_size = j.at("vocab_size").get<int64_t>();
  c.max_question_len = j.at("max_question_len").get<int64_t>();
  c.num_answers = j.at("num_answers").get<int64_t>();
  c.dropout = j.value("dropout", 0.0);
  c.freeze_vision = j.value("freeze_vision", false);
  c.text_embedding_norm = j.value("text_embedding_norm", false);  // absent in folders saved before it
  return c;
}

VqaModel::VqaModel(const VqaConfig& c) : config(c) {
  vision_model = register_module("vision_model", std::make_shared<ClipVisionTransformer>(c.vision));
  init_vision_tower(*vision_model, c.vision);
  const int64_t n_img = (c.vision.image_size / c.vision.patch_size) * (c.vision.image_size / c.vision.patch_size) + 1;
  image_proj = register_module("image_proj", std::make_shared<nn::Linear>(c.vision.hidden_size, c.hidden));
  word_embeddings = register_module("word_embeddings", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden));
  text_position = register_module("text_position", std::make_shared<nn::Embedding>(c.max_question_len, c.hidden));
  image_position = register_module("image_position", std::make_shared<nn::Embedding>(n_img, c.hidden));
  token_type = register_module("token_type", std::make_shared<nn::Embedding>(2, c.hidden));
  if (c.text_embedding_norm)
    text_embedding_norm = register_module("text_embedding_norm", std::make_shared<nn::LayerNorm>(c.hidden));
  nn::TransformerLayerOptions o;
  o.dim = c.hidden;
  o.num_heads = c.heads;
  o.mlp_hidden = c.mlp;
  o.dropout = c.dropout;
  auto list = register_module("layers", std::make_shared<nn::Module>());  // layers.{i}
  for (int64_t i = 0; i < c.layers; ++i)
    layers.push_back(list->register_module(std::to_string(i), std::make_shared<nn::TransformerEncoderLayer>(o)));
  final_layer_norm = register_module("final_layer_norm", std::make_shared<nn::LayerNorm>(c.hidden));
  pooler = register_module("pooler", std::make_shared<nn::Linear>(c.hidden, c.hidden));
  head_fc1 = register_module("head_fc1", std::make_shared<nn::Linear>(c.hidden, 2 * c.hidden));
  head_norm = register_module("head_norm", std::make_shared<nn::LayerNorm>(2 * c.hidden));
  head_fc2 = register_module("head_fc2", std::make_shared<nn::Linear>(2 * c.hidden, c.num_answers));
}

Tensor VqaModel::forward(const Tensor& pixels, const Tensor& question_ids) const {
  const int64_t B = question_ids.size(0), T = question_ids.size(1);
  MINIVL_CHECK(T <= config.max_question_len, "vqa: question of ", T, " tokens, more than max_question_len ",
               config.max_question_len);
  const Device dev = question_ids.device();
  Tensor tokens;
  if (config.freeze_vision) {
    NoGradGuard no_grad;
    tokens = vision_tokens(*vision_model, pixels).detach();
  } else {
    tokens = vision_tokens(*vision_model, pixels);
  }
  Tensor img = image_proj->forward(tokens);  // (B, S, H)
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
  fs::create_directories(dir);
  std::ofstream(fs::path(dir) / "config.json", std::ios::trunc) << model->config.to_json().dump(2) << "\n";
  save_safetensors((fs::path(dir) / "model.safetensors").string(), model->state_dict());
  std::ofstream(fs::path(dir) / "vocab.json", std::ios::trunc) << vocab.to_json().dump() << "\n";
  std::ofstream(fs::path(dir) / "answers.json", std::ios::trunc) << json(answers).dump() << "\n";
  const int64_t R = model->config.vision.image_size;
  std::ofstream(fs::path(dir) / "preprocessor_config.json", std::ios::trunc)
      << json{{"size", {{"shortest_edge", R}}}, {"crop_size", {{"height", R}, {"width", R}}}}.dump(2) << "\n";
}

VqaBundle VqaBundle::load(const std::string& dir) {
  const fs::path d(dir);
  const std::string kind = "vqa model folder";
  VqaBundle b;
  const VqaConfig config = data::read_json_file_as((d / "config.json").string(), kind, [&](const json& j) {
    MINIVL_CHECK(j.value("architecture", "") == "minivl-vqa", dir, ": not a VQA model folder");
    return VqaConfig::from_json(j);
  });
  b.model = std::make_shared<VqaModel>(config);
  b.model->load_state_dict(load_safetensors((d / "model.safetensors").string()), true);
  b.model->eval();
  b.vocab = data::read_json_file_as((d / "vocab.json").string(), kind, WordVocab::from_json);
  b.answers = data::read_json_file_as((d / "answers.json").string(), kind,
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

Tensor pad_id_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t T = 1;
  for (const auto& r : rows) T = std::max(T, r.size());
  std::vector<int64_t> flat(rows.size() * T, pad);
  for (size_t b = 0; b < rows.size(); ++b) std::copy(rows[b].begin(), rows[b].end(), flat.begin() + ptrdiff_t(b * T));
  return from_vector_i64(flat, {int64_t(rows.size()), int64_t(T)});
}

}  // namespace minivl::models
