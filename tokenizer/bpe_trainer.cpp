#include "tokenizer/bpe_trainer.h"

#include <filesystem>
#include <tuple>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/text_clean.h"
#include "tokenizer/unicode.h"

namespace minivl::tokenizer {

namespace {

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

uint64_t key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

BpeTrainResult train_bpe(const std::vector<std::string>& texts, std::size_t vocab_size,
                         int64_t min_pair_count) {
  MINIVL_CHECK(vocab_size >= 514, "train-bpe: vocab size must be at least 514 (512 byte symbols "
               "and 2 special tokens), got ", vocab_size);
  BpeTrainResult result;
  std::unordered_map<std::string, int32_t> ids;
  auto add_token = [&](const std::string& s) {
    auto [it, fresh] = ids.emplace(s, static_cast<int32_t>(result.vocab.size()));
    if (fresh) result.vocab.push_back(s);
    return it->second;
  };
  int32_t byte_id[256], byte_end_id[256];
  for (uint8_t b : byte_alphabet_order()) byte_id[b] = add_token(byte_symbol(b));
  for (uint8_t b : byte_alphabet_order()) byte_end_id[b] = add_token(byte_symbol(b) + "</w>");

  // Word frequencies over the cleaned, pre-tokenised corpus.
  std::unordered_map<std::string, int64_t> word_counts;
  for (const std::string& text : texts) {
    const std::u32string cleaned = clean_text(text);
    pretokenize(cleaned, [&](std::size_t begin, std::size_t end) {
      std::string word = utf8_encode(std::u32string_view(cleaned).substr(begin, end - begin));
      if (word != "<|startoftext|>" && word != "<|endoftext|>") ++word_counts[word];
    });
  }
  std::vector<Word> words;
  words.reserve(word_counts.size());
  for (const auto& [w, count] : word_counts) {
    Word word;
    word.count = count;
    for (std::size_t i = 0; i < w.size(); ++i) {
      const auto b = static_cast<uint8_t>(w[i]);
      word.symbols.push_back(i + 1 == w.size() ? byte_end_id[b] : byte_id[b]);
    }
    words.push_back(std::move(word));
  }

  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::unordered_set<int32_t>> pair_words;
  auto count_word = [&](int32_t wi, int64_t sign) {
    const Word& w = words[wi];
    for (std::size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      const uint64_t k = key(w.symbols[i], w.symbols[i + 1]);
      pair_counts[k] += sign * w.count;
      if (sign > 0) pair_words[k].insert(wi);
    }
  };
  for (int32_t wi = 0; wi < static_cast<int32_t>(words.size()); ++wi) count_word(wi, +1);

  const std::size_t specials = 2;
  while (result.vocab.size() + specials < vocab_size) {
    uint64_t best = 0;
    int64_t best_count = 0;
    for (const auto& [k, c] : pair_counts) {
      if (c < best_count || c <= 0) continue;
      if (c == best_count) {
        const auto a = static_cast<int32_t>(k >> 32), b = static_cast<int32_t>(k & 0xFFFFFFFF);
        const auto ba = static_cast<int32_t>(best >> 32), bb = static_cast<int32_t>(best & 0xFFFFFFFF);
        if (std::tie(result.vocab[a], result.vocab[b]) >= std::tie(result.vocab[ba], result.vocab[bb]))
          continue;
      }
      best = k;
      best_count = c;
    }
    if (best_count < min_pair_count) break;
    const auto first = static_cast<int32_t>(best >> 32), second = static_cast<int32_t>(best & 0xFFFFFFFF);
    const std::string a = result.vocab[first], b = result.vocab[second];
    result.merges.emplace_back(a, b);
    const int32_t merged = add_token(a + b);
    const std::unordered_set<int32_t> affected = std::move(pair_words[best]);
    pair_words.erase(best);
    for (int32_t wi : affected) {
      count_word(wi, -1);
      std::vector<int32_t>& syms = words[wi].symbols;
      std::vector<int32_t> next;
      next.reserve(syms.size());
      for (std::size_t i = 0; i < syms.size();) {
        if (syms[i] == first && i + 1 < syms.size() && syms[i + 1] == second) {
          next.push_back(merged);
          i += 2;
        } else {
          next.push_back(syms[i++]);
        }
      }
      syms.swap(next);
      count_word(wi, +1);
    }
    pair_counts.erase(best);
  }
  add_token("<|startoftext|>");
  add_token("<|endoftext|>");
  return result;
}

void write_hf_vocab(const BpeTrainResult& result, const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  MINIVL_CHECK(!ec, "train-bpe: cannot create ", out_dir, ": ", ec.message());
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (std::size_t id = 0; id < result.vocab.size(); ++id) vocab[result.vocab[id]] = id;
  const std::string vocab_path = (fs::path(out_dir) / "vocab.json").string();
  const std::string merges_path = (fs::path(out_dir) / "merges.txt").string();
  std::ofstream v(vocab_path, std::ios::binary);
  MINIVL_CHECK(v.good(), "train-bpe: cannot write ", vocab_path);
  v << vocab.dump() << "\n";
  std::ofstream m(merges_path, std::ios::binary);
  MINIVL_CHECK(m.good(), "train-bpe: cannot write ", merges_path);
  m << "#version: 0.2\n";
  for (const auto& [a, b] : result.merges) m << a << ' ' << b << '\n';
  MINIVL_CHECK(v.good() && m.good(), "train-bpe: write error in ", out_dir);
}

}  // namespace minivl::tokenizer
