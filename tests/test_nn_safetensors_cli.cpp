// `minivl op` on corrupt safetensors inputs: each file from the corrupt table
// makes the CLI exit non-zero with that file's own message (never a crash).
#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "nn_test_util.h"

TEST_SUITE_BEGIN("nn_safetensors_cli");

namespace {
std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = static_cast<char>(v >> (8 * i));
  return s;
}
std::string st(const std::string& header, const std::string& data) { return u64_le(header.size()) + header + data; }
std::string entry(const char* name, const char* dtype, const char* shape, const char* offsets) {
  return std::string("\"") + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data_offsets\":" + offsets + "}";
}
}  // namespace

TEST_CASE("nn minivl op: corrupt safetensors inputs exit non-zero with their own message") {
  minivl::testing::NnTempDir dir;
  const std::string f32x2(8, '\x01');
  struct Case {
    const char* file;
    std::string bytes;
    const char* phrase;
  };
  const Case cases[] = {
      {"truncated_header.st", std::string("\x10\x00\x00\x00", 4), "shorter than the 8-byte header length"},
      {"past_end.st", u64_le(1000) + "{\"a\":1}", "runs past the end of the file"},
      {"bad_json.st", st("{\"a\": {\"dtype\": ", ""), "header is not valid JSON"},
      {"unknown_dtype.st", st("{" + entry("a", "F33", "[2]", "[0,8]") + "}", f32x2), "unknown dtype \"F33\""},
      {"size_mismatch.st", st("{" + entry("a", "F32", "[3]", "[0,8]") + "}", f32x2), "(size mismatch)"},
      {"out_of_range.st", st("{" + entry("a", "F32", "[4]", "[0,16]") + "}", f32x2), "out of range"},
      {"overlap.st",
       st("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}",
          std::string(12, 'x')),
       "overlaps tensor 'a'"},
      {"trailing.st", st("{" + entry("a", "F32", "[2]", "[0,8]") + "}", std::string(12, 'x')),
       "4 trailing bytes after the last tensor"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    const std::string path = dir.file(c.file);
    {
      std::ofstream out(path, std::ios::binary);
      out.write(c.bytes.data(), std::streamsize(c.bytes.size()));
    }
    auto r = minivl::testing::run_minivl("op add --inputs " + path + " --out " + dir.file("out.st"));
    CAPTURE(r.output);
    CHECK(r.exit_code == 1);  // an error, not a signal
    CHECK(r.output.find("minivl: error:") != std::string::npos);
    CHECK(r.output.find(path) != std::string::npos);
    CHECK(r.output.find(c.phrase) != std::string::npos);
  }
}

TEST_SUITE_END();
