#include "models/vision_tower.h"

#include <cmath>
#include <filesystem>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "models/clip.h"
#include "nn/init.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

int64_t vision_token_count(const ClipTowerConfig& c) {
  const int64_t grid = c.image_size / c.patch_size;
  return grid * grid + 1;
}

VisionEmbeddings::VisionEmbeddings(const ClipTowerConfig& c) {
  class_embedding = register_parameter("class_embedding", empty({c.hidden_size}), nn::ParamKind::embedding);
  patch_embedding = register_module("patch_embedding",
                                    std::make_shared<nn::PatchEmbed>(c.num_channels, c.hidden_size, c.patch_size, false));
  position_embedding =
      register_module("position_embedding", std::make_shared<nn::Embedding>(vision_token_count(c), c.hidden_size));
}

Tensor VisionEmbeddings::forward(const Tensor& pixels) const {
  const int64_t B = pixels.size(0), D = class_embedding.size(0);
  Tensor patches = patch_embedding->forward(pixels);                   // (B, N, D)
  Tensor cls = class_embedding.reshape({1, 1, D}).expand({B, 1, D});   // (B, 1, D)
  Tensor x = cat({cls, patches.to(class_embedding.dtype())}, 1);       // (B, 1 + N, D)
  MINIVL_CHECK(x.size(1) == position_embedding->weight.size(0), "CLIP vision: ", x.size(1) - 1,
               " patches from images ", pixels.shape_str(), ", but the model has ",
               position_embedding->weight.size(0) - 1, " positions");
  return add(x, position_embedding->weight);
}

VisionTower::VisionTower(const ClipTowerConfig& c) : config(c) {
  embeddings = register_module("embeddings", std::make_shared<VisionEmbeddings>(c));
  pre_layrnorm = register_module("pre_layrnorm", std::make_shared<nn::LayerNorm>(c.hidden_size, c.layer_norm_eps));
  encoder = register_module("encoder", std::make_shared<ClipEncoder>(c));
  post_layernorm = register_module("post_layernorm", std::make_shared<nn::LayerNorm>(c.hidden_size, c.layer_norm_eps));
}

void VisionTower::init_embeddings(double range) {
  NoGradGuard no_grad;
  nn::init::normal_(embeddings->class_embedding, 0.0, std::pow(double(config.hidden_size), -0.5));
  nn::init::normal_(embeddings->patch_embedding->weight, 0.0, range);
  nn::init::normal_(embeddings->position_embedding->weight, 0.0, range);
}

std::shared_ptr<VisionTower> register_vision_tower(nn::Module& owner, const ClipTowerConfig& c) {
  auto tower = owner.register_module("vision_model", std::make_shared<VisionTower>(c));
  tower->init_embeddings();
  return tower;
}

Tensor VisionTower::forward(const Tensor& pixels) const {
  Tensor h = encoder->forward(pre_layrnorm->forward(embeddings->forward(pixels)), false);  // (B, 1 + N, D)
  return post_layernorm->forward(h.select(1, 0).contiguous());                             // (B, D)
}

Tensor VisionTower::tokens(const Tensor& pixels) const {
  Tensor x = embeddings->forward(pixels);  // (B, 1 + N, D)
  x = pre_layrnorm->forward(x);
  x = encoder->forward(x, false);
  return post_layernorm->forward(x);
}

Tensor VisionTower::encode(const Tensor& pixels) const {
  if (!frozen_) return tokens(pixels);
  NoGradGuard no_grad;
  return tokens(pixels).detach();
}

void VisionTower::load_clip(const std::string& path) {
  const std::string dir = clip_model_folder(path);
  NamedTensors all = load_safetensors((fs::path(dir) / "model.safetensors").string());
  NamedTensors mine;
  const std::string prefix = "vision_model.";
  for (auto& [name, t] : all)
    if (name.rfind(prefix, 0) == 0 && name.find("position_ids") == std::string::npos)
      mine.emplace_back(name.substr(prefix.size()), t);
  MINIVL_CHECK(!mine.empty(), "vision_init: ", dir, "/model.safetensors has no vision_model.* tensors");
  load_state_dict(mine, true);
}

json vision_config_to_json(const ClipTowerConfig& c) {
  ClipConfig cc;
  cc.vision = c;
  return cc.to_json().at("vision_config");
}

ClipTowerConfig vision_config_from_json(const json& j) {
  return ClipConfig::from_json(json{{"vision_config", j}}).vision;
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

// ---- training configs ----

namespace {
// The architecture keys: TOML key, the field, help, least value.
struct TowerKey {
  const char* toml;
  int64_t ClipTowerConfig::*field;
  const char* help;
  int64_t min;
};
const TowerKey kTowerKeys[] = {
    {"model.image_size", &ClipTowerConfig::image_size, "input resolution R (images are resized and center-cropped to R x R)", 8},
    {"model.patch_size", &ClipTowerConfig::patch_size, "ViT patch size", 1},
    {"model.vision_width", &ClipTowerConfig::hidden_size, "vision hidden size", 8},
    {"model.vision_layers", &ClipTowerConfig::num_hidden_layers, "vision encoder layers", 0},
    {"model.vision_heads", &ClipTowerConfig::num_attention_heads, "vision attention heads", 1},
    {"model.vision_mlp", &ClipTowerConfig::intermediate_size, "vision MLP hidden size", 1},
};
}  // namespace

void add_vision_tower_keys(nn::ConfigSchema& s, const ClipTowerConfig& defaults) {
  for (const TowerKey& k : kTowerKeys) s.add_int(k.toml, defaults.*k.field, k.help, double(k.min));
  s.add_string("model.hidden_act", defaults.hidden_act, "MLP activation (of the vision tower; clip: of both towers)",
               {"quick_gelu", "gelu"});
}

ClipTowerConfig vision_tower_from_keys(const nn::Config& c) {
  ClipTowerConfig v;
  for (const TowerKey& k : kTowerKeys) v.*k.field = c.get_int(k.toml);
  v.hidden_act = c.get_string("model.hidden_act");
  MINIVL_CHECK(v.image_size % v.patch_size == 0, "model.image_size ", v.image_size,
               " is not a multiple of model.patch_size ", v.patch_size);
  return vision_config_from_json(vision_config_to_json(v));  // the checks of a config.json
}

void add_vision_init_keys(nn::ConfigSchema& s) {
  s.add_string("model.vision_init", "", "a CLIP run dir or model folder to start the vision tower from");
  s.add_bool("model.freeze_vision", false, "keep the vision tower fixed (with vision_init)");
  s.add_int("model.unfreeze_vision_at", 0, "with freeze_vision: train the tower too from this step on (0 = never)", 0);
  s.add_float("model.vision_lr_scale", 1.0, "the vision tower's lr as a multiple of the schedule's", 0.0, 100.0);
}

ClipTowerConfig vision_tower_for_run(const nn::Config& c) {
  const std::string init = c.get_string("model.vision_init");
  return init.empty() ? vision_tower_from_keys(c) : clip_vision_config(init);
}

void init_vision_tower_for_run(VisionTower& tower, const nn::Config& c) {
  const std::string init = c.get_string("model.vision_init");
  if (!init.empty()) tower.load_clip(init);
}

VisionFreeze::VisionFreeze(const nn::Config& c)
    : frozen(c.get_bool("model.freeze_vision")),
      unfreeze_at(c.get_int("model.unfreeze_vision_at")),
      lr_scale(c.get_float("model.vision_lr_scale")) {
  MINIVL_CHECK(unfreeze_at == 0 || frozen, "model.unfreeze_vision_at = ", unfreeze_at,
               " needs model.freeze_vision = true (the tower is trained from the start otherwise)");
}

}  // namespace minivl::models
