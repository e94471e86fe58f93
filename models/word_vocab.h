#pragma once
// The word vocabulary of the VQA model's questions and the captioner's captions: the words of
// caption_tokenize()d text (models/caption_metrics.h, the scorers' tokenisation), after four specials.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace minivl::models {

// Words of caption_tokenize()d text; ids 0..3 are <pad>, <bos>, <eos>, <unk>.
class WordVocab {
 public:
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;
  WordVocab();
  // Words seen at least min_count times in `texts`, most frequent first (ties: alphabetical).
  static WordVocab build(const std::vector<std::string>& texts, int64_t min_count = 1);
  std::vector<int64_t> encode(const std::string& text) const;  // no <bos>/<eos>
  std::string decode(const std::vector<int64_t>& ids) const;   // stops at <eos>, skips <pad>/<bos>
  int64_t size() const { return int64_t(words_.size()); }
  const std::vector<std::string>& words() const { return words_; }
  nlohmann::json to_json() const { return words_; }  // vocab.json of a model folder
  static WordVocab from_json(const nlohmann::json& j);

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> index_;
};

// (B, T) i64 tensor of rows padded with `pad` to the longest.
Tensor pad_id_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad = WordVocab::kPad);

}  // namespace minivl::models
