#pragma once
// Multi-head attention with separate q/k/v/out projections (Hugging Face
// CLIP's names: q_proj, k_proj, v_proj, out_proj), self or cross, causal,
// key padding, and a KV cache for incremental decoding.
#include <cstdint>
#include <memory>

#include "nn/layers.h"

namespace minivl::nn {

// Keys and values seen so far, per layer: k, v (B, H, T, D/H).
struct KVCache {
  Tensor k, v;
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
  void clear() { k = v = Tensor(); }
};

struct AttentionArgs {
  // The key/value source (B, Tk, D) for cross-attention; undefined = self-attention.
  Tensor key_value;
  bool causal = false;
  // (B, Tk) bool/u8, true = padding. With a self-attention cache Tk counts the cached keys too.
  Tensor key_padding_mask;
  // Self-attention: the new keys/values are appended and attention runs over all of them.
  // Cross-attention: the projections of key_value are computed on first use and reused
  // afterwards (key_value is still passed; only its shape is checked then).
  KVCache* cache = nullptr;
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(int64_t dim, int64_t num_heads, bool bias = true);
  // x (B, Tq, D) -> (B, Tq, D)
  Tensor forward(const Tensor& x, const AttentionArgs& args = {}) const;
  int64_t dim, num_heads, head_dim;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;

 private:
  Tensor split_heads(const Tensor& x) const;  // (B, T, D) -> (B, H, T, D/H), a view
};

// The fused attention op (core/ops.h) under autocast: q, k, v cast to the
// autocast dtype when active, the result cast back to q's dtype. The one call
// site of the attention math in nn.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    const Tensor& key_padding_mask, double scale);
// Routes scaled_dot_product_attention to attention_reference (public ops) on this
// thread instead of the fused op: for tests comparing the two.
bool use_attention_reference();
void set_use_attention_reference(bool on);

}  // namespace minivl::nn
