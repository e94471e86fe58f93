// Vocabulary loaders: OpenAI's gzipped merges file, Hugging Face's vocab.json + merges.txt,
// and tokenizer.json. Errors name the file and, where there is one, the line.
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/clip_tokenizer.h"

namespace minivl::tokenizer {

namespace fs = std::filesystem;

namespace {

// OpenAI's file: line 0 is a header, lines 1 .. 49152 - 256 - 2 are the merges used.
constexpr std::size_t kOpenAiMerges = 49152 - 256 - 2;
constexpr const char* kStartOfText = "<|startoftext|>";
constexpr const char* kEndOfText = "<|endoftext|>";

std::string read_gzip(const std::string& path) {
  MINIVL_CHECK(fs::is_regular_file(path), "tokenizer: ", path, ": no such file");
  gzFile f = gzopen(path.c_str(), "rb");
  MINIVL_CHECK(f != nullptr, "tokenizer: ", path, ": cannot open");
  std::string out;
  char buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<std::size_t>(n));
  int errnum = 0;
  const char* msg = gzerror(f, &errnum);
  const std::string err = (n < 0 || errnum != Z_OK) ? (msg ? msg : "read error") : "";
  const bool direct = gzdirect(f) != 0;
  gzclose(f);
  MINIVL_CHECK(err.empty(), "tokenizer: ", path, ": corrupt gzip data (", err, ")");
  MINIVL_CHECK(!direct, "tokenizer: ", path, ": not a gzip file (expected OpenAI's gzipped BPE merges, "
               "e.g. bpe_simple_vocab_16e6.txt.gz)");
  return out;
}

std::string read_text(const std::string& path) {
  MINIVL_CHECK(fs::is_regular_file(path), "tokenizer: ", path, ": no such file");
  std::ifstream in(path, std::ios::binary);
  MINIVL_CHECK(in.good(), "tokenizer: ", path, ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

// "a b" -> {a, b}; anything else is an error naming the file and (1-based) line.
std::pair<std::string, std::string> parse_merge(std::string_view line, const std::string& path,
                                                std::size_t line_no) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) ++i;
    std::size_t j = i;
    while (j < line.size() && !space(line[j])) ++j;
    if (j > i) parts.emplace_back(line.substr(i, j - i));
    i = j;
  }
  MINIVL_CHECK(parts.size() == 2, "tokenizer: ", path, ":", line_no,
               ": expected a merge of two symbols separated by a space, got \"",
               std::string(line.substr(0, 60)), "\"");
  return {parts[0], parts[1]};
}

std::vector<std::string> byte_level_base_vocab() {
  std::vector<std::string> vocab;
  for (uint8_t b : byte_alphabet_order()) vocab.push_back(byte_symbol(b));
  for (uint8_t b : byte_alphabet_order()) vocab.push_back(byte_symbol(b) + "</w>");
  return vocab;
}

// vocab.json-style object -> id-indexed list.
std::vector<std::string> vocab_from_json(const nlohmann::json& obj, const std::string& path) {
  MINIVL_CHECK(obj.is_object(), "tokenizer: ", path, ": expected a JSON object of token -> id");
  std::vector<std::string> vocab(obj.size());
  std::vector<bool> seen(obj.size(), false);
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    MINIVL_CHECK(it.value().is_number_integer(), "tokenizer: ", path, ": token \"", it.key(),
                 "\" has a non-integer id");
    const int64_t id = it.value().get<int64_t>();
    MINIVL_CHECK(id >= 0 && static_cast<std::size_t>(id) < vocab.size() && !seen[id],
                 "tokenizer: ", path, ": token \"", it.key(), "\" has id ", id,
                 ", but ids must be 0 .. ", vocab.size() - 1, " and distinct");
    vocab[id] = it.key();
    seen[id] = true;
  }
  return vocab;
}

nlohmann::json parse_json(const std::string& path) {
  const std::string text = read_text(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.what() says "at line L, column C".
    MINIVL_FAIL("tokenizer: ", path, ": invalid JSON: ", e.what());
  }
}

}  // namespace

ClipTokenizer ClipTokenizer::from_openai_merges(const std::string& path) {
  const std::string text = read_gzip(path);
  const std::vector<std::string_view> lines = split_lines(text);
  MergeList merges;
  for (std::size_t i = 1; i < lines.size() && merges.size() < kOpenAiMerges; ++i) {
    if (i + 1 == lines.size() && lines[i].empty()) break;   // the newline that ends the file
    merges.push_back(parse_merge(lines[i], path, i + 1));
  }
  MINIVL_CHECK(!merges.empty(), "tokenizer: ", path, ": no merges after the header line");
  std::vector<std::string> vocab = byte_level_base_vocab();
  for (const auto& [a, b] : merges) vocab.push_back(a + b);
  vocab.emplace_back(kStartOfText);
  vocab.emplace_back(kEndOfText);
  return ClipTokenizer(std::move(vocab), merges, path);
}

ClipTokenizer ClipTokenizer::from_hf_files(const std::string& vocab_json,
                                           const std::string& merges_txt) {
  std::vector<std::string> vocab = vocab_from_json(parse_json(vocab_json), vocab_json);
  const std::string text = read_text(merges_txt);
  const std::vector<std::string_view> lines = split_lines(text);
  MergeList merges;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (i == 0 && line.starts_with("#")) continue;   // "#version: 0.2"
    if (line.empty() && i + 1 == lines.size()) break;
    merges.push_back(parse_merge(line, merges_txt, i + 1));
  }
  return ClipTokenizer(std::move(vocab), merges, vocab_json);
}

ClipTokenizer ClipTokenizer::from_tokenizer_json(const std::string& path) {
  const nlohmann::json doc = parse_json(path);
  MINIVL_CHECK(doc.is_object() && doc.contains("model") && doc["model"].is_object(), "tokenizer: ",
               path, ": not a tokenizer.json (no \"model\" object)");
  const nlohmann::json& model = doc["model"];
  MINIVL_CHECK(model.value("type", std::string("BPE")) == "BPE", "tokenizer: ", path,
               ": model type is not BPE");
  MINIVL_CHECK(model.contains("vocab") && model.contains("merges") && model["merges"].is_array(),
               "tokenizer: ", path, ": model lacks \"vocab\" or \"merges\"");
  nlohmann::json vocab_obj = model["vocab"];
  if (doc.contains("added_tokens") && doc["added_tokens"].is_array()) {
    for (const auto& t : doc["added_tokens"]) {
      if (t.contains("content") && t.contains("id")) vocab_obj[t["content"].get<std::string>()] = t["id"];
    }
  }
  std::vector<std::string> vocab = vocab_from_json(vocab_obj, path);
  MergeList merges;
  std::size_t index = 0;
  for (const auto& m : model["merges"]) {
    ++index;
    if (m.is_string()) {
      merges.push_back(parse_merge(m.get<std::string>(), path + " merge", index));
    } else {
      MINIVL_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                   "tokenizer: ", path, ": merge ", index, " is neither \"a b\" nor [\"a\", \"b\"]");
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    }
  }
  return ClipTokenizer(std::move(vocab), merges, path);
}

ClipTokenizer ClipTokenizer::load(const std::string& path) {
  const fs::path p(path);
  MINIVL_CHECK(fs::exists(p), "tokenizer: ", path, ": no such file or folder");
  if (fs::is_directory(p)) {
    if (fs::exists(p / "vocab.json") && fs::exists(p / "merges.txt")) {
      return from_hf_files((p / "vocab.json").string(), (p / "merges.txt").string());
    }
    if (fs::exists(p / "tokenizer.json")) return from_tokenizer_json((p / "tokenizer.json").string());
    if (fs::exists(p / "bpe_simple_vocab_16e6.txt.gz")) {
      return from_openai_merges((p / "bpe_simple_vocab_16e6.txt.gz").string());
    }
    MINIVL_FAIL("tokenizer: ", path, ": folder holds neither vocab.json + merges.txt, "
                "tokenizer.json nor bpe_simple_vocab_16e6.txt.gz");
  }
  const std::string name = p.filename().string();
  if (name.ends_with(".gz")) return from_openai_merges(path);
  if (name == "merges.txt" || name.ends_with(".txt")) {
    const fs::path vocab = p.parent_path() / "vocab.json";
    MINIVL_CHECK(fs::exists(vocab), "tokenizer: ", path, ": no vocab.json beside it");
    return from_hf_files(vocab.string(), path);
  }
  if (name.ends_with(".json")) {
    const fs::path merges = p.parent_path() / "merges.txt";
    if (name != "tokenizer.json" && fs::exists(merges)) return from_hf_files(path, merges.string());
    return from_tokenizer_json(path);
  }
  MINIVL_FAIL("tokenizer: ", path, ": unknown vocabulary format (expected *.txt.gz, vocab.json, "
              "merges.txt, tokenizer.json or a model folder)");
}

}  // namespace minivl::tokenizer
