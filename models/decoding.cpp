#include "models/decoding.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl::models {

namespace {

// Log-softmax of the last position of logits (B, T, V) -> B rows of V doubles.
std::vector<std::vector<double>> last_log_probs(const Tensor& logits) {
  const int64_t B = logits.size(0), T = logits.size(1), V = logits.size(2);
  const std::vector<double> lp = log_softmax(logits.select(1, T - 1).contiguous(), -1).to_vector();
  std::vector<std::vector<double>> rows(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) rows[size_t(b)].assign(lp.begin() + b * V, lp.begin() + (b + 1) * V);
  return rows;
}

double length_normalised(double log_prob, size_t length, double penalty) {
  return log_prob / std::pow(double(std::max<size_t>(1, length)), penalty);
}

Tensor rows_of(const Tensor& t, const Tensor& index) {
  // t (B, ...) -> (n, ...): embedding() as index_select on dim 0.
  Shape shape = t.shape();
  const int64_t B = shape[0];
  Tensor flat = t.contiguous().reshape({B, t.numel() / B});
  Tensor out = embedding(flat, index);
  shape[0] = index.size(0);
  return out.reshape(shape);
}

int64_t max_steps(const Captioner& model, const DecodeOptions& o) {
  MINIVL_CHECK(o.max_length >= 1, "decode: max_length ", o.max_length, " < 1");
  return std::min(o.max_length, model.config.max_length);  // the last generated token is never fed back
}

}  // namespace

void reorder_cache(DecoderCache& cache, const std::vector<int64_t>& index, bool self_only) {
  if (cache.empty() || !cache[0].self_attn.k.defined()) return;
  const Tensor idx = from_vector_i64(index, {int64_t(index.size())}).to(cache[0].self_attn.k.device());
  for (auto& layer : cache) {
    layer.self_attn.k = rows_of(layer.self_attn.k, idx);
    layer.self_attn.v = rows_of(layer.self_attn.v, idx);
    if (!self_only && layer.cross_attn.k.defined()) {
      layer.cross_attn.k = rows_of(layer.cross_attn.k, idx);
      layer.cross_attn.v = rows_of(layer.cross_attn.v, idx);
    }
  }
}

Hypothesis greedy_decode(const Captioner& model, const Tensor& pixels, const DecodeOptions& o) {
  NoGradGuard no_grad;
  MINIVL_CHECK(pixels.size(0) == 1, "decode: one image at a time, got a batch of ", pixels.size(0));
  const Device dev = pixels.device();
  const Tensor memory = model.encode_image(pixels);  // (1, S, H)
  const int64_t steps = max_steps(model, o);
  DecoderCache cache = model.new_cache();
  std::vector<int64_t> prefix = {o.bos_token};
  Hypothesis h;
  for (int64_t step = 0; step < steps; ++step) {
    Tensor logits;
    if (o.use_cache) {
      logits = model.decode(from_vector_i64({prefix.back()}, {1, 1}).to(dev), memory, &cache);
    } else {
      logits = model.decode(from_vector_i64(prefix, {1, int64_t(prefix.size())}).to(dev), memory);
    }
    std::vector<double> lp = last_log_probs(logits)[0];
    if (step < o.min_length) lp[size_t(o.end_token)] = -std::numeric_limits<double>::infinity();
    const int64_t t = int64_t(std::max_element(lp.begin(), lp.end()) - lp.begin());  // first maximum
    h.tokens.push_back(t);
    h.log_prob += lp[size_t(t)];
    if (t == o.end_token) break;
    prefix.push_back(t);
  }
  h.score = length_normalised(h.log_prob, h.tokens.size(), o.length_penalty);
  return h;
}

Hypothesis beam_search(const Captioner& model, const Tensor& pixels, const DecodeOptions& o) {
  NoGradGuard no_grad;
  MINIVL_CHECK(pixels.size(0) == 1, "decode: one image at a time, got a batch of ", pixels.size(0));
  MINIVL_CHECK(o.beam >= 1, "decode: beam width ", o.beam, " < 1");
  const Device dev = pixels.device();
  const Tensor memory = model.encode_image(pixels);  // (1, S, H): the image is encoded once
  const int64_t S = memory.size(1), H = memory.size(2);
  const int64_t steps = max_steps(model, o);
  DecoderCache cache = model.new_cache();

  struct Beam {
    std::vector<int64_t> tokens;
    double log_prob = 0;
  };
  std::vector<Beam> live = {Beam{}};
  std::vector<Hypothesis> finished;
  // Step 0 on batch 1: the cross-attention keys/values of the memory are computed here, once.
  Tensor logits = o.use_cache ? model.decode(from_vector_i64({o.bos_token}, {1, 1}).to(dev), memory, &cache)
                              : model.decode(from_vector_i64({o.bos_token}, {1, 1}).to(dev), memory);
  for (int64_t step = 0; step < steps; ++step) {
    const auto lp = last_log_probs(logits);  // live.size() rows
    const int64_t V = int64_t(lp[0].size());
    struct Cand {
      double score, token_lp;
      int64_t beam, token;
    };
    std::vector<Cand> cands;
    cands.reserve(live.size() * size_t(V));
    for (size_t b = 0; b < live.size(); ++b)
      for (int64_t t = 0; t < V; ++t) {
        if (t == o.end_token && step < o.min_length) continue;
        cands.push_back({live[b].log_prob + lp[b][size_t(t)], lp[b][size_t(t)], int64_t(b), t});
      }
    const size_t k = std::min(cands.size(), size_t(o.beam));
    std::partial_sort(cands.begin(), cands.begin() + ptrdiff_t(k), cands.end(), [](const Cand& a, const Cand& c) {
      if (a.score != c.score) return a.score > c.score;
      if (a.token_lp != c.token_lp) return a.token_lp > c.token_lp;
      if (a.beam != c.beam) return a.beam < c.beam;
      return a.token < c.token;
    });
    std::vector<Beam> next;
    std::vector<int64_t> parents;
    for (size_t i = 0; i < k; ++i) {
      Beam nb{live[size_t(cands[i].beam)].tokens, cands[i].score};
      nb.tokens.push_back(cands[i].token);
      if (cands[i].token == o.end_token) {
        finished.push_back({nb.tokens, nb.log_prob, length_normalised(nb.log_prob, nb.tokens.size(), o.length_penalty)});
      } else {
        next.push_back(std::move(nb));
        parents.push_back(cands[i].beam);
      }
    }
    live = std::move(next);
    if (live.empty() || step + 1 == steps) break;
    const int64_t n = int64_t(live.size());
    const Tensor mem_n = memory.expand({n, S, H});
    if (o.use_cache) {
      reorder_cache(cache, parents);
      std::vector<int64_t> last;
      for (const Beam& b : live) last.push_back(b.tokens.back());
      logits = model.decode(from_vector_i64(last, {n, 1}).to(dev), mem_n, &cache);
    } else {
      std::vector<int64_t> flat;
      for (const Beam& b : live) {
        flat.push_back(o.bos_token);
        flat.insert(flat.end(), b.tokens.begin(), b.tokens.end());
      }
      logits = model.decode(from_vector_i64(flat, {n, int64_t(live[0].tokens.size()) + 1}).to(dev), mem_n);
    }
  }
  for (const Beam& b : live)
    finished.push_back({b.tokens, b.log_prob, length_normalised(b.log_prob, b.tokens.size(), o.length_penalty)});
  MINIVL_CHECK(!finished.empty(), "decode: no hypothesis");
  size_t best = 0;
  for (size_t i = 1; i < finished.size(); ++i)
    if (finished[i].score > finished[best].score) best = i;
  return finished[best];
}

Hypothesis decode_caption(const Captioner& model, const Tensor& pixels, const DecodeOptions& options) {
  return options.beam <= 1 ? greedy_decode(model, pixels, options) : beam_search(model, pixels, options);
}

}  // namespace minivl::models
