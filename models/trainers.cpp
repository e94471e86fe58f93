#include "models/trainers.h"

#include "models/clip_train.h"
#include "models/vqa_caption_train.h"
#include "nn/trainer.h"

namespace minivl::models {

void register_all_trainers() {
  nn::register_toy_trainers();
  register_clip_trainers();
  register_vqa_caption_trainers();
}

}  // namespace minivl::models
