#include "models/captioner.h"

#include <filesystem>
#include <fstream>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "data/annotations.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

void init_vision_tower(ClipVisionTransformer& v, const ClipTowerConfig& c);  // models/vqa.cpp

json CaptionerConfig::to_json() const {
  return json{{"architecture", "minivl-captioner"}, {"vision_config", vision_config_to_json(vision)},
              {"hidden", hidden}, {"layers", layers}, {"heads", heads}, {"mlp", mlp},
              {"vocab_size", vocab_size}, {"max_length", max_length}, {"tie_embeddings", tie_embeddings},
              {"freeze_vision", freeze_vision}, {"dropout", dropout}};
}

CaptionerConfig CaptionerConfig::from_json(const json& j) {
  CaptionerConfig c;
  c.vision = vision_config_from_json(j.at("vision_config"));
  c.hidden = j.at("hidden").get<int64_t>();
  c.layers = j.at("layers").get<int64_t>();
  c.heads = j.at("heads").get<int64_t>();
  c.mlp = j.at("mlp").get<int64_t>();
  c.vocab_size = j.at("vocab_size").get<int64_t>();
  c.max_length = j.at("max_length").get<int64_t>();
  c.tie_embeddings = j.value("tie_embeddings", true);
  c.freeze_vision = j.value("freeze_vision", false);
  c.dropout = j.value("dropout", 0.0);
  return c;
}

Captioner::Captioner(const CaptionerConfig& c) : config(c) {
  vision_model = register_module("vision_model", std::make_shared<ClipVisionTransformer>(c.vision));
  init_vision_tower(*vision_model, c.vision);
  memory_proj = register_module("memory_proj", std::make_shared<nn::Linear>(c.vision.hidden_size, c.hidden));
  token_embedding = register_module("token_embedding", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden));
  position_embedding = register_module("position_embedding", std::make_shared<nn::Embedding>(c.max_length, c.hidden));
  nn::TransformerLayerOptions o;
  o.dim = c.hidden;
  o.num_heads = c.heads;
  o.mlp_hidden = c.mlp;
  o.dropout = c.dropout;
  auto list = register_module("layers", std::make_shared<nn::Module>());  // layers.{i}
  for (int64_t i = 0; i < c.layers; ++i)
    layers.push_back(list->register_module(std::to_string(i), std::make_shared<nn::TransformerDecoderLayer>(o)));
  final_layer_norm = register_module("final_layer_norm", std::make_shared<nn::LayerNorm>(c.hidden));
  if (!c.tie_embeddings)
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(c.hidden, c.vocab_size, false));
}

Tensor Captioner::encode_image(const Tensor& pixels) const {
  if (config.freeze_vision) {
    Tensor v;
    {
      NoGradGuard no_grad;
      v = vision_tokens(*vision_model, pixels);
    }
    return memory_proj->forward(v.detach());
  }
  return memory_proj->forward(vision_tokens(*vision_model, pixels));  // (B, S, H)
}

Tensor Captioner::decode(const Tensor& ids, const Tensor& memory, DecoderCache* cache) const {
  const int64_t T = ids.size(1);
  const int64_t offset = cache && !cache->empty() ? (*cache)[0].self_attn.length() : 0;
  MINIVL_CHECK(offset + T <= config.max_length, "captioner: position ", offset + T, " beyond max_length ",
               config.max_length);
  MINIVL_CHECK(!cache || int64_t(cache->size()) == config.layers, "captioner: a cache of ", cache ? cache->size() : 0,
               " layers for ", config.layers);
  const Device dev = ids.device();
  Tensor x = token_embedding->forward(ids) +
             position_embedding->forward(arange(double(offset), double(offset + T), 1, DType::i64, dev)).unsqueeze(0);
  for (size_t l = 0; l < layers.size(); ++l)
    x = layers[l]->forward(x, memory, Tensor(), Tensor(), cache ? &(*cache)[l] : nullptr);
  x = final_layer_norm->forward(x);
  return lm_head ? lm_head->forward(x) : nn::linear(x, token_embedding->weight, Tensor());  // (B, T, V)
}

Tensor Captioner::loss(const Tensor& pixels, const Tensor& ids, double label_smoothing) const {
  const int64_t B = ids.size(0), T = ids.size(1);
  MINIVL_CHECK(T >= 2, "captioner: token rows of length ", T, " (need <bos> and at least one target)");
  Tensor memory = encode_image(pixels);
  Tensor input = ids.slice(1, 0, T - 1).contiguous();                 // (B, T-1)
  const std::vector<double> all = ids.to_vector();
  std::vector<int64_t> target(size_t(B * (T - 1)));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 1; t < T; ++t) {
      const int64_t id = int64_t(all[size_t(b * T + t)]);
      target[size_t(b * (T - 1) + t - 1)] = id == WordVocab::kPad ? -100 : id;
    }
  Tensor logits = decode(input, memory);                               // (B, T-1, V)
  return cross_entropy(logits.reshape({B * (T - 1), config.vocab_size}),
                       from_vector_i64(target, {B * (T - 1)}).to(ids.device()), -100, label_smoothing);
}

void CaptionerBundle::save(const std::string& dir) const {
  fs::create_directories(dir);
  std::ofstream(fs::path(dir) / "config.json", std::ios::trunc) << model->config.to_json().dump(2) << "\n";
  save_safetensors((fs::path(dir) / "model.safetensors").string(), model->state_dict());
  std::ofstream(fs::path(dir) / "vocab.json", std::ios::trunc) << vocab.to_json().dump() << "\n";
  const int64_t R = model->config.vision.image_size;
  std::ofstream(fs::path(dir) / "preprocessor_config.json", std::ios::trunc)
      << json{{"size", {{"shortest_edge", R}}}, {"crop_size", {{"height", R}, {"width", R}}}}.dump(2) << "\n";
}

CaptionerBundle CaptionerBundle::load(const std::string& dir) {
  const fs::path d(dir);
  const std::string kind = "captioner model folder";
  const CaptionerConfig config = data::read_json_file_as((d / "config.json").string(), kind, [&](const json& j) {
    MINIVL_CHECK(j.value("architecture", "") == "minivl-captioner", dir, ": not a captioner model folder");
    return CaptionerConfig::from_json(j);
  });
  CaptionerBundle b;
  b.model = std::make_shared<Captioner>(config);
  b.model->load_state_dict(load_safetensors((d / "model.safetensors").string()), true);
  b.model->eval();
  b.vocab = data::read_json_file_as((d / "vocab.json").string(), kind, WordVocab::from_json);
  return b;
}

}  // namespace minivl::models
