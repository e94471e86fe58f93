#include "models/caption_metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "data/annotations.h"

namespace minivl::models {

namespace {

bool is_py_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}
bool is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Python's str.split() on ASCII whitespace.
std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_py_space(static_cast<unsigned char>(s[i]))) ++i;
    std::size_t j = i;
    while (j < s.size() && !is_py_space(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// n-gram -> count for n = 1..4; an n-gram is its words joined by ' ' (words hold no spaces), so the
// map for n holds only n-word keys.
using NgramCounts = std::array<std::unordered_map<std::string, int64_t>, 4>;

NgramCounts precook(const std::vector<std::string>& words) {
  NgramCounts counts;
  for (int k = 1; k <= 4; ++k) {
    for (std::size_t i = 0; i + k <= words.size(); ++i) {
      std::string key = words[i];
      for (int j = 1; j < k; ++j) key += ' ' + words[i + j];
      ++counts[k - 1][key];
    }
  }
  return counts;
}

}  // namespace

std::string caption_tokenize(std::string_view text) {
  std::string spaced;
  spaced.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if (c < 0x80 && std::ispunct(c)) {
      const bool inner_hyphen = c == '-' && i > 0 && i + 1 < text.size() &&
                                is_alnum(static_cast<unsigned char>(text[i - 1])) &&
                                is_alnum(static_cast<unsigned char>(text[i + 1]));
      if (!inner_hyphen) c = ' ';
    }
    spaced.push_back(static_cast<char>(c));
  }
  std::string out;
  for (const std::string& w : split_words(spaced)) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  }
  return out;
}

BleuScore corpus_bleu(const std::vector<std::vector<std::string>>& refs,
                      const std::vector<std::string>& cands) {
  MINIVL_CHECK(refs.size() == cands.size(), "corpus_bleu: ", refs.size(), " reference sets but ",
               cands.size(), " candidates");
  constexpr double kTiny = 1e-15, kSmall = 1e-9;  // bleu_scorer.py's constants
  std::array<double, 4> guess{}, correct{};
  double test_total = 0, ref_total = 0;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    MINIVL_CHECK(!refs[i].empty(), "corpus_bleu: image ", i, " has no references");
    // cook_refs: every reference length, and the max count of each n-gram over the references.
    std::vector<int64_t> ref_lens;
    std::array<std::unordered_map<std::string, int64_t>, 4> max_counts;
    for (const std::string& ref : refs[i]) {
      const auto words = split_words(ref);
      ref_lens.push_back(static_cast<int64_t>(words.size()));
      const NgramCounts counts = precook(words);
      for (int k = 0; k < 4; ++k)
        for (const auto& [g, c] : counts[k]) max_counts[k][g] = std::max(max_counts[k][g], c);
    }
    // cook_test.
    const auto words = split_words(cands[i]);
    const int64_t test_len = static_cast<int64_t>(words.size());
    const NgramCounts counts = precook(words);
    for (int k = 0; k < 4; ++k) {
      guess[k] += static_cast<double>(std::max<int64_t>(0, test_len - k));
      for (const auto& [g, c] : counts[k]) {
        auto it = max_counts[k].find(g);
        if (it != max_counts[k].end()) correct[k] += static_cast<double>(std::min(it->second, c));
      }
    }
    // 'closest': min over (|l - testlen|, l), so ties go to the shorter reference.
    int64_t best = ref_lens[0];
    for (int64_t l : ref_lens) {
      const int64_t d = std::llabs(l - test_len), bd = std::llabs(best - test_len);
      if (d < bd || (d == bd && l < best)) best = l;
    }
    test_total += static_cast<double>(test_len);
    ref_total += static_cast<double>(best);
  }
  BleuScore score;
  score.test_len = test_total;
  score.ref_len = ref_total;
  double product = 1.0;
  for (int k = 0; k < 4; ++k) {
    product *= (correct[k] + kTiny) / (guess[k] + kSmall);
    score.bleu[k] = std::pow(product, 1.0 / (k + 1));
  }
  const double ratio = (test_total + kTiny) / (ref_total + kSmall);
  if (ratio < 1) {
    for (int k = 0; k < 4; ++k) score.bleu[k] *= std::exp(1 - 1 / ratio);
  }
  return score;
}

double cider_d(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& cands,
               std::vector<double>* per_image, double sigma) {
  MINIVL_CHECK(refs.size() == cands.size(), "cider_d: ", refs.size(), " reference sets but ",
               cands.size(), " candidates");
  MINIVL_CHECK(!refs.empty(), "cider_d: no images to score");
  std::vector<std::vector<NgramCounts>> cooked_refs(refs.size());
  std::vector<NgramCounts> cooked_cands(refs.size());
  // Document frequency: in how many images' reference sets an n-gram appears.
  std::unordered_map<std::string, int64_t> df;  // key prefixed by n so n-grams of different n never collide
  for (std::size_t i = 0; i < refs.size(); ++i) {
    MINIVL_CHECK(!refs[i].empty(), "cider_d: image ", i, " has no references");
    std::unordered_set<std::string> seen;
    for (const std::string& ref : refs[i]) {
      cooked_refs[i].push_back(precook(split_words(ref)));
      for (int k = 0; k < 4; ++k)
        for (const auto& [g, c] : cooked_refs[i].back()[k]) seen.insert(std::string(1, char('1' + k)) + g);
    }
    for (const std::string& g : seen) ++df[g];
    cooked_cands[i] = precook(split_words(cands[i]));
  }
  const double ref_len = std::log(static_cast<double>(refs.size()));

  struct Vec {
    std::array<std::unordered_map<std::string, double>, 4> v;
    std::array<double, 4> norm{};
    int64_t length = 0;  // the number of bigrams (cider_scorer.py counts `if n == 1` on the 0-based n)
  };
  auto counts2vec = [&](const NgramCounts& counts) {
    Vec out;
    for (int k = 0; k < 4; ++k) {
      for (const auto& [g, tf] : counts[k]) {
        auto it = df.find(std::string(1, char('1' + k)) + g);
        const double d = std::log(std::max(1.0, it == df.end() ? 0.0 : static_cast<double>(it->second)));
        const double x = static_cast<double>(tf) * (ref_len - d);
        out.v[k][g] = x;
        out.norm[k] += std::pow(x, 2);
        if (k == 1) out.length += tf;
      }
      out.norm[k] = std::sqrt(out.norm[k]);
    }
    return out;
  };
  std::vector<double> scores;
  scores.reserve(refs.size());
  for (std::size_t i = 0; i < refs.size(); ++i) {
    const Vec hyp = counts2vec(cooked_cands[i]);
    std::array<double, 4> total{};
    for (const NgramCounts& rc : cooked_refs[i]) {
      const Vec ref = counts2vec(rc);
      const double delta = static_cast<double>(hyp.length - ref.length);
      for (int k = 0; k < 4; ++k) {
        double val = 0;
        for (const auto& [g, x] : hyp.v[k]) {
          auto it = ref.v[k].find(g);
          const double r = it == ref.v[k].end() ? 0.0 : it->second;
          val += std::min(x, r) * r;  // the 'D' clipping
        }
        if (hyp.norm[k] != 0 && ref.norm[k] != 0) val /= (hyp.norm[k] * ref.norm[k]);
        val *= std::pow(2.718281828459045, -(delta * delta) / (2 * sigma * sigma));
        total[k] += val;
      }
    }
    double mean = 0;
    for (int k = 0; k < 4; ++k) mean += total[k];
    mean /= 4;
    mean /= static_cast<double>(refs[i].size());
    mean *= 10.0;
    scores.push_back(mean);
  }
  double sum = 0;
  for (double s : scores) sum += s;
  if (per_image) *per_image = scores;
  return sum / static_cast<double>(scores.size());
}

CaptionScores score_caption_files(const std::string& refs_path, const std::string& cands_path) {
  using json = nlohmann::json;
  const auto [refs_json, cands_json] = data::read_scoring_files(
      refs_path, cands_path, "a COCO captions file", "a COCO results list [{\"image_id\", \"caption\"}]");
  // Image order: the refs file's "images" list, then any image only seen in annotations.
  std::vector<int64_t> order;
  std::unordered_map<int64_t, std::vector<std::string>> ref_caps;
  std::unordered_set<int64_t> known;
  if (refs_json.contains("images") && refs_json["images"].is_array()) {
    for (const json& im : refs_json["images"]) {
      const int64_t id = im.at("id").get<int64_t>();
      if (known.insert(id).second) order.push_back(id);
    }
  }
  for (const json& a : refs_json["annotations"]) {
    const int64_t id = a.at("image_id").get<int64_t>();
    if (known.insert(id).second) order.push_back(id);
    ref_caps[id].push_back(caption_tokenize(a.at("caption").get<std::string>()));
  }
  std::unordered_map<int64_t, std::string> cand_of;
  for (std::size_t i = 0; i < cands_json.size(); ++i) {
    const json& c = cands_json[i];
    MINIVL_CHECK(c.is_object() && c.contains("image_id") && c.contains("caption") && c["caption"].is_string(),
                 "score: ", cands_path, "[", i, "]: needs 'image_id' and a string 'caption'");
    const int64_t id = c["image_id"].get<int64_t>();
    MINIVL_CHECK(known.count(id), "score: ", cands_path, "[", i, "]: image_id ", id, " is not in ", refs_path);
    MINIVL_CHECK(!cand_of.count(id), "score: ", cands_path, ": two captions for image_id ", id);
    cand_of[id] = caption_tokenize(c["caption"].get<std::string>());
  }
  MINIVL_CHECK(!cand_of.empty(), "score: ", cands_path, " holds no captions");
  std::vector<std::vector<std::string>> refs;
  std::vector<std::string> cands;
  for (int64_t id : order) {
    auto it = cand_of.find(id);
    if (it == cand_of.end()) continue;
    auto r = ref_caps.find(id);
    MINIVL_CHECK(r != ref_caps.end(), "score: image_id ", id, " has no reference captions in ", refs_path);
    refs.push_back(r->second);
    cands.push_back(it->second);
  }
  CaptionScores out;
  out.bleu = corpus_bleu(refs, cands);
  out.cider = cider_d(refs, cands);
  out.images = static_cast<int64_t>(cands.size());
  return out;
}

}  // namespace minivl::models
