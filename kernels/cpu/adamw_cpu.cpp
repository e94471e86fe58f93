// The CPU AdamW step over all parameter tensors at once (see kernels/adamw_kernel.h).
// Work is split into 64 Ki-element chunks across tensors so that one big
// embedding and many small biases balance over the threads alike.
#include <cmath>
#include <vector>

#include "kernels/adamw_kernel.h"

namespace minivl::cpu {

namespace {
constexpr int64_t kChunk = 1 << 16;

struct Chunk {
  int64_t tensor, begin, end;
};

std::vector<Chunk> chunks_of(const AdamWTensor* tensors, int64_t count) {
  std::vector<Chunk> chunks;
  for (int64_t t = 0; t < count; ++t)
    for (int64_t b = 0; b < tensors[t].n; b += kChunk)
      chunks.push_back({t, b, b + kChunk < tensors[t].n ? b + kChunk : tensors[t].n});
  return chunks;
}

void store_low(const AdamWTensor& t, int64_t begin, int64_t end) {
  if (!t.param_low) return;
  for (int64_t i = begin; i < end; ++i) adamw_store_low(t, i, t.param[i]);
}

void adamw_range(const AdamWTensor& t, int64_t begin, int64_t end, const AdamWHyper& h, const AdamWScalars& s) {
  const float decay = 1.0f - h.lr * t.weight_decay;
  const float b1 = h.beta1, b2 = h.beta2, one_b1 = 1.0f - h.beta1, one_b2 = 1.0f - h.beta2;
  const float step_size = h.lr / s.bias_correction1;
  const float inv_sqrt_bc2 = 1.0f / std::sqrt(s.bias_correction2);
  const float grad_factor = s.grad_factor;
  float* p = t.param;
  const float* g = t.grad;
  float* m = t.exp_avg;
  float* v = t.exp_avg_sq;
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i] * grad_factor;
    const float mi = b1 * m[i] + one_b1 * gi;
    const float vi = b2 * v[i] + one_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) * inv_sqrt_bc2 + h.eps;
    p[i] = p[i] * decay - step_size * (mi / denom);
  }
  store_low(t, begin, end);
}

// The guard's measurement: the sum of squares of every (scaled) grad, per chunk in f64, the
// chunks added in order (the result does not depend on the thread count).
void adamw_measure(const AdamWTensor* tensors, int64_t count, const AdamWHyper& h) {
  const std::vector<Chunk> chunks = chunks_of(tensors, count);
  const int64_t n = int64_t(chunks.size());
  std::vector<double> partial(size_t(n), 0.0);
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t c = 0; c < n; ++c) {
    const Chunk& k = chunks[size_t(c)];
    const float* g = tensors[k.tensor].grad;
    double acc = 0.0;
    for (int64_t i = k.begin; i < k.end; ++i) {
      const double gi = double(g[i] * h.grad_scale);
      acc += gi * gi;
    }
    partial[size_t(c)] = acc;
  }
  double sum_sq = 0.0;
  for (double p : partial) sum_sq += p;
  adamw_decide(h.control, sum_sq, h.loss, h.max_norm);
}
}  // namespace

void adamw_step(const AdamWTensor* tensors, int64_t count, const AdamWHyper& h) {
  if (h.mode == AdamWHyper::Mode::measure) return adamw_measure(tensors, count, h);
  const std::vector<Chunk> chunks = chunks_of(tensors, count);
  const int64_t n = int64_t(chunks.size());
  if (h.control && h.control[2] != 0.0) {  // the guard skips this step; the low copies still follow p
#pragma omp parallel for schedule(static) if (n > 1)
    for (int64_t c = 0; c < n; ++c)
      store_low(tensors[chunks[size_t(c)].tensor], chunks[size_t(c)].begin, chunks[size_t(c)].end);
    return;
  }
  const AdamWScalars s = adamw_scalars(h);
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t c = 0; c < n; ++c)
    adamw_range(tensors[chunks[size_t(c)].tensor], chunks[size_t(c)].begin, chunks[size_t(c)].end, h, s);
}

}  // namespace minivl::cpu
