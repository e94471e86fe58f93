#pragma once
// Training checkpoints: RUN_DIR/checkpoint/ holds
//   model.safetensors      the model's state_dict()
//   optimizer.safetensors  the optimiser's moments, metadata {"optimizer", "step"}
//   state.json             step, default-generator state (seed, offset), the
//                          trainer's data cursor (opaque JSON), the effective
//                          config (TOML text) and `extra` (e.g. the loss scaler)
//
// Atomic: the three files are written and fsynced in RUN_DIR/checkpoint.tmp.<pid>/,
// the old checkpoint/ is renamed to checkpoint.old.<pid>, the new one renamed
// into place, and the old one removed. A crash at any point leaves either the
// old or the new checkpoint complete; find_checkpoint() also picks up a
// checkpoint.old.* left by a crash between the two renames.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/generator.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace minivl::nn {

struct TrainingState {
  int64_t step = 0;           // optimiser steps completed
  GeneratorState rng{Generator::kDefaultSeed, 0};
  nlohmann::json data_cursor;  // whatever the trainer needs to continue its data stream
  std::string config;          // effective config, TOML
  nlohmann::json extra = nlohmann::json::object();
};

void save_checkpoint(const std::string& run_dir, const Module& model, const Optimizer& optimizer,
                     const TrainingState& state);
// The folder holding the newest complete checkpoint in run_dir, or "" when there is none.
std::string find_checkpoint(const std::string& run_dir);
// state.json alone (to read the config before the model exists). Errors name the file.
TrainingState read_checkpoint_state(const std::string& run_dir);
// Loads model (strict), optimiser and state from run_dir's checkpoint.
TrainingState load_checkpoint(const std::string& run_dir, Module& model, Optimizer& optimizer);

}  // namespace minivl::nn
