#pragma once
// CLIP's byte-level BPE tokenizer, exact to OpenAI's simple_tokenizer.py (github.com/openai/CLIP).
//
//   auto tok = minivl::tokenizer::ClipTokenizer::load("bpe_simple_vocab_16e6.txt.gz");  // OpenAI's merges
//   tok.encode("a photo of a cat.");                  // {320, 1125, 539, 320, 2368, 269}
//   tok.tokenize({"a diagram"});                      // {{49406, 320, 22697, 49407, 0, ... 0}} (77 ids)
//   tok.decode({320, 22697});                         // "a diagram "
//
// Pipeline: clean (text_clean.h) -> pre-tokenise (pretokenize.h) -> UTF-8 bytes mapped to the
// 256-symbol byte alphabet (id 0 is '!') with "</w>" on the last symbol -> BPE merges by lowest
// rank, with a cache of words already seen. Token strings are kept in the byte alphabet, as in
// the reference (and in Hugging Face's vocab.json).
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace minivl::tokenizer {

// The byte alphabet of bytes_to_unicode(): byte -> code point, and the order of the first 256 ids.
char32_t byte_to_unicode(uint8_t b);
const std::vector<uint8_t>& byte_alphabet_order();   // id i (< 256) is the symbol for byte order[i]
std::string byte_symbol(uint8_t b);                  // UTF-8 of byte_to_unicode(b)

using MergeList = std::vector<std::pair<std::string, std::string>>;

class ClipTokenizer {
 public:
  static constexpr int kDefaultContextLength = 77;

  // PATH: OpenAI's gzipped merges file (*.gz), Hugging Face's vocab.json (merges.txt beside
  // it) or merges.txt (vocab.json beside it), a tokenizer.json, or a folder holding one of these.
  static ClipTokenizer load(const std::string& path);
  static ClipTokenizer from_openai_merges(const std::string& gz_path);
  static ClipTokenizer from_hf_files(const std::string& vocab_json, const std::string& merges_txt);
  static ClipTokenizer from_tokenizer_json(const std::string& path);

  // vocab[id] = token string (byte alphabet, "</w>" suffixes, special tokens); merges in rank
  // order. Duplicates behave as in Python dicts: the later id / rank wins. `source` names the
  // origin in error messages.
  ClipTokenizer(std::vector<std::string> vocab, const MergeList& merges, std::string source);

  // SimpleTokenizer.encode: no SOT/EOT.
  std::vector<int32_t> encode(std::string_view text) const;
  // SimpleTokenizer.decode: bytes decoded as UTF-8 with U+FFFD for invalid ones, "</w>" -> " ".
  std::string decode(std::span<const int32_t> ids) const;
  // clip.tokenize: each row SOT + ids + EOT, padded with 0 to context_length. Too long: with
  // truncate, keep the first context_length - 1 tokens and end with EOT; without, an error.
  std::vector<std::vector<int32_t>> tokenize(const std::vector<std::string>& texts,
                                             int context_length = kDefaultContextLength,
                                             bool truncate = true) const;

  // The cleaned text the pre-tokeniser sees (UTF-8): ftfy subset, html.unescape x2,
  // whitespace collapsed and stripped, lower-cased.
  static std::string clean(std::string_view text);

  int32_t sot_id() const { return sot_id_; }
  int32_t eot_id() const { return eot_id_; }
  std::size_t vocab_size() const { return vocab_.size(); }
  std::size_t num_merges() const { return num_merges_; }
  const std::string& id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string& source() const { return source_; }

  // The word cache (on by default). Disabling it also clears it; used to time cold encoding.
  void set_cache_enabled(bool enabled);
  void clear_cache() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;
  using WordCache = std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>>;

  void bpe_word(std::string_view word_bytes, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word_bytes, std::vector<int32_t>& out) const;

  std::vector<std::string> vocab_;              // id -> token string
  std::vector<std::optional<std::string>> id_bytes_;   // id -> raw bytes it decodes to
  TokenMap encoder_;                            // token string -> id (later duplicate wins)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;   // (a, b) -> (rank, ab)
  int32_t byte_id_[256] = {};                   // initial symbols
  int32_t byte_end_id_[256] = {};               // the same with "</w>"
  int32_t sot_id_ = -1, eot_id_ = -1;
  std::size_t num_merges_ = 0;
  std::string source_;
  bool cache_enabled_ = true;
  mutable std::unique_ptr<std::mutex> cache_mutex_ = std::make_unique<std::mutex>();
  mutable WordCache cache_;
};

}  // namespace minivl::tokenizer
