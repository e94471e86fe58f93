// stb_image / stb_image_write, header-only: this file is the one translation
// unit that holds their implementations (static, so no symbol clashes with
// any other user of stb in the process; Debian's libstb.so is not linked).
#include "data/image.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_NO_STDIO   // we read files ourselves, so errors name them
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image.h>
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace minivl::data {
namespace {

// The container, from its magic bytes; TGA has none, so it is whatever stb
// accepts that is none of the others.
std::string sniff_format(const uint8_t* b, size_t n) {
  if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "png";
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "jpeg";
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return "bmp";
  if (n >= 6 && (std::memcmp(b, "GIF87a", 6) == 0 || std::memcmp(b, "GIF89a", 6) == 0)) return "gif";
  return "tga";
}

const char* stb_reason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown error";
}

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

void check_writable(const Image& image, const char* what) {
  MINIVL_CHECK(image.width > 0 && image.height > 0, what, ": cannot encode an empty image (",
               image.width, " x ", image.height, ")");
  MINIVL_CHECK(image.pixels.size() == size_t(image.width) * image.height * 3, what, ": image is ",
               image.width, " x ", image.height, " but holds ", image.pixels.size(), " bytes, not ",
               size_t(image.width) * image.height * 3);
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MINIVL_CHECK(in.good(), "image: cannot open '", path, "': ",
               std::filesystem::exists(path) ? "not readable" : "no such file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  MINIVL_CHECK(!in.bad(), "image: error reading '", path, "'");
  return bytes;
}

void write_file_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  MINIVL_CHECK(out.good(), "image: cannot open '", path, "' for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  out.close();
  MINIVL_CHECK(out.good(), "image: error writing '", path, "'");
}

ImageInfo probe_image(const uint8_t* bytes, size_t size, const std::string& label) {
  MINIVL_CHECK(size > 0, "image '", label, "': empty file");
  MINIVL_CHECK(size <= size_t(INT32_MAX), "image '", label, "': ", size, " bytes is over stb_image's 2 GiB limit");
  ImageInfo info;
  if (!stbi_info_from_memory(bytes, int(size), &info.width, &info.height, &info.channels)) {
    MINIVL_FAIL("image '", label, "': not a readable PNG, JPEG, BMP, GIF or TGA file (", stb_reason(), ")");
  }
  info.format = sniff_format(bytes, size);
  return info;
}

ImageInfo probe_image_file(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return probe_image(bytes.data(), bytes.size(), path);
}

Image decode_image(const uint8_t* bytes, size_t size, const std::string& label, const DecodeOptions& options) {
  ImageInfo info = probe_image(bytes, size, label);
  const int64_t pixels = int64_t(info.width) * info.height;
  MINIVL_CHECK(info.width > 0 && info.height > 0, "image '", label, "': header gives a ", info.width, " x ",
               info.height, " image");
  MINIVL_CHECK(pixels <= options.max_pixels, "image '", label, "': ", info.width, " x ", info.height, " = ",
               pixels, " pixels is over the cap of ", options.max_pixels,
               " (DecodeOptions::max_pixels); refusing to decode it");
  int w = 0, h = 0, channels = 0;
  stbi_uc* data = stbi_load_from_memory(bytes, int(size), &w, &h, &channels, 3);
  if (!data) MINIVL_FAIL("image '", label, "': corrupt ", info.format, " data (", stb_reason(), ")");
  Image image;
  image.width = w;
  image.height = h;
  image.pixels.assign(data, data + size_t(w) * h * 3);
  stbi_image_free(data);
  return image;
}

Image read_image(const std::string& path, const DecodeOptions& options) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path, options);
}

std::vector<uint8_t> encode_png(const Image& image) {
  check_writable(image, "encode_png");
  std::vector<uint8_t> out;
  int ok = stbi_write_png_to_func(append_bytes, &out, image.width, image.height, 3, image.pixels.data(),
                                  image.width * 3);
  MINIVL_CHECK(ok && !out.empty(), "encode_png: stb_image_write failed on a ", image.width, " x ", image.height,
               " image");
  return out;
}

void write_png(const std::string& path, const Image& image) { write_file_bytes(path, encode_png(image)); }

std::vector<uint8_t> encode_jpeg(const Image& image, int quality) {
  check_writable(image, "encode_jpeg");
  MINIVL_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality ", quality, " is outside 1..100");
  std::vector<uint8_t> out;
  int ok = stbi_write_jpg_to_func(append_bytes, &out, image.width, image.height, 3, image.pixels.data(), quality);
  MINIVL_CHECK(ok && !out.empty(), "encode_jpeg: stb_image_write failed on a ", image.width, " x ",
               image.height, " image");
  return out;
}

void write_jpeg(const std::string& path, const Image& image, int quality) {
  write_file_bytes(path, encode_jpeg(image, quality));
}

Image grey_to_rgb(const uint8_t* grey, int width, int height) {
  Image image(width, height);
  for (size_t i = 0, n = size_t(width) * height; i < n; ++i) {
    image.pixels[3 * i] = image.pixels[3 * i + 1] = image.pixels[3 * i + 2] = grey[i];
  }
  return image;
}

}  // namespace minivl::data
