// VQA accuracy against the official vqaEval.py (GT-Vision-Lab/VQA at a013f00), with every expected
// value worked out by hand from that script's algorithm.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "models/vqa_metrics.h"
#include "tests/core_test_util.h"
#include "tests/nn_test_util.h"

using namespace minivl::models;

namespace {

std::vector<std::string> repeat(const std::string& answer, int n) { return std::vector<std::string>(n, answer); }

std::vector<std::string> concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

// With ten answer entries of which m equal the (normalised) prediction, the m leave-outs of a matching
// entry keep m - 1 matches and the other 10 - m keep m, so the accuracy is
//   f(m) = (m min(1, (m-1)/3) + (10-m) min(1, m/3)) / 10:  f(0) = 0, f(1) = 0.3, f(2) = 0.6, f(3) = 0.9,
// f(4..10) = 1. The cases below only have to count m.
TEST_SUITE("vqa metrics") {

TEST_CASE("vqa punctuation: delete or space, decided on the original text; 32 periods at most") {
  // '?' touches no space and there is no digit,digit comma: replaced by a space.
  CHECK(vqa_process_punctuation("yes?") == "yes ");
  // Next to a space a mark is deleted rather than spaced: "red , blue" -> "red  blue".
  CHECK(vqa_process_punctuation("red , blue") == "red  blue");
  CHECK(vqa_process_punctuation("red,blue") == "red blue");
  // The test is over the whole text: one "- " makes every '-' go, even those between letters.
  CHECK(vqa_process_punctuation("x-y - z") == "xy  z");
  // With a digit,digit comma anywhere, every mark is deleted: "1,000" -> "1000".
  CHECK(vqa_process_punctuation("1,000") == "1000");
  CHECK(vqa_process_punctuation("x-ray, 1,5") == "xray 15");
  // The test reads the original text, not the text so far: '(' is spaced first ("ab -cd-ef"), which
  // puts a space before the first '-', but the original "ab(-cd-ef" has no "- " or " -", so both '-'
  // are spaced too: "ab  cd ef". Testing the text so far would delete them: "ab cdef".
  CHECK(vqa_process_punctuation("ab(-cd-ef") == "ab  cd ef");
  // Periods: deleted unless followed by a digit, looked at after the marks are replaced: in "1.-5"
  // the '-' becomes a space first, so the period is then followed by ' ' and goes.
  CHECK(vqa_process_punctuation("3.5 ft.") == "3.5 ft");
  CHECK(vqa_process_punctuation("..5") == ".5");
  CHECK(vqa_process_punctuation("1.-5") == "1 5");
  // re.sub's count is re.UNICODE = 32: only the first 32 matches go. 40 periods leave 8.
  CHECK(vqa_process_punctuation(std::string(40, '.')) == std::string(8, '.'));
  CHECK(vqa_process_punctuation(std::string(33, '.') + "x") == ".x");
  // A period followed by a digit is no match and does not count: "1.5" keeps its period, the 32
  // periods after it are the 32 matches, and the one in "a.b", the 33rd match, stays.
  CHECK(vqa_process_punctuation("1.5" + std::string(32, '.') + "a.b") == "1.5a.b");
  // Apostrophes, colons and case are left alone here.
  CHECK(vqa_process_punctuation("Don't: Go!") == "Don't: Go ");
}

TEST_CASE("vqa digits and articles: lowercase, split, number words, articles") {
  CHECK(vqa_process_digit_article("The Two  dogs") == "2 dogs");
  CHECK(vqa_process_digit_article("none") == "0");
  CHECK(vqa_process_digit_article("an eleven") == "eleven");
  CHECK(vqa_process_digit_article(" A  ") == "");
  CHECK(vqa_normalize_answer("yes?") == "yes");
  CHECK(vqa_normalize_answer("A Dog!") == "dog");
  CHECK(vqa_strip("\t two\n") == "two");
  CHECK(vqa_strip(" a\tb ") == "a b");
}

TEST_CASE("vqa contractions: the script's map (ASCII apostrophes), word by word after lowercasing") {
  CHECK(vqa_process_digit_article("dont know") == "don't know");
  CHECK(vqa_process_digit_article("isnt it") == "isn't it");
  CHECK(vqa_process_digit_article("hes here") == "he's here");
  CHECK(vqa_process_digit_article("aint") == "ain't");    // the map's first entry
  CHECK(vqa_process_digit_article("youve") == "you've");  // and its last
  CHECK(vqa_process_digit_article("DONT") == "don't");    // lowercased before the lookup
  // Keys that carry an apostrophe themselves.
  CHECK(vqa_process_digit_article("he'dve") == "he'd've");
  CHECK(vqa_process_digit_article("couldn'tve") == "couldn't've");
  CHECK(vqa_process_digit_article("'ows'at") == "'ow's'at");
  CHECK(vqa_process_digit_article("let's") == "let's");
  // The script's own oddities: "somebody'd" maps the other way, and the keys with a capital I ("Im",
  // "Ive", "I'dve") can never match a lowercased word.
  CHECK(vqa_process_digit_article("somebody'd") == "somebodyd");
  CHECK(vqa_process_digit_article("Im") == "im");
  CHECK(vqa_process_digit_article("Ive") == "ive");
  CHECK(vqa_process_digit_article("I'dve") == "i'dve");
  // A word spelt with U+2019 is no key of the map (the older map's spelling), and only whole words
  // are looked up.
  CHECK(vqa_process_digit_article("don\u2019t") == "don\u2019t");
  CHECK(vqa_process_digit_article("dontknow") == "dontknow");
  // After the number words and articles: "the" goes, then "dont" is looked up.
  CHECK(vqa_process_digit_article("the dont") == "don't");
  CHECK(vqa_normalize_answer("Dont.") == "don't");
}

TEST_CASE("vqa accuracy: leave-one-out mean of min(matches/3, 1)") {
  const std::vector<std::string> ten_yes = repeat("yes", 10);
  CHECK(vqa_question_accuracy(ten_yes, "yes") == doctest::Approx(1.0));
  CHECK(vqa_question_accuracy(ten_yes, "no") == doctest::Approx(0.0));
  // m = 2, 3, 1 (see f(m) above).
  std::vector<std::string> h = concat({repeat("2", 2), repeat("3", 8)});
  CHECK(vqa_question_accuracy(h, "2") == doctest::Approx(0.6).epsilon(1e-12));
  h = concat({repeat("2", 3), repeat("3", 7)});
  CHECK(vqa_question_accuracy(h, "2") == doctest::Approx(0.9).epsilon(1e-12));
  h = concat({repeat("2", 1), repeat("3", 9)});
  CHECK(vqa_question_accuracy(h, "2") == doctest::Approx(0.3).epsilon(1e-12));
  // Normalisation applies when answers differ: "two" and "Two." both become "2": m = 2.
  h = concat({{"two", "Two."}, repeat("3", 8)});
  CHECK(vqa_question_accuracy(h, "2") == doctest::Approx(0.6).epsilon(1e-12));
  // The prediction is normalised too in that case: " the two " -> "2".
  CHECK(vqa_question_accuracy(h, " the two ") == doctest::Approx(0.6).epsilon(1e-12));
  // Entries that are equal as whole entries (same answer, no distinguishing id) leave together: with
  // 4 identical entries {"2"} and 6 "3" and no ids, leaving out a "2" removes all four -> 0 matches;
  // leaving out a "3" keeps 4 -> 1. (4 * 0 + 6 * 1) / 10 = 0.6.
  h = concat({repeat("2", 4), repeat("3", 6)});
  CHECK(vqa_question_accuracy(h, "2", repeat("{}", 10)) == doctest::Approx(0.6).epsilon(1e-12));
  // With distinct ids: m = 4.
  CHECK(vqa_question_accuracy(h, "2") == doctest::Approx(1.0));
}

// Each case also gives the value the older map (U+2019 in its values and in the keys that hold an
// apostrophe: "dont" -> "don\u2019t", "hed\u2019ve" -> "he\u2019d\u2019ve") gave, to show where it failed.
TEST_CASE("vqa accuracy: mixed contraction spellings score as the official script, not as the older map") {
  // In the human answers only: "dont know" becomes "don't know", so all three spellings match the
  // prediction: m = 3 -> 0.9. (Older map: "dont know" -> "don\u2019t know", m = 1 -> 0.3.)
  std::vector<std::string> h = concat({repeat("dont know", 2), {"don't know"}, repeat("no", 7)});
  CHECK(vqa_question_accuracy(h, "don't know") == doctest::Approx(0.9).epsilon(1e-12));
  // In the prediction only: "dont know" -> "don't know" matches the three: 0.9. (Older map: the
  // prediction became "don\u2019t know" and matched none: 0.)
  h = concat({repeat("don't know", 3), repeat("no", 7)});
  CHECK(vqa_question_accuracy(h, "dont know") == doctest::Approx(0.9).epsilon(1e-12));
  // In both: m = 2 -> 0.6. (Older map: only the converted "dont know" matched: 0.3.)
  h = concat({{"dont know", "don't know"}, repeat("yes", 8)});
  CHECK(vqa_question_accuracy(h, "dont know") == doctest::Approx(0.6).epsilon(1e-12));
  // One spelling on both sides is converted alike by either map: m = 2 -> 0.6 (as before).
  h = concat({repeat("dont know", 2), repeat("no", 8)});
  CHECK(vqa_question_accuracy(h, "dont know") == doctest::Approx(0.6).epsilon(1e-12));
  // With capitals: "Isnt" -> "isnt" -> "isn't", "ISN'T" -> "isn't": m = 3 -> 0.9. (Older map: "isnt"
  // -> "isn\u2019t", m = 2 -> 0.6.)
  h = concat({{"Isnt", "isn't", "ISN'T"}, repeat("yes", 7)});
  CHECK(vqa_question_accuracy(h, "isn't") == doctest::Approx(0.9).epsilon(1e-12));
  // Keys with an apostrophe: "hed've" and "he'dve" both map to "he'd've": m = 3 -> 0.9. (Older map:
  // its keys were "hed\u2019ve" and "he\u2019dve", so neither matched: m = 1 -> 0.3.)
  h = concat({{"hed've", "he'dve", "he'd've"}, repeat("no", 7)});
  CHECK(vqa_question_accuracy(h, "he'd've") == doctest::Approx(0.9).epsilon(1e-12));
  // "Im" in the map never applies: "Im fine" -> "im fine", the prediction "I'm fine" -> "i'm fine".
  h = concat({repeat("Im fine", 3), repeat("no", 7)});
  CHECK(vqa_question_accuracy(h, "I'm fine") == doctest::Approx(0.0));
}

TEST_CASE("vqa accuracy: answers all identical after stripping are not normalised") {
  // Ten "don't know": no normalisation, so the prediction "dont know" stays as it is and matches none.
  CHECK(vqa_question_accuracy(repeat("don't know", 10), "dont know") == doctest::Approx(0.0));
  CHECK(vqa_question_accuracy(repeat("don't know", 10), "don't know") == doctest::Approx(1.0));
  CHECK(vqa_question_accuracy(repeat("dont know", 10), "don't know") == doctest::Approx(0.0));
  CHECK(vqa_question_accuracy(repeat("dont know", 10), "dont know") == doctest::Approx(1.0));
  // No lowercasing, no punctuation, no number words either.
  CHECK(vqa_question_accuracy(repeat("yes", 10), "Yes") == doctest::Approx(0.0));
  CHECK(vqa_question_accuracy(repeat("yes", 10), "yes.") == doctest::Approx(0.0));
  CHECK(vqa_question_accuracy(repeat("two", 10), "2") == doctest::Approx(0.0));
  // Stripping always happens, after '\n' and '\t' (only those) become spaces.
  CHECK(vqa_question_accuracy(repeat("yes", 10), " yes\t") == doctest::Approx(1.0));
  CHECK(vqa_question_accuracy(repeat("two dogs", 10), "two\ndogs") == doctest::Approx(1.0));
  CHECK(vqa_question_accuracy(repeat("two dogs", 10), "two\tdogs") == doctest::Approx(1.0));
  CHECK(vqa_question_accuracy(repeat("two dogs", 10), "two\rdogs") == doctest::Approx(0.0));
  // "Identical" is judged after stripping: "yes" and " yes\n" are one answer, so "Yes" is not
  // lowercased and matches none (judged before stripping they would differ, and it would score 1).
  const std::vector<std::string> h = concat({repeat("yes", 5), repeat(" yes\n", 5)});
  CHECK(vqa_question_accuracy(h, "Yes") == doctest::Approx(0.0));
  // Answers that differ only in case are normalised, and then all equal "yes".
  CHECK(vqa_question_accuracy(concat({repeat("Yes", 5), repeat("yes", 5)}), "YES") == doctest::Approx(1.0));
}

TEST_CASE("vqa strings as Python 2.7 unicode: whitespace and lowercase beyond ASCII") {
  // strip/split: U+00A0, U+3000, U+2009, U+180E and the ASCII separators 0x1c..0x1f are whitespace;
  // U+200B (zero width space) is not.
  CHECK(vqa_strip("\u00a0yes\u3000") == "yes");
  CHECK(vqa_strip("\x1cyes\x0b") == "yes");
  CHECK(vqa_strip("\u180eyes") == "yes");
  CHECK(vqa_strip("\u200byes") == "\u200byes");
  CHECK(vqa_process_digit_article("two\u2009dogs") == "2 dogs");
  // lower(): Unicode 5.2's one-to-one mapping: no final sigma, U+0130 to a plain i, Cherokee (given
  // lowercase letters only in Unicode 8) unchanged; astral planes too.
  CHECK(vqa_process_digit_article("CAF\u00c9") == "caf\u00e9");
  CHECK(vqa_process_digit_article("\u03a3\u0391\u03a3") == "\u03c3\u03b1\u03c3");
  CHECK(vqa_process_digit_article("\u0130") == "i");
  CHECK(vqa_process_digit_article("\u13a0") == "\u13a0");
  CHECK(vqa_process_digit_article("\uff21") == "\uff41");
  CHECK(vqa_process_digit_article("\U00010400") == "\U00010428");
  // A byte that is not UTF-8 is kept as it is.
  CHECK(vqa_process_digit_article("A\xff") == "a\xff");
  // "CAF\u00c9" lowercases to "caf\u00e9": m = 3 -> 0.9 (lowercasing ASCII only would leave it apart:
  // m = 2 -> 0.6).
  const std::vector<std::string> h = concat({{"CAF\u00c9", "caf\u00e9", "Caf\u00e9"}, repeat("no", 7)});
  CHECK(vqa_question_accuracy(h, "caf\u00e9") == doctest::Approx(0.9).epsilon(1e-12));
}

TEST_CASE("vqa evaluate: overall and per answer type are means over questions") {
  std::vector<VqaEvalItem> items(3);
  items[0] = {repeat("yes", 10), {}, "yes/no", "is there", "yes"};  // 1
  items[1] = {repeat("no", 10), {}, "yes/no", "is there", "yes"};   // 0
  items[2] = {concat({repeat("2", 2), repeat("3", 8)}), {}, "number", "how many", "2"};  // m = 2: 0.6
  const VqaScores s = vqa_evaluate(items);
  CHECK(s.overall == doctest::Approx(1.6 / 3).epsilon(1e-12));
  CHECK(s.per_answer_type.at("yes/no") == doctest::Approx(0.5));
  CHECK(s.per_answer_type.at("number") == doctest::Approx(0.6));
  CHECK(s.per_question_type.at("is there") == doctest::Approx(0.5));
  CHECK(s.questions == 3);
}

TEST_CASE("vqa score files: JSON escapes and UTF-8 alike, mixed spellings; malformed annotations refused") {
  const minivl::testing::NnTempDir dir;
  auto answers = [](const std::vector<std::string>& list) {
    std::string s;
    for (std::size_t i = 0; i < list.size(); ++i)
      s += std::string(i ? ", " : "") + R"({"answer": ")" + list[i] + R"(", "answer_id": )" +
           std::to_string(i + 1) + "}";
    return "[" + s + "]";
  };
  auto question = [&](int id, const std::vector<std::string>& list) {
    return R"({"question_id": )" + std::to_string(id) + R"(, "answer_type": "other", "question_type": "what", )" +
           R"("answers": )" + answers(list) + "}";
  };
  const std::vector<std::string> no7 = repeat("no", 7);
  // q1: m = 3 -> 0.9 as above; q2: "CAF\u00c9" (a JSON escape) lowercases to the UTF-8 one: m = 3
  // -> 0.9; q3: ten "Yes", not normalised, so "yes" matches none: 0. Overall (0.9 + 0.9 + 0) / 3.
  std::ofstream(dir.file("ann.json"))
      << R"({"annotations": [)" << question(1, concat({repeat("dont know", 2), {"don't know"}, no7})) << ", "
      << question(2, concat({{"CAF\\u00c9", "caf\u00e9", "Caf\\u00e9"}, no7})) << ", "
      << question(3, repeat("Yes", 10)) << "]}";
  std::ofstream(dir.file("res.json")) << R"([{"question_id": 1, "answer": "don't know"},
    {"question_id": 2, "answer": "caf\u00e9"}, {"question_id": 3, "answer": "yes"}])";
  const VqaScores s = score_vqa_files(dir.file("ann.json"), dir.file("res.json"));
  CHECK(s.questions == 3);
  CHECK(s.overall == doctest::Approx(1.8 / 3).epsilon(1e-12));
  CHECK(s.per_answer_type.at("other") == doctest::Approx(1.8 / 3).epsilon(1e-12));

  std::ofstream(dir.file("twice.json")) << R"({"annotations": [)" << question(1, repeat("a", 10)) << ", "
                                        << question(1, repeat("b", 10)) << "]}";
  minivl::testing::check_error([&] { score_vqa_files(dir.file("twice.json"), dir.file("res.json")); },
                               {"twice.json", "annotations[1]", "question_id 1", "twice"});
  std::ofstream(dir.file("number.json"))
      << R"({"annotations": [{"question_id": 1, "answers": [{"answer": 2, "answer_id": 1}]}]})";
  minivl::testing::check_error([&] { score_vqa_files(dir.file("number.json"), dir.file("res.json")); },
                               {"number.json", "annotations[0]", "string 'answer'"});
  std::ofstream(dir.file("res_qid.json")) << R"([{"question_id": "1", "answer": "yes"}])";
  minivl::testing::check_error([&] { score_vqa_files(dir.file("ann.json"), dir.file("res_qid.json")); },
                               {"res_qid.json[0]", "integer 'question_id'"});
}

}  // TEST_SUITE
