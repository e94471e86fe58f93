// BLEU-1..4 and CIDEr-D (coco-caption) against hand-worked examples, and the score command for captions
// and VQA (the VQA scorer itself: tests/test_vqa_metrics.cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "models/caption_metrics.h"
#include "models/vqa_metrics.h"
#include "nn_test_util.h"
#include <nlohmann/json.hpp>

using namespace minivl::models;
namespace fs = std::filesystem;

TEST_CASE("caption tokenisation: lowercase, punctuation out, whitespace split") {
  CHECK(caption_tokenize("A red Circle, left of the square.") == "a red circle left of the square");
  CHECK(caption_tokenize("  two   left-hand  shapes!! ") == "two left-hand shapes");
}

TEST_CASE("bleu: clipped counts and brevity penalty") {
  // cand "the the the the" vs ref "the cat": unigram matches clipped to 1 of 4 guesses; no bigrams.
  // c = 4 >= r = 2, so no penalty. BLEU-1 = (1 + 1e-15) / (4 + 1e-9) ~= 0.25.
  BleuScore b = corpus_bleu({{"the cat"}}, {"the the the the"});
  CHECK(b.bleu[0] == doctest::Approx(0.25).epsilon(1e-8));
  // BLEU-2 = sqrt(0.25 * (0 + 1e-15) / (3 + 1e-9)) ~= 9.1e-9: the tiny constant keeps it above 0.
  CHECK(b.bleu[1] == doctest::Approx(std::sqrt(0.25 * 1e-15 / 3)).epsilon(1e-6));
  // Brevity: cand "the cat" (c = 2) vs refs "the cat sat on the mat" (6) and "the cat is here" (4):
  // closest length 4. Precisions 2/2, 1/1 -> 1; BP = exp(1 - 4/2) = e^-1.
  b = corpus_bleu({{"the cat sat on the mat", "the cat is here"}}, {"the cat"});
  CHECK(b.ref_len == 4);
  CHECK(b.bleu[0] == doctest::Approx(std::exp(-1.0)).epsilon(1e-8));
  CHECK(b.bleu[1] == doctest::Approx(std::exp(-1.0)).epsilon(1e-8));
  // Ties in closeness go to the shorter reference: c = 3, refs 2 and 4 -> r = 2, no penalty.
  b = corpus_bleu({{"a b", "a b c d"}}, {"a b c"});
  CHECK(b.ref_len == 2);
  CHECK(b.bleu[0] == doctest::Approx(1.0).epsilon(1e-8));
  // Corpus level: counts are summed before dividing. Image 1: "a b" vs "a b" (2/2 unigrams, 1/1 bigram);
  // image 2: "c d" vs "x y" (0/2, 0/1). BLEU-1 = 2/4, BLEU-2 = sqrt(0.5 * 1/2) = 0.5.
  b = corpus_bleu({{"a b"}, {"x y"}}, {"a b", "c d"});
  CHECK(b.bleu[0] == doctest::Approx(0.5).epsilon(1e-8));
  CHECK(b.bleu[1] == doctest::Approx(0.5).epsilon(1e-8));
  // BLEU-4 of an exact match is 1.
  b = corpus_bleu({{"a red circle above a blue square"}}, {"a red circle above a blue square"});
  CHECK(b.bleu[3] == doctest::Approx(1.0).epsilon(1e-8));
}

TEST_CASE("cider-d: tf-idf, clipping of candidate counts, length penalty") {
  // Two images, one reference each: img0 "a b", img1 "c d". ref_len = log 2. Every n-gram of the refs
  // has df = 1, so idf = log 2 - log 1 = log 2 =: L; an n-gram absent from all refs also gets L.
  // Candidate for img0 "a a b" (3 words, 2 bigrams) vs ref "a b" (2 words, 1 bigram), delta = 1:
  //   n=1: hyp {a: 2L, b: L}, ref {a: L, b: L}; clipped dot = min(2L, L) L + min(L, L) L = 2 L^2;
  //        |hyp| = sqrt(5) L, |ref| = sqrt(2) L -> 2 / sqrt(10).
  //   n=2: hyp {aa: L, ab: L}, ref {ab: L} -> L^2 / (sqrt(2) L * L) = 1 / sqrt(2).
  //   n=3: hyp {aab}, ref {} -> ref norm 0: val stays the dot product 0. n=4: 0.
  //   penalty exp(-1/72) on each; image score = 10 * (2/sqrt(10) + 1/sqrt(2)) / 4 * exp(-1/72).
  //   Without clipping n=1 would be (2 + 1)/sqrt(10): the clipping case.
  // Candidate for img1 "c d" == its ref: n=1 and n=2 are 1, n=3/4 have no n-grams: 10 * 2/4 = 5.
  std::vector<double> per;
  const double mean = cider_d({{"a b"}, {"c d"}}, {"a a b", "c d"}, &per);
  const double img0 = 10.0 * (2.0 / std::sqrt(10.0) + 1.0 / std::sqrt(2.0)) / 4.0 * std::exp(-1.0 / 72.0);
  REQUIRE(per.size() == 2);
  CHECK(per[0] == doctest::Approx(img0).epsilon(1e-12));
  CHECK(per[1] == doctest::Approx(5.0).epsilon(1e-12));
  CHECK(mean == doctest::Approx((img0 + 5.0) / 2).epsilon(1e-12));
  // Several references: the score is averaged over them. img0 refs "a b" and "a b": same as one ref.
  // df of "a", "b", "a b" is still 1 (counted once per image).
  std::vector<double> per2;
  cider_d({{"a b", "a b"}, {"c d"}}, {"a a b", "c d"}, &per2);
  CHECK(per2[0] == doctest::Approx(img0).epsilon(1e-12));
  // An n-gram in every image's references has idf log 2 - log 2 = 0 and contributes nothing.
  std::vector<double> per3;
  cider_d({{"x a"}, {"x c"}}, {"x", "x c"}, &per3);
  CHECK(per3[0] == doctest::Approx(0.0));
}

TEST_CASE("score files: COCO captions + results, VQA annotations + results") {
  const fs::path d = fs::temp_directory_path() / "minivl_test_vqa_caption_score";
  fs::create_directories(d);
  std::ofstream(d / "refs.json") << R"({"images": [{"id": 1}, {"id": 2}, {"id": 3}],
    "annotations": [{"image_id": 1, "caption": "A b."}, {"image_id": 2, "caption": "c D"},
                    {"image_id": 3, "caption": "e f"}]})";
  std::ofstream(d / "cands.json") << R"([{"image_id": 2, "caption": "c d"}, {"image_id": 1, "caption": "a a b"}])";
  const CaptionScores cs = score_caption_files((d / "refs.json").string(), (d / "cands.json").string());
  // Only images 1 and 2 are scored (those with a candidate), as in the cider-d case above.
  CHECK(cs.images == 2);
  const double img0 = 10.0 * (2.0 / std::sqrt(10.0) + 1.0 / std::sqrt(2.0)) / 4.0 * std::exp(-1.0 / 72.0);
  CHECK(cs.cider == doctest::Approx((img0 + 5.0) / 2).epsilon(1e-12));
  // BLEU-1: 4 unigram matches ("a" clipped to 1) of 5 guesses.
  CHECK(cs.bleu.bleu[0] == doctest::Approx(0.8).epsilon(1e-8));

  std::ofstream(d / "ann.json") << R"({"annotations": [
    {"question_id": 10, "answer_type": "number", "question_type": "how many", "answers": [
      {"answer": "2", "answer_id": 1}, {"answer": "2", "answer_id": 2}, {"answer": "3", "answer_id": 3},
      {"answer": "3", "answer_id": 4}, {"answer": "3", "answer_id": 5}, {"answer": "3", "answer_id": 6},
      {"answer": "3", "answer_id": 7}, {"answer": "3", "answer_id": 8}, {"answer": "3", "answer_id": 9},
      {"answer": "3", "answer_id": 10}]},
    {"question_id": 11, "answer_type": "yes/no", "question_type": "is", "answers": [
      {"answer": "yes", "answer_id": 1}, {"answer": "yes", "answer_id": 2}, {"answer": "yes", "answer_id": 3},
      {"answer": "yes", "answer_id": 4}]}]})";
  std::ofstream(d / "res.json") << R"([{"question_id": 10, "answer": "two"}, {"question_id": 11, "answer": "yes "}])";
  const VqaScores vs = score_vqa_files((d / "ann.json").string(), (d / "res.json").string());
  CHECK(vs.overall == doctest::Approx((0.6 + 1.0) / 2).epsilon(1e-12));
  CHECK(vs.per_answer_type.at("number") == doctest::Approx(0.6).epsilon(1e-12));
  CHECK(vs.per_answer_type.at("yes/no") == doctest::Approx(1.0));
  std::ofstream(d / "res_missing.json") << R"([{"question_id": 10, "answer": "two"}])";
  CHECK_THROWS(score_vqa_files((d / "ann.json").string(), (d / "res_missing.json").string()));

  // The CLI prints the same numbers as JSON, unrounded, under the documented keys.
  auto run = minivl::testing::run_minivl("score --metric vqa --refs " + (d / "ann.json").string() + " --cands " +
                                         (d / "res.json").string());
  REQUIRE(run.exit_code == 0);
  auto j = nlohmann::json::parse(run.output);
  CHECK(j["overall"].get<double>() == doctest::Approx(0.8).epsilon(1e-12));
  CHECK(j["per_answer_type"]["number"].get<double>() == doctest::Approx(0.6).epsilon(1e-12));
  run = minivl::testing::run_minivl("score --metric bleu --refs " + (d / "refs.json").string() + " --cands " +
                                    (d / "cands.json").string());
  REQUIRE(run.exit_code == 0);
  j = nlohmann::json::parse(run.output);
  CHECK(j["bleu1"].get<double>() == doctest::Approx(0.8).epsilon(1e-8));
  CHECK(j.contains("bleu4"));
  run = minivl::testing::run_minivl("score --metric cider --refs " + (d / "refs.json").string() + " --cands " +
                                    (d / "cands.json").string());
  REQUIRE(run.exit_code == 0);
  CHECK(nlohmann::json::parse(run.output)["cider"].get<double>() == doctest::Approx((img0 + 5.0) / 2).epsilon(1e-12));
  fs::remove_all(d);
}
