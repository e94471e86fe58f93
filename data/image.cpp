// stb_image / stb_image_write, header-only: this file is the one translation
// unit that holds their implementations (static, so no symbol clashes with
// any other user of stb in the process; Debian's libstb.so is not linked).
#include "data/image.h"

#include <algorithm>
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

// stb_image 2.27 (Debian's libstb) trusts two things about JPEG Huffman tables (both found by
// fuzz_image, docs/hardening.md; later stb releases check them):
// - the code counts of a table (DHT): more than 256 codes overrun its 257-entry size list (heap
//   corruption);
// - that a scan (SOS) uses only tables defined before it: an undefined one is uninitialised
//   memory, and decoding with it indexes past the table.
// This walks the markers the way stb reads them and returns what is wrong, or "" when nothing
// is. Anything stb would reject anyway (unknown markers, bad table ids) ends the walk: stb
// reports it.
std::string jpeg_huffman_problem(const uint8_t* b, size_t n) {
  auto at = [&](size_t i) -> unsigned { return i < n ? b[i] : 0u; };  // stb reads zeros past the end
  size_t i = 0;
  while (i < n && b[i] == 0xFF) ++i;  // stb's JPEG test: 0xFF fill bytes, then SOI
  if (i == 0 || at(i) != 0xD8) return {};
  ++i;
  bool entropy = false;  // inside a scan's entropy-coded data: 0xFF 0x00 and RSTn are data
  bool progressive = false;
  bool defined[2][4] = {};  // [DC, AC][table id]
  while (i < n) {
    if (b[i] != 0xFF) {
      ++i;
      continue;
    }
    const size_t marker_at = i;
    while (i < n && b[i] == 0xFF) ++i;
    if (i >= n) break;
    const unsigned m = b[i++];
    if (entropy && (m == 0x00 || (m >= 0xD0 && m <= 0xD7))) continue;
    entropy = false;
    if (m == 0xD9) break;                                           // EOI
    const bool segment = m == 0xC4 || m == 0xDB || m == 0xDD || m == 0xDC || m == 0xDA ||
                         (m >= 0xC0 && m <= 0xC2) || (m >= 0xE0 && m <= 0xEF) || m == 0xFE;
    if (!segment) break;                                            // stb: unknown marker
    const size_t length = at(i) << 8 | at(i + 1);
    if (length < 2) break;
    if (m == 0xC4) {
      size_t p = i + 2;
      const size_t end = i + length;
      while (p < end) {
        const unsigned q = at(p);
        if ((q >> 4) > 1 || (q & 15) > 3) return {};                // stb: bad DHT header
        size_t codes = 0;
        for (size_t k = 1; k <= 16; ++k) codes += at(p + k);
        if (codes > 256)
          return "the Huffman table at byte " + std::to_string(marker_at) + " declares " + std::to_string(codes) +
                 " codes; a table holds at most 256";
        defined[q >> 4][q & 15] = true;
        p += 17 + codes;
      }
    }
    if (m >= 0xC0 && m <= 0xC2) progressive = m == 0xC2;
    if (m == 0xDA) {  // which tables the scan decodes with, as stb's scan decoder picks them
      const size_t components = at(i + 2), tail = i + 3 + 2 * components;
      const bool dc_scan = at(tail) == 0, first_pass = (at(tail + 2) >> 4) == 0;
      for (size_t c = 0; c < components; ++c) {
        const unsigned dc = at(i + 4 + 2 * c) >> 4, ac = at(i + 4 + 2 * c) & 15;
        if (dc > 3 || ac > 3) return {};                            // stb: bad Huffman table id
        const bool uses_dc = !progressive || (dc_scan && first_pass), uses_ac = !progressive || !dc_scan;
        for (int kind = 0; kind < 2; ++kind) {
          const unsigned id = kind == 0 ? dc : ac;
          if ((kind == 0 ? uses_dc : uses_ac) && !defined[kind][id])
            return "the scan at byte " + std::to_string(marker_at) + " decodes with " + (kind == 0 ? "DC" : "AC") +
                   " Huffman table " + std::to_string(id) + ", which no table definition (DHT) before it sets";
        }
      }
    }
    i += length;
    entropy = m == 0xDA;                                            // SOS: the scan's data follows
  }
  return {};
}

// Two stb_image PNG hazards found by fuzz_image, seen from the chunk list (up to IEND):
// - stb grows its IDAT buffer to the length a chunk declares before reading it, so a 100-byte
//   file could make it ask for 4 GiB. `problem` names the first chunk that runs past the end of
//   the file (stb would fail on it anyway, after the allocation).
// - an empty IDAT chunk before any image data makes stb memcpy into a null buffer (undefined
//   behaviour). Such chunks hold nothing; `leading_empty_idat` lists their offsets to drop them.
struct PngChunks {
  std::string problem;
  std::vector<size_t> leading_empty_idat;
};

PngChunks walk_png_chunks(const uint8_t* b, size_t n) {
  PngChunks out;
  if (n < 8 || std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return out;
  bool data_seen = false;
  size_t i = 8;
  while (i + 8 <= n) {
    const size_t length = size_t(b[i]) << 24 | size_t(b[i + 1]) << 16 | size_t(b[i + 2]) << 8 | b[i + 3];
    const std::string type(reinterpret_cast<const char*>(b + i + 4), 4);
    if (type == "IEND") break;
    const size_t left = n - (i + 8);
    if (length > left) {
      std::string printable;
      for (char c : type) printable += (c >= 0x20 && c < 0x7F) ? c : '?';
      out.problem = "chunk '" + printable + "' at byte " + std::to_string(i) + " says it holds " +
                    std::to_string(length) + " bytes; the file has " + std::to_string(left) + " after its header";
      return out;
    }
    if (type == "IDAT" && length == 0 && !data_seen) out.leading_empty_idat.push_back(i);
    if (type == "IDAT" && length > 0) data_seen = true;
    i += 12 + length;  // length, type, data, CRC
  }
  return out;
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

namespace {

// probe_image, also handing back the PNG chunk walk so that decode_image does not walk twice.
ImageInfo probe_with_chunks(const uint8_t* bytes, size_t size, const std::string& label, PngChunks& chunks) {
  MINIVL_CHECK(size > 0, "image '", label, "': empty file");
  MINIVL_CHECK(size <= size_t(INT32_MAX), "image '", label, "': ", size, " bytes is over stb_image's 2 GiB limit");
  if (const std::string problem = jpeg_huffman_problem(bytes, size); !problem.empty())
    MINIVL_FAIL("image '", label, "': corrupt jpeg data (", problem, ")");
  chunks = walk_png_chunks(bytes, size);
  if (!chunks.problem.empty()) MINIVL_FAIL("image '", label, "': corrupt png data (", chunks.problem, ")");
  ImageInfo info;
  if (!stbi_info_from_memory(bytes, int(size), &info.width, &info.height, &info.channels)) {
    MINIVL_FAIL("image '", label, "': not a readable PNG, JPEG, BMP, GIF or TGA file (", stb_reason(), ")");
  }
  info.format = sniff_format(bytes, size);
  return info;
}

}  // namespace

ImageInfo probe_image(const uint8_t* bytes, size_t size, const std::string& label) {
  PngChunks chunks;
  return probe_with_chunks(bytes, size, label, chunks);
}

ImageInfo probe_image_file(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return probe_image(bytes.data(), bytes.size(), path);
}

Image decode_image(const uint8_t* bytes, size_t size, const std::string& label, const DecodeOptions& options) {
  PngChunks chunks;
  ImageInfo info = probe_with_chunks(bytes, size, label, chunks);
  const int64_t pixels = int64_t(info.width) * info.height;
  MINIVL_CHECK(info.width > 0 && info.height > 0, "image '", label, "': header gives a ", info.width, " x ",
               info.height, " image");
  MINIVL_CHECK(pixels <= options.max_pixels, "image '", label, "': ", info.width, " x ", info.height, " = ",
               pixels, " pixels is over the cap of ", options.max_pixels,
               " (DecodeOptions::max_pixels); refusing to decode it");
  std::vector<uint8_t> without_empty_idat;  // see walk_png_chunks
  if (!chunks.leading_empty_idat.empty()) {
    without_empty_idat.reserve(size);
    size_t from = 0;
    for (size_t at : chunks.leading_empty_idat) {
      without_empty_idat.insert(without_empty_idat.end(), bytes + from, bytes + at);
      from = std::min(at + 12, size);  // the CRC may be cut off
    }
    without_empty_idat.insert(without_empty_idat.end(), bytes + from, bytes + size);
    bytes = without_empty_idat.data();
    size = without_empty_idat.size();
  }
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
