#include "models/clip.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "nn/init.h"

namespace minivl::models {
namespace fs = std::filesystem;

// ---------------------------------------------------------------- config

ClipConfig::ClipConfig() {
  vision.hidden_size = 768;
  vision.intermediate_size = 3072;
  vision.num_attention_heads = 12;
  vision.num_hidden_layers = 12;
}

namespace {
template <typename T>
void get_to(const nlohmann::json& j, const char* key, T& out) {
  if (j.contains(key) && !j[key].is_null()) out = j[key].get<T>();
}

// The integer fields of a tower's config.json object, by key (absent or null: kept).
const std::pair<const char*, int64_t ClipTowerConfig::*> kTowerIntKeys[] = {
    {"hidden_size", &ClipTowerConfig::hidden_size},
    {"intermediate_size", &ClipTowerConfig::intermediate_size},
    {"num_attention_heads", &ClipTowerConfig::num_attention_heads},
    {"num_hidden_layers", &ClipTowerConfig::num_hidden_layers},
    {"image_size", &ClipTowerConfig::image_size},
    {"patch_size", &ClipTowerConfig::patch_size},
    {"num_channels", &ClipTowerConfig::num_channels},
    {"vocab_size", &ClipTowerConfig::vocab_size},
    {"max_position_embeddings", &ClipTowerConfig::max_position_embeddings},
    {"eos_token_id", &ClipTowerConfig::eos_token_id},
};

ClipTowerConfig tower_from_json(const nlohmann::json& j, ClipTowerConfig c) {
  for (const auto& [key, field] : kTowerIntKeys) get_to(j, key, c.*field);
  get_to(j, "hidden_act", c.hidden_act);
  get_to(j, "layer_norm_eps", c.layer_norm_eps);
  return c;
}

void check_tower(const ClipTowerConfig& c, const char* which) {
  MINIVL_CHECK(c.hidden_size > 0 && c.num_attention_heads > 0 && c.hidden_size % c.num_attention_heads == 0,
               "CLIP config: ", which, ".hidden_size ", c.hidden_size, " must be a positive multiple of num_attention_heads ",
               c.num_attention_heads);
  MINIVL_CHECK(c.num_hidden_layers >= 0 && c.intermediate_size > 0, "CLIP config: ", which,
               ": bad num_hidden_layers / intermediate_size");
  MINIVL_CHECK(c.hidden_act == "quick_gelu" || c.hidden_act == "gelu", "CLIP config: ", which, ".hidden_act '",
               c.hidden_act, "' is not quick_gelu or gelu");
}
}  // namespace

ClipConfig ClipConfig::from_json(const nlohmann::json& j) {
  ClipConfig c;
  const char* tk = j.contains("text_config") ? "text_config" : "text_config_dict";
  const char* vk = j.contains("vision_config") ? "vision_config" : "vision_config_dict";
  if (j.contains(tk) && j[tk].is_object()) c.text = tower_from_json(j[tk], c.text);
  if (j.contains(vk) && j[vk].is_object()) c.vision = tower_from_json(j[vk], c.vision);
  get_to(j, "projection_dim", c.projection_dim);
  get_to(j, "logit_scale_init_value", c.logit_scale_init_value);
  get_to(j, "initializer_range", c.initializer_range);
  check_tower(c.text, "text_config");
  check_tower(c.vision, "vision_config");
  MINIVL_CHECK(c.vision.patch_size > 0 && c.vision.image_size >= c.vision.patch_size,
               "CLIP config: vision_config.image_size ", c.vision.image_size, " / patch_size ", c.vision.patch_size);
  return c;
}

ClipConfig ClipConfig::load(const std::string& path) {
  std::ifstream in(path);
  MINIVL_CHECK(in.good(), path, ": cannot open the CLIP config");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  MINIVL_CHECK(!j.is_discarded() && j.is_object(), path, ": not a JSON object");
  try {
    return from_json(j);
  } catch (const nlohmann::json::exception& e) {
    MINIVL_FAIL(path, ": ", e.what());
  }
}

nlohmann::json ClipConfig::to_json() const {
  auto common = [](const ClipTowerConfig& c) {
    return nlohmann::json{{"hidden_size", c.hidden_size},
                          {"intermediate_size", c.intermediate_size},
                          {"num_attention_heads", c.num_attention_heads},
                          {"num_hidden_layers", c.num_hidden_layers},
                          {"hidden_act", c.hidden_act},
                          {"layer_norm_eps", c.layer_norm_eps},
                          {"initializer_factor", 1.0},
                          {"initializer_range", 0.02},
                          {"attention_dropout", 0.0},
                          {"dropout", 0.0}};
  };
  nlohmann::json t = common(text), v = common(vision);
  t["model_type"] = "clip_text_model";
  t["vocab_size"] = text.vocab_size;
  t["max_position_embeddings"] = text.max_position_embeddings;
  t["bos_token_id"] = text.eos_token_id == 2 ? 0 : text.eos_token_id - 1;  // <|startoftext|> precedes <|endoftext|>
  t["eos_token_id"] = text.eos_token_id;
  t["pad_token_id"] = 1;
  t["projection_dim"] = projection_dim;
  v["model_type"] = "clip_vision_model";
  v["image_size"] = vision.image_size;
  v["patch_size"] = vision.patch_size;
  v["num_channels"] = vision.num_channels;
  v["projection_dim"] = projection_dim;
  return {{"architectures", {"CLIPModel"}},
          {"model_type", "clip"},
          {"initializer_factor", 1.0},
          {"initializer_range", initializer_range},
          {"logit_scale_init_value", logit_scale_init_value},
          {"projection_dim", projection_dim},
          {"text_config", t},
          {"vision_config", v},
          {"torch_dtype", "float32"}};
}

// ---------------------------------------------------------------- modules

ClipTextEmbeddings::ClipTextEmbeddings(const ClipTowerConfig& c) {
  token_embedding = register_module("token_embedding", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size));
  position_embedding = register_module("position_embedding",
                                       std::make_shared<nn::Embedding>(c.max_position_embeddings, c.hidden_size));
}

Tensor ClipTextEmbeddings::forward(const Tensor& ids) const {
  const int64_t T = ids.size(1);
  MINIVL_CHECK(T <= position_embedding->weight.size(0), "CLIP text: ", T, " tokens, but the model has ",
               position_embedding->weight.size(0), " positions");
  return add(token_embedding->forward(ids), position_embedding->weight.narrow(0, 0, T));  // (B, T, D)
}

ClipTextTransformer::ClipTextTransformer(const ClipTowerConfig& c) : config(c) {
  embeddings = register_module("embeddings", std::make_shared<ClipTextEmbeddings>(c));
  encoder = register_module("encoder", std::make_shared<ClipEncoder>(c));
  final_layer_norm = register_module("final_layer_norm",
                                     std::make_shared<nn::LayerNorm>(c.hidden_size, c.layer_norm_eps));
}

std::vector<int64_t> ClipTextTransformer::pool_positions(const Tensor& ids) const {
  const Tensor cpu_ids = ids.to(Device::cpu()).to(DType::i64).contiguous();
  const int64_t B = cpu_ids.size(0), T = cpu_ids.size(1);
  const int64_t* p = cpu_ids.data<int64_t>();
  std::vector<int64_t> pos(size_t(B), T - 1);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t* row = p + b * T;
    if (config.eos_token_id == 2) {  // HF's legacy configs: the arg-max id (the first one)
      int64_t best = 0;
      for (int64_t t = 1; t < T; ++t)
        if (row[t] > row[best]) best = t;
      pos[size_t(b)] = best;
    } else {
      for (int64_t t = 0; t < T; ++t)
        if (row[t] == config.eos_token_id) {
          pos[size_t(b)] = t;
          break;
        }
    }
  }
  return pos;
}

namespace {
// Per-position constants of the pooling scores (below), made once per (T, legacy, device): uploading
// them every step would make the host wait for the copy.
Tensor pooling_constants(int64_t T, bool legacy, Device device) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, bool, int, int>, Tensor> cache;
  std::lock_guard<std::mutex> lock(mu);
  Tensor& c = cache[{T, legacy, int(device.type), device.index}];
  if (!c.defined()) {
    std::vector<double> v(size_t(2 * T), 0.0);  // rows: the weight of a hit at t, the bias at t
    for (int64_t t = 0; t < T; ++t) {
      v[size_t(t)] = legacy ? 0.0 : 2.0 * double(T - t) + 2.0;
      v[size_t(T + t)] = legacy ? double(T - 1 - t) : (t == T - 1 ? 1.0 : 0.0);
    }
    c = from_vector(v, {2, T}, DType::f32, device);
  }
  return c;
}

// (B, T) one-hot of the pooling position of each row, computed where ids live (no host read):
// a score with a unique maximum per row, then score == row max.
//   eos: 2 (T - t) + 2 at every eos_token_id, + 1 at t = T - 1, else 0: the first eos wins (earlier
//        scores are larger), the last position when a row has none.
//   legacy (eos 2): T id + (T - 1 - t): the largest id, the first of equal ones (HF's argmax).
// Scores are integers below 2^24, exact in f32.
Tensor pooling_one_hot(const Tensor& ids, int64_t eos, int64_t vocab) {
  const int64_t T = ids.size(1);
  const bool legacy = eos == 2;
  MINIVL_CHECK(double(vocab + 1) * double(T) < double(1 << 24), "CLIP text: vocabulary ", vocab, " x ", T,
               " positions is too large for the f32 pooling scores");
  const Tensor c = pooling_constants(T, legacy, ids.device());
  const Tensor idf = ids.to(DType::f32);  // ids < 2^24: exact
  Tensor score = legacy ? add(mul(idf, double(T)), c.select(0, 1))
                        : add(mul(equal_mask(idf, scalar_tensor(double(eos), DType::f32, ids.device())), c.select(0, 0)),
                              c.select(0, 1));
  return equal_mask(score, max(score, {1}, true));  // (B, T)
}
}  // namespace

Tensor ClipTextTransformer::forward(const Tensor& ids) const {
  MINIVL_CHECK(ids.dim() == 2, "CLIP text: expected ids (B, T), got ", ids.shape_str());
  Tensor h = encoder->forward(embeddings->forward(ids), true);  // (B, T, D)
  // Row b at its end-of-text token (pool_positions' rule), as a product with the one-hot rows so
  // the step never reads the ids on the host: (B, 1, T) @ (B, T, D).
  Tensor one_hot = pooling_one_hot(ids, config.eos_token_id, config.vocab_size).to(h.dtype());
  Tensor pooled = matmul(one_hot.unsqueeze(1), h).squeeze(1);  // (B, D)
  return final_layer_norm->forward(pooled);                      // per token, so pooling first is the same
}

// ---------------------------------------------------------------- CLIPModel

ClipModel::ClipModel(const ClipConfig& c) : config(c) {
  text_model = register_module("text_model", std::make_shared<ClipTextTransformer>(c.text));
  vision_model = register_module("vision_model", std::make_shared<VisionTower>(c.vision));
  visual_projection = register_module("visual_projection",
                                      std::make_shared<nn::Linear>(c.vision.hidden_size, c.projection_dim, false));
  text_projection = register_module("text_projection",
                                    std::make_shared<nn::Linear>(c.text.hidden_size, c.projection_dim, false));
  logit_scale = register_parameter("logit_scale", full({}, c.logit_scale_init_value), nn::ParamKind::bias);

  // OpenAI's initialisation, as HF's CLIPPreTrainedModel._init_weights (factor 1).
  NoGradGuard no_grad;
  const double range = c.initializer_range;
  nn::init::normal_(text_model->embeddings->token_embedding->weight, 0.0, range);
  nn::init::normal_(text_model->embeddings->position_embedding->weight, 0.0, range);
  vision_model->init_embeddings(range);
  auto init_encoder = [](ClipEncoder& enc, const ClipTowerConfig& t) {
    const double width = double(t.hidden_size), layers = double(std::max<int64_t>(1, t.num_hidden_layers));
    const double in_std = std::pow(width, -0.5) * std::pow(2.0 * layers, -0.5);
    const double out_std = std::pow(width, -0.5);
    const double fc_std = std::pow(2.0 * width, -0.5);
    for (const auto& layer : enc.layers) {
      auto& a = *layer->self_attn;
      for (auto* lin : {a.q_proj.get(), a.k_proj.get(), a.v_proj.get()}) {
        nn::init::normal_(lin->weight, 0.0, in_std);
        nn::init::zeros_(lin->bias);
      }
      nn::init::normal_(a.out_proj->weight, 0.0, out_std);
      nn::init::zeros_(a.out_proj->bias);
      nn::init::normal_(layer->mlp->fc1->weight, 0.0, fc_std);
      nn::init::zeros_(layer->mlp->fc1->bias);
      nn::init::normal_(layer->mlp->fc2->weight, 0.0, in_std);
      nn::init::zeros_(layer->mlp->fc2->bias);
    }
  };
  init_encoder(*text_model->encoder, c.text);
  init_encoder(*vision_model->encoder, c.vision);
  nn::init::normal_(visual_projection->weight, 0.0, std::pow(double(c.vision.hidden_size), -0.5));
  nn::init::normal_(text_projection->weight, 0.0, std::pow(double(c.text.hidden_size), -0.5));
}

Tensor l2_normalize(const Tensor& x) {
  return mul(x, rsqrt(sum(mul(x, x), {-1}, true)));  // (..., D) * (..., 1)
}

Tensor ClipModel::encode_image(const Tensor& pixels) const {
  return l2_normalize(visual_projection->forward(vision_model->forward(pixels)).to(DType::f32));
}

Tensor ClipModel::encode_text(const Tensor& ids) const {
  return l2_normalize(text_projection->forward(text_model->forward(ids)).to(DType::f32));
}

ClipOutput ClipModel::forward(const Tensor& pixels, const Tensor& ids) const {
  ClipOutput out;
  out.image_embeds = encode_image(pixels);
  out.text_embeds = encode_text(ids);
  out.logits_per_image = mul(matmul(out.image_embeds, out.text_embeds.t()), exp(logit_scale.to(DType::f32)));
  return out;
}

Tensor ClipModel::loss(const Tensor& pixels, const Tensor& ids) const {
  return clip_loss(encode_image(pixels), encode_text(ids), logit_scale.to(DType::f32));
}

void ClipModel::clamp_logit_scale() {
  NoGradGuard no_grad;
  // On the device: reading the value to decide would make the host wait every step.
  logit_scale.copy_(clamp(logit_scale, std::nullopt, std::log(100.0)));
}

double ClipModel::logit_scale_value() const { return logit_scale.item(); }

NamedTensors ClipModel::clean_state_dict(NamedTensors state) {
  NamedTensors out;
  for (auto& [name, t] : state) {
    if (name.ends_with("position_ids")) continue;  // a buffer in older HF files
    out.emplace_back(name, t);
  }
  return out;
}

void ClipModel::save_folder(const std::string& dir) const {
  fs::create_directories(dir);
  {
    std::ofstream f(fs::path(dir) / "config.json", std::ios::trunc);
    f << config.to_json().dump(2) << "\n";
  }
  {
    const int64_t r = config.vision.image_size;
    nlohmann::json p = {{"crop_size", {{"height", r}, {"width", r}}},
                        {"do_center_crop", true},
                        {"do_convert_rgb", true},
                        {"do_normalize", true},
                        {"do_rescale", true},
                        {"do_resize", true},
                        {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
                        {"image_std", {0.26862954, 0.26130258, 0.27577711}},
                        {"image_processor_type", "CLIPImageProcessor"},
                        {"processor_class", "CLIPProcessor"},
                        {"resample", 3},
                        {"rescale_factor", 1.0 / 255.0},
                        {"size", {{"shortest_edge", r}}}};
    std::ofstream f(fs::path(dir) / "preprocessor_config.json", std::ios::trunc);
    f << p.dump(2) << "\n";
  }
  NamedTensors state;
  for (auto& [name, t] : state_dict()) state.emplace_back(name, t.to(Device::cpu()).to(DType::f32).contiguous());
  save_safetensors((fs::path(dir) / "model.safetensors").string(), state, {{"format", "pt"}});
}

std::shared_ptr<ClipModel> ClipModel::load_folder(const std::string& dir) {
  const fs::path d(dir);
  MINIVL_CHECK(fs::is_directory(d), dir, ": not a model folder (expected config.json and model.safetensors)");
  MINIVL_CHECK(fs::exists(d / "config.json"), dir, ": no config.json");
  MINIVL_CHECK(fs::exists(d / "model.safetensors"), dir, ": no model.safetensors",
               fs::exists(d / "pytorch_model.bin") ? " (only pytorch_model.bin, which minivl does not read)" : "");
  auto model = std::make_shared<ClipModel>(ClipConfig::load((d / "config.json").string()));
  NamedTensors state = clean_state_dict(load_safetensors((d / "model.safetensors").string()));
  try {
    model->load_state_dict(state, true);
  } catch (const Error& e) {
    MINIVL_FAIL(dir, "/model.safetensors: ", e.what());
  }
  model->eval();
  return model;
}

// ---------------------------------------------------------------- tokenizer files

void write_openai_vocab_as_hf(const std::string& openai_gz, const std::string& dir) {
  gzFile f = gzopen(openai_gz.c_str(), "rb");
  MINIVL_CHECK(f != nullptr, openai_gz, ": cannot open");
  std::string text;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) text.append(buf, size_t(n));
  gzclose(f);
  // OpenAI's SimpleTokenizer: merges = lines[1 : 49152 - 256 - 2 + 1].
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const size_t count = 49152 - 256 - 2;
  MINIVL_CHECK(lines.size() > count, openai_gz, ": too few merges");
  // Vocabulary: the 256 byte symbols (bytes_to_unicode order), the same with </w>, one per merge, specials.
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int extra = 0;
  for (int b = 0; b < 256; ++b)
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
      bs.push_back(b);
      cs.push_back(256 + extra++);
    }
  auto utf8 = [](int cp) {
    std::string s;
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    } else {
      s += char(0xE0 | (cp >> 12));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    }
    return s;
  };
  std::vector<std::string> vocab;
  for (int cp : cs) vocab.push_back(utf8(cp));
  for (int i = 0; i < 256; ++i) vocab.push_back(vocab[size_t(i)] + "</w>");
  std::string merges = "#version: 0.2\n";
  for (size_t i = 1; i <= count; ++i) {
    const std::string& m = lines[i];
    const size_t sp = m.find(' ');
    MINIVL_CHECK(sp != std::string::npos, openai_gz, ": bad merge line ", i + 1);
    vocab.push_back(m.substr(0, sp) + m.substr(sp + 1));
    merges += m + "\n";
  }
  vocab.push_back("<|startoftext|>");
  vocab.push_back("<|endoftext|>");
  nlohmann::json v = nlohmann::json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = int64_t(i);
  fs::create_directories(dir);
  std::ofstream(fs::path(dir) / "vocab.json", std::ios::trunc) << v.dump() << "\n";
  std::ofstream(fs::path(dir) / "merges.txt", std::ios::trunc) << merges;
  write_tokenizer_config(dir, 77);
}

void write_tokenizer_config(const std::string& dir, int64_t context) {
  nlohmann::json tc = {{"tokenizer_class", "CLIPTokenizer"},
                       {"bos_token", "<|startoftext|>"},
                       {"eos_token", "<|endoftext|>"},
                       {"pad_token", "<|endoftext|>"},
                       {"unk_token", "<|endoftext|>"},
                       {"do_lower_case", true},
                       {"model_max_length", context}};
  fs::create_directories(dir);
  std::ofstream(fs::path(dir) / "tokenizer_config.json", std::ios::trunc) << tc.dump(2) << "\n";
}

std::string default_clip_vocab_path() {
  const char* name = "bpe_simple_vocab_16e6.txt.gz";
  if (const char* env = std::getenv("MINIVL_CLIP_VOCAB"); env && *env && fs::exists(env)) return env;
  std::vector<fs::path> roots = {fs::current_path() / ".." / "shared" / "data" / "clip",
                                 fs::current_path() / "shared" / "data" / "clip"};
#ifdef MINIVL_SOURCE_ROOT
  roots.push_back(fs::path(MINIVL_SOURCE_ROOT) / ".." / "shared" / "data" / "clip");
  roots.push_back(fs::path(MINIVL_SOURCE_ROOT) / "shared" / "data" / "clip");
#endif
  for (const fs::path& r : roots)
    if (fs::exists(r / name)) return fs::weakly_canonical(r / name).string();
  return "";
}

}  // namespace minivl::models
