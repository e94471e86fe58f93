// docs/errors.md is a test: every row of its table (an input, a bad version of it, the command,
// the exit code and the message) runs against the real CLI here. The bad fixture files live in
// one temporary folder ({fx}); {src} is the source tree and {tmp} a scratch folder.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "nn_test_util.h"

TEST_SUITE_BEGIN("cli_errors");

namespace fs = std::filesystem;
using minivl::testing::NnTempDir;
using minivl::testing::run_minivl;

namespace {

struct ErrorRow {
  std::string input, bad, command, message;
  int exit_code = -1;
};

std::string trim_cell(std::string s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '`')) s.erase(s.begin());
  while (!s.empty() && (s.back() == ' ' || s.back() == '`')) s.pop_back();
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// The rows under "## Table" (header and separator skipped).
std::vector<ErrorRow> read_error_table(const std::string& path) {
  std::ifstream in(path);
  std::vector<ErrorRow> rows;
  bool in_table = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("## ", 0) == 0) in_table = line == "## Table";
    if (!in_table || line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    for (std::string cell; std::getline(ss, cell, '|');) cells.push_back(trim_cell(cell));
    if (cells.size() < 5) continue;
    rows.push_back({cells[0], cells[1], cells[2], cells[4], std::stoi(cells[3])});
  }
  return rows;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xff);
  return s;
}

// The bad (and a few good) files the table's commands read.
void write_fixtures(const fs::path& fx) {
  write(fx / "garbage.bin", "garbage bytes, not a file format");
  write(fx / "empty.txt", "");
  const std::string header = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  write(fx / "truncated.safetensors", le64(header.size()) + header + std::string(10, '\0'));
  write(fx / "short_header.safetensors", le64(4096) + "{}");
  write(fx / "bad_json.safetensors", le64(5) + "{oops");
  write(fx / "notgzip.txt.gz", "not gzip at all");
  fs::create_directories(fx / "badvocab");
  write(fx / "badvocab" / "vocab.json", R"({"a": 0, "b": )");
  write(fx / "badvocab" / "merges.txt", "#version: 0.2\na b\n");
  fs::create_directories(fx / "badmerges");
  write(fx / "badmerges" / "vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  write(fx / "badmerges" / "merges.txt", "#version: 0.2\na b\nthree parts here\n");
  minivl::data::Image image(8, 6, 100);
  minivl::data::write_png((fx / "good.png").string(), image);
  const std::vector<uint8_t> png = minivl::data::encode_png(image);
  write(fx / "truncated.png", std::string(png.begin(), png.begin() + std::min<size_t>(png.size(), 45)));
  write(fx / "badpre.json", R"({"image_size": "big"})");
  write(fx / "badrefs.json", R"({"annotations": [)");
  write(fx / "cands.json", R"([{"question_id": 1, "answer": "yes"}])");
  write(fx / "nolist.json", R"({"images": []})");
  fs::create_directories(fx / "emptymodel");
  write(fx / "syntax.toml", "steps = 10\n[model\nname = \"mlp\"\n");
  write(fx / "unknown.toml", "steps = 10\n[model]\nname = \"mlp\"\n[optim]\nlearning_rate = 0.1\n");
  write(fx / "badtype.toml", "steps = 10\n[model]\nname = \"mlp\"\n[optim]\nlr = \"fast\"\n");
  write(fx / "nosteps.toml", "[model]\nname = \"mlp\"\n");
  write(fx / "badmodel.toml", "steps = 10\n[model]\nname = \"resnet\"\n");
}

}  // namespace

TEST_CASE("cli: every row of docs/errors.md gives its exit code and message through the real CLI") {
  const std::vector<ErrorRow> rows = read_error_table(MINIVL_SOURCE_DIR "/docs/errors.md");
  REQUIRE(rows.size() >= 30);
  NnTempDir fx, tmp;
  write_fixtures(fx.path);
  for (const ErrorRow& row : rows) {
    auto expand = [&](const std::string& s) {
      return replace_all(replace_all(replace_all(s, "{fx}", fx.path.string()), "{tmp}", tmp.path.string()), "{src}",
                         MINIVL_SOURCE_DIR);
    };
    const std::string command = expand(row.command), message = expand(row.message);
    const auto r = run_minivl(command);
    CAPTURE(row.input);
    CAPTURE(row.bad);
    CAPTURE(command);
    CAPTURE(r.output);
    CHECK(r.exit_code == row.exit_code);
    CHECK(r.output.find(message) != std::string::npos);
    CHECK(r.output.find("minivl: error: ") != std::string::npos);
  }
}

TEST_SUITE_END();
