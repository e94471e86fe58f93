#include "models/vqa_caption_support.h"

#include <fstream>

#include "core/error.h"
#include "models/joint_encoder.h"
#include "models/shapes_config.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace train_support {

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

void add_vision_language_keys(nn::ConfigSchema& s) {
  // Without model.vision_init: a small tower, the shape of the demo's CLIP run's at 32 px.
  add_vision_tower_keys(s, {.hidden_size = 64, .intermediate_size = 256, .num_attention_heads = 2,
                            .num_hidden_layers = 3, .image_size = 32, .patch_size = 8});
  add_vision_init_keys(s);
  add_joint_encoder_keys(s);
  s.add_string("data.dataset", "shapes", "the data", {"shapes"});
  s.add_string("data.path", "datasets/shapes", "shapes folder (generated when missing)");
  add_shapes_generate_keys(s);
  s.add_int("data.seed", 1234, "seed of the data order", 0);
}

void register_vision_language_trainer(const std::string& name, const std::string& description,
                                      std::function<void(nn::ConfigSchema&)> own_keys,
                                      std::function<std::unique_ptr<nn::Trainer>(const nn::Config&, Device)> create) {
  nn::TrainerInfo info;
  info.name = name;
  info.description = description;
  info.extend_schema = [own_keys = std::move(own_keys)](nn::ConfigSchema& s) {
    add_vision_language_keys(s);
    own_keys(s);
  };
  info.create = std::move(create);
  nn::register_trainer(std::move(info));
}

std::string write_eval_results(const EvalVqaCaptionOptions& o, const std::string& task, const json& results) {
  const std::string path = o.results.empty() ? (fs::path(o.model) / ("results_" + task + ".json")).string() : o.results;
  std::ofstream(path, std::ios::trunc) << results.dump() << "\n";
  return path;
}

}  // namespace train_support

void register_vqa_caption_trainers() {
  train_support::register_vqa_trainer();
  train_support::register_caption_trainer();
}

}  // namespace minivl::models
