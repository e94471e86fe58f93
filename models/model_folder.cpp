#include "models/model_folder.h"

#include <fstream>

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

void save_model_folder(const std::string& dir, json config, const nn::Module& model, const VisionTower& tower,
                       const WordVocab& vocab) {
  fs::create_directories(dir);
  config["freeze_vision"] = tower.frozen();
  std::ofstream(fs::path(dir) / "config.json", std::ios::trunc) << config.dump(2) << "\n";
  save_safetensors((fs::path(dir) / "model.safetensors").string(), model.state_dict());
  std::ofstream(fs::path(dir) / "vocab.json", std::ios::trunc) << vocab.to_json().dump() << "\n";
  const int64_t R = tower.config.image_size;
  std::ofstream(fs::path(dir) / "preprocessor_config.json", std::ios::trunc)
      << json{{"size", {{"shortest_edge", R}}}, {"crop_size", {{"height", R}, {"width", R}}}}.dump(2) << "\n";
}

void write_run_summary(const std::string& run_dir, const std::string& model_dir,
                       const std::map<std::string, double>& final_eval) {
  json s = json::object();
  for (const auto& [k, v] : final_eval) s[k] = v;
  s["model"] = model_dir;
  std::ofstream(fs::path(run_dir) / "summary.json", std::ios::trunc) << s.dump(2) << "\n";
}

}  // namespace minivl::models
