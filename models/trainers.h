#pragma once
// Every trainer `minivl train` knows, registered in one place: the toy "mlp" (nn/toy_trainer.cpp),
// "clip" (models/clip_train.cpp), "vqa" and "captioner" (models/vqa_train.cpp, models/caption_train.cpp).
// To add a trainer, give its file a register_<model>_trainers() function that calls
// nn::register_trainer, and call it from register_all_trainers(): `minivl train`, `--list`,
// `--print-config` and docs/config.md (regenerated with `minivl train --print-config-docs`) then know it.

namespace minivl::models {

// Registers every trainer with nn's registry; calling it again changes nothing.
void register_all_trainers();

}  // namespace minivl::models
