#include "data/preprocess.h"

#include <algorithm>
#include <cfenv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "data/annotations.h"
#include "kernels/philox.h"

namespace minivl::data {
namespace {

// ---- Pillow's resampling (libImaging/Resample.c, 8 bits per channel) ----

constexpr int kPrecisionBits = 32 - 8 - 2;  // 22: weights in fixed point

// Keys' cubic convolution kernel with a = -0.5, support 2.
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// For each output index in [out0, out0 + first.size()): the first input index, the number of
// taps, and ksize fixed-point weights (zero past the taps). Only the window a caller keeps is
// computed: the resized axis of a 1 x 1,000,000 image is 224 million pixels long.
struct ResampleCoeffs {
  int ksize = 0;
  int out0 = 0;
  std::vector<int> first, count;   // (out - out0)
  std::vector<int32_t> weights;    // (out - out0, ksize)
};

ResampleCoeffs precompute_coeffs(int in_size, int out_size, int out0, int n) {
  const double scale = double(float(in_size)) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = 2.0 * filterscale;  // bicubic support, widened when downscaling
  ResampleCoeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.out0 = out0;
  c.first.resize(n);
  c.count.resize(n);
  c.weights.assign(size_t(n) * c.ksize, 0);
  std::vector<double> k(c.ksize);
  const double ss = 1.0 / filterscale;
  for (int xx = out0; xx < out0 + n; ++xx) {
    const double center = (xx + 0.5) * scale;
    int xmin = int(center - support + 0.5);  // C truncation, then clamped: Pillow's "round"
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double w = bicubic_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    int32_t* kk = &c.weights[size_t(xx - out0) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? k[x] / ww : k[x];
      kk[x] = v < 0 ? int32_t(-0.5 + v * (1 << kPrecisionBits)) : int32_t(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx - out0] = xmin;
    c.count[xx - out0] = xmax;
  }
  return c;
}

inline uint8_t clip8(int32_t v) {
  int32_t s = v >> kPrecisionBits;  // arithmetic shift: floor
  return uint8_t(s < 0 ? 0 : s > 255 ? 255 : s);
}

// Output columns [col0, col0 + cols) of the horizontal pass over rows [row0, row0 + rows) of `in`.
Image resample_horizontal(const Image& in, const ResampleCoeffs& c, int col0, int cols, int row0, int rows) {
  Image out(cols, rows);
  for (int y = 0; y < rows; ++y) {
    const uint8_t* src = in.row(row0 + y);
    uint8_t* dst = out.row(y);
    for (int j = 0; j < cols; ++j) {
      const int xx = col0 + j - c.out0;
      const int32_t* k = &c.weights[size_t(xx) * c.ksize];
      const uint8_t* p = src + size_t(c.first[xx]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0, n = c.count[xx]; x < n; ++x) {
        s0 += p[3 * x + 0] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      dst[3 * j + 0] = clip8(s0);
      dst[3 * j + 1] = clip8(s1);
      dst[3 * j + 2] = clip8(s2);
    }
  }
  return out;
}

// Output rows [out0, out0 + rows) of the vertical pass; `in` row r is source row r + in_row0.
Image resample_vertical(const Image& in, const ResampleCoeffs& c, int in_row0, int out0, int rows) {
  Image out(in.width, rows);
  const int n = in.width * 3;
  std::vector<int32_t> acc(n);
  for (int i = 0; i < rows; ++i) {
    const int yy = out0 + i - c.out0;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    const int32_t* k = &c.weights[size_t(yy) * c.ksize];
    for (int y = 0, m = c.count[yy]; y < m; ++y) {
      const uint8_t* src = in.row(c.first[yy] + y - in_row0);
      const int32_t w = k[y];
      for (int t = 0; t < n; ++t) acc[t] += src[t] * w;  // exact integer sums: any order gives Pillow's
    }
    uint8_t* dst = out.row(i);
    for (int t = 0; t < n; ++t) dst[t] = clip8(acc[t]);
  }
  return out;
}

// The (left, top, w, h) window of Pillow's resize to out_w x out_h. Every output pixel depends
// only on its own coefficients, so computing just the window equals resizing and then cropping.
Image resize_bicubic_window(const Image& image, int out_w, int out_h, int left, int top, int w, int h) {
  MINIVL_CHECK(!image.empty(), "resize_bicubic: empty input image");
  MINIVL_CHECK(out_w > 0 && out_h > 0, "resize_bicubic: output size ", out_w, " x ", out_h, " must be positive");
  MINIVL_CHECK(left >= 0 && top >= 0 && w > 0 && h > 0 && left + w <= out_w && top + h <= out_h,
               "resize_bicubic: window is outside the ", out_w, " x ", out_h, " output");
  const bool need_h = out_w != image.width;
  const bool need_v = out_h != image.height;
  if (!need_h && !need_v) return left == 0 && top == 0 && w == out_w && h == out_h ? image : crop(image, left, top, w, h);
  if (!need_v) {
    ResampleCoeffs horiz = precompute_coeffs(image.width, out_w, left, w);
    return resample_horizontal(image, horiz, left, w, top, h);
  }
  ResampleCoeffs vert = precompute_coeffs(image.height, out_h, top, h);
  // Only the source rows the vertical pass reads go through the horizontal pass.
  const int row_first = vert.first[0];
  const int row_last = vert.first[h - 1] + vert.count[h - 1];
  if (!need_h) {
    Image cols = (left == 0 && w == out_w) ? image : crop(image, left, 0, w, image.height);
    return resample_vertical(cols, vert, 0, top, h);
  }
  ResampleCoeffs horiz = precompute_coeffs(image.width, out_w, left, w);
  Image temp = resample_horizontal(image, horiz, left, w, row_first, row_last - row_first);
  return resample_vertical(temp, vert, row_first, top, h);
}

// Python's round() for x.0 / x.5 values: half to even.
int round_half_even(double x) {
  double r = std::nearbyint(x);  // the default rounding mode is to-nearest-even
  if (std::fegetround() != FE_TONEAREST) {
    r = std::floor(x + 0.5);
    if (r - x == 0.5 && std::fmod(r, 2.0) != 0.0) r -= 1.0;
  }
  return int(r);
}

std::array<float, 3> read_triple(const nlohmann::json& j, const char* key, const std::string& path) {
  const auto& v = j.at(key);
  MINIVL_CHECK(v.is_array() && v.size() == 3, "preprocess config '", path, "': '", key,
               "' must be a list of 3 numbers, got ", v.dump());
  std::array<float, 3> out{};
  for (int i = 0; i < 3; ++i) {
    MINIVL_CHECK(v[i].is_number(), "preprocess config '", path, "': '", key, "'[", i, "] is not a number");
    out[i] = v[i].get<float>();
  }
  return out;
}

int read_size(const nlohmann::json& v, const char* key, const std::string& path) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_object()) {
    for (const char* sub : {"shortest_edge", "height", "width"}) {
      if (v.contains(sub) && v[sub].is_number_integer()) return v[sub].get<int>();
    }
  }
  MINIVL_FAIL("preprocess config '", path, "': cannot read an image size from '", key, "': ", v.dump());
}

}  // namespace

ClipPreprocessConfig ClipPreprocessConfig::from_json_file(const std::string& path) {
  const nlohmann::json j = read_json_file(path, "preprocess config");
  MINIVL_CHECK(j.is_object(), "preprocess config '", path, "': the top level is not an object");
  ClipPreprocessConfig cfg;
  if (j.contains("image_mean")) cfg.mean = read_triple(j, "image_mean", path);
  if (j.contains("image_std")) cfg.std = read_triple(j, "image_std", path);
  // Crop size wins over resize size (CLIP uses the same for both).
  if (j.contains("crop_size")) cfg.image_size = read_size(j["crop_size"], "crop_size", path);
  else if (j.contains("size")) cfg.image_size = read_size(j["size"], "size", path);
  else if (j.contains("image_size")) cfg.image_size = read_size(j["image_size"], "image_size", path);
  else if (j.contains("vision_config") && j["vision_config"].contains("image_size"))
    cfg.image_size = read_size(j["vision_config"]["image_size"], "vision_config.image_size", path);
  MINIVL_CHECK(cfg.image_size > 0, "preprocess config '", path, "': image size ", cfg.image_size,
               " must be positive");
  for (int c = 0; c < 3; ++c)
    MINIVL_CHECK(cfg.std[c] > 0, "preprocess config '", path, "': image_std[", c, "] = ", cfg.std[c],
                 " must be positive");
  return cfg;
}

Image resize_bicubic(const Image& image, int out_w, int out_h) {
  return resize_bicubic_window(image, out_w, out_h, 0, 0, out_w, out_h);
}

std::pair<int, int> resize_short_side_size(int width, int height, int short_side) {
  MINIVL_CHECK(width > 0 && height > 0 && short_side > 0, "resize: sizes must be positive (image ", width,
               " x ", height, ", short side ", short_side, ")");
  const bool w_short = width <= height;
  const int s = w_short ? width : height, l = w_short ? height : width;
  if (s == short_side) return {width, height};
  const double long_side = double(short_side) * l / s;
  MINIVL_CHECK(long_side < 2147483648.0, "resize: a ", width, " x ", height, " image with its short side at ",
               short_side, " would be ", int64_t(long_side), " pixels long, over the 2^31 - 1 limit");
  const int new_long = int(long_side);  // Python int(R * long / short): floor
  return w_short ? std::pair{short_side, new_long} : std::pair{new_long, short_side};
}

Image resize_short_side(const Image& image, int short_side) {
  auto [w, h] = resize_short_side_size(image.width, image.height, short_side);
  return resize_bicubic(image, w, h);
}

Image crop(const Image& image, int left, int top, int width, int height) {
  MINIVL_CHECK(left >= 0 && top >= 0 && width > 0 && height > 0 && left + width <= image.width &&
                   top + height <= image.height,
               "crop: box (left ", left, ", top ", top, ", ", width, " x ", height, ") is not inside the ",
               image.width, " x ", image.height, " image");
  Image out(width, height);
  for (int y = 0; y < height; ++y) {
    const uint8_t* src = image.row(top + y) + size_t(left) * 3;
    std::copy(src, src + size_t(width) * 3, out.row(y));
  }
  return out;
}

Image center_crop(const Image& image, int crop_w, int crop_h) {
  MINIVL_CHECK(crop_w <= image.width && crop_h <= image.height, "center_crop: ", crop_w, " x ", crop_h,
               " is larger than the ", image.width, " x ", image.height, " image");
  const int top = round_half_even((image.height - crop_h) / 2.0);
  const int left = round_half_even((image.width - crop_w) / 2.0);
  if (crop_w == image.width && crop_h == image.height) return image;
  return crop(image, left, top, crop_w, crop_h);
}

Image hflip(const Image& image) {
  Image out(image.width, image.height);
  for (int y = 0; y < image.height; ++y) {
    const uint8_t* src = image.row(y);
    uint8_t* dst = out.row(y);
    for (int x = 0; x < image.width; ++x) {
      const uint8_t* p = src + size_t(image.width - 1 - x) * 3;
      dst[3 * x] = p[0];
      dst[3 * x + 1] = p[1];
      dst[3 * x + 2] = p[2];
    }
  }
  return out;
}

void normalize_to_chw(const Image& image, const ClipPreprocessConfig& config, float* out) {
  float lut[3][256];
  for (int c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v) {
      float x = float(v) / 255.0f;  // ToTensor: float(v).div(255), in f32
      x = x - config.mean[c];       // Normalize: sub_(mean).div_(std), in f32
      lut[c][v] = x / config.std[c];
    }
  }
  const size_t plane = size_t(image.width) * image.height;
  const uint8_t* p = image.pixels.data();
  for (size_t i = 0; i < plane; ++i) {
    out[i] = lut[0][p[3 * i]];
    out[plane + i] = lut[1][p[3 * i + 1]];
    out[2 * plane + i] = lut[2][p[3 * i + 2]];
  }
}

Image resize_and_center_crop(const Image& image, int r) {
  auto [w, h] = resize_short_side_size(image.width, image.height, r);
  MINIVL_CHECK(w >= r && h >= r, "resize_and_center_crop: internal error, resized ", w, " x ", h, " < ", r);
  // The crop window of the resized image, computed directly (the same pixels as resize, then crop).
  return resize_bicubic_window(image, w, h, round_half_even((w - r) / 2.0), round_half_even((h - r) / 2.0), r, r);
}

void clip_preprocess_into(const Image& image, const ClipPreprocessConfig& config, float* out) {
  normalize_to_chw(resize_and_center_crop(image, config.image_size), config, out);
}

CropBox random_resized_crop_box(int width, int height, const AugmentConfig& cfg, uint64_t seed,
                                uint64_t offset) {
  MINIVL_CHECK(cfg.scale_min > 0 && cfg.scale_min <= cfg.scale_max && cfg.ratio_min > 0 &&
                   cfg.ratio_min <= cfg.ratio_max,
               "random_resized_crop: need 0 < scale_min <= scale_max and 0 < ratio_min <= ratio_max (got scale [",
               cfg.scale_min, ", ", cfg.scale_max, "], ratio [", cfg.ratio_min, ", ", cfg.ratio_max, "])");
  const double area = double(width) * height;
  const double log_r0 = std::log(double(cfg.ratio_min)), log_r1 = std::log(double(cfg.ratio_max));
  uint64_t i = 0;
  auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * double(philox_uniform(seed, offset, i++)); };
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(cfg.scale_min, cfg.scale_max);
    const double aspect = std::exp(uniform(log_r0, log_r1));
    const int w = round_half_even(std::sqrt(target_area * aspect));
    const int h = round_half_even(std::sqrt(target_area / aspect));
    const double u_top = uniform(0, 1), u_left = uniform(0, 1);
    if (0 < w && w <= width && 0 < h && h <= height) {
      int top = std::min(int(u_top * (height - h + 1)), height - h);
      int left = std::min(int(u_left * (width - w + 1)), width - w);
      return {left, top, w, h};
    }
  }
  // Central fallback.
  const double in_ratio = double(width) / height;
  int w = width, h = height;
  if (in_ratio < cfg.ratio_min) h = round_half_even(w / double(cfg.ratio_min));
  else if (in_ratio > cfg.ratio_max) w = round_half_even(h * double(cfg.ratio_max));
  h = std::clamp(h, 1, height);
  w = std::clamp(w, 1, width);
  return {(width - w) / 2, (height - h) / 2, w, h};
}

void augment_preprocess_into(const Image& image, const ClipPreprocessConfig& preprocess,
                             const AugmentConfig& augment, uint64_t seed, uint64_t offset, float* out) {
  const int r = preprocess.image_size;
  Image x;
  if (augment.random_resized_crop) {
    CropBox b = random_resized_crop_box(image.width, image.height, augment, seed, offset);
    x = resize_bicubic(crop(image, b.left, b.top, b.width, b.height), r, r);
  } else {
    x = resize_and_center_crop(image, r);
  }
  // The flip draw sits past the crop's 40 draws.
  if (augment.horizontal_flip && philox_uniform(seed, offset, 48) < augment.flip_probability) x = hflip(x);
  normalize_to_chw(x, preprocess, out);
}

}  // namespace minivl::data
