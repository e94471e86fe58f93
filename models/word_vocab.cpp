#include "models/word_vocab.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/ops.h"
#include "models/caption_metrics.h"

namespace minivl::models {
using json = nlohmann::json;

namespace {
// Calls f(word) for each word of caption_tokenize(text), in order.
template <typename F>
void for_each_word(const std::string& text, F&& f) {
  const std::string tok = caption_tokenize(text);
  std::size_t i = 0;
  while (i < tok.size()) {
    std::size_t j = tok.find(' ', i);
    if (j == std::string::npos) j = tok.size();
    if (j > i) f(tok.substr(i, j - i));
    i = j + 1;
  }
}
}  // namespace

WordVocab::WordVocab() {
  for (const char* w : {"<pad>", "<bos>", "<eos>", "<unk>"}) {
    index_[w] = int64_t(words_.size());
    words_.push_back(w);
  }
}

WordVocab WordVocab::build(const std::vector<std::string>& texts, int64_t min_count) {
  std::map<std::string, int64_t> counts;
  for (const std::string& t : texts) for_each_word(t, [&](std::string word) { ++counts[word]; });
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  WordVocab v;
  for (const auto& [w, c] : sorted) {
    if (c < min_count || v.index_.count(w)) continue;
    v.index_[w] = int64_t(v.words_.size());
    v.words_.push_back(w);
  }
  return v;
}

std::vector<int64_t> WordVocab::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for_each_word(text, [&](const std::string& word) {
    auto it = index_.find(word);
    ids.push_back(it == index_.end() ? kUnk : it->second);
  });
  return ids;
}

std::string WordVocab::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    if (id == kEos) break;
    if (id == kPad || id == kBos || id < 0 || id >= size()) continue;
    if (!out.empty()) out.push_back(' ');
    out += words_[size_t(id)];
  }
  return out;
}

WordVocab WordVocab::from_json(const json& j) {
  MINIVL_CHECK(j.is_array() && j.size() >= 4, "vocab.json: expected a list of words starting with the 4 specials");
  WordVocab v;
  v.words_.clear();
  v.index_.clear();
  for (const auto& w : j) {
    v.index_[w.get<std::string>()] = int64_t(v.words_.size());
    v.words_.push_back(w.get<std::string>());
  }
  return v;
}

Tensor pad_id_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad) {
  size_t T = 1;
  for (const auto& r : rows) T = std::max(T, r.size());
  std::vector<int64_t> flat(rows.size() * T, pad);
  for (size_t b = 0; b < rows.size(); ++b) std::copy(rows[b].begin(), rows[b].end(), flat.begin() + ptrdiff_t(b * T));
  return from_vector_i64(flat, {int64_t(rows.size()), int64_t(T)});
}

}  // namespace minivl::models
