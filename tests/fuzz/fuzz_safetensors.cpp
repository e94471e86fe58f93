// libFuzzer target: core/safetensors.* (SafetensorsFile::open on arbitrary bytes).
// Every accepted entry's bytes are read, so an out-of-range data pointer is caught by ASan.
#include <exception>

#include "core/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = minivl::fuzz::write_scratch("model.safetensors", data, size);
  try {
    minivl::SafetensorsFile file = minivl::SafetensorsFile::open(path);
    volatile uint8_t sink = 0;
    for (const minivl::SafetensorsEntry& e : file.entries()) {
      for (size_t i = 0; i < e.nbytes; ++i) sink = sink ^ e.data[i];
      (void)e.numel();
      (void)file.at(e.name);
    }
    (void)file.find("missing");
  } catch (const std::exception&) {
  }
  return 0;
}
