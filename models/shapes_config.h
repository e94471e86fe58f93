#pragma once
// The shapes world as the training configs name it: data.path (default datasets/shapes) and
// data.generate_{n,seed,size}, whose defaults are what `make demo` generates (24 000 images of
// 64 px, seed 1), so a config that leaves them out reads the demo's folder without a note.
#include <string>

#include "nn/config.h"

namespace minivl::models {

// Adds data.generate_n, data.generate_seed and data.generate_size to a trainer's schema.
void add_shapes_generate_keys(nn::ConfigSchema& schema);

// The config's shapes folder, generated when missing (data::shapes::ensure_generated).
std::string shapes_folder(const nn::Config& config, bool need_questions, bool quiet);

}  // namespace minivl::models
