// libFuzzer target: data/image.* (stb_image decoding through probe_image/decode_image)
// and data/preprocess.* (CLIP resize + center crop + normalise) on what decodes.
#include <exception>
#include <vector>

#include "data/image.h"
#include "data/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivl::data;
  try {
    (void)probe_image(data, size, "fuzz");
  } catch (const std::exception&) {
  }
  try {
    DecodeOptions options;
    // 64 K pixels, not the default 64 MP: stb fills a truncated TGA or BMP with zeros, so a 20-byte
    // header can decode to the whole cap, and at 1 M pixels those inputs held the target to ~400
    // inputs/s. The code paths are the same at any size; the cap's refusal path is still hit.
    options.max_pixels = 1 << 16;
    Image image = decode_image(data, size, "fuzz", options);
    if (image.pixels.size() != size_t(image.width) * image.height * 3) std::abort();
    ClipPreprocessConfig config;
    config.image_size = 16 + (size % 17);
    std::vector<float> out(size_t(3) * config.image_size * config.image_size);
    clip_preprocess_into(image, config, out.data());
    AugmentConfig augment;
    augment.random_resized_crop = true;
    CropBox box = random_resized_crop_box(image.width, image.height, augment, size, 0);
    if (box.left < 0 || box.top < 0 || box.width < 1 || box.height < 1 || box.left + box.width > image.width ||
        box.top + box.height > image.height)
      std::abort();
    (void)hflip(crop(image, box.left, box.top, box.width, box.height));
  } catch (const std::exception&) {
  }
  return 0;
}
