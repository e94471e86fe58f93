// clip_preprocess's Tensor form. Apart from data/preprocess.cpp so that the image fuzz target
// (tests/fuzz) links the preprocessing without the tensor engine.
#include "core/ops.h"
#include "data/preprocess.h"

namespace minivl::data {

Tensor clip_preprocess(const Image& image, const ClipPreprocessConfig& config) {
  Tensor t = empty({3, config.image_size, config.image_size}, DType::f32);  // (3, R, R)
  clip_preprocess_into(image, config, t.data<float>());
  return t;
}

}  // namespace minivl::data
