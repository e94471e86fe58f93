#pragma once
// The official VQA accuracy: GT-Vision-Lab/VQA at a013f00, PythonEvaluationTools/vqaEvaluation/vqaEval.py
// (Python 2.7), quirks kept, since published numbers come from it:
//   - every answer (human and predicted) has '\n' and '\t' replaced by ' ', then surrounding whitespace
//     stripped;
//   - only when those stripped human answers are not all identical are they, and the prediction,
//     normalised: processPunctuation (each of ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? ! is deleted
//     everywhere when it touches a space anywhere in the original text or that text has a digit,digit
//     comma, else replaced by a space; then the first 32 periods not followed by a digit are deleted,
//     because the script passes re.UNICODE (32) as re.sub's count), then processDigitArticle (lowercase,
//     split, number words none/zero..ten to digits, articles a/an/the dropped, then the script's
//     contractions map word by word, ASCII apostrophes: "dont" -> "don't");
//   - a question's accuracy is the mean over its human answers h of min(1, #(other answers equal to the
//     prediction) / 3), "other" meaning every answer entry that is not equal to h as a whole entry (so with
//     distinct answer ids: leave one out);
//   - overall = mean over questions; per answer type = mean over that type's questions. Reported as
//     unrounded fractions (the script rounds 100x to 2 places).
// Strings are UTF-8 and handled as the script's unicode strings: strip/split on Python 2.7's unicode
// whitespace (U+00A0, U+3000, ... included), lower() by Unicode 5.2's simple case mapping ("ΣΑΣ" ->
// "σασ", "İ" -> "i"); \d in its regexes is [0-9].
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace minivl::models {

std::string vqa_strip(const std::string& s);                   // \n,\t -> ' ', then strip
std::string vqa_process_punctuation(const std::string& s);
std::string vqa_process_digit_article(const std::string& s);
// Both steps after vqa_strip: the form used for the answer vocabulary and for predictions.
std::string vqa_normalize_answer(const std::string& s);

// identities (optional, same length as answers): what else distinguishes two answer entries (for VQA v2
// the answer_id); entries with equal answers and equal identities count as the same entry. Empty: all
// entries distinct.
double vqa_question_accuracy(const std::vector<std::string>& human_answers, const std::string& prediction,
                             const std::vector<std::string>& identities = {});

struct VqaEvalItem {
  std::vector<std::string> answers;
  std::vector<std::string> identities;  // may be empty
  std::string answer_type, question_type;
  std::string prediction;
};
struct VqaScores {
  double overall = 0;
  std::map<std::string, double> per_answer_type;
  std::map<std::string, double> per_question_type;
  int64_t questions = 0;
};
VqaScores vqa_evaluate(const std::vector<VqaEvalItem>& items);

// refs_path: a VQA v2 annotations file; cands_path: [{"question_id", "answer"}]. As the official
// loadRes, every annotated question needs a result and every result an annotated question (a later
// duplicate result wins). A question_id annotated twice is refused.
VqaScores score_vqa_files(const std::string& refs_path, const std::string& cands_path);

}  // namespace minivl::models
