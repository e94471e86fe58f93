#pragma once
// The op layer's public API. Each op checks its inputs (errors name the op and
// the shapes/dtypes/devices), allocates its output, calls the kernel for the
// device, and records its backward node when a gradient is needed.
#include <optional>
#include <utility>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace minivl {

// ---- factories ----
Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32, Device device = Device::cpu());
// Uniform [0, 1) and standard normal, from the Philox stream of the default generator (or `seed`).
Tensor rand(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor randn(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32,
                   Device device = Device::cpu());
Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape, DType dtype = DType::i64);
Tensor scalar_tensor(double value, DType dtype = DType::f32, Device device = Device::cpu());

// ---- elementwise (broadcasting) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);       // exact (erf) form
Tensor gelu_tanh(const Tensor& x);  // tanh approximation
Tensor quick_gelu(const Tensor& x); // x * sigmoid(1.702 x), OpenAI CLIP's
Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max);
// where(cond, a, b): cond is bool/u8, all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// 1 where a == b (broadcast), 0 elsewhere, in a's dtype. No gradient.
Tensor equal_mask(const Tensor& a, const Tensor& b);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }

// ---- reductions ----
Tensor sum(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);  // {} = all dims
Tensor mean(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor max(const Tensor& x, std::vector<int64_t> dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1), as PyTorch.
Tensor var(const Tensor& x, std::vector<int64_t> dims = {}, int64_t correction = 1, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);  // i64, first maximum
// The k largest along `dim`, sorted descending: (values, indices as i64). No gradient.
std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim = -1);

// ---- linear algebra ----
// (..., M, K) @ (..., K, N) with broadcast batch dims; 1-d operands as numpy.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- softmax family ----
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
enum class Reduction { mean, sum, none };
// logits (N, C), target (N) integer class ids. Mean over non-ignored rows.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     double label_smoothing = 0.0, Reduction reduction = Reduction::mean);

// ---- indexing, joining ----
Tensor embedding(const Tensor& weight, const Tensor& ids);  // weight (V, D), ids any integer shape
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim);

// ---- regularisation, normalisation ----
// Inverted dropout with a Philox mask drawn from (seed, offset); the default generator when seed is empty.
Tensor dropout(const Tensor& x, double p, bool training = true, std::optional<uint64_t> seed = std::nullopt);
// Over the last dim; weight and bias (C) may be undefined.
// Fused: one kernel forward (saving mean and rstd), one backward (dx, dweight, dbias).
Tensor layernorm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// The pre-LN residual step: returns (sum = x + residual, layernorm(sum)); x, residual same shape.
std::pair<Tensor, Tensor> add_layernorm(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                        const Tensor& bias, double eps = 1e-5);

// ---- contrastive losses (fused, tiled: the N x N logits are never materialised) ----
// image, text (N, d), rows already L2-normalised; logit_scale a 0-d tensor holding log(scale).
// CLIP: mean of the cross-entropies over rows and over columns of L = exp(logit_scale) image text^T,
// targets on the diagonal (OpenAI CLIP's loss). A 0-d tensor in image's dtype.
Tensor clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale);
// SigLIP: -(1/N) sum_ij log sigmoid(z_ij (L_ij + logit_bias)), z = +1 on the diagonal, -1 elsewhere.
Tensor siglip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const Tensor& logit_bias);

// ---- attention (fused, tiled: the (Tq, Tk) scores are never materialised) ----
struct AttentionOptions {
  bool causal = false;       // query i attends keys j <= i + (Tk - Tq): the last query meets the last key
  Tensor key_padding_mask;   // (B, Tk) bool/u8, true = that key is padding and ignored; undefined = none
  std::optional<double> scale;  // multiplies q . k; 1 / sqrt(D) when empty
};
// softmax(scale q k^T + mask) v over q (B, H, Tq, D), k, v (B, H, Tk, D) -> (B, H, Tq, D), with
// FlashAttention-2's online softmax forward and recomputing backward (dq, dk, dv). A query row
// whose keys are all masked gives zeros, and zero gradients. See docs/kernels/attention.md.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options = {});

}  // namespace minivl
