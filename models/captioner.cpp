#include "models/captioner.h"

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "models/model_folder.h"

namespace minivl::models {
using json = nlohmann::json;

json CaptionerConfig::to_json() const {
  json j = shared_json("minivl-captioner");
  j.update({{"max_length", max_length}, {"tie_embeddings", tie_embeddings}});
  return j;
}

CaptionerConfig CaptionerConfig::from_json(const json& j) {
  CaptionerConfig c;
  c.read_shared_json(j);
  c.max_length = j.at("max_length").get<int64_t>();
  c.tie_embeddings = j.value("tie_embeddings", true);
  return c;
}

Captioner::Captioner(const CaptionerConfig& c) : config(c) {
  const int64_t H = c.joint.hidden;
  vision_model = register_vision_tower(*this, c.vision);
  memory_proj = register_module("memory_proj", std::make_shared<nn::Linear>(c.vision.hidden_size, H));
  token_embedding = register_module("token_embedding", std::make_shared<nn::Embedding>(c.vocab_size, H));
  position_embedding = register_module("position_embedding", std::make_shared<nn::Embedding>(c.max_length, H));
  layers = register_layer_stack<nn::TransformerDecoderLayer>(*this, "layers", c.joint.layers, c.joint.layer_options());
  final_layer_norm = register_module("final_layer_norm", std::make_shared<nn::LayerNorm>(H));
  if (!c.tie_embeddings) lm_head = register_module("lm_head", std::make_shared<nn::Linear>(H, c.vocab_size, false));
}

Tensor Captioner::encode_image(const Tensor& pixels) const {
  return memory_proj->forward(vision_model->encode(pixels));  // (B, S, H)
}

Tensor Captioner::decode(const Tensor& ids, const Tensor& memory, DecoderCache* cache) const {
  const int64_t T = ids.size(1);
  const int64_t offset = cache && !cache->empty() ? (*cache)[0].self_attn.length() : 0;
  MINIVL_CHECK(offset + T <= config.max_length, "captioner: position ", offset + T, " beyond max_length ",
               config.max_length);
  MINIVL_CHECK(!cache || int64_t(cache->size()) == config.joint.layers, "captioner: a cache of ",
               cache ? cache->size() : 0, " layers for ", config.joint.layers);
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
  save_model_folder(dir, model->config.to_json(), *model, *model->vision_model, vocab);
}

CaptionerBundle CaptionerBundle::load(const std::string& dir) {
  CaptionerBundle b;
  b.model = load_model_folder<Captioner>(dir, "minivl-captioner", "captioner model folder", b.vocab);
  return b;
}

}  // namespace minivl::models
