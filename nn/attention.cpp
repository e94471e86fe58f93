#include "nn/attention.h"

#include <cmath>

#include "core/error.h"
#include "core/ops.h"
#include "nn/amp.h"
#include "nn/attention_fallback.h"

namespace minivl::nn {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    const Tensor& key_padding_mask, double scale) {
  Tensor out;
  if (use_attention_reference()) {
    out = attention_reference(autocast(q), autocast(k), autocast(v), causal, key_padding_mask, scale);
  } else {
    AttentionOptions options;
    options.causal = causal;
    options.key_padding_mask = key_padding_mask;
    options.scale = scale;
    out = attention(autocast(q), autocast(k), autocast(v), options);  // the fused op
  }
  return out.dtype() == q.dtype() ? out : out.to(q.dtype());
}

namespace {
thread_local bool t_use_reference = false;
}
bool use_attention_reference() { return t_use_reference; }
void set_use_attention_reference(bool on) { t_use_reference = on; }

MultiHeadAttention::MultiHeadAttention(int64_t d, int64_t h, bool bias) : dim(d), num_heads(h) {
  MINIVL_CHECK(d > 0 && h > 0 && d % h == 0, "MultiHeadAttention: dim ", d, " must be a positive multiple of ",
               "num_heads ", h);
  head_dim = d / h;
  q_proj = register_module("q_proj", std::make_shared<Linear>(d, d, bias));
  k_proj = register_module("k_proj", std::make_shared<Linear>(d, d, bias));
  v_proj = register_module("v_proj", std::make_shared<Linear>(d, d, bias));
  out_proj = register_module("out_proj", std::make_shared<Linear>(d, d, bias));
}

Tensor MultiHeadAttention::split_heads(const Tensor& x) const {
  return x.reshape({x.size(0), x.size(1), num_heads, head_dim}).permute({0, 2, 1, 3});
}

Tensor MultiHeadAttention::forward(const Tensor& x, const AttentionArgs& args) const {
  MINIVL_CHECK(x.defined() && x.dim() == 3 && x.size(2) == dim, "MultiHeadAttention(", dim,
               "): expected x (B, T, ", dim, "), got ", x.defined() ? x.shape_str() : "undefined");
  const int64_t B = x.size(0), Tq = x.size(1);
  Tensor q = split_heads(q_proj->forward(x));  // (B, H, Tq, Dh)
  Tensor k, v;                                  // (B, H, Tk, Dh)
  const bool is_cross = args.key_value.defined();
  if (is_cross) {
    const Tensor& kv = args.key_value;
    MINIVL_CHECK(kv.dim() == 3 && kv.size(0) == B && kv.size(2) == dim, "MultiHeadAttention: key_value ",
                 kv.shape_str(), " does not match x ", x.shape_str());
    if (args.cache && args.cache->k.defined()) {
      k = args.cache->k;
      v = args.cache->v;
    } else {
      k = split_heads(k_proj->forward(kv));
      v = split_heads(v_proj->forward(kv));
      if (args.cache) *args.cache = {k, v};
    }
  } else {
    k = split_heads(k_proj->forward(x));
    v = split_heads(v_proj->forward(x));
    if (args.cache) {
      if (args.cache->k.defined()) {
        k = cat({args.cache->k, k}, 2);
        v = cat({args.cache->v, v}, 2);
      }
      *args.cache = {k, v};
    }
  }
  Tensor out = scaled_dot_product_attention(q, k, v, args.causal, args.key_padding_mask,
                                            1.0 / std::sqrt(double(head_dim)));  // (B, H, Tq, Dh)
  out = out.permute({0, 2, 1, 3}).reshape({B, Tq, dim});
  return out_proj->forward(out);
}

}  // namespace minivl::nn
