#pragma once
// What the "vqa" and "captioner" trainers (models/vqa_train.cpp, models/caption_train.cpp) share:
// images kept in memory at the model's resolution, the shapes folder's splits, the vision tower's config
// keys and freezing, and the end-of-run model folder. Internal to those files; their data order is
// models/epoch_cursor.h, which the clip trainer uses too.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "data/preprocess.h"
#include "models/clip.h"
#include "models/epoch_cursor.h"
#include "nn/config.h"

namespace minivl::models::train_support {

// Images at the model's resolution, u8 (N, R, R, 3), by image id.
struct ImageStore {
  int R = 0;
  std::vector<uint8_t> pixels;
  std::unordered_map<int64_t, int64_t> row_of;  // image id -> row
  // Reads, resizes and centre-crops the image once; a known id is skipped.
  void add(int64_t id, const std::string& path);
  // (B, 3, R, R) f32, normalised as `pre` says.
  Tensor batch(const std::vector<int64_t>& ids, const data::ClipPreprocessConfig& pre) const;
};

// Image ids of a split of a shapes folder: "train", "val", "test" (val + test, the held-out images), "all".
std::vector<int64_t> split_ids(const std::string& dir, const std::string& split);

// How the vision tower trains. model.freeze_vision and model.unfreeze_vision_at: a tower frozen for the
// whole run, or only for its first steps, while the new layers learn to read it (then fine-tuned, it is
// changed less); model.vision_lr_scale: its lr as a multiple of the schedule's while it trains.
struct VisionFreeze {
  bool frozen = false;
  int64_t unfreeze_at = 0;  // 0: never
  double lr_scale = 1.0;    // model.vision_lr_scale: the tower's lr multiplier while it trains
  explicit VisionFreeze(const nn::Config& c);
  bool at(int64_t step) const { return frozen && (unfreeze_at == 0 || step < unfreeze_at); }
  double lr_scale_of(const std::string& parameter) const {
    return parameter.rfind("vision_model.", 0) == 0 ? lr_scale : 1.0;
  }
};

// The model.* / data.* keys both trainers have: the vision tower, the joint width, the shapes folder.
void add_vision_keys(nn::ConfigSchema& s);
// The vision tower's architecture: the CLIP checkpoint's (model.vision_init) or the model.* keys'.
ClipTowerConfig vision_from_config(const nn::Config& c);

// The joint encoder's / decoder's model.hidden, layers, heads, mlp, dropout into a VqaConfig or CaptionerConfig.
template <typename JointConfig>
void read_joint_keys(const nn::Config& c, JointConfig& mc) {
  mc.hidden = c.get_int("model.hidden");
  mc.layers = c.get_int("model.layers");
  mc.heads = c.get_int("model.heads");
  mc.mlp = c.get_int("model.mlp");
  mc.dropout = c.get_float("model.dropout");
}

// RUN_DIR/summary.json: the final evaluation and the model folder.
void write_summary(const std::string& run_dir, const std::string& model_dir, const std::map<std::string, double>& ev);

// The end of a run: the model folder (saved from the CPU), then the summary.
template <typename Bundle>
void export_model_folder(Bundle& bundle, Device device, const std::string& run_dir,
                         const std::map<std::string, double>& final_eval) {
  const std::string dir = (std::filesystem::path(run_dir) / "model").string();
  bundle.model->to(Device::cpu());
  bundle.save(dir);
  bundle.model->to(device);
  write_summary(run_dir, dir, final_eval);
  std::printf("model folder: %s\n", dir.c_str());
}

// Each trainer's registration (register_vqa_caption_trainers calls both).
void register_vqa_trainer();
void register_caption_trainer();

}  // namespace minivl::models::train_support
