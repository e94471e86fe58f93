#pragma once
// What the "vqa" and "captioner" trainers (models/vqa_train.cpp, models/caption_train.cpp) share: their
// common config keys, the shapes folder's splits, and VisionLanguageTrainer, the part of a trainer
// that does not depend on the task (the vision tower's init and freezing, the data cursor, the
// evaluation's size, the end-of-run model folder). Internal to those files; their data order is
// models/epoch_cursor.h, their images models/image_store.h, both of which the clip trainer uses too.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/epoch_cursor.h"
#include "models/model_folder.h"
#include "models/vision_tower.h"
#include "models/vqa_caption_train.h"
#include "nn/config.h"
#include "nn/trainer.h"

namespace minivl::models::train_support {

// Image ids of a split of a shapes folder: "train", "val", "test" (val + test, the held-out images), "all".
std::vector<int64_t> split_ids(const std::string& dir, const std::string& split);

// The model.* / data.* keys both trainers have: the vision tower (architecture, init, freezing), the
// joint encoder / decoder, the shapes folder, data.seed.
void add_vision_language_keys(nn::ConfigSchema& s);

// Registers a trainer whose keys are add_vision_language_keys' and own_keys'.
void register_vision_language_trainer(const std::string& name, const std::string& description,
                                      std::function<void(nn::ConfigSchema&)> own_keys,
                                      std::function<std::unique_ptr<nn::Trainer>(const nn::Config&, Device)> create);
template <typename T>
void register_vision_language_trainer(const std::string& name, const std::string& description,
                                      std::function<void(nn::ConfigSchema&)> own_keys) {
  register_vision_language_trainer(name, description, std::move(own_keys),
                                   [](const nn::Config& c, Device device) -> std::unique_ptr<nn::Trainer> {
                                     return std::make_unique<T>(c, device);
                                   });
}

// `minivl eval`'s results file: options.results, or MODEL/results_<task>.json. Returns its path.
std::string write_eval_results(const EvalVqaCaptionOptions& options, const std::string& task,
                               const nlohmann::json& results);

// A trainer of a Bundle (VqaBundle, CaptionerBundle: a model with its tower as model->vision_model,
// and save(dir)). The task's trainer builds bundle_.model, then calls start_model; it draws batches
// with cursor_ and scores the first n held-out examples in evaluate_first.
template <typename Bundle>
class VisionLanguageTrainer : public nn::Trainer {
 public:
  // eval_limit_key: the config key of the trainer's count of held-out examples (0 = all).
  VisionLanguageTrainer(const nn::Config& c, Device device, const std::string& eval_limit_key)
      : device_(device), batch_(c.get_int("data.batch_size")), eval_limit_(c.get_int(eval_limit_key)), freeze_(c),
        started_(std::chrono::steady_clock::now()) {
    cursor_.seed = uint64_t(c.get_int("data.seed"));
  }

  nn::Module& model() override { return *bundle_.model; }
  void before_step(int64_t step) override { bundle_.model->vision_model->set_frozen(freeze_.frozen_at(step)); }
  double lr_scale(const std::string& parameter) const override { return freeze_.lr_scale_of(parameter); }
  int64_t examples_per_batch() const override { return batch_; }
  nlohmann::json data_cursor() const override { return cursor_.to_json(); }
  void set_data_cursor(const nlohmann::json& j) override { cursor_.from_json(j); }

  // The first eval_limit held-out examples (0: all), at most `batches` batches of them (0: no limit).
  std::map<std::string, double> evaluate(int64_t batches) override {
    const int64_t held_out = held_out_size();
    return evaluate_first(size_t(
        nn::eval_example_limit(eval_limit_ > 0 ? std::min(eval_limit_, held_out) : held_out, batches, batch_)));
  }

  // The model folder RUN_DIR/model (saved from the CPU), then RUN_DIR/summary.json.
  void finish(const std::string& run_dir, const std::map<std::string, double>& final_eval) override {
    const std::string dir = (std::filesystem::path(run_dir) / "model").string();
    bundle_.model->to(Device::cpu());
    bundle_.save(dir);
    bundle_.model->to(device_);
    write_run_summary(run_dir, dir, final_eval);
    std::printf("model folder: %s\n", dir.c_str());
  }

 protected:
  virtual int64_t held_out_size() const = 0;
  virtual std::map<std::string, double> evaluate_first(size_t n) = 0;

  // After bundle_.model is built: its tower from model.vision_init, frozen as step 0 has it, on the device.
  void start_model(const nn::Config& c) {
    init_vision_tower_for_run(*bundle_.model->vision_model, c);
    bundle_.model->vision_model->set_frozen(freeze_.frozen_at(0));
    bundle_.model->to(device_);
  }

  // "<what>, 0.55M parameters (data ready in 6.3s)" on stdout; `what` is a printf format of `args`.
  template <typename... Args>
  void print_ready(const char* what, Args... args) const {
    std::printf(what, args...);
    std::printf(", %.2fM parameters (data ready in %.1fs)\n", double(bundle_.model->num_parameters()) / 1e6,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    std::fflush(stdout);
  }

  Device device_;
  int64_t batch_, eval_limit_;
  VisionFreeze freeze_;
  EpochCursor cursor_;
  Bundle bundle_;
  std::chrono::steady_clock::time_point started_;
};

// Each trainer's registration (register_vqa_caption_trainers calls both).
void register_vqa_trainer();
void register_caption_trainer();

}  // namespace minivl::models::train_support
