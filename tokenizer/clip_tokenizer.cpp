#include "tokenizer/clip_tokenizer.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/text_clean.h"
#include "tokenizer/unicode.h"

namespace minivl::tokenizer {

namespace {

constexpr std::string_view kEndOfWord = "</w>";
constexpr std::string_view kStartOfText = "<|startoftext|>";
constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr std::size_t kMaxCacheEntries = 1 << 20;

struct ByteAlphabet {
  char32_t to_unicode[256];
  std::vector<uint8_t> order;
  ByteAlphabet() {
    // bytes_to_unicode(): printable Latin-1 bytes map to themselves, in byte order; the other
    // 68 bytes follow, mapped to U+0100.. in byte order.
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    for (int b = 0; b < 256; ++b) {
      if (printable(b)) {
        order.push_back(static_cast<uint8_t>(b));
        to_unicode[b] = static_cast<char32_t>(b);
      }
    }
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      if (!printable(b)) {
        order.push_back(static_cast<uint8_t>(b));
        to_unicode[b] = next++;
      }
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet a;
  return a;
}

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return alphabet().to_unicode[b]; }
const std::vector<uint8_t>& byte_alphabet_order() { return alphabet().order; }
std::string byte_symbol(uint8_t b) {
  std::string s;
  utf8_append(s, byte_to_unicode(b));
  return s;
}

ClipTokenizer::ClipTokenizer(std::vector<std::string> vocab, const MergeList& merges,
                             std::string source)
    : vocab_(std::move(vocab)), source_(std::move(source)) {
  encoder_.reserve(vocab_.size());
  for (std::size_t id = 0; id < vocab_.size(); ++id) {
    encoder_[vocab_[id]] = static_cast<int32_t>(id);   // dict(zip(vocab, range)): later wins
  }
  // The raw bytes each token decodes to (byte_decoder applied to every character).
  std::unordered_map<char32_t, uint8_t> byte_decoder;
  for (int b = 0; b < 256; ++b) byte_decoder[byte_to_unicode(static_cast<uint8_t>(b))] = b;
  id_bytes_.resize(vocab_.size());
  for (std::size_t id = 0; id < vocab_.size(); ++id) {
    std::string bytes;
    bool ok = !vocab_[id].empty();
    for (char32_t c : utf8_decode(vocab_[id])) {
      auto it = byte_decoder.find(c);
      if (it == byte_decoder.end()) {
        ok = false;
        break;
      }
      bytes.push_back(static_cast<char>(it->second));
    }
    if (ok) id_bytes_[id] = std::move(bytes);
  }
  for (int b = 0; b < 256; ++b) {
    const std::string sym = byte_symbol(static_cast<uint8_t>(b));
    auto it = encoder_.find(sym);
    auto it_end = encoder_.find(sym + std::string(kEndOfWord));
    MINIVL_CHECK(it != encoder_.end() && it_end != encoder_.end(), "tokenizer: ", source_,
                 ": the vocabulary lacks the byte symbol for byte ", b, " (with or without </w>)");
    byte_id_[b] = it->second;
    byte_end_id_[b] = it_end->second;
  }
  auto sot = encoder_.find(kStartOfText);
  auto eot = encoder_.find(kEndOfText);
  MINIVL_CHECK(sot != encoder_.end() && eot != encoder_.end(), "tokenizer: ", source_,
               ": the vocabulary lacks <|startoftext|> or <|endoftext|>");
  sot_id_ = sot->second;
  eot_id_ = eot->second;
  // bpe_ranks = dict(zip(merges, range)): later duplicates win. A merge whose parts are not
  // tokens can never apply (every symbol a word can hold is a token).
  merges_.reserve(merges.size());
  num_merges_ = merges.size();
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = encoder_.find(a), ib = encoder_.find(b), iab = encoder_.find(a + b);
    if (ia == encoder_.end() || ib == encoder_.end()) continue;
    MINIVL_CHECK(iab != encoder_.end(), "tokenizer: ", source_, ": merge ", rank + 1, " ('", a,
                 " ", b, "') makes a token that is not in the vocabulary");
    merges_[pair_key(ia->second, ib->second)] = {static_cast<int32_t>(rank), iab->second};
  }
}

const std::string& ClipTokenizer::id_to_token(int32_t id) const {
  MINIVL_CHECK(id >= 0 && static_cast<std::size_t>(id) < vocab_.size(), "tokenizer: id ", id,
               " is out of range for a vocabulary of ", vocab_.size());
  return vocab_[id];
}

std::optional<int32_t> ClipTokenizer::token_to_id(std::string_view token) const {
  auto it = encoder_.find(token);
  if (it == encoder_.end()) return std::nullopt;
  return it->second;
}

void ClipTokenizer::set_cache_enabled(bool enabled) {
  cache_enabled_ = enabled;
  if (!enabled) clear_cache();
}

void ClipTokenizer::clear_cache() const {
  std::lock_guard<std::mutex> lock(*cache_mutex_);
  cache_.clear();
}

std::string ClipTokenizer::clean(std::string_view text) { return utf8_encode(clean_text(text)); }

// SimpleTokenizer.bpe on one pre-token given as raw UTF-8 bytes.
void ClipTokenizer::bpe_word(std::string_view bytes, std::vector<int32_t>& out) const {
  std::vector<int32_t> word(bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    word[i] = i + 1 == bytes.size() ? byte_end_id_[b] : byte_id_[b];
  }
  std::vector<int32_t> next;
  next.reserve(word.size());
  while (word.size() > 1) {
    // bigram = min(pairs, key=rank)
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    int32_t first = -1, second = -1, merged = -1;
    for (std::size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find(pair_key(word[i], word[i + 1]));
      if (it != merges_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        first = word[i];
        second = word[i + 1];
        merged = it->second.second;
      }
    }
    if (merged < 0) break;
    // Merge every occurrence, left to right.
    next.clear();
    for (std::size_t i = 0; i < word.size();) {
      if (word[i] == first && i + 1 < word.size() && word[i + 1] == second) {
        next.push_back(merged);
        i += 2;
      } else {
        next.push_back(word[i]);
        ++i;
      }
    }
    word.swap(next);
  }
  out.insert(out.end(), word.begin(), word.end());
}

void ClipTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  // The reference's cache starts with the two special tokens mapped to themselves.
  if (word == kStartOfText) {
    out.push_back(sot_id_);
    return;
  }
  if (word == kEndOfText) {
    out.push_back(eot_id_);
    return;
  }
  if (!cache_enabled_) {
    bpe_word(word, out);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(*cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  bpe_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(*cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(std::string(word), std::move(ids));
}

std::vector<int32_t> ClipTokenizer::encode(std::string_view text) const {
  const std::u32string cleaned = clean_text(text);
  std::vector<int32_t> ids;
  ids.reserve(cleaned.size() / 3 + 4);
  std::string word;
  pretokenize(cleaned, [&](std::size_t begin, std::size_t end) {
    word.clear();
    for (std::size_t i = begin; i < end; ++i) utf8_append(word, cleaned[i]);
    encode_word(word, ids);
  });
  return ids;
}

std::string ClipTokenizer::decode(std::span<const int32_t> ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    MINIVL_CHECK(id >= 0 && static_cast<std::size_t>(id) < vocab_.size(), "tokenizer: decode: id ",
                 id, " is out of range for a vocabulary of ", vocab_.size());
    MINIVL_CHECK(id_bytes_[id].has_value(), "tokenizer: decode: token ", id, " ('", vocab_[id],
                 "') is not made of byte-alphabet characters");
    bytes += *id_bytes_[id];
  }
  // .decode('utf-8', errors='replace').replace('</w>', ' ')
  std::string text = utf8_encode(utf8_decode(bytes));
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, kEndOfWord.size(), kEndOfWord) == 0) {
      out.push_back(' ');
      i += kEndOfWord.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::vector<std::vector<int32_t>> ClipTokenizer::tokenize(const std::vector<std::string>& texts,
                                                          int context_length, bool truncate) const {
  MINIVL_CHECK(context_length >= 2, "tokenizer: context length must be at least 2, got ",
               context_length);
  std::vector<std::vector<int32_t>> rows;
  rows.reserve(texts.size());
  for (const std::string& text : texts) {
    std::vector<int32_t> ids;
    ids.push_back(sot_id_);
    const std::vector<int32_t> body = encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.push_back(eot_id_);
    if (ids.size() > static_cast<std::size_t>(context_length)) {
      MINIVL_CHECK(truncate, "tokenizer: input is too long for context length ", context_length,
                   ": ", ids.size(), " tokens with <|startoftext|> and <|endoftext|> (text: \"",
                   text.substr(0, 80), text.size() > 80 ? "...\")" : "\")");
      ids.resize(context_length);
      ids.back() = eot_id_;
    }
    ids.resize(context_length, 0);
    rows.push_back(std::move(ids));
  }
  return rows;
}

}  // namespace minivl::tokenizer
