#include "models/vqa_caption_support.h"

#include <fstream>

#include "core/error.h"
#include "core/ops.h"
#include "data/image.h"
#include "models/shapes_config.h"
#include "models/vqa.h"
#include "models/vqa_caption_train.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace train_support {

void ImageStore::add(int64_t id, const std::string& path) {
  if (row_of.count(id)) return;
  data::Image x = data::center_crop(data::resize_short_side(data::read_image(path), R), R, R);
  row_of[id] = int64_t(row_of.size());
  pixels.insert(pixels.end(), x.pixels.begin(), x.pixels.end());
}

Tensor ImageStore::batch(const std::vector<int64_t>& ids, const data::ClipPreprocessConfig& pre) const {
  Tensor out = empty({int64_t(ids.size()), 3, R, R});
  const size_t per = size_t(R) * R * 3;
  for (size_t b = 0; b < ids.size(); ++b) {
    const int64_t row = row_of.at(ids[b]);
    data::Image img;
    img.width = img.height = R;
    img.pixels.assign(pixels.begin() + ptrdiff_t(size_t(row) * per), pixels.begin() + ptrdiff_t(size_t(row + 1) * per));
    data::normalize_to_chw(img, pre, out.data<float>() + b * per);
  }
  return out;
}

std::vector<int64_t> split_ids(const std::string& dir, const std::string& split) {
  std::ifstream in(fs::path(dir) / "splits.json");
  MINIVL_CHECK(in.good(), dir, ": no splits.json");
  const json s = json::parse(in);
  std::vector<int64_t> ids;
  std::vector<std::string> parts;
  if (split == "test") parts = {"val", "test"};
  else if (split == "all") parts = {"train", "val", "test"};
  else parts = {split};
  for (const auto& p : parts) {
    MINIVL_CHECK(s.contains(p), dir, "/splits.json has no '", p, "' split");
    for (const auto& id : s.at(p)) ids.push_back(id.get<int64_t>());
  }
  return ids;
}

VisionFreeze::VisionFreeze(const nn::Config& c)
    : frozen(c.get_bool("model.freeze_vision")),
      unfreeze_at(c.get_int("model.unfreeze_vision_at")),
      lr_scale(c.get_float("model.vision_lr_scale")) {
  MINIVL_CHECK(unfreeze_at == 0 || frozen, "model.unfreeze_vision_at = ", unfreeze_at,
               " needs model.freeze_vision = true (the tower is trained from the start otherwise)");
}

void add_vision_keys(nn::ConfigSchema& s) {
  s.add_int("model.image_size", 32, "input resolution R", 8);
  s.add_int("model.patch_size", 8, "ViT patch size", 1);
  s.add_int("model.vision_width", 64, "vision hidden size", 8);
  s.add_int("model.vision_layers", 3, "vision encoder layers", 0);
  s.add_int("model.vision_heads", 2, "vision attention heads", 1);
  s.add_int("model.vision_mlp", 256, "vision MLP hidden size", 1);
  s.add_string("model.hidden_act", "quick_gelu", "vision MLP activation", {"quick_gelu", "gelu"});
  s.add_string("model.vision_init", "", "a CLIP run dir or model folder to start the vision tower from");
  s.add_bool("model.freeze_vision", false, "keep the vision tower fixed (with vision_init)");
  s.add_int("model.unfreeze_vision_at", 0, "with freeze_vision: train the tower too from this step on (0 = never)", 0);
  s.add_float("model.vision_lr_scale", 1.0, "the vision tower's lr as a multiple of the schedule's", 0.0, 100.0);
  s.add_int("model.hidden", 128, "hidden size of the joint encoder / decoder", 8);
  s.add_int("model.layers", 2, "joint encoder / decoder layers", 1);
  s.add_int("model.heads", 4, "attention heads", 1);
  s.add_int("model.mlp", 512, "MLP hidden size", 1);
  s.add_float("model.dropout", 0.0, "dropout on residual branches", 0.0, 0.9);
  s.add_string("data.dataset", "shapes", "the data", {"shapes"});
  s.add_string("data.path", "datasets/shapes", "shapes folder (generated when missing)");
  add_shapes_generate_keys(s);
  s.add_int("data.seed", 1234, "seed of the data order", 0);
}

ClipTowerConfig vision_from_config(const nn::Config& c) {
  const std::string init = c.get_string("model.vision_init");
  if (!init.empty()) return clip_vision_config(init);
  ClipTowerConfig v;
  v.image_size = c.get_int("model.image_size");
  v.patch_size = c.get_int("model.patch_size");
  v.hidden_size = c.get_int("model.vision_width");
  v.num_hidden_layers = c.get_int("model.vision_layers");
  v.num_attention_heads = c.get_int("model.vision_heads");
  v.intermediate_size = c.get_int("model.vision_mlp");
  v.hidden_act = c.get_string("model.hidden_act");
  MINIVL_CHECK(v.image_size % v.patch_size == 0, "model.image_size ", v.image_size, " is not a multiple of model.patch_size ",
               v.patch_size);
  return vision_config_from_json(vision_config_to_json(v));
}

void write_summary(const std::string& run_dir, const std::string& model_dir, const std::map<std::string, double>& ev) {
  json s = json::object();
  for (const auto& [k, v] : ev) s[k] = v;
  s["model"] = model_dir;
  std::ofstream(fs::path(run_dir) / "summary.json", std::ios::trunc) << s.dump(2) << "\n";
}

}  // namespace train_support

void register_vqa_caption_trainers() {
  train_support::register_vqa_trainer();
  train_support::register_caption_trainer();
}

}  // namespace minivl::models
