#pragma once
// The training entry point behind `minivl train CONFIG`: a registry of
// trainers (one per model: clip, vqa, captioner, toy) and the generic loop
// that validates the config, builds the optimiser and schedule, runs mixed
// precision, accumulation and clipping, logs metrics.jsonl, checkpoints, and
// resumes exactly; with a process group, across data-parallel ranks (nn/data_parallel.h).
//
// Registration is explicit (no static self-registration: static libraries
// drop it). Each trainer's file has a register_*_trainers() function
// (register_toy_trainers() below, models/clip_train.h, models/vqa_caption_train.h);
// models::register_all_trainers() (models/trainers.h) calls every one of them,
// and `minivl train` and the config-reference test call it. A new trainer adds
// its call there.
//
// A trainer's keys are ConfigSchema::training() plus what its extend_schema adds
// (it may redeclare a base key with its own default and range); the trainer reads
// every value from the Config, so the schema's defaults are the ones it uses.
// `minivl train --print-config CONFIG` prints the resolved config with each
// key's help, range and default (annotated_toml); docs/config.md is
// config_reference_markdown() of every registered trainer.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/device.h"
#include "nn/config.h"
#include "nn/module.h"

namespace minivl::nn {

class ProcessGroup;  // nn/distributed.h

// One model's training logic. The loop owns the optimiser, schedule, precision and checkpoints.
class Trainer {
 public:
  virtual ~Trainer() = default;
  virtual Module& model() = 0;
  // Draws the next micro-batch (advancing the data cursor) and returns its scalar
  // loss with a graph, computed in f32. Runs under autocast when the precision asks.
  virtual Tensor train_loss() = 0;
  // Held-out metrics over at most `batches` batches of data.batch_size examples (the config's
  // eval.batches; 0 = the whole held-out set, see eval_example_limit); called in eval mode under
  // no-grad. It may use the default generator: the loop restores the generator afterwards.
  virtual std::map<std::string, double> evaluate(int64_t batches) { return {}; }
  // Exactly where the data stream stands (saved in state.json).
  virtual nlohmann::json data_cursor() const = 0;
  virtual void set_data_cursor(const nlohmann::json& cursor) = 0;
  // Data parallelism (docs/distributed.md): called once, before the first train_loss, when the run
  // has a process group (mpirun -np R). A trainer that shards draws only its rank's share of each
  // global micro-batch (data.batch_size examples over all ranks, in the single-process order) and
  // returns a loss whose mean over the ranks is the global batch's loss, so that the averaged
  // gradients are the global gradient; it returns true. The default returns false: every rank then
  // computes the whole batch (the same result, R times the work).
  virtual bool set_process_group(const std::shared_ptr<ProcessGroup>& group) { return false; }
  // Called before each step's first micro-batch with the step about to run (0-based), also the
  // first step after a resume, so state that depends on the step follows it (unfreezing a tower).
  virtual void before_step(int64_t step) {}
  // The multiplier of the scheduled lr for the parameter of this name (model().named_parameters()),
  // e.g. a pretrained tower trained more gently than the new layers on top of it.
  virtual double lr_scale(const std::string& parameter) const { return 1.0; }
  // Called after each optimiser step (CLIP clamps its logit scale here).
  virtual void after_step() {}
  // Examples per micro-batch, for the examples/s of the progress line (0: not shown).
  virtual int64_t examples_per_batch() const { return 0; }
  // After the last step and the final evaluation: export the trained model (a model folder, say).
  virtual void finish(const std::string& run_dir, const std::map<std::string, double>& final_eval) {}
};

// How many of `available` held-out examples an evaluation of `batches` batches of `batch_size` takes
// (batches = 0: all of them).
int64_t eval_example_limit(int64_t available, int64_t batches, int64_t batch_size);

struct TrainerInfo {
  std::string name;         // the config's model.name
  std::string description;
  // Adds the model's own keys (model.*, data.*) to the training schema; it may redeclare a base
  // key (ConfigSchema::add replaces it) with the trainer's own default or range.
  std::function<void(ConfigSchema&)> extend_schema;
  // Builds the model (initialised from the default generator, already seeded) on `device`.
  std::function<std::unique_ptr<Trainer>(const Config&, Device)> create;
};

void register_trainer(TrainerInfo info);  // replaces one with the same name
const TrainerInfo* find_trainer(const std::string& name);
std::vector<std::string> trainer_names();

// The built-in toy: "mlp", a two-layer classifier on a synthetic teacher task
// (nn/toy_trainer.cpp); small enough for tests of train -> checkpoint -> resume.
void register_toy_trainers();

struct TrainOptions {
  std::string config_path;             // may be empty when resuming: the checkpoint's config is used
  std::vector<std::string> overrides;  // "section.key=value"
  std::string run_dir;                 // where metrics.jsonl, config.toml and checkpoint/ go
  bool resume = false;                 // continue from run_dir's checkpoint
  int64_t stop_at = 0;                 // stop after this step with a checkpoint (0 = run all steps)
  bool quiet = false;                  // no progress lines on stdout
  // Data parallelism over this group's ranks (null: one process, as always). Rank 0 alone writes
  // metrics.jsonl, config.toml, checkpoints and the final model; every rank resumes from them.
  std::shared_ptr<ProcessGroup> process_group = nullptr;
};

// The trainer a config names (its model.name, or a --set model.name=...), its schema and the
// config parsed against it: what run_training trains and --print-config prints.
struct ResolvedTrainingConfig {
  const TrainerInfo* trainer = nullptr;
  ConfigSchema schema;
  Config config;
};
// text: TOML; source: the name errors print.
ResolvedTrainingConfig resolve_training_config(const std::string& text, const std::string& source,
                                               const std::vector<std::string>& overrides);
// The config of a run: options.config_path, or the checkpoint's in options.run_dir when resuming without one.
ResolvedTrainingConfig resolve_training_config(const TrainOptions& options);
// ConfigSchema::training() extended by the trainer.
ConfigSchema trainer_schema(const TrainerInfo& trainer);

// `minivl train --print-config`: the resolved config as annotated TOML (annotated_toml) under a
// header naming the config and the trainer; trains the same run when given back to `minivl train`.
std::string print_training_config(const TrainOptions& options);
// docs/config.md: the keys every trainer has, then each of these registered trainers' own keys (and
// the base keys it redeclares), from the schemas. `minivl train --print-config-docs` passes trainer_names().
std::string config_reference_markdown(const std::vector<std::string>& trainers);

struct TrainResult {
  int64_t start_step = 0, end_step = 0;  // steps [start_step, end_step) ran in this call
  std::vector<double> losses;            // one per step that ran
  std::map<std::string, double> final_eval;
  bool interrupted = false;              // Ctrl-C: stopped early with a checkpoint at end_step
};

TrainResult run_training(const TrainOptions& options);

}  // namespace minivl::nn
