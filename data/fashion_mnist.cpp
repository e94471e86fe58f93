#include "data/fashion_mnist.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"

namespace minivl::data {
namespace {

uint32_t big_endian(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

struct GzFile {
  gzFile f = nullptr;
  ~GzFile() {
    if (f) gzclose(f);
  }
};

// Exactly n bytes, or an error naming the file.
void read_exact(gzFile f, uint8_t* out, size_t n, const std::string& path, const char* what) {
  size_t done = 0;
  while (done < n) {
    const unsigned chunk = unsigned(std::min<size_t>(n - done, 1u << 30));
    int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      MINIVL_FAIL("IDX '", path, "': gzip error reading ", what, ": ", msg ? msg : "unknown");
    }
    MINIVL_CHECK(got > 0, "IDX '", path, "': truncated: ", what, " needs ", n, " bytes, the file ends after ", done + got);
    done += size_t(got);
  }
}

}  // namespace

std::vector<uint8_t> read_idx_gz(const std::string& path, std::vector<int64_t>& dims) {
  MINIVL_CHECK(std::filesystem::exists(path), "IDX '", path,
               "': no such file (Fashion-MNIST comes from Debian's dataset-fashion-mnist package)");
  GzFile gz;
  gz.f = gzopen(path.c_str(), "rb");
  MINIVL_CHECK(gz.f != nullptr, "IDX '", path, "': cannot open it");
  uint8_t magic[4];
  read_exact(gz.f, magic, 4, path, "the magic number");
  // IDX magic: 0, 0, type (0x08 = unsigned byte), number of dimensions.
  MINIVL_CHECK(magic[0] == 0 && magic[1] == 0 && magic[2] == 0x08 && magic[3] >= 1 && magic[3] <= 4, "IDX '", path,
               "': bad magic ", int(magic[0]), " ", int(magic[1]), " ", int(magic[2]), " ", int(magic[3]),
               " (expected 0 0 8 <ndim> for unsigned bytes)");
  dims.assign(magic[3], 0);
  size_t total = 1;
  for (auto& d : dims) {
    uint8_t b[4];
    read_exact(gz.f, b, 4, path, "a dimension size");
    d = big_endian(b);
    MINIVL_CHECK(d > 0 && d < (int64_t(1) << 31), "IDX '", path, "': dimension size ", d, " is out of range");
    total *= size_t(d);
    MINIVL_CHECK(total < (size_t(1) << 34), "IDX '", path, "': payload over 16 GiB");
  }
  // Grow the payload with what the file really holds: a corrupt 20-byte header may claim 16 GiB.
  // Chunks start at 64 KiB and double up to 16 MiB, so such a header costs a 64 KiB read, not a
  // 16 MiB buffer (which held fuzz_idx to ~300 inputs/s).
  std::vector<uint8_t> payload;
  size_t chunk = size_t(1) << 16;
  while (payload.size() < total) {
    const size_t done = payload.size(), n = std::min(chunk, total - done);
    chunk = std::min(chunk * 2, size_t(1) << 24);
    payload.resize(done + n);
    const int got = gzread(gz.f, payload.data() + done, unsigned(n));
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(gz.f, &err);
      MINIVL_FAIL("IDX '", path, "': gzip error reading the payload: ", msg ? msg : "unknown");
    }
    MINIVL_CHECK(size_t(got) == n, "IDX '", path, "': truncated: the payload needs ", total,
                 " bytes, the file ends after ", done + size_t(got));
  }
  uint8_t extra;
  MINIVL_CHECK(gzread(gz.f, &extra, 1) == 0, "IDX '", path, "': trailing bytes after the ", total, "-byte payload");
  return payload;
}

bool fashion_mnist_available(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"})
    if (!fs::exists(fs::path(dir) / f)) return false;
  return true;
}

FashionMnist load_fashion_mnist(const std::string& dir, const std::string& split) {
  MINIVL_CHECK(split == "train" || split == "test", "fashion-mnist: split '", split, "' is not 'train' or 'test'");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_path = (std::filesystem::path(dir) / (prefix + "-images-idx3-ubyte.gz")).string();
  const std::string labels_path = (std::filesystem::path(dir) / (prefix + "-labels-idx1-ubyte.gz")).string();
  FashionMnist ds;
  std::vector<int64_t> idims, ldims;
  ds.pixels = read_idx_gz(images_path, idims);
  ds.labels = read_idx_gz(labels_path, ldims);
  MINIVL_CHECK(idims.size() == 3, "fashion-mnist '", images_path, "': expected 3 dimensions, got ", idims.size());
  MINIVL_CHECK(ldims.size() == 1, "fashion-mnist '", labels_path, "': expected 1 dimension, got ", ldims.size());
  MINIVL_CHECK(idims[0] == ldims[0], "fashion-mnist: '", images_path, "' holds ", idims[0], " images but '",
               labels_path, "' ", ldims[0], " labels");
  ds.count = idims[0];
  ds.rows = int(idims[1]);
  ds.cols = int(idims[2]);
  for (int64_t i = 0; i < ds.count; ++i)
    MINIVL_CHECK(ds.labels[i] < kFashionMnistClasses, "fashion-mnist '", labels_path, "': label ", int(ds.labels[i]),
                 " of item ", i, " is not in 0..9");
  return ds;
}

Image FashionMnist::image(int64_t i) const {
  MINIVL_CHECK(i >= 0 && i < count, "fashion-mnist: index ", i, " out of range 0..", count - 1);
  return grey_to_rgb(pixels.data() + size_t(i) * rows * cols, cols, rows);
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> c = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return c;
}

const std::vector<std::string>& fashion_mnist_prompt_names() {
  static const std::vector<std::string> c = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                             "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};
  return c;
}

const std::vector<std::string>& fashion_mnist_templates() {
  static const std::vector<std::string> t = {"a photo of a {}.", "a black and white photo of a {}.",
                                             "a low resolution photo of a {}.", "a photo of the {}.",
                                             "a picture of a {}, a type of clothing."};
  return t;
}

std::string fashion_mnist_caption(int label, int template_index) {
  MINIVL_CHECK(label >= 0 && label < kFashionMnistClasses, "fashion-mnist: label ", label, " is not in 0..9");
  const auto& ts = fashion_mnist_templates();
  MINIVL_CHECK(template_index >= 0 && template_index < int(ts.size()), "fashion-mnist: template ", template_index,
               " is not in 0..", ts.size() - 1);
  std::string s = ts[template_index];
  s.replace(s.find("{}"), 2, fashion_mnist_prompt_names()[label]);
  return s;
}

}  // namespace minivl::data
