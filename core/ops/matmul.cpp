// matmul: (..., M, K) @ (..., K, N) with broadcast batch dims. Operands keep
// their strides (a transposed view is passed as strides, not copied); every
// batch becomes one offset per operand in one batched GEMM call. A batched
// activation times one shared matrix (a Linear layer: (B, T, K) @ (K, N)) is one
// GEMM with M = B T whenever the activation's rows are evenly strided, and its
// weight gradient is one GEMM over the B T rows rather than B small products
// summed afterwards (which wrote a (B, K, N) temporary).
#include <algorithm>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl {
namespace {

struct MatmulBackward final : Node {
  SavedTensor a, b;
  const char* name() const override { return "MatmulBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    const Tensor& g = grads[0];  // (..., M, N)
    Tensor av = a.get(name()), bv = b.get(name());
    Tensor ga, gb;
    if (next_edges[0].fn) ga = sum_to_shape(matmul(g, bv.transpose(-2, -1)), av.shape());
    if (next_edges[1].fn) {
      if (bv.dim() == 2 && av.dim() >= 2) {  // shared weight: sum over the batch inside the GEMM's K
        const Tensor a2 = av.reshape({-1, av.size(-1)}), g2 = g.reshape({-1, g.size(-1)});
        // A transposed contiguous weight (Linear's W^T): the gradient is made in W's own layout,
        // (g^T a)^T, so W's .grad arrives contiguous and is kept without a copy.
        const bool transposed = bv.stride(0) == 1 && bv.stride(1) == bv.size(0);
        gb = transposed ? matmul(g2.transpose(0, 1), a2).transpose(0, 1) : matmul(a2.transpose(0, 1), g2);
      } else {
        gb = sum_to_shape(matmul(av.transpose(-2, -1), g), bv.shape());
      }
    }
    return {ga, gb};
  }
  void release_saved() override {
    a.release();
    b.release();
  }
};

// Offsets (in elements) of each broadcast batch of `t` (dims before the last two).
std::vector<int64_t> batch_offsets(const Tensor& t, const Shape& batch_shape) {
  const int64_t nb = shape_numel(batch_shape);
  const int64_t lead = int64_t(batch_shape.size()) - (t.dim() - 2);
  std::vector<int64_t> offsets(static_cast<size_t>(nb));
  for (int64_t i = 0; i < nb; ++i) {
    int64_t rem = i, off = 0;
    for (int64_t d = int64_t(batch_shape.size()) - 1; d >= 0; --d) {
      int64_t idx = rem % batch_shape[size_t(d)];
      rem /= batch_shape[size_t(d)];
      int64_t td = d - lead;
      if (td >= 0 && t.size(td) != 1) off += idx * t.stride(td);
    }
    offsets[size_t(i)] = off;
  }
  return offsets;
}

// True when all of `t`'s dims but the last are one evenly strided run of rows,
// so (..., M, K) can be read as (prod(...) M, K) with row stride t.stride(-2).
bool rows_merge(const Tensor& t) {
  int64_t expect = t.stride(-2) * t.size(-2);
  for (int64_t d = t.dim() - 3; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (t.stride(d) != expect) return false;
    expect *= t.size(d);
  }
  return true;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  MINIVL_CHECK(a.defined() && b.defined(), "matmul: undefined tensor argument");
  MINIVL_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim, got ", a.shape_str(),
               " and ", b.shape_str());
  if (a.dim() == 1 && b.dim() == 1) return matmul(a.unsqueeze(0), b.unsqueeze(-1)).reshape({});  // dot
  if (a.dim() == 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (b.dim() == 1) return matmul(a, b.unsqueeze(-1)).squeeze(-1);
  MINIVL_CHECK(a.device() == b.device(), "matmul: operands on different devices: ", a.desc(), " and ", b.desc());
  MINIVL_CHECK(a.dtype() == b.dtype(), "matmul: dtypes do not match: ", a.desc(), " and ", b.desc());
  MINIVL_CHECK(a.is_floating_point(), "matmul: expected floating tensors, got ", a.desc());
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  MINIVL_CHECK(b.size(-2) == K, "matmul: shapes ", a.shape_str(), " and ", b.shape_str(),
               " do not match (inner dims ", K, " and ", b.size(-2), ")");
  Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = make_tensor(out_shape, a.dtype(), a.device());

  std::vector<int64_t> a_off = batch_offsets(a, batch), b_off = batch_offsets(b, batch);
  std::vector<int64_t> c_off(a_off.size());
  for (size_t i = 0; i < c_off.size(); ++i) c_off[i] = int64_t(i) * M * N;
  GemmProblem p;
  p.dtype = a.dtype();
  p.batch = int64_t(c_off.size());
  p.M = M;
  p.N = N;
  p.K = K;
  p.a = a.data_ptr();
  p.a_row_stride = a.stride(-2);
  p.a_col_stride = a.stride(-1);
  p.a_offsets = a_off.data();
  p.b = b.data_ptr();
  p.b_row_stride = b.stride(-2);
  p.b_col_stride = b.stride(-1);
  p.b_offsets = b_off.data();
  p.c = out.data_ptr();
  p.c_row_stride = N;
  p.c_col_stride = 1;
  p.c_offsets = c_off.data();
  const bool b_shared = std::all_of(b_off.begin(), b_off.end(), [](int64_t o) { return o == 0; });
  if (p.batch > 1 && b_shared && shape_numel(a_batch) == p.batch && a.dim() > 2 && rows_merge(a)) {
    p.M = p.batch * M;  // one GEMM: the batches are consecutive row blocks of a and of out
    p.batch = 1;
  }
  if (out.numel() > 0) kernel_for(kernels().gemm, a.device(), "matmul")(p);

  if (needs_grad({&a, &b})) {
    auto node = std::make_shared<MatmulBackward>();
    node->a = SavedTensor(a);
    node->b = SavedTensor(b);
    set_history(node, {a, b}, {out});
  }
  return out;
}

}  // namespace minivl
