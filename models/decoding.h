#pragma once
// Caption decoding: greedy and beam search over a Captioner, with a KV cache.
//
// The image's memory is encoded once; the cross-attention keys/values are computed on the first step
// (batch 1) and then shared by every beam; self-attention keys/values are appended step by step and
// reordered when beams are re-ranked. Both searches score tokens by log-softmax and pick the first
// maximum on ties, so beam width 1 is greedy decoding token for token:
//   - each step extends every live beam by every token and keeps the `beam` best (sum of log-probs);
//     a kept candidate ending in end_token is finished and leaves the live set;
//   - the search stops when no beam is live or max_length tokens were generated (live beams then
//     count as finished);
//   - the result is the finished hypothesis with the best score / length^length_penalty (length counts
//     the generated tokens, end token included).
//   - before min_length tokens, end_token is not allowed.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "models/captioner.h"

namespace minivl::models {

struct DecodeOptions {
  int64_t beam = 1;
  double length_penalty = 1.0;
  int64_t min_length = 1;   // tokens before end_token may come
  int64_t max_length = 30;  // generated tokens, end token included
  int64_t bos_token = WordVocab::kBos, end_token = WordVocab::kEos;
  bool use_cache = true;    // false: recompute the whole prefix every step (for tests)
};

struct Hypothesis {
  std::vector<int64_t> tokens;  // generated tokens (no <bos>), ending with end_token when finished
  double log_prob = 0;          // sum of the tokens' log-probabilities
  double score = 0;             // log_prob / length^length_penalty
};

// pixels (1, C, R, R) of one image; runs under no-grad.
Hypothesis greedy_decode(const Captioner& model, const Tensor& pixels, const DecodeOptions& options);
Hypothesis beam_search(const Captioner& model, const Tensor& pixels, const DecodeOptions& options);
// beam == 1: greedy_decode, else beam_search.
Hypothesis decode_caption(const Captioner& model, const Tensor& pixels, const DecodeOptions& options);

// Rows `index` of every cached tensor (beam re-ranking): (B, ...) -> (index.size(), ...).
void reorder_cache(DecoderCache& cache, const std::vector<int64_t>& index, bool self_only = false);

}  // namespace minivl::models
