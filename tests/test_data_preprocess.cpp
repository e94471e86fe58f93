// CLIP preprocessing against hand-computed values: Pillow's bicubic (upscale and antialiased
// downscale, both passes, rounding between them), torchvision's resize and crop rules, the
// f32 normalisation, the model-config reader, and the seeded augmentations.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "data/preprocess.h"

using namespace minivl;
using namespace minivl::data;

namespace {

// A grey image from rows of values (R = G = B).
Image grey(const std::vector<std::vector<int>>& rows) {
  Image img(int(rows[0].size()), int(rows.size()));
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c) img.at(x, y, c) = uint8_t(rows[y][x]);
  return img;
}

std::vector<std::vector<int>> grey_rows(const Image& img) {
  std::vector<std::vector<int>> rows(img.height, std::vector<int>(img.width));
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      rows[y][x] = img.at(x, y, 0);
      CHECK(img.at(x, y, 1) == rows[y][x]);
      CHECK(img.at(x, y, 2) == rows[y][x]);
    }
  return rows;
}

using Rows = std::vector<std::vector<int>>;

}  // namespace

TEST_SUITE("data") {

// Keys' cubic, a = -0.5: w(0.25) = 0.8671875, w(0.75) = 0.2265625, w(1.25) = -0.0703125, w(1.75) = -0.0546875.
//
// Upscale 2 -> 4 (scale 0.5, support 2, no widening). Output x samples input at c = (x + 0.5) / 2 - 0.5,
// taps clipped to the image and the weights renormalised:
//   x=0 (c=-0.25): taps 0,1 at distances 0.25, 1.25: (0.8671875 a - 0.0703125 b) / 0.796875
//   x=1 (c= 0.25): distances 0.25, 0.75:              (0.8671875 a + 0.2265625 b) / 1.09375
//   x=2, x=3 mirror them.
// With (a, b) = (200, 10): 216.76, 160.64, 49.36, -6.76 -> 217, 161, 49, 0 (rounded, clamped).
TEST_CASE("preprocess: bicubic upscale 2 -> 4 matches the hand-computed Pillow values") {
  CHECK(grey_rows(resize_bicubic(grey({{200, 10}}), 4, 1)) == Rows{{217, 161, 49, 0}});
  CHECK(grey_rows(resize_bicubic(grey({{200}, {10}}), 1, 4)) == Rows{{217}, {161}, {49}, {0}});
}

// Downscale 4 -> 2 (scale 2): the filter widens to support 4 and its argument is divided by 2, so
// output 0 (centre 1.0) weighs inputs 0..3 by w(0.25), w(0.25), w(0.75), w(1.25) over their sum
// 1.890625: (0.8671875*0 + 0.8671875*100 + 0.2265625*200 - 0.0703125*255) / 1.890625 = 60.35 -> 60;
// output 1 mirrors it: (-0.0703125*0 + 0.2265625*100 + 0.8671875*(200 + 255)) / 1.890625 = 220.68 -> 221.
TEST_CASE("preprocess: antialiased bicubic downscale 4 -> 2 matches the hand-computed Pillow values") {
  CHECK(grey_rows(resize_bicubic(grey({{0, 100, 200, 255}}), 2, 1)) == Rows{{60, 221}});
  CHECK(grey_rows(resize_bicubic(grey({{0}, {100}, {200}, {255}}), 1, 2)) == Rows{{60}, {221}});
}

// Two passes, horizontal first, each rounded to u8. Rows after the horizontal pass:
//   (200, 10) -> (217, 161, 49, 0);   (10, 200) -> (0, 49, 161, 217).
// Column 0 vertically: (217, 0) -> 236.15, 172.05, 44.95, -19.15 -> 236, 172, 45, 0.
// Column 1: (161, 49) -> 170.88, 137.98, 72.02, 39.12 -> 171, 138, 72, 39. (Pillow 9.4 gives the same.)
TEST_CASE("preprocess: 2-D bicubic upscale rounds between the horizontal and vertical passes") {
  CHECK(grey_rows(resize_bicubic(grey({{200, 10}, {10, 200}}), 4, 4)) ==
        Rows{{236, 171, 39, 0}, {172, 138, 72, 45}, {45, 72, 138, 172}, {0, 39, 171, 236}});
  // 6 x 4 -> 3 x 2 downscale in both directions; values from Pillow 9.4.0.
  Rows a(4, std::vector<int>(6));
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) a[y][x] = (x * 40 + y * 25) % 256;
  CHECK(grey_rows(resize_bicubic(grey(a), 3, 2)) == Rows{{37, 114, 197}, {82, 164, 184}});
}

TEST_CASE("preprocess: the same size is a copy, and channels are resampled independently") {
  Image img(3, 2);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 19);
  CHECK(resize_bicubic(img, 3, 2) == img);
  Image rgb(2, 1);
  rgb.pixels = {200, 0, 10, 10, 255, 200};  // R: (200, 10), G: (0, 255), B: (10, 200)
  Image out = resize_bicubic(rgb, 4, 1);
  std::vector<int> r, b;
  for (int x = 0; x < 4; ++x) r.push_back(out.at(x, 0, 0)), b.push_back(out.at(x, 0, 2));
  CHECK(r == std::vector<int>{217, 161, 49, 0});
  CHECK(b == std::vector<int>{0, 49, 161, 217});
}

TEST_CASE("preprocess: resizing only the crop window equals resizing then cropping") {
  uint32_t state = 1;
  const int sizes[][3] = {{50, 37, 16}, {37, 50, 16}, {16, 40, 16}, {40, 16, 16}, {9, 9, 20}, {30, 7, 12}, {61, 60, 60}};
  for (const auto& s : sizes) {
    Image img(s[0], s[1]);
    for (auto& p : img.pixels) p = uint8_t((state = state * 1664525u + 1013904223u) >> 24);
    CAPTURE(s[0]);
    CAPTURE(s[1]);
    CHECK(resize_and_center_crop(img, s[2]) == center_crop(resize_short_side(img, s[2]), s[2], s[2]));
  }
}

TEST_CASE("preprocess: torchvision's Resize(R) size rule floors the long side") {
  CHECK(resize_short_side_size(500, 375, 224) == std::pair{298, 224});  // int(224 * 500 / 375) = int(298.67)
  CHECK(resize_short_side_size(375, 500, 224) == std::pair{224, 298});
  CHECK(resize_short_side_size(640, 480, 224) == std::pair{298, 224});
  CHECK(resize_short_side_size(100, 100, 224) == std::pair{224, 224});
  CHECK(resize_short_side_size(224, 1000, 224) == std::pair{224, 1000});  // short side already R: unchanged
  CHECK(resize_short_side_size(3, 1000, 7) == std::pair{7, 2333});       // int(7 * 1000 / 3) = int(2333.33)
}

TEST_CASE("preprocess: CenterCrop offsets round half to even, as Python's round") {
  // Rows hold their own index, so the crop's top row tells the offset.
  auto rows_of = [](int h) {
    Rows r(h, std::vector<int>(2));
    for (int y = 0; y < h; ++y) r[y] = {y * 10, y * 10};
    return grey(r);
  };
  CHECK(center_crop(rows_of(5), 2, 2).at(0, 0, 0) == 20);  // (5 - 2) / 2 = 1.5 -> 2
  CHECK(center_crop(rows_of(7), 2, 2).at(0, 0, 0) == 20);  // 2.5 -> 2 (half to even)
  CHECK(center_crop(rows_of(9), 2, 2).at(0, 0, 0) == 40);  // 3.5 -> 4
  CHECK(center_crop(rows_of(6), 2, 2).at(0, 0, 0) == 20);  // 2.0
  CHECK_THROWS_AS(center_crop(rows_of(1), 2, 2), minivl::Error);
}

TEST_CASE("preprocess: clip_preprocess is resize, crop, /255 and normalise, in f32, CHW") {
  // 2 x 7 image, R = 2: no resize (short side is 2), crop top = round(2.5) = 2.
  Rows r(7, std::vector<int>(2));
  for (int y = 0; y < 7; ++y) r[y] = {y * 40, 255 - y * 40};
  Image img = grey(r);
  img.at(1, 2, 2) = 128;  // blue of pixel (x=1, y=2)
  ClipPreprocessConfig cfg;
  cfg.image_size = 2;
  Tensor x = clip_preprocess(img, cfg);
  REQUIRE(x.shape() == Shape{3, 2, 2});
  const float* p = x.data<float>();
  auto expect = [&](int v, int c) { return (float(v) / 255.0f - cfg.mean[c]) / cfg.std[c]; };
  CHECK(p[0] == expect(80, 0));            // R (0, 0): row 2
  CHECK(p[1] == expect(175, 0));           // R (0, 1)
  CHECK(p[2] == expect(120, 0));           // R (1, 0): row 3
  CHECK(p[4 + 0] == expect(80, 1));        // G
  CHECK(p[8 + 1] == expect(128, 2));       // B of (x=1, y=0) of the crop
  // Hand values: (0/255 - 0.48145466) / 0.26862954 and (1 - 0.4578275) / 0.26130258.
  CHECK(expect(0, 0) == doctest::Approx(-1.7922625).epsilon(1e-6));
  CHECK(expect(255, 1) == doctest::Approx(2.0748837).epsilon(1e-6));
  CHECK(expect(128, 2) == doctest::Approx(0.3399488).epsilon(1e-6));
}

TEST_CASE("preprocess: a downscale and an upscale through the whole pipeline") {
  // 6 x 4 -> R = 2: resize to (int(2 * 6 / 4) = 3, 2), crop left = round(0.5) = 0: columns 0, 1
  // of the 3 x 2 resize above.
  Rows a(4, std::vector<int>(6));
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) a[y][x] = (x * 40 + y * 25) % 256;
  ClipPreprocessConfig cfg;
  cfg.image_size = 2;
  Tensor x = clip_preprocess(grey(a), cfg);
  const float* p = x.data<float>();
  auto expect = [&](int v, int c) { return (float(v) / 255.0f - cfg.mean[c]) / cfg.std[c]; };
  CHECK(p[0] == expect(37, 0));
  CHECK(p[1] == expect(114, 0));
  CHECK(p[2] == expect(82, 0));
  CHECK(p[3] == expect(164, 0));
  // 2 x 2 -> R = 4: the 4 x 4 upscale above, no crop.
  cfg.image_size = 4;
  x = clip_preprocess(grey({{200, 10}, {10, 200}}), cfg);
  p = x.data<float>();
  CHECK(p[16 + 0] == expect(236, 1));
  CHECK(p[16 + 5] == expect(138, 1));
  CHECK(p[32 + 15] == expect(236, 2));
}

TEST_CASE("preprocess: the config reader takes R, mean and std from Hugging Face files") {
  auto dir = std::filesystem::temp_directory_path() / "minivl_test_data_preprocess";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "preprocessor_config.json")
        << R"({"crop_size": {"height": 336, "width": 336}, "size": {"shortest_edge": 336},
              "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.5, 1.0]})";
    std::ofstream(dir / "config.json") << R"({"vision_config": {"image_size": 96, "patch_size": 16}})";
    std::ofstream(dir / "bad.json") << R"({"image_mean": [0.5, 0.5]})";
  }
  ClipPreprocessConfig a = ClipPreprocessConfig::from_json_file((dir / "preprocessor_config.json").string());
  CHECK(a.image_size == 336);
  CHECK(a.mean[0] == 0.5f);
  CHECK(a.std[2] == 1.0f);
  ClipPreprocessConfig b = ClipPreprocessConfig::from_json_file((dir / "config.json").string());
  CHECK(b.image_size == 96);
  CHECK(b.mean[0] == 0.48145466f);
  CHECK_THROWS_WITH_AS(ClipPreprocessConfig::from_json_file((dir / "bad.json").string()),
                       doctest::Contains("bad.json"), minivl::Error);
}

TEST_CASE("preprocess: augmentations are drawn from (seed, offset) and stay inside the image") {
  AugmentConfig aug;
  aug.random_resized_crop = true;
  bool varied = false;
  CropBox first = random_resized_crop_box(200, 120, aug, 7, 0);
  for (uint64_t k = 0; k < 200; ++k) {
    CropBox b = random_resized_crop_box(200, 120, aug, 7, k * kAugmentDraws);
    CHECK(b == random_resized_crop_box(200, 120, aug, 7, k * kAugmentDraws));
    CHECK(b.left >= 0);
    CHECK(b.top >= 0);
    CHECK(b.width >= 1);
    CHECK(b.height >= 1);
    CHECK(b.left + b.width <= 200);
    CHECK(b.top + b.height <= 120);
    varied = varied || !(b == first);
  }
  CHECK(varied);
  // Flip with probability 1 mirrors the image; without augmentation it is clip_preprocess.
  Image img(4, 4);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i * 5);
  ClipPreprocessConfig cfg;
  cfg.image_size = 4;
  std::vector<float> plain(48), flipped(48);
  augment_preprocess_into(img, cfg, AugmentConfig{}, 1, 0, plain.data());
  Tensor ref = clip_preprocess(img, cfg);
  CHECK(std::equal(plain.begin(), plain.end(), ref.data<float>()));
  AugmentConfig flip;
  flip.horizontal_flip = true;
  flip.flip_probability = 1.0f;
  augment_preprocess_into(img, cfg, flip, 1, 0, flipped.data());
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) CHECK(flipped[c * 16 + y * 4 + x] == plain[c * 16 + y * 4 + (3 - x)]);
}

TEST_CASE("preprocess: CLIP preprocessing of a very elongated image computes only the kept window") {
  // fuzz_image: a 20-byte TGA header decodes to a 1 x 1,000,000 image; resizing its short side to
  // R made a coefficient table for the whole R-million-pixel long side (GBs at R = 224).
  minivl::data::Image image(1, 200000, 9);
  minivl::data::ClipPreprocessConfig config;
  config.image_size = 224;
  std::vector<float> out(size_t(3) * 224 * 224);
  minivl::data::clip_preprocess_into(image, config, out.data());
  CHECK(out[0] == doctest::Approx(out[out.size() / 3 - 1]));  // a flat image stays flat
  // A long side past 2^31 - 1 is refused, not converted with undefined behaviour.
  CHECK_THROWS_WITH_AS(minivl::data::resize_short_side_size(1, 64000000, 224),
                       doctest::Contains("would be 14336000000 pixels long, over the 2^31 - 1 limit"), minivl::Error);
}

}  // TEST_SUITE
