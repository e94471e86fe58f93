// Fashion-MNIST: the IDX reader on files written here (always), and the real data set from
// Debian's dataset-fashion-mnist (skipped, with a message, when the package is absent), and a
// header claiming more than the file holds.
#include <doctest/doctest.h>
#include <zlib.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "tests/nn_test_util.h"

namespace fs = std::filesystem;
using namespace minivl::data;
using minivl::testing::NnTempDir;

namespace {

void write_gz(const fs::path& p, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(p.string().c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  gzclose(f);
}

std::vector<uint8_t> idx(std::vector<uint32_t> dims, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> out = {0, 0, 8, uint8_t(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(d >> s));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("fashion-mnist: IDX files written here read back, grey expanded to RGB") {
  fs::path d = fs::temp_directory_path() / "minivl_test_fashion_idx";
  fs::remove_all(d);
  fs::create_directories(d);
  std::vector<uint8_t> pixels(3 * 2 * 2);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = uint8_t(i * 20);
  write_gz(d / "t10k-images-idx3-ubyte.gz", idx({3, 2, 2}, pixels));
  write_gz(d / "t10k-labels-idx1-ubyte.gz", idx({3}, {9, 0, 4}));
  FashionMnist ds = load_fashion_mnist(d.string(), "test");
  CHECK(ds.count == 3);
  CHECK(ds.labels == std::vector<uint8_t>{9, 0, 4});
  Image img = ds.image(1);
  CHECK(img.width == 2);
  CHECK(img.pixels == std::vector<uint8_t>{80, 80, 80, 100, 100, 100, 120, 120, 120, 140, 140, 140});
  FashionMnistDataset set(ds);
  CHECK(set.info(0, 0).text == "a photo of a ankle boot.");
  CHECK(set.info(2, 0).label == 4);

  // Errors name the file: bad magic, truncation, count mismatch, label range.
  write_gz(d / "bad-images.gz", {0, 0, 9, 3, 0, 0});
  std::vector<int64_t> dims;
  CHECK_THROWS_WITH_AS(read_idx_gz((d / "bad-images.gz").string(), dims), doctest::Contains("bad-images.gz': bad magic"),
                       minivl::Error);
  write_gz(d / "t10k-images-idx3-ubyte.gz", idx({3, 2, 2}, std::vector<uint8_t>(7)));
  CHECK_THROWS_WITH_AS(load_fashion_mnist(d.string(), "test"), doctest::Contains("truncated"), minivl::Error);
  write_gz(d / "t10k-images-idx3-ubyte.gz", idx({3, 2, 2}, pixels));
  write_gz(d / "t10k-labels-idx1-ubyte.gz", idx({3}, {9, 10, 4}));
  CHECK_THROWS_WITH_AS(load_fashion_mnist(d.string(), "test"), doctest::Contains("label 10 of item 1"), minivl::Error);
  CHECK_THROWS_WITH_AS(load_fashion_mnist(d.string(), "train"), doctest::Contains("dataset-fashion-mnist"),
                       minivl::Error);
}

TEST_CASE("fashion-mnist: the Debian package's files have 60000 + 10000 images, 10 balanced classes") {
  if (!fashion_mnist_available()) {
    MESSAGE("SKIPPED: Fashion-MNIST not found in " << kFashionMnistDir
                                                   << " (apt-get install dataset-fashion-mnist)");
    return;
  }
  FashionMnist train = load_fashion_mnist(kFashionMnistDir, "train");
  FashionMnist test = load_fashion_mnist(kFashionMnistDir, "test");
  CHECK(train.count == 60000);
  CHECK(test.count == 10000);
  CHECK(train.rows == 28);
  CHECK(train.cols == 28);
  std::array<int, 10> tr{}, te{};
  for (uint8_t l : train.labels) ++tr[l];
  for (uint8_t l : test.labels) ++te[l];
  for (int c = 0; c < 10; ++c) {
    CHECK(tr[c] == 6000);
    CHECK(te[c] == 1000);
  }
  // The first items, as the data set's own reader shows them: an ankle boot in both splits.
  CHECK(int(train.labels[0]) == 9);
  CHECK(int(train.labels[1]) == 0);
  CHECK(int(test.labels[0]) == 9);
  CHECK(int(test.labels[1]) == 2);
  CHECK(fashion_mnist_classes()[9] == "Ankle boot");
  CHECK(fashion_mnist_caption(0, 1) == "a black and white photo of a t-shirt.");
}

TEST_CASE("fashion-mnist: a 20-byte IDX header claiming 8 GiB fails as truncated without allocating it") {
  // Dimensions 2^31-1 x 4: the reader used to allocate the whole claimed payload before reading.
  NnTempDir dir;
  const std::string path = dir.file("huge-idx3-ubyte.gz");
  {
    std::ofstream out(path, std::ios::binary);
    const unsigned char header[] = {0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 4, 1, 2, 3};
    out.write(reinterpret_cast<const char*>(header), sizeof header);
  }
  std::vector<int64_t> dims;
  CHECK_THROWS_WITH_AS(read_idx_gz(path, dims),
                       doctest::Contains("truncated: the payload needs 8589934588 bytes, the file ends after 3"),
                       minivl::Error);
}

}  // TEST_SUITE
