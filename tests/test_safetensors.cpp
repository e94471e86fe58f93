// safetensors: round trips, bytes as Python writes them, a table of corrupt
// files each rejected with its own message, and the atomic writer.
#include "core/safetensors.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

using namespace minivl;
namespace fs = std::filesystem;

namespace {

// A fresh temporary folder, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("minivl_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// An 8-byte length, the header text as given, then the data bytes.
std::string st_bytes(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

std::string message_of(const std::string& path) {
  try {
    SafetensorsFile::open(path);
  } catch (const minivl::Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string tensor(const char* dtype, const char* shape, const char* offsets) {
  return std::string("{\"dtype\":\"") + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

// Bytes of n elements of size elem, distinct per tensor so mix-ups show.
std::vector<uint8_t> pattern(size_t nbytes, uint8_t seed) {
  std::vector<uint8_t> v(nbytes);
  for (size_t i = 0; i < nbytes; ++i) v[i] = static_cast<uint8_t>(seed * 31 + i * 7 + 1);
  return v;
}

}  // namespace

TEST_CASE("safetensors dtype names and sizes") {
  const std::pair<SafetensorsDType, size_t> sizes[] = {
      {SafetensorsDType::F64, 8}, {SafetensorsDType::F32, 4}, {SafetensorsDType::F16, 2},
      {SafetensorsDType::BF16, 2}, {SafetensorsDType::I64, 8}, {SafetensorsDType::I32, 4},
      {SafetensorsDType::I16, 2}, {SafetensorsDType::I8, 1},  {SafetensorsDType::U8, 1},
      {SafetensorsDType::BOOL, 1}, {SafetensorsDType::U64, 8}, {SafetensorsDType::U32, 4},
      {SafetensorsDType::U16, 2}, {SafetensorsDType::F8_E4M3, 1}, {SafetensorsDType::F8_E5M2, 1}};
  for (auto [dtype, size] : sizes) {
    CHECK(safetensors_dtype_size(dtype) == size);
    CHECK(parse_safetensors_dtype(safetensors_dtype_name(dtype)) == dtype);
  }
  CHECK(std::string(safetensors_dtype_name(SafetensorsDType::BF16)) == "BF16");
  CHECK_FALSE(parse_safetensors_dtype("f32").has_value());   // names are case-sensitive
  CHECK_FALSE(parse_safetensors_dtype("").has_value());
}

TEST_CASE("safetensors round trip: every dtype, 0-d scalars, zero-size tensors") {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  const SafetensorsDType dtypes[] = {
      SafetensorsDType::F64, SafetensorsDType::F32, SafetensorsDType::F16, SafetensorsDType::BF16,
      SafetensorsDType::I64, SafetensorsDType::I32, SafetensorsDType::I16, SafetensorsDType::I8,
      SafetensorsDType::U8,  SafetensorsDType::BOOL};
  const std::vector<std::vector<int64_t>> shapes = {{}, {3}, {2, 3}, {0}, {4, 0, 2}, {1, 1, 5}};

  std::vector<std::vector<uint8_t>> buffers;
  std::vector<SafetensorsWriteEntry> entries;
  for (SafetensorsDType dt : dtypes)
    for (const auto& shape : shapes) {
      size_t numel = 1;
      for (int64_t d : shape) numel *= d;
      size_t nbytes = numel * safetensors_dtype_size(dt);
      buffers.push_back(pattern(nbytes, static_cast<uint8_t>(buffers.size())));
      std::string name = std::string(safetensors_dtype_name(dt)) + ".rank" +
                         std::to_string(shape.size()) + "." + std::to_string(buffers.size());
      entries.push_back({name, dt, shape, buffers.back().data(), nbytes});
    }
  write_safetensors(path, entries);

  SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.path() == path);
  CHECK((8 + f.header_size()) % 8 == 0);   // data section aligned
  CHECK(f.metadata().empty());
  REQUIRE(f.entries().size() == entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const SafetensorsEntry& e = f.entries()[i];   // file order == write order here
    CAPTURE(entries[i].name);
    CHECK(e.name == entries[i].name);
    CHECK(e.dtype == entries[i].dtype);
    CHECK(e.shape == entries[i].shape);
    CHECK(e.nbytes == entries[i].nbytes);
    CHECK(e.numel() * safetensors_dtype_size(e.dtype) == e.nbytes);
    CHECK(e.data != nullptr);
    if (e.nbytes > 0) CHECK(std::memcmp(e.data, buffers[i].data(), e.nbytes) == 0);
    CHECK(&f.at(e.name) == &e);
  }
  CHECK(f.find("F32.rank0.7")->shape.empty());   // a 0-d scalar holds one element
  CHECK(f.find("F32.rank0.7")->nbytes == 4);
  CHECK(f.find("nope") == nullptr);
}

TEST_CASE("safetensors metadata round trip and empty files") {
  TempDir dir;
  const std::string path = dir.file("meta.safetensors");
  std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"step", "1200"}, {"note", "quotes \" and unicode \xc3\xa9"}, {"empty", ""}};
  float x = 3.25f;
  write_safetensors(path, {{"x", SafetensorsDType::F32, {}, &x, 4}}, meta);
  SafetensorsFile f = SafetensorsFile::open(path);
  CHECK(f.metadata() == meta);
  float y = 0;
  std::memcpy(&y, f.at("x").data, 4);
  CHECK(y == 3.25f);

  // No tensors at all, with and without metadata.
  write_safetensors(path, {});
  CHECK(SafetensorsFile::open(path).entries().empty());
  write_safetensors(path, {}, {{"only", "metadata"}});
  SafetensorsFile g = SafetensorsFile::open(path);
  CHECK(g.entries().empty());
  CHECK(g.metadata().at("only") == "metadata");
}

TEST_CASE("safetensors reads bytes laid out the way Python's safetensors writes them") {
  TempDir dir;
  // 1.5f, -2.0f as little-endian F32; then an I64 7 and a BF16 1.0 (0x3f80).
  const std::string f32 = std::string("\x00\x00\xc0\x3f\x00\x00\x00\xc0", 8);
  const std::string i64 = std::string("\x07\x00\x00\x00\x00\x00\x00\x00", 8);
  const std::string bf16 = std::string("\x80\x3f", 2);

  SUBCASE("minimal header, no padding") {
    const std::string path = dir.file("py.safetensors");
    write_bytes(path, st_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32));
    SafetensorsFile f = SafetensorsFile::open(path);
    REQUIRE(f.entries().size() == 1);
    const SafetensorsEntry& a = f.at("a");
    CHECK(a.dtype == SafetensorsDType::F32);
    CHECK(a.shape == std::vector<int64_t>{2});
    float v[2];
    std::memcpy(v, a.data, 8);
    CHECK(v[0] == 1.5f);
    CHECK(v[1] == -2.0f);
  }
  SUBCASE("metadata, several tensors out of header order, space padding") {
    const std::string path = dir.file("py2.safetensors");
    std::string header =
        R"({"__metadata__":{"format":"pt"},"z":{"dtype":"BF16","shape":[1,1],"data_offsets":[16,18]},)"
        R"("b":{"dtype":"I64","shape":[],"data_offsets":[8,16]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    header.append((8 - (8 + header.size()) % 8) % 8, ' ');
    write_bytes(path, st_bytes(header, f32 + i64 + bf16));
    SafetensorsFile f = SafetensorsFile::open(path);
    REQUIRE(f.entries().size() == 3);
    CHECK(f.entries()[0].name == "a");   // ordered by data offset, not by header order
    CHECK(f.entries()[1].name == "b");
    CHECK(f.entries()[2].name == "z");
    CHECK(f.metadata().at("format") == "pt");
    int64_t b = 0;
    std::memcpy(&b, f.at("b").data, 8);
    CHECK(b == 7);
    CHECK(f.at("b").shape.empty());
    CHECK(f.at("z").data[0] == 0x80);
    CHECK(f.at("z").data[1] == 0x3f);
  }
  SUBCASE("zero-size tensors sit at begin == end, anywhere in the order") {
    const std::string path = dir.file("py3.safetensors");
    std::string header = "{\"e0\":" + tensor("F32", "[0]", "[0,0]") + ",\"a\":" +
                         tensor("F32", "[2]", "[0,8]") + ",\"e1\":" + tensor("I8", "[3,0]", "[8,8]") + "}";
    write_bytes(path, st_bytes(header, f32));
    SafetensorsFile f = SafetensorsFile::open(path);
    REQUIRE(f.entries().size() == 3);
    CHECK(f.entries()[0].name == "e0");
    CHECK(f.entries()[1].name == "a");
    CHECK(f.entries()[2].name == "e1");
    CHECK(f.at("e1").nbytes == 0);
  }
}

TEST_CASE("safetensors rejects corrupt files, each with its own message") {
  TempDir dir;
  const std::string f32x2(8, '\x01');
  const std::string a_ok = "\"a\":" + tensor("F32", "[2]", "[0,8]");
  struct Case {
    const char* file;      // written into the temp folder
    std::string bytes;
    const char* phrase;    // must appear in the message
    const char* tensor;    // must appear too, where the failure is one tensor's
  };
  const Case cases[] = {
      {"empty.st", "", "file is 0 bytes, shorter than the 8-byte header length", nullptr},
      {"truncated_len.st", std::string("\x10\x00\x00\x00", 4), "shorter than the 8-byte header length",
       nullptr},
      {"past_end.st", u64_le(1000) + "{\"a\":1}", "runs past the end of the file", nullptr},
      {"huge_len.st", u64_le(1ull << 40) + "{}", "exceeds the 100000000-byte limit", nullptr},
      {"bad_json.st", st_bytes("{\"a\": {\"dtype\": ", ""), "header is not valid JSON", nullptr},
      {"bad_utf8.st", st_bytes("{\"\xff\xfe\":{}}", ""), "UTF-8", nullptr},
      {"zero_header.st", st_bytes("", ""), "header is not valid JSON", nullptr},
      {"not_object.st", st_bytes("[1,2,3]", ""), "header is not a JSON object (it is array)", nullptr},
      {"entry_not_object.st", st_bytes("{\"a\":[0,8]}", ""), "entry is not a JSON object", "'a'"},
      {"unknown_dtype.st", st_bytes("{\"a\":" + tensor("F33", "[2]", "[0,8]") + "}", f32x2),
       "unknown dtype \"F33\"", "'a'"},
      {"dtype_not_string.st",
       st_bytes(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", f32x2),
       "\"dtype\" is not a string", "'a'"},
      {"shape_not_array.st",
       st_bytes(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", f32x2),
       "\"shape\" is not an array", "'a'"},
      {"size_mismatch.st", st_bytes("{\"a\":" + tensor("F32", "[3]", "[0,8]") + "}", f32x2),
       "needs 12 bytes but data_offsets [0, 8] span 8 (size mismatch)", "'a'"},
      {"out_of_range.st", st_bytes("{\"a\":" + tensor("F32", "[4]", "[0,16]") + "}", f32x2),
       "out of range: the data section is 8 bytes", "'a'"},
      {"truncated_data.st", st_bytes("{\"a\":" + tensor("F32", "[2]", "[0,8]") + "}", "\x01\x02\x03"),
       "out of range", "'a'"},
      {"begin_after_end.st", st_bytes("{\"a\":" + tensor("F32", "[2]", "[8,0]") + "}", f32x2),
       "begin > end", "'a'"},
      {"overlap.st",
       st_bytes("{" + a_ok + ",\"b\":" + tensor("F32", "[2]", "[4,12]") + "}", std::string(12, 'x')),
       "overlaps tensor 'a'", "'b'"},
      {"trailing.st", st_bytes("{" + a_ok + "}", std::string(12, 'x')),
       "4 trailing bytes after the last tensor", nullptr},
      {"gap.st",
       st_bytes("{\"a\":" + tensor("F32", "[1]", "[0,4]") + ",\"b\":" + tensor("F32", "[1]", "[8,12]") + "}",
                std::string(12, 'x')),
       "gap of 4 unused bytes", "'b'"},
      {"gap_at_start.st", st_bytes("{\"a\":" + tensor("F32", "[1]", "[4,8]") + "}", f32x2),
       "gap of 4 unused bytes", "'a'"},
      {"negative_dim.st", st_bytes("{\"a\":" + tensor("F32", "[-2]", "[0,8]") + "}", f32x2),
       "negative dimension -2", "'a'"},
      {"fractional_dim.st", st_bytes("{\"a\":" + tensor("F32", "[2.5]", "[0,8]") + "}", f32x2),
       "non-integer dimension 2.5", "'a'"},
      {"string_dim.st", st_bytes("{\"a\":" + tensor("F32", "[\"2\"]", "[0,8]") + "}", f32x2),
       "non-integer dimension \"2\"", "'a'"},
      {"overflow.st",
       st_bytes("{\"a\":" + tensor("F32", "[4611686018427387904,4]", "[0,8]") + "}", f32x2),
       "overflows size_t", "'a'"},
      {"meta_not_string.st", st_bytes("{\"__metadata__\":{\"step\":12}}", ""),
       "__metadata__ value for 'step' is not a string", nullptr},
      {"meta_not_object.st", st_bytes("{\"__metadata__\":[\"x\"]}", ""),
       "__metadata__ is not an object of strings", nullptr},
      {"missing_offsets.st", st_bytes(R"({"a":{"dtype":"F32","shape":[2]}})", f32x2),
       "missing key \"data_offsets\"", "'a'"},
      {"missing_dtype.st", st_bytes(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f32x2),
       "missing key \"dtype\"", "'a'"},
      {"offsets_three.st", st_bytes("{\"a\":" + tensor("F32", "[2]", "[0,8,8]") + "}", f32x2),
       "\"data_offsets\" is not an array of two integers", "'a'"},
      {"offsets_negative.st", st_bytes("{\"a\":" + tensor("F32", "[2]", "[-1,7]") + "}", f32x2),
       "\"data_offsets\" must hold non-negative integers", "'a'"},
      {"duplicate_name.st", st_bytes("{" + a_ok + "," + a_ok + "}", f32x2), "duplicate key 'a'", nullptr},
      {"duplicate_key_in_entry.st",
       st_bytes(R"({"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f32x2),
       "duplicate key 'dtype'", nullptr},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    const std::string path = dir.file(c.file);
    write_bytes(path, c.bytes);
    std::string msg = message_of(path);
    CAPTURE(msg);
    CHECK(msg.find(c.file) != std::string::npos);
    CHECK(msg.find(c.phrase) != std::string::npos);
    if (c.tensor) CHECK(msg.find(c.tensor) != std::string::npos);
  }
}

TEST_CASE("safetensors open: missing files and directories") {
  TempDir dir;
  std::string msg = message_of(dir.file("absent.safetensors"));
  CHECK(msg.find("cannot open") != std::string::npos);
  CHECK(msg.find("absent.safetensors") != std::string::npos);
  msg = message_of(dir.path.string());
  CHECK(msg.find("is a directory") != std::string::npos);
  CHECK(msg.find(dir.path.string()) != std::string::npos);
}

TEST_CASE("SafetensorsFile::at names the file, the tensor and what is there") {
  TempDir dir;
  const std::string path = dir.file("many.safetensors");
  std::vector<uint8_t> byte(1, 0);
  std::vector<SafetensorsWriteEntry> entries;
  for (int i = 0; i < 30; ++i)
    entries.push_back({"t" + std::to_string(100 + i), SafetensorsDType::U8, {1}, byte.data(), 1});
  write_safetensors(path, entries);
  SafetensorsFile f = SafetensorsFile::open(path);
  try {
    f.at("vision_model.missing");
    FAIL("at() should throw");
  } catch (const minivl::Error& e) {
    std::string msg = e.what();
    CHECK(msg.find("many.safetensors") != std::string::npos);
    CHECK(msg.find("no tensor named 'vision_model.missing'") != std::string::npos);
    CHECK(msg.find("30 tensors available: t100, t101") != std::string::npos);
    CHECK(msg.find("... and 10 more") != std::string::npos);
    CHECK(msg.find("t129") == std::string::npos);
  }
}

TEST_CASE("SafetensorsFile moves keep the data pointers valid") {
  TempDir dir;
  const std::string path = dir.file("move.safetensors");
  double v[3] = {1, 2, 3};
  write_safetensors(path, {{"v", SafetensorsDType::F64, {3}, v, sizeof v}});
  SafetensorsFile a = SafetensorsFile::open(path);
  const uint8_t* p = a.at("v").data;
  SafetensorsFile b = std::move(a);
  CHECK(b.at("v").data == p);
  SafetensorsFile c = SafetensorsFile::open(path);
  c = std::move(b);
  double w[3];
  std::memcpy(w, c.at("v").data, sizeof w);
  CHECK(w[2] == 3.0);
}

TEST_CASE("write_safetensors validates before touching PATH and never leaves a broken file") {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  float old_data[2] = {1.0f, 2.0f};
  write_safetensors(path, {{"w", SafetensorsDType::F32, {2}, old_data, 8}}, {{"version", "old"}});
  auto only_model_left = [&] {
    int files = 0;
    for (const auto& e : fs::directory_iterator(dir.path)) {
      ++files;
      CHECK(e.path().filename() == "model.safetensors");   // no PATH.tmp.<pid> left behind
    }
    CHECK(files == 1);
  };
  auto still_old = [&] {
    SafetensorsFile f = SafetensorsFile::open(path);
    CHECK(f.metadata().at("version") == "old");
    CHECK(std::memcmp(f.at("w").data, old_data, 8) == 0);
  };

  float new_data[3] = {4, 5, 6};
  auto expect_throw = [&](const std::vector<SafetensorsWriteEntry>& entries, const char* phrase) {
    CAPTURE(phrase);
    CHECK_THROWS_WITH_AS(write_safetensors(path, entries, {{"version", "new"}}),
                         doctest::Contains(phrase), minivl::Error);
    still_old();
    only_model_left();
  };
  // The bad entry comes last, after a good one.
  expect_throw({{"w", SafetensorsDType::F32, {3}, new_data, 12},
                {"b", SafetensorsDType::F32, {3}, new_data, 8}},
               "needs 12 bytes but 8 were given");
  expect_throw({{"w", SafetensorsDType::F32, {3}, new_data, 12},
                {"w", SafetensorsDType::F32, {3}, new_data, 12}},
               "duplicate name");
  expect_throw({{"w", SafetensorsDType::F32, {-3}, new_data, 12}}, "negative dimension");
  expect_throw({{"__metadata__", SafetensorsDType::F32, {3}, new_data, 12}}, "reserved");
  expect_throw({{"", SafetensorsDType::F32, {3}, new_data, 12}}, "empty name");
  expect_throw({{"w", SafetensorsDType::F32, {3}, nullptr, 12}}, "data is null");
  expect_throw({{"w", SafetensorsDType::F64, {int64_t(1) << 62, 4}, new_data, 12}}, "overflows");

  // A file opened before an overwrite keeps reading the old bytes (rename
  // replaces the inode; the mapping holds the old one).
  SafetensorsFile before = SafetensorsFile::open(path);
  write_safetensors(path, {{"w", SafetensorsDType::F32, {3}, new_data, 12}}, {{"version", "new"}});
  CHECK(std::memcmp(before.at("w").data, old_data, 8) == 0);
  SafetensorsFile after = SafetensorsFile::open(path);
  CHECK(after.metadata().at("version") == "new");
  CHECK(std::memcmp(after.at("w").data, new_data, 12) == 0);
  only_model_left();
}

TEST_CASE("write_safetensors reports I/O failures and cleans up") {
  TempDir dir;
  float x = 1;
  CHECK_THROWS_WITH_AS(write_safetensors(dir.file("no/such/dir/m.safetensors"),
                                         {{"x", SafetensorsDType::F32, {}, &x, 4}}),
                       doctest::Contains("cannot create"), minivl::Error);
  // PATH is a folder: the rename fails, and the temporary file goes away.
  fs::create_directories(dir.path / "taken.safetensors");
  CHECK_THROWS_WITH_AS(write_safetensors(dir.file("taken.safetensors"),
                                         {{"x", SafetensorsDType::F32, {}, &x, 4}}),
                       doctest::Contains("cannot rename"), minivl::Error);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    ++files;
    CHECK(e.path().filename() == "taken.safetensors");
  }
  CHECK(files == 1);
}
