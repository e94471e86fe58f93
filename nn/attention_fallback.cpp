#include "nn/attention_fallback.h"

#include <limits>
#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace minivl::nn {
namespace {
double lowest_finite(DType dtype) {
  switch (dtype) {
    case DType::f64: return std::numeric_limits<double>::lowest();
    case DType::f16: return -65504.0;
    case DType::bf16: return -3.3895313892515355e38;
    default: return double(std::numeric_limits<float>::lowest());
  }
}
}  // namespace

Tensor attention_mask(int64_t batch, int64_t tq, int64_t tk, bool causal, const Tensor& key_padding_mask,
                      Device device) {
  if (!causal && !key_padding_mask.defined()) return Tensor();
  const int64_t b = key_padding_mask.defined() ? batch : 1;
  Tensor mask = zeros({b, 1, tq, tk}, DType::boolean);  // (b, 1, Tq, Tk)
  bool* m = mask.data<bool>();
  std::vector<double> pad;
  if (key_padding_mask.defined()) pad = key_padding_mask.to_vector();  // (B, Tk)
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t i = 0; i < tq; ++i)
      for (int64_t j = 0; j < tk; ++j) {
        bool masked = causal && j > i + (tk - tq);
        if (!pad.empty() && pad[size_t(bi * tk + j)] != 0.0) masked = true;
        m[(bi * tq + i) * tk + j] = masked;
      }
  return device.is_cpu() ? mask : mask.to(device);
}

// Composed from public ops only (matmul, mul, masked_fill, softmax), so its gradients come from
// their backward nodes and it can check the fused `attention` op rather than repeat it.
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                           const Tensor& key_padding_mask, double scale) {
  MINIVL_CHECK(q.defined() && k.defined() && v.defined() && q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
               "attention_reference: expected q, k, v of shape (B, H, T, D)");
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2);
  MINIVL_CHECK(k.size(0) == B && v.size(0) == B && k.size(1) == H && v.size(1) == H && v.size(2) == Tk &&
                   k.size(3) == q.size(3),
               "attention_reference: shapes q ", q.shape_str(), ", k ", k.shape_str(), ", v ", v.shape_str(),
               " do not match");
  MINIVL_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(), "attention_reference: dtypes of q (",
               dtype_name(q.dtype()), "), k (", dtype_name(k.dtype()), ") and v (", dtype_name(v.dtype()),
               ") differ");
  if (key_padding_mask.defined())
    MINIVL_CHECK(key_padding_mask.shape() == Shape({B, Tk}) &&
                     (key_padding_mask.dtype() == DType::boolean || key_padding_mask.dtype() == DType::u8),
                 "attention_reference: key_padding_mask must be bool/u8 of shape (", B, ", ", Tk, "), got ",
                 key_padding_mask.desc());
  Tensor scores = mul(matmul(q, k.transpose(-2, -1)), scale);  // (B, H, Tq, Tk)
  Tensor mask = attention_mask(B, Tq, Tk, causal, key_padding_mask, q.device());  // (B or 1, 1, Tq, Tk)
  if (!mask.defined()) return matmul(softmax(scores, -1), v);
  scores = masked_fill(scores, mask, lowest_finite(scores.dtype()));
  // Fully masked rows come out uniform from the softmax; zeroing every masked
  // entry turns them into zeros and leaves the other rows as they are.
  Tensor probs = masked_fill(softmax(scores, -1), mask, 0.0);
  return matmul(probs, v);  // (B, H, Tq, Dv)
}

}  // namespace minivl::nn
