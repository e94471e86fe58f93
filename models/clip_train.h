#pragma once
// Training CLIP from a TOML config: `minivl train configs/clip_shapes.toml`.
// The "clip" trainer (model.name = "clip") reads image-text pairs from the
// shapes world (generated on first use), Fashion-MNIST (templated captions),
// or COCO-captions / JSONL files, keeps them preprocessed in memory, trains
// with the fused contrastive loss, evaluates zero-shot and retrieval on the
// held-out images, and writes the final model folder (HF layout) to RUN_DIR/model.
#include "models/clip.h"
#include "nn/config.h"

namespace minivl::models {

// model.* keys of the "clip" trainer (image_size, patch_size, vision_width, ...).
void add_clip_model_keys(nn::ConfigSchema& schema);
// The training schema with the "clip" trainer's keys (model.*, data.*).
nn::ConfigSchema clip_training_schema();
// The architecture a training config describes.
ClipConfig clip_config_from_toml(const nn::Config& config);
// Registers "clip" with nn's trainer registry (`minivl train`).
void register_clip_trainers();

}  // namespace minivl::models
