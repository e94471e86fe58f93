// libFuzzer target: nn/config.* (the TOML training config loader).
// Input: "<toml text>\n--\n<override>\n<override>..." (the overrides part is optional).
#include <exception>
#include <sstream>

#include "nn/config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace minivl;
  static const nn::ConfigSchema schema = nn::ConfigSchema::training();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto [text, rest] = fuzz::split_at(input, "\n--\n");
  std::vector<std::string> overrides;
  std::istringstream lines{std::string(rest)};
  for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  try {
    (void)nn::peek_config_string(std::string(text), "fuzz.toml", "model.name");
  } catch (const std::exception&) {
  }
  try {
    const std::string path = fuzz::write_scratch("config.toml", text);
    nn::Config config = nn::Config::load(path, schema, overrides);
    // Round trip: what to_toml writes must parse back to the same values.
    nn::Config again = nn::Config::parse(config.to_toml(), "roundtrip.toml", schema);
    if (again.values() != config.values()) std::abort();
  } catch (const std::exception&) {
  }
  return 0;
}
