// Regression tests for what fuzzing and the sanitizer builds found (docs/hardening.md): each
// names the input that used to misbehave and what minivl does with it now.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/fashion_mnist.h"
#include "nn_test_util.h"

TEST_SUITE_BEGIN("hardening");

using minivl::testing::NnTempDir;

TEST_CASE("hardening regression: a 20-byte IDX header claiming 8 GiB fails as truncated without allocating it") {
  // Dimensions 2^31-1 x 4: the reader used to allocate the whole claimed payload before reading.
  NnTempDir dir;
  const std::string path = dir.file("huge-idx3-ubyte.gz");
  {
    std::ofstream out(path, std::ios::binary);
    const unsigned char header[] = {0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 4, 1, 2, 3};
    out.write(reinterpret_cast<const char*>(header), sizeof header);
  }
  std::vector<int64_t> dims;
  CHECK_THROWS_WITH_AS(minivl::data::read_idx_gz(path, dims),
                       doctest::Contains("truncated: the payload needs 8589934588 bytes, the file ends after 3"),
                       minivl::Error);
}

TEST_SUITE_END();
