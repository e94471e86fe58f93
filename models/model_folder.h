#pragma once
// The model folder of a model built on the vision tower with a word vocabulary (the VQA model, the
// captioner), and the summary a trainer writes beside it:
//   config.json                the model's config; "architecture" names the model, "freeze_vision" is
//                              the tower's state when saved
//   model.safetensors          state_dict(), f32
//   vocab.json                 the word vocabulary (models/word_vocab.h)
//   preprocessor_config.json   the input resolution (size.shortest_edge, crop_size)
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "core/tensor_io.h"
#include "data/annotations.h"
#include "models/vision_tower.h"
#include "models/word_vocab.h"
#include "nn/module.h"

namespace minivl::models {

// Writes the four files; `config` is the model's config.json object without freeze_vision.
void save_model_folder(const std::string& dir, nlohmann::json config, const nn::Module& model,
                       const VisionTower& tower, const WordVocab& vocab);

// The model (with its tower under model->vision_model) of the folder `dir` whose config.json names
// `architecture`, in eval mode, and its vocabulary. Errors name the file and `kind` ("VQA model folder").
template <typename Model>
std::shared_ptr<Model> load_model_folder(const std::string& dir, const std::string& architecture,
                                         const std::string& kind, WordVocab& vocab) {
  using Config = std::remove_cvref_t<decltype(std::declval<Model&>().config)>;
  const std::filesystem::path d(dir);
  bool frozen = false;
  const Config config = data::read_json_file_as((d / "config.json").string(), kind, [&](const nlohmann::json& j) {
    MINIVL_CHECK(j.value("architecture", "") == architecture, dir, ": not a ", kind);
    frozen = j.value("freeze_vision", false);
    return Config::from_json(j);
  });
  auto model = std::make_shared<Model>(config);
  model->load_state_dict(load_safetensors((d / "model.safetensors").string()), true);
  model->eval();
  model->vision_model->set_frozen(frozen);
  vocab = data::read_json_file_as((d / "vocab.json").string(), kind, WordVocab::from_json);
  return model;
}

// RUN_DIR/summary.json: the final evaluation and the model folder.
void write_run_summary(const std::string& run_dir, const std::string& model_dir,
                       const std::map<std::string, double>& final_eval);

}  // namespace minivl::models
