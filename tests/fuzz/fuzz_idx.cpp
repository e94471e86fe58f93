// libFuzzer target: data/fashion_mnist.* read_idx_gz (IDX files, gzip or plain:
// zlib's gzread passes a file without a gzip header through unchanged).
#include <exception>

#include "data/fashion_mnist.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::vector<int64_t> dims;
    std::vector<uint8_t> payload = minivl::data::read_idx_gz(minivl::fuzz::write_scratch("data-idx.gz", data, size), dims);
    size_t total = 1;
    for (int64_t d : dims) total *= size_t(d);
    if (payload.size() != total) std::abort();
  } catch (const std::exception&) {
  }
  return 0;
}
