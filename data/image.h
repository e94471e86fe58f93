#pragma once
// 8-bit RGB images: decoding (PNG, JPEG, BMP, GIF first frame, TGA) with
// stb_image, and PNG / JPEG writing with stb_image_write.
//
//   Image img = read_image("cat.jpg");               // u8 (H, W, 3), row-major RGB
//   write_png("out.png", img);
//
// Every image is converted to RGB on decode, as CLIP's `_convert_image_to_rgb`
// (PIL's convert("RGB")) does: grey is replicated into R, G and B, palettes are
// expanded, alpha is dropped (not composited), 16-bit channels keep their high
// byte. The pixel cap is checked from the header, before any pixel is decoded.
// Errors name the file (or the caller's label for in-memory bytes) and the cause.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace minivl::data {

// A u8 RGB image, (H, W, 3) row-major: pixel (x, y) channel c is
// pixels[(y * width + x) * 3 + c].
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int w, int h, uint8_t fill = 0) : width(w), height(h), pixels(size_t(w) * h * 3, fill) {}

  bool empty() const { return width == 0 || height == 0; }
  uint8_t* row(int y) { return pixels.data() + size_t(y) * width * 3; }
  const uint8_t* row(int y) const { return pixels.data() + size_t(y) * width * 3; }
  uint8_t& at(int x, int y, int c) { return pixels[(size_t(y) * width + x) * 3 + c]; }
  uint8_t at(int x, int y, int c) const { return pixels[(size_t(y) * width + x) * 3 + c]; }
  bool operator==(const Image&) const = default;
};

struct DecodeOptions {
  // Largest width * height accepted; images over it are refused from their header.
  int64_t max_pixels = 64'000'000;
};

// What a file's header says, without decoding the pixels.
struct ImageInfo {
  int width = 0;
  int height = 0;
  int channels = 0;       // in the file: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA
  std::string format;     // "png", "jpeg", "bmp", "gif", "tga"
};

// Header only; errors name `label` (the path, for files).
ImageInfo probe_image(const uint8_t* bytes, size_t size, const std::string& label);
ImageInfo probe_image_file(const std::string& path);

// Decodes to RGB. `label` names the source in errors.
Image decode_image(const uint8_t* bytes, size_t size, const std::string& label,
                   const DecodeOptions& options = {});
Image read_image(const std::string& path, const DecodeOptions& options = {});

// The whole file as bytes (an error naming the path when it cannot be read).
std::vector<uint8_t> read_file_bytes(const std::string& path);

// PNG with stb_image_write's own deflate (no zlib): the same image gives the same bytes on every machine.
std::vector<uint8_t> encode_png(const Image& image);
void write_png(const std::string& path, const Image& image);
// Baseline JPEG (quality 1..100), for fixtures and benchmarks.
std::vector<uint8_t> encode_jpeg(const Image& image, int quality = 90);
void write_jpeg(const std::string& path, const Image& image, int quality = 90);

// Writes bytes to `path` (parent folders created), with an error naming it.
void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

// Grey (H, W) u8 -> RGB with the value in all three channels.
Image grey_to_rgb(const uint8_t* grey, int width, int height);

}  // namespace minivl::data
