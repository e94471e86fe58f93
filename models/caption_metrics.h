#pragma once
// Caption metrics as coco-caption (pycocoevalcap) computes them on already-tokenised text:
//   - BLEU-1..4 (bleu/bleu_scorer.py): corpus level, n-gram counts clipped to the largest count in any
//     one reference, the reference length closest to the candidate's (ties: the shorter), brevity
//     penalty exp(1 - r/c) on the corpus totals, and the scorer's own smoothing constants
//     (tiny = 1e-15 on matches, small = 1e-9 on guesses), cumulative geometric mean.
//   - CIDEr-D (cider/cider_scorer.py): n = 1..4, idf = log(#images) - log(max(1, df)) with df counted
//     over each image's reference set, candidate tf-idf clipped to the reference's (min(hyp, ref) * ref),
//     normalised by both norms, Gaussian length penalty exp(-delta^2 / (2 sigma^2)) with sigma = 6 where
//     delta is the difference of the two *bigram* counts (the scorer's own quirk), averaged over the
//     references and over n, x10, then the mean over images.
// Tokenisation (caption_tokenize): lowercase, punctuation removed, split on whitespace. coco-caption
// runs the Stanford PTB tokenizer first; exact parity with published numbers needs that tokenizer.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace minivl::models {

// "A red Circle, left of the square." -> "a red circle left of the square"
// ASCII letters lowercased; ASCII punctuation becomes a space, except '-' between two letters/digits
// ("left-hand" stays one token); runs of whitespace collapse to one space.
std::string caption_tokenize(std::string_view text);

struct BleuScore {
  std::array<double, 4> bleu{};       // BLEU-1..4 in [0, 1]
  double test_len = 0, ref_len = 0;   // corpus totals used by the brevity penalty
};
// refs[i]: the tokenised references of image i (at least one); cands[i]: its one tokenised candidate.
// Tokens are separated by whitespace (Python's str.split()).
BleuScore corpus_bleu(const std::vector<std::vector<std::string>>& refs,
                      const std::vector<std::string>& cands);

// CIDEr-D, coco-caption's scale (unscaled mean, e.g. 1.13). per_image, when given, gets each image's score.
double cider_d(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& cands,
               std::vector<double>* per_image = nullptr, double sigma = 6.0);

struct CaptionScores {
  BleuScore bleu;
  double cider = 0;
  int64_t images = 0;
};
// refs_path: a COCO captions file; cands_path: a COCO results list [{"image_id", "caption"}].
// Scores the images that have a candidate (as COCOEvalCap does), in the refs file's image order; both
// sides go through caption_tokenize. Errors: a candidate for an unknown image, two for one image, an
// image without references.
CaptionScores score_caption_files(const std::string& refs_path, const std::string& cands_path);

}  // namespace minivl::models
