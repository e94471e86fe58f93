#pragma once
// CLIP image preprocessing, exact to OpenAI's `_transform(n_px)`:
//   Resize(n_px, BICUBIC) -> CenterCrop(n_px) -> convert("RGB") -> ToTensor -> Normalize(mean, std)
// on PIL images (torchvision's PIL backend), plus the training augmentations.
//
//   ClipPreprocessConfig cfg;                          // 224, OpenAI's mean / std
//   Tensor x = clip_preprocess(read_image("cat.jpg"), cfg);   // f32 (3, 224, 224)
//
// resize_bicubic reproduces Pillow's Image.resize(size, BICUBIC) on 8-bit RGB
// bit for bit (libImaging/Resample.c): Keys cubic a = -0.5, support 2 widened
// by the scale factor when downscaling (antialiased), per-output normalised
// weights rounded to 22-bit fixed point, separable passes horizontal first,
// each rounded (+2^21) and clamped to u8. docs/data.md has the derivation.
#include <array>
#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "data/image.h"

namespace minivl::data {

struct ClipPreprocessConfig {
  int image_size = 224;  // R: the short side after resize and the crop side
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};

  // From a model's config: Hugging Face's preprocessor_config.json (image_mean,
  // image_std, crop_size / size), config.json (vision_config.image_size), or a
  // flat {"image_size", "image_mean", "image_std"}; what a file lacks keeps the default.
  static ClipPreprocessConfig from_json_file(const std::string& path);
};

// Pillow's Image.resize((out_w, out_h), Image.BICUBIC) on RGB.
Image resize_bicubic(const Image& image, int out_w, int out_h);

// torchvision's Resize(R) size rule: the short side becomes R, the long side
// int(R * long / short) (floored); unchanged when the short side already is R.
std::pair<int, int> resize_short_side_size(int width, int height, int short_side);  // (w, h)
Image resize_short_side(const Image& image, int short_side);

// torchvision's CenterCrop: top = int(round((H - h) / 2.0)), left likewise
// (Python's round, half to even). The image must be at least h x w.
Image center_crop(const Image& image, int crop_w, int crop_h);
// Any rectangle inside the image.
Image crop(const Image& image, int left, int top, int width, int height);
// resize_short_side then center_crop, computing only the pixels the crop keeps (identical result).
Image resize_and_center_crop(const Image& image, int size);
Image hflip(const Image& image);

// ToTensor + Normalize into `out` (3, H, W) f32, computed in f32 as torchvision does:
// (float(v) / 255 - mean[c]) / std[c].
void normalize_to_chw(const Image& image, const ClipPreprocessConfig& config, float* out);

// The full `_transform`: (3, R, R) f32 into `out`, or as a new tensor.
void clip_preprocess_into(const Image& image, const ClipPreprocessConfig& config, float* out);
Tensor clip_preprocess(const Image& image, const ClipPreprocessConfig& config = {});

// ---- training augmentations ----
// Every draw comes from the Philox stream (seed, offset): the same (seed, offset)
// gives the same crop on any thread. A sample uses at most kAugmentDraws positions.
struct AugmentConfig {
  bool random_resized_crop = false;   // torchvision RandomResizedCrop(R, scale, ratio, BICUBIC)
  float scale_min = 0.08f, scale_max = 1.0f;              // of the image area
  float ratio_min = 3.0f / 4.0f, ratio_max = 4.0f / 3.0f; // crop aspect w / h
  // Off by default: left and right carry meaning in some data (the shapes world's "left of").
  bool horizontal_flip = false;
  float flip_probability = 0.5f;

  bool any() const { return random_resized_crop || horizontal_flip; }
};
inline constexpr uint64_t kAugmentDraws = 64;

struct CropBox {
  int left = 0, top = 0, width = 0, height = 0;
  bool operator==(const CropBox&) const = default;
};
// torchvision's RandomResizedCrop.get_params: 10 tries of (area, log-uniform ratio), then a central fallback.
CropBox random_resized_crop_box(int width, int height, const AugmentConfig& config, uint64_t seed,
                                uint64_t offset);

// Augment (when config.any()) then preprocess into (3, R, R): with a random resized crop the crop is resized
// straight to R x R; without it, the CLIP resize + center crop. Flip last.
void augment_preprocess_into(const Image& image, const ClipPreprocessConfig& preprocess,
                             const AugmentConfig& augment, uint64_t seed, uint64_t offset, float* out);

}  // namespace minivl::data
