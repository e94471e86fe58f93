#pragma once
// The ViT image tower CLIP, the VQA model and the captioner build their image side from, in Hugging
// Face's CLIPVisionTransformer layout (the parameters under vision_model.*):
//
//   patch_embedding (no bias) -> cat(class_embedding, patches) + position_embedding   (B, 1 + N, D)
//   -> pre_layrnorm -> pre-LN encoder layers -> post_layernorm
//   CLIP pools the class token (forward); VQA and the captioner read all 1 + N tokens (tokens / encode).
//
// Also here: its TOML keys (model.image_size, patch_size, vision_*, hidden_act), how a run starts it
// from a CLIP checkpoint (model.vision_init) and freezes it for a while (model.freeze_vision,
// unfreeze_vision_at, vision_lr_scale), and its config.json entry (vision_config).
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/tensor.h"
#include "models/clip_tower.h"
#include "nn/config.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace minivl::models {

class VisionEmbeddings : public nn::Module {
 public:
  explicit VisionEmbeddings(const ClipTowerConfig& c);
  Tensor forward(const Tensor& pixels) const;  // (B, C, R, R) -> (B, 1 + N, D)
  Tensor class_embedding;                      // (D)
  std::shared_ptr<nn::PatchEmbed> patch_embedding;
  std::shared_ptr<nn::Embedding> position_embedding;  // (1 + N, D)
};

class VisionTower : public nn::Module {
 public:
  explicit VisionTower(const ClipTowerConfig& c);
  // OpenAI CLIP's init of the embeddings (HF's _init_weights): class_embedding ~ N(0, D^-1/2),
  // patch and position embeddings ~ N(0, range). The encoder layers keep their own init.
  void init_embeddings(double range = 0.02);
  Tensor forward(const Tensor& pixels) const;  // pixels (B, C, R, R) -> the class token (B, D), after post_layernorm
  Tensor tokens(const Tensor& pixels) const;   // -> all 1 + N tokens (B, 1 + N, D), after post_layernorm
  // tokens(pixels); while frozen, computed without a graph, so no gradient reaches the tower.
  Tensor encode(const Tensor& pixels) const;
  // A frozen tower keeps its weights while the layers that read it train (VisionFreeze below).
  void set_frozen(bool frozen) { frozen_ = frozen; }
  bool frozen() const { return frozen_; }
  // Copies the vision_model.* tensors of a CLIP checkpoint (a model folder or a run dir; strict on
  // those names). The checkpoint's tower must have this one's architecture (clip_vision_config).
  void load_clip(const std::string& path);

  ClipTowerConfig config;
  std::shared_ptr<VisionEmbeddings> embeddings;
  std::shared_ptr<nn::LayerNorm> pre_layrnorm, post_layernorm;  // sic: HF's spelling
  std::shared_ptr<ClipEncoder> encoder;

 private:
  bool frozen_ = false;
};

// The image side of a model: a VisionTower registered as owner's "vision_model", its embeddings
// initialised as OpenAI's CLIP does (init_embeddings).
std::shared_ptr<VisionTower> register_vision_tower(nn::Module& owner, const ClipTowerConfig& c);

// 1 + N: the class token and the (image_size / patch_size)^2 patches.
int64_t vision_token_count(const ClipTowerConfig& c);

// The tower's entry of a model folder's config.json (HF's vision_config), and back (checked as CLIP's).
nlohmann::json vision_config_to_json(const ClipTowerConfig& c);
ClipTowerConfig vision_config_from_json(const nlohmann::json& j);
// The CLIP model folder of `path`: path itself when it holds config.json, else path/model (a run dir).
std::string clip_model_folder(const std::string& path);
// The vision tower config of a CLIP checkpoint (a model folder or a run dir).
ClipTowerConfig clip_vision_config(const std::string& path);

// ---- training configs ----

// The architecture keys model.image_size, patch_size, vision_width, vision_layers, vision_heads,
// vision_mlp and hidden_act, with a trainer's defaults (the fields of the same names in `defaults`):
// each trainer keeps the defaults its configs were written against (clip: a tower trained from scratch;
// vqa and the captioner: the tower of the demo's CLIP run, which model.vision_init usually replaces).
void add_vision_tower_keys(nn::ConfigSchema& schema, const ClipTowerConfig& defaults);
// The tower those keys describe (image_size a multiple of patch_size; checked as a config.json is).
ClipTowerConfig vision_tower_from_keys(const nn::Config& config);

// model.vision_init, freeze_vision, unfreeze_vision_at, vision_lr_scale: a tower started from a CLIP
// checkpoint and trained under new layers (vqa, the captioner).
void add_vision_init_keys(nn::ConfigSchema& schema);
// The tower a run builds: the CLIP checkpoint's (model.vision_init) or the architecture keys'.
ClipTowerConfig vision_tower_for_run(const nn::Config& config);
// model.vision_init's weights into `tower` (nothing when it is empty).
void init_vision_tower_for_run(VisionTower& tower, const nn::Config& config);

// How the tower trains: frozen for the whole run (model.freeze_vision), or only for its first steps
// (model.unfreeze_vision_at) while the new layers learn to read it (then fine-tuned, it is changed
// less); model.vision_lr_scale: its lr as a multiple of the schedule's while it trains.
struct VisionFreeze {
  bool frozen = false;
  int64_t unfreeze_at = 0;  // 0: never
  double lr_scale = 1.0;
  explicit VisionFreeze(const nn::Config& c);
  bool frozen_at(int64_t step) const { return frozen && (unfreeze_at == 0 || step < unfreeze_at); }
  // The lr multiplier of a parameter of the model that holds the tower as vision_model.
  double lr_scale_of(const std::string& parameter) const {
    return parameter.rfind("vision_model.", 0) == 0 ? lr_scale : 1.0;
  }
};

}  // namespace minivl::models
