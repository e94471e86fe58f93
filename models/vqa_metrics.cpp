#include "models/vqa_metrics.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "data/annotations.h"
#include "tokenizer/unicode.h"

namespace minivl::models {

namespace {

// ---- The string semantics the script runs on ----
// json.load gives Python 2.7 `unicode` strings, so strip/split/lower work on code points with
// Python 2.7's Unicode 5.2 database. UTF-8 is decoded here; a byte that does not start a valid
// sequence stands for itself (not whitespace, no case).

struct CodePoint {
  char32_t value;  // the byte itself where the sequence is invalid
  std::size_t bytes;
};

CodePoint decode_utf8(const std::string& s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return {b0, 1};
  const std::size_t n = b0 >= 0xc2 && b0 <= 0xdf ? 2 : b0 >= 0xe0 && b0 <= 0xef ? 3 : b0 >= 0xf0 && b0 <= 0xf4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return {b0, 1};
  char32_t c = b0 & (0x7f >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return {b0, 1};
    c = (c << 6) | (byte(i + k) & 0x3f);
  }
  const bool overlong = (n == 3 && c < 0x800) || (n == 4 && c < 0x10000);
  if (overlong || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return {b0, 1};
  return {c, n};
}

// Python 2.7's unicode whitespace (Py_UNICODE_ISSPACE): what strip() and split() remove.
bool is_py_space(char32_t c) {
  switch (c) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x1c: case 0x1d: case 0x1e: case 0x1f:
    case 0x20: case 0x85: case 0xa0: case 0x1680: case 0x180e: case 0x2028: case 0x2029: case 0x202f:
    case 0x205f: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200a;
  }
}

// Python 2.7's unicode.lower(): Unicode 5.2's simple lowercase mapping, one code point to one, as
// runs: every stride-th code point of [first, last] maps to itself + delta.
struct LowerRun {
  char32_t first, last;
  int32_t stride, delta;
};
constexpr LowerRun kLowerRuns[] = {
      {0x41, 0x5a, 1, 32}, {0xc0, 0xd6, 1, 32}, {0xd8, 0xde, 1, 32}, {0x100, 0x12e, 2, 1},
      {0x130, 0x130, 1, -199}, {0x132, 0x136, 2, 1}, {0x139, 0x147, 2, 1}, {0x14a, 0x176, 2, 1},
      {0x178, 0x178, 1, -121}, {0x179, 0x17d, 2, 1}, {0x181, 0x181, 1, 210}, {0x182, 0x184, 2, 1},
      {0x186, 0x186, 1, 206}, {0x187, 0x187, 1, 1}, {0x189, 0x18a, 1, 205}, {0x18b, 0x18b, 1, 1},
      {0x18e, 0x18e, 1, 79}, {0x18f, 0x18f, 1, 202}, {0x190, 0x190, 1, 203}, {0x191, 0x191, 1, 1},
      {0x193, 0x193, 1, 205}, {0x194, 0x194, 1, 207}, {0x196, 0x196, 1, 211}, {0x197, 0x197, 1, 209},
      {0x198, 0x198, 1, 1}, {0x19c, 0x19c, 1, 211}, {0x19d, 0x19d, 1, 213}, {0x19f, 0x19f, 1, 214},
      {0x1a0, 0x1a4, 2, 1}, {0x1a6, 0x1a6, 1, 218}, {0x1a7, 0x1a7, 1, 1}, {0x1a9, 0x1a9, 1, 218},
      {0x1ac, 0x1ac, 1, 1}, {0x1ae, 0x1ae, 1, 218}, {0x1af, 0x1af, 1, 1}, {0x1b1, 0x1b2, 1, 217},
      {0x1b3, 0x1b5, 2, 1}, {0x1b7, 0x1b7, 1, 219}, {0x1b8, 0x1b8, 1, 1}, {0x1bc, 0x1bc, 1, 1},
      {0x1c4, 0x1c4, 1, 2}, {0x1c5, 0x1c5, 1, 1}, {0x1c7, 0x1c7, 1, 2}, {0x1c8, 0x1c8, 1, 1},
      {0x1ca, 0x1ca, 1, 2}, {0x1cb, 0x1db, 2, 1}, {0x1de, 0x1ee, 2, 1}, {0x1f1, 0x1f1, 1, 2},
      {0x1f2, 0x1f4, 2, 1}, {0x1f6, 0x1f6, 1, -97}, {0x1f7, 0x1f7, 1, -56}, {0x1f8, 0x21e, 2, 1},
      {0x220, 0x220, 1, -130}, {0x222, 0x232, 2, 1}, {0x23a, 0x23a, 1, 10795}, {0x23b, 0x23b, 1, 1},
      {0x23d, 0x23d, 1, -163}, {0x23e, 0x23e, 1, 10792}, {0x241, 0x241, 1, 1}, {0x243, 0x243, 1, -195},
      {0x244, 0x244, 1, 69}, {0x245, 0x245, 1, 71}, {0x246, 0x24e, 2, 1}, {0x370, 0x372, 2, 1},
      {0x376, 0x376, 1, 1}, {0x386, 0x386, 1, 38}, {0x388, 0x38a, 1, 37}, {0x38c, 0x38c, 1, 64},
      {0x38e, 0x38f, 1, 63}, {0x391, 0x3a1, 1, 32}, {0x3a3, 0x3ab, 1, 32}, {0x3cf, 0x3cf, 1, 8},
      {0x3d8, 0x3ee, 2, 1}, {0x3f4, 0x3f4, 1, -60}, {0x3f7, 0x3f7, 1, 1}, {0x3f9, 0x3f9, 1, -7},
      {0x3fa, 0x3fa, 1, 1}, {0x3fd, 0x3ff, 1, -130}, {0x400, 0x40f, 1, 80}, {0x410, 0x42f, 1, 32},
      {0x460, 0x480, 2, 1}, {0x48a, 0x4be, 2, 1}, {0x4c0, 0x4c0, 1, 15}, {0x4c1, 0x4cd, 2, 1},
      {0x4d0, 0x524, 2, 1}, {0x531, 0x556, 1, 48}, {0x10a0, 0x10c5, 1, 7264}, {0x1e00, 0x1e94, 2, 1},
      {0x1e9e, 0x1e9e, 1, -7615}, {0x1ea0, 0x1efe, 2, 1}, {0x1f08, 0x1f0f, 1, -8}, {0x1f18, 0x1f1d, 1, -8},
      {0x1f28, 0x1f2f, 1, -8}, {0x1f38, 0x1f3f, 1, -8}, {0x1f48, 0x1f4d, 1, -8}, {0x1f59, 0x1f5f, 2, -8},
      {0x1f68, 0x1f6f, 1, -8}, {0x1f88, 0x1f8f, 1, -8}, {0x1f98, 0x1f9f, 1, -8}, {0x1fa8, 0x1faf, 1, -8},
      {0x1fb8, 0x1fb9, 1, -8}, {0x1fba, 0x1fbb, 1, -74}, {0x1fbc, 0x1fbc, 1, -9}, {0x1fc8, 0x1fcb, 1, -86},
      {0x1fcc, 0x1fcc, 1, -9}, {0x1fd8, 0x1fd9, 1, -8}, {0x1fda, 0x1fdb, 1, -100}, {0x1fe8, 0x1fe9, 1, -8},
      {0x1fea, 0x1feb, 1, -112}, {0x1fec, 0x1fec, 1, -7}, {0x1ff8, 0x1ff9, 1, -128}, {0x1ffa, 0x1ffb, 1, -126},
      {0x1ffc, 0x1ffc, 1, -9}, {0x2126, 0x2126, 1, -7517}, {0x212a, 0x212a, 1, -8383},
      {0x212b, 0x212b, 1, -8262}, {0x2132, 0x2132, 1, 28}, {0x2160, 0x216f, 1, 16}, {0x2183, 0x2183, 1, 1},
      {0x24b6, 0x24cf, 1, 26}, {0x2c00, 0x2c2e, 1, 48}, {0x2c60, 0x2c60, 1, 1}, {0x2c62, 0x2c62, 1, -10743},
      {0x2c63, 0x2c63, 1, -3814}, {0x2c64, 0x2c64, 1, -10727}, {0x2c67, 0x2c6b, 2, 1},
      {0x2c6d, 0x2c6d, 1, -10780}, {0x2c6e, 0x2c6e, 1, -10749}, {0x2c6f, 0x2c6f, 1, -10783},
      {0x2c70, 0x2c70, 1, -10782}, {0x2c72, 0x2c72, 1, 1}, {0x2c75, 0x2c75, 1, 1}, {0x2c7e, 0x2c7f, 1, -10815},
      {0x2c80, 0x2ce2, 2, 1}, {0x2ceb, 0x2ced, 2, 1}, {0xa640, 0xa65e, 2, 1}, {0xa662, 0xa66c, 2, 1},
      {0xa680, 0xa696, 2, 1}, {0xa722, 0xa72e, 2, 1}, {0xa732, 0xa76e, 2, 1}, {0xa779, 0xa77b, 2, 1},
      {0xa77d, 0xa77d, 1, -35332}, {0xa77e, 0xa786, 2, 1}, {0xa78b, 0xa78b, 1, 1}, {0xff21, 0xff3a, 1, 32},
      {0x10400, 0x10427, 1, 40},
};

char32_t py_lower(char32_t c) {
  const LowerRun* end = std::end(kLowerRuns);
  const LowerRun* it = std::upper_bound(std::begin(kLowerRuns), end, c,
                                        [](char32_t v, const LowerRun& r) { return v < r.first; });
  if (it == std::begin(kLowerRuns)) return c;
  const LowerRun& r = *(it - 1);
  if (c > r.last || (c - r.first) % static_cast<char32_t>(r.stride) != 0) return c;
  return static_cast<char32_t>(static_cast<int64_t>(c) + r.delta);
}

std::string py_lower(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const CodePoint cp = decode_utf8(s, i);
    if (cp.bytes == 1 && cp.value >= 0x80) {
      out.push_back(s[i]);  // an invalid byte, kept as it is
    } else {
      tokenizer::utf8_append(out, py_lower(cp.value));
    }
    i += cp.bytes;
  }
  return out;
}

bool is_py_space_at(const std::string& s, std::size_t i, std::size_t* bytes) {
  const CodePoint cp = decode_utf8(s, i);
  *bytes = cp.bytes;
  return !(cp.bytes == 1 && cp.value >= 0x80) && is_py_space(cp.value);
}

std::string py_strip(const std::string& s) {
  std::size_t b = 0, n = 0;
  while (b < s.size() && is_py_space_at(s, b, &n)) b += n;
  std::size_t e = b;  // one past the last non-space code point
  for (std::size_t i = b; i < s.size(); i += n)
    if (!is_py_space_at(s, i, &n)) e = i + n;
  return s.substr(b, e - b);
}

std::vector<std::string> py_split(const std::string& s) {
  std::vector<std::string> words;
  std::string word;
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); i += n) {
    if (is_py_space_at(s, i, &n)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.append(s, i, n);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// ---- vqaEval.py's tables, in its order ----
const std::vector<std::string>& punct() {
  static const std::vector<std::string> p = {";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+",
                                             "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"};
  return p;
}

const std::unordered_map<std::string, std::string>& manual_map() {
  static const std::unordered_map<std::string, std::string> m = {
      {"none", "0"}, {"zero", "0"}, {"one", "1"}, {"two", "2"}, {"three", "3"}, {"four", "4"},
      {"five", "5"}, {"six", "6"},  {"seven", "7"}, {"eight", "8"}, {"nine", "9"}, {"ten", "10"}};
  return m;
}

const std::set<std::string>& articles() {
  static const std::set<std::string> a = {"a", "an", "the"};
  return a;
}

// Every entry of the script's contractions map, ASCII apostrophes, its oddities kept: keys with a
// capital ("Im", "Ive", "Id've", "I'dve") never match (words are lowercased first), and
// "somebody'd" maps to "somebodyd".
const std::unordered_map<std::string, std::string>& contractions() {
  static const std::unordered_map<std::string, std::string> m = {
      {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"},
      {"couldnt", "couldn't"}, {"couldn'tve", "couldn't've"}, {"couldnt've", "couldn't've"},
      {"didnt", "didn't"}, {"doesnt", "doesn't"}, {"dont", "don't"}, {"hadnt", "hadn't"},
      {"hadnt've", "hadn't've"}, {"hadn'tve", "hadn't've"}, {"hasnt", "hasn't"}, {"havent", "haven't"},
      {"hed", "he'd"}, {"hed've", "he'd've"}, {"he'dve", "he'd've"}, {"hes", "he's"}, {"howd", "how'd"},
      {"howll", "how'll"}, {"hows", "how's"}, {"Id've", "I'd've"}, {"I'dve", "I'd've"}, {"Im", "I'm"},
      {"Ive", "I've"}, {"isnt", "isn't"}, {"itd", "it'd"}, {"itd've", "it'd've"}, {"it'dve", "it'd've"},
      {"itll", "it'll"}, {"let's", "let's"}, {"maam", "ma'am"}, {"mightnt", "mightn't"},
      {"mightnt've", "mightn't've"}, {"mightn'tve", "mightn't've"}, {"mightve", "might've"},
      {"mustnt", "mustn't"}, {"mustve", "must've"}, {"neednt", "needn't"}, {"notve", "not've"},
      {"oclock", "o'clock"}, {"oughtnt", "oughtn't"}, {"ow's'at", "'ow's'at"}, {"'ows'at", "'ow's'at"},
      {"'ow'sat", "'ow's'at"}, {"shant", "shan't"}, {"shed've", "she'd've"}, {"she'dve", "she'd've"},
      {"she's", "she's"}, {"shouldve", "should've"}, {"shouldnt", "shouldn't"}, {"shouldnt've", "shouldn't've"},
      {"shouldn'tve", "shouldn't've"}, {"somebody'd", "somebodyd"}, {"somebodyd've", "somebody'd've"},
      {"somebody'dve", "somebody'd've"}, {"somebodyll", "somebody'll"}, {"somebodys", "somebody's"},
      {"someoned", "someone'd"}, {"someoned've", "someone'd've"}, {"someone'dve", "someone'd've"},
      {"someonell", "someone'll"}, {"someones", "someone's"}, {"somethingd", "something'd"},
      {"somethingd've", "something'd've"}, {"something'dve", "something'd've"}, {"somethingll", "something'll"},
      {"thats", "that's"}, {"thered", "there'd"}, {"thered've", "there'd've"}, {"there'dve", "there'd've"},
      {"therere", "there're"}, {"theres", "there's"}, {"theyd", "they'd"}, {"theyd've", "they'd've"},
      {"they'dve", "they'd've"}, {"theyll", "they'll"}, {"theyre", "they're"}, {"theyve", "they've"},
      {"twas", "'twas"}, {"wasnt", "wasn't"}, {"wed've", "we'd've"}, {"we'dve", "we'd've"}, {"weve", "we've"},
      {"werent", "weren't"}, {"whatll", "what'll"}, {"whatre", "what're"}, {"whats", "what's"},
      {"whatve", "what've"}, {"whens", "when's"}, {"whered", "where'd"}, {"wheres", "where's"},
      {"whereve", "where've"}, {"whod", "who'd"}, {"whod've", "who'd've"}, {"who'dve", "who'd've"},
      {"wholl", "who'll"}, {"whos", "who's"}, {"whove", "who've"}, {"whyll", "why'll"}, {"whyre", "why're"},
      {"whys", "why's"}, {"wont", "won't"}, {"wouldve", "would've"}, {"wouldnt", "wouldn't"},
      {"wouldnt've", "wouldn't've"}, {"wouldn'tve", "wouldn't've"}, {"yall", "y'all"}, {"yall'll", "y'all'll"},
      {"y'allll", "y'all'll"}, {"yall'd've", "y'all'd've"}, {"y'alld've", "y'all'd've"},
      {"y'all'dve", "y'all'd've"}, {"youd", "you'd"}, {"youd've", "you'd've"}, {"you'dve", "you'd've"},
      {"youll", "you'll"}, {"youre", "you're"}, {"youve", "you've"},
  };
  return m;
}

// commaStrip "(\d)(\,)(\d)" found anywhere; \d is [0-9] (the pattern has no re.UNICODE flag).
bool has_digit_comma_digit(const std::string& s) {
  for (std::size_t i = 1; i + 1 < s.size(); ++i)
    if (s[i] == ',' && is_ascii_digit(s[i - 1]) && is_ascii_digit(s[i + 1])) return true;
  return false;
}

}  // namespace

std::string vqa_strip(const std::string& s) {
  std::string t = s;
  for (char& c : t)
    if (c == '\n' || c == '\t') c = ' ';
  return py_strip(t);
}

std::string vqa_process_punctuation(const std::string& in) {
  std::string out = in;
  const bool comma_digits = has_digit_comma_digit(in);
  for (const std::string& p : punct()) {
    // The test looks at the input text, anywhere in it; the replacement works on the text so far.
    if (in.find(p + " ") != std::string::npos || in.find(" " + p) != std::string::npos || comma_digits) {
      out = replace_all(out, p, "");
    } else {
      out = replace_all(out, p, " ");
    }
  }
  // periodStrip "(?!<=\d)(\.)(?!\d)": a '.' not followed by a digit (the "(?!<=\d)" is a lookahead
  // for the text "<=" and a digit, which never begins at a '.'), matched on the text before any
  // deletion, and substituted with count = re.UNICODE = 32: only the first 32 matches go.
  std::string stripped;
  stripped.reserve(out.size());
  int removed = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '.' && removed < 32 && !(i + 1 < out.size() && is_ascii_digit(out[i + 1]))) {
      ++removed;
      continue;
    }
    stripped.push_back(out[i]);
  }
  return stripped;
}

std::string vqa_process_digit_article(const std::string& in) {
  std::vector<std::string> words;
  for (std::string& w : py_split(py_lower(in))) {
    auto it = manual_map().find(w);
    if (it != manual_map().end()) w = it->second;
    if (!articles().count(w)) words.push_back(std::move(w));
  }
  std::string out;
  for (std::size_t k = 0; k < words.size(); ++k) {
    auto it = contractions().find(words[k]);
    if (k) out.push_back(' ');
    out += it != contractions().end() ? it->second : words[k];
  }
  return out;
}

std::string vqa_normalize_answer(const std::string& s) {
  return vqa_process_digit_article(vqa_process_punctuation(vqa_strip(s)));
}

double vqa_question_accuracy(const std::vector<std::string>& human_answers, const std::string& prediction,
                             const std::vector<std::string>& identities) {
  MINIVL_CHECK(!human_answers.empty(), "vqa accuracy: a question without human answers");
  MINIVL_CHECK(identities.empty() || identities.size() == human_answers.size(),
               "vqa accuracy: ", identities.size(), " identities for ", human_answers.size(), " answers");
  std::vector<std::string> gt;
  for (const std::string& a : human_answers) gt.push_back(vqa_strip(a));
  std::string res = vqa_strip(prediction);
  const std::set<std::string> distinct(gt.begin(), gt.end());
  if (distinct.size() > 1) {
    for (std::string& a : gt) a = vqa_process_digit_article(vqa_process_punctuation(a));
    res = vqa_process_digit_article(vqa_process_punctuation(res));
  }
  const std::size_t n = gt.size();
  auto same_entry = [&](std::size_t a, std::size_t b) {
    if (identities.empty()) return a == b;
    return gt[a] == gt[b] && identities[a] == identities[b];
  };
  double sum = 0;
  for (std::size_t h = 0; h < n; ++h) {
    int64_t matches = 0;
    for (std::size_t o = 0; o < n; ++o)
      if (!same_entry(o, h) && gt[o] == res) ++matches;
    sum += std::min(1.0, static_cast<double>(matches) / 3);
  }
  return sum / static_cast<double>(n);
}

VqaScores vqa_evaluate(const std::vector<VqaEvalItem>& items) {
  MINIVL_CHECK(!items.empty(), "vqa evaluate: no questions");
  VqaScores out;
  std::map<std::string, std::pair<double, int64_t>> by_ans, by_ques;
  double sum = 0;
  for (const VqaEvalItem& it : items) {
    const double acc = vqa_question_accuracy(it.answers, it.prediction, it.identities);
    sum += acc;
    auto& a = by_ans[it.answer_type];
    a.first += acc;
    ++a.second;
    auto& q = by_ques[it.question_type];
    q.first += acc;
    ++q.second;
  }
  out.questions = static_cast<int64_t>(items.size());
  out.overall = sum / static_cast<double>(items.size());
  for (const auto& [k, v] : by_ans) out.per_answer_type[k] = v.first / static_cast<double>(v.second);
  for (const auto& [k, v] : by_ques) out.per_question_type[k] = v.first / static_cast<double>(v.second);
  return out;
}

VqaScores score_vqa_files(const std::string& refs_path, const std::string& cands_path) {
  using json = nlohmann::json;
  const auto [refs, cands] = data::read_scoring_files(refs_path, cands_path, "a VQA annotations file",
                                                      "a results list [{\"question_id\", \"answer\"}]");
  std::unordered_map<int64_t, std::string> pred;
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const json& c = cands[i];
    MINIVL_CHECK(c.is_object() && c.contains("question_id") && c["question_id"].is_number_integer() &&
                     c.contains("answer") && c["answer"].is_string(),
                 "score: ", cands_path, "[", i, "]: needs an integer 'question_id' and a string 'answer'");
    pred[c["question_id"].get<int64_t>()] = c["answer"].get<std::string>();
  }
  std::vector<VqaEvalItem> items;
  std::unordered_set<int64_t> annotated;
  const json& anns = refs["annotations"];
  for (std::size_t i = 0; i < anns.size(); ++i) {
    const json& a = anns[i];
    MINIVL_CHECK(a.is_object() && a.contains("question_id") && a["question_id"].is_number_integer() &&
                     a.contains("answers") && a["answers"].is_array() && !a["answers"].empty(),
                 "score: ", refs_path, " annotations[", i,
                 "]: needs an integer 'question_id' and a non-empty 'answers' list");
    const int64_t qid = a["question_id"].get<int64_t>();
    // The official script would score the later annotation once per occurrence: refuse instead.
    MINIVL_CHECK(annotated.insert(qid).second, "score: ", refs_path, " annotations[", i, "]: question_id ", qid,
                 " is annotated twice");
    auto p = pred.find(qid);
    MINIVL_CHECK(p != pred.end(), "score: no result for question_id ", qid, " (the official evaluation needs "
                 "one for every annotated question)");
    VqaEvalItem item;
    for (const json& ans : a["answers"]) {
      MINIVL_CHECK(ans.is_object() && ans.contains("answer") && ans["answer"].is_string(), "score: ", refs_path,
                   " annotations[", i, "]: every answer needs a string 'answer'");
      item.answers.push_back(ans["answer"].get<std::string>());
      json rest = ans;
      rest.erase("answer");
      item.identities.push_back(rest.dump());
    }
    item.answer_type = a.value("answer_type", std::string());
    item.question_type = a.value("question_type", std::string());
    item.prediction = p->second;
    items.push_back(std::move(item));
  }
  for (const auto& [qid, _] : pred)
    MINIVL_CHECK(annotated.count(qid), "score: result for question_id ", qid, " which ", refs_path,
                 " does not annotate");
  return vqa_evaluate(items);
}

}  // namespace minivl::models
