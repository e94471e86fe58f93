#pragma once
// Training the VQA model and the captioner from TOML configs:
//   minivl train configs/vqa_shapes.toml       (model.name = "vqa")
//   minivl train configs/caption_shapes.toml   (model.name = "captioner")
// Both read the shapes world (generated on first use), keep images preprocessed at the model's
// resolution in memory (u8), evaluate on the held-out (val + test) images, and write a model folder to
// RUN_DIR/model. model.vision_init = "RUN_DIR" (a CLIP run dir or model folder) starts the vision tower
// from that CLIP checkpoint (its vision architecture replaces the model.vision_* keys).
//
// Also: the evaluation behind `minivl eval --task vqa|caption` (results file + scores).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace minivl::models {

void register_vqa_caption_trainers();

struct EvalVqaCaptionOptions {
  std::string model;           // model folder
  std::string data;            // shapes folder (captions.json, vqa/, splits.json)
  std::string split = "test";  // test (val + test images), val, all
  std::string results;         // results file path; empty: MODEL/results_<task>.json
  int64_t limit = 0;           // at most this many questions / images (0 = all)
  int64_t beam = 3;            // captions
  double length_penalty = 0.5;  // score / length^0.5: best CIDEr-D on the shapes held-out set
  int64_t max_length = 30;
};
// Write the results file ([{"question_id", "answer"}] / [{"image_id", "caption"}]) and return the scores
// as `minivl score` prints them.
nlohmann::json run_eval_vqa(const EvalVqaCaptionOptions& options);
nlohmann::json run_eval_caption(const EvalVqaCaptionOptions& options);

}  // namespace minivl::models
