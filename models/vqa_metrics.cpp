#include "models/vqa_metrics.h"

#include <algorithm>
#include <fstream>
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
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// vqaEval.py's punct list, in its order.
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

// vqaEval.py's contractions map, verbatim (its mix of ' and U+2019 included).
const std::unordered_map<std::string, std::string>& contractions() {
  static const std::unordered_map<std::string, std::string> m = {
      {"aint", "ain't"}, {"arent", "aren't"}, {"cant", "can't"}, {"couldve", "could've"},
      {"couldnt", "couldn't"}, {"couldn'tve", "couldn’t’ve"}, {"couldnt’ve", "couldn’t’ve"},
      {"didnt", "didn’t"}, {"doesnt", "doesn’t"}, {"dont", "don’t"}, {"hadnt", "hadn’t"},
      {"hadnt’ve", "hadn’t’ve"}, {"hadn'tve", "hadn’t’ve"}, {"hasnt", "hasn’t"}, {"havent", "haven’t"},
      {"hed", "he’d"}, {"hed’ve", "he’d’ve"}, {"he’dve", "he’d’ve"}, {"hes", "he’s"}, {"howd", "how’d"},
      {"howll", "how’ll"}, {"hows", "how’s"}, {"Id’ve", "I’d’ve"}, {"I’dve", "I’d’ve"}, {"Im", "I’m"},
      {"Ive", "I’ve"}, {"isnt", "isn’t"}, {"itd", "it’d"}, {"itd’ve", "it’d’ve"}, {"it’dve", "it’d’ve"},
      {"itll", "it’ll"}, {"let’s", "let’s"}, {"maam", "ma’am"}, {"mightnt", "mightn’t"},
      {"mightnt’ve", "mightn’t’ve"}, {"mightn’tve", "mightn’t’ve"}, {"mightve", "might’ve"},
      {"mustnt", "mustn’t"}, {"mustve", "must’ve"}, {"neednt", "needn’t"}, {"notve", "not’ve"},
      {"oclock", "o’clock"}, {"oughtnt", "oughtn’t"}, {"ow’s’at", "’ow’s’at"}, {"’ows’at", "’ow’s’at"},
      {"’ow’sat", "’ow’s’at"}, {"shant", "shan’t"}, {"shed’ve", "she’d’ve"}, {"she’dve", "she’d’ve"},
      {"she’s", "she’s"}, {"shouldve", "should’ve"}, {"shouldnt", "shouldn’t"},
      {"shouldnt’ve", "shouldn’t’ve"}, {"shouldn’tve", "shouldn’t’ve"}, {"somebody’d", "somebodyd"},
      {"somebodyd’ve", "somebody’d’ve"}, {"somebody’dve", "somebody’d’ve"}, {"somebodyll", "somebody’ll"},
      {"somebodys", "somebody’s"}, {"someoned", "someone’d"}, {"someoned’ve", "someone’d’ve"},
      {"someone’dve", "someone’d’ve"}, {"someonell", "someone’ll"}, {"someones", "someone’s"},
      {"somethingd", "something’d"}, {"somethingd’ve", "something’d’ve"},
      {"something’dve", "something’d’ve"}, {"somethingll", "something’ll"}, {"thats", "that’s"},
      {"thered", "there’d"}, {"thered’ve", "there’d’ve"}, {"there’dve", "there’d’ve"},
      {"therere", "there’re"}, {"theres", "there’s"}, {"theyd", "they’d"}, {"theyd’ve", "they’d’ve"},
      {"they’dve", "they’d’ve"}, {"theyll", "they’ll"}, {"theyre", "they’re"}, {"theyve", "they’ve"},
      {"twas", "’twas"}, {"wasnt", "wasn’t"}, {"wed’ve", "we’d’ve"}, {"we’dve", "we’d’ve"},
      {"weve", "we've"}, {"werent", "weren’t"}, {"whatll", "what’ll"}, {"whatre", "what’re"},
      {"whats", "what’s"}, {"whatve", "what’ve"}, {"whens", "when’s"}, {"whered", "where’d"},
      {"wheres", "where's"}, {"whereve", "where’ve"}, {"whod", "who’d"}, {"whod’ve", "who’d’ve"},
      {"who’dve", "who’d’ve"}, {"wholl", "who’ll"}, {"whos", "who’s"}, {"whove", "who've"},
      {"whyll", "why’ll"}, {"whyre", "why’re"}, {"whys", "why’s"}, {"wont", "won’t"},
      {"wouldve", "would’ve"}, {"wouldnt", "wouldn’t"}, {"wouldnt’ve", "wouldn’t’ve"},
      {"wouldn’tve", "wouldn’t’ve"}, {"yall", "y’all"}, {"yall’ll", "y’all’ll"}, {"y’allll", "y’all’ll"},
      {"yall’d’ve", "y’all’d’ve"}, {"y’alld’ve", "y’all’d’ve"}, {"y’all’dve", "y’all’d’ve"},
      {"youd", "you’d"}, {"youd’ve", "you’d’ve"}, {"you’dve", "you’d’ve"}, {"youll", "you’ll"},
      {"youre", "you’re"}, {"youve", "you’ve"}};
  return m;
}

bool has_digit_comma_digit(const std::string& s) {
  for (std::size_t i = 1; i + 1 < s.size(); ++i)
    if (s[i] == ',' && is_digit(s[i - 1]) && is_digit(s[i + 1])) return true;
  return false;
}

}  // namespace

std::string vqa_strip(const std::string& s) {
  std::string t = s;
  for (char& c : t)
    if (c == '\n' || c == '\t') c = ' ';
  std::size_t b = 0, e = t.size();
  while (b < e && is_py_space(static_cast<unsigned char>(t[b]))) ++b;
  while (e > b && is_py_space(static_cast<unsigned char>(t[e - 1]))) --e;
  return t.substr(b, e - b);
}

std::string vqa_process_punctuation(const std::string& in) {
  std::string out = in;
  const bool comma_digits = has_digit_comma_digit(in);
  for (const std::string& p : punct()) {
    // The test looks at the input text, the replacement works on the text so far.
    if (in.find(p + " ") != std::string::npos || in.find(" " + p) != std::string::npos || comma_digits) {
      out = replace_all(out, p, "");
    } else {
      out = replace_all(out, p, " ");
    }
  }
  // periodStrip "(?!<=\d)(\.)(?!\d)": a '.' not followed by a digit (the "(?!<=\d)" is a lookahead that
  // never fails here), substituted with count = re.UNICODE = 32.
  std::string stripped;
  stripped.reserve(out.size());
  int removed = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '.' && removed < 32 && !(i + 1 < out.size() && is_digit(out[i + 1]))) {
      ++removed;
      continue;
    }
    stripped.push_back(out[i]);
  }
  return stripped;
}

std::string vqa_process_digit_article(const std::string& in) {
  std::string lower = in;
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  std::vector<std::string> words;
  std::size_t i = 0;
  while (i < lower.size()) {
    while (i < lower.size() && is_py_space(static_cast<unsigned char>(lower[i]))) ++i;
    std::size_t j = i;
    while (j < lower.size() && !is_py_space(static_cast<unsigned char>(lower[j]))) ++j;
    if (j > i) {
      std::string w = lower.substr(i, j - i);
      auto it = manual_map().find(w);
      if (it != manual_map().end()) w = it->second;
      if (w != "a" && w != "an" && w != "the") words.push_back(w);
    }
    i = j;
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
  const auto load = [](const std::string& path) { return data::read_json_file(path, "score"); };
  const json refs = load(refs_path);
  const json cands = load(cands_path);
  MINIVL_CHECK(refs.is_object() && refs.contains("annotations") && refs["annotations"].is_array(),
               "score: ", refs_path, " is not a VQA annotations file (no 'annotations' list)");
  MINIVL_CHECK(cands.is_array(), "score: ", cands_path, " is not a results list [{\"question_id\", \"answer\"}]");
  std::unordered_map<int64_t, std::string> pred;
  for (std::size_t i = 0; i < cands.size(); ++i) {
    const json& c = cands[i];
    MINIVL_CHECK(c.is_object() && c.contains("question_id") && c.contains("answer") && c["answer"].is_string(),
                 "score: ", cands_path, "[", i, "]: needs 'question_id' and a string 'answer'");
    pred[c["question_id"].get<int64_t>()] = c["answer"].get<std::string>();
  }
  std::vector<VqaEvalItem> items;
  std::unordered_set<int64_t> annotated;
  const json& anns = refs["annotations"];
  for (std::size_t i = 0; i < anns.size(); ++i) {
    const json& a = anns[i];
    MINIVL_CHECK(a.is_object() && a.contains("question_id") && a.contains("answers") && a["answers"].is_array(),
                 "score: ", refs_path, " annotations[", i, "]: needs 'question_id' and an 'answers' list");
    const int64_t qid = a["question_id"].get<int64_t>();
    annotated.insert(qid);
    auto p = pred.find(qid);
    MINIVL_CHECK(p != pred.end(), "score: no result for question_id ", qid, " (the official evaluation needs "
                 "one for every annotated question)");
    VqaEvalItem item;
    for (const json& ans : a["answers"]) {
      item.answers.push_back(ans.at("answer").get<std::string>());
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
