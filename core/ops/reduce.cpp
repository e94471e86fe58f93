// Reductions over dims (sum, mean, max, var), argmax and topk.
#include <algorithm>
#include <numeric>
#include <utility>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl {
namespace {

struct ReducePlan {
  std::vector<bool> reduced;  // per input dim
  Shape out_shape;            // without keepdim
  Shape keep_shape;           // with keepdim (1 in reduced dims)
  int64_t count = 1;          // elements reduced per output
};

ReducePlan plan_reduce(const Tensor& x, std::vector<int64_t> dims, const char* op) {
  ReducePlan p;
  p.reduced.assign(size_t(x.dim()), dims.empty());
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), op);
    if (x.dim() == 0) continue;  // a 0-d tensor accepts dim 0 / -1 and has nothing to reduce
    MINIVL_CHECK(!p.reduced[size_t(w)], op, ": dim ", d, " repeated");
    p.reduced[size_t(w)] = true;
  }
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (p.reduced[size_t(d)]) {
      p.count *= x.size(d);
      p.keep_shape.push_back(1);
    } else {
      p.out_shape.push_back(x.size(d));
      p.keep_shape.push_back(x.size(d));
    }
  }
  return p;
}

Tensor reduce_raw(ReduceOp op, const Tensor& x, const ReducePlan& p, const char* name) {
  MINIVL_CHECK(x.defined(), name, ": undefined tensor argument");
  if (op != ReduceOp::sum) MINIVL_CHECK(x.is_floating_point() || op == ReduceOp::max, name,
                                        ": expected a floating tensor, got ", x.desc());
  if (op == ReduceOp::max) MINIVL_CHECK(p.count > 0, name, ": cannot take the max of an empty selection of ",
                                        x.shape_str());
  // Kept dims first, reduced dims last: the kernel's layout.
  std::vector<int64_t> order;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!p.reduced[size_t(d)]) order.push_back(d);
  int n_reduced = 0;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (p.reduced[size_t(d)]) {
      order.push_back(d);
      ++n_reduced;
    }
  Tensor xp = x.detach().permute(order);
  Tensor out = make_tensor(p.out_shape, x.dtype(), x.device());
  kernel_for(kernels().reduce, x.device(), name)(op, xp.view(), n_reduced, out.view());
  return out;
}

struct SumBackward final : Node {
  Shape input_shape, keep_shape;
  double scale = 1.0;  // 1/count for mean
  const char* name() const override { return scale == 1.0 ? "SumBackward" : "MeanBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor g = grads[0].reshape(keep_shape);
    if (scale != 1.0) g = mul(g, scale);
    return {g.expand(input_shape).contiguous()};
  }
};

// The max's gradient goes to the positions equal to the max, split evenly among ties.
struct MaxBackward final : Node {
  SavedTensor x, result;
  Shape keep_shape;
  const char* name() const override { return "MaxBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor xv = x.get(name()), r = result.get(name()).reshape(keep_shape);
    Tensor hit = equal_mask(xv, r);
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < xv.dim(); ++d)
      if (keep_shape[size_t(d)] == 1 && xv.size(d) != 1) dims.push_back(d);
    Tensor count = dims.empty() ? ones(keep_shape, xv.dtype(), xv.device()) : sum(hit, dims, true);
    return {mul(hit, div(grads[0].reshape(keep_shape), count))};
  }
  void release_saved() override {
    x.release();
    result.release();
  }
};

// sum, or mean (op == ReduceOp::mean): the same backward, the mean's scaled by 1 / count.
Tensor sum_or_mean(ReduceOp op, const Tensor& x, std::vector<int64_t> dims, bool keepdim, const char* name) {
  ReducePlan p = plan_reduce(x, std::move(dims), name);
  Tensor out = reduce_raw(op, x, p, name);
  if (needs_grad({&x})) {
    auto node = std::make_shared<SumBackward>();
    node->input_shape = x.shape();
    node->keep_shape = p.keep_shape;
    if (op == ReduceOp::mean) node->scale = 1.0 / double(p.count);
    set_history(node, {x}, {out});
  }
  return keepdim ? out.reshape(p.keep_shape) : out;
}

}  // namespace

Tensor sum(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  return sum_or_mean(ReduceOp::sum, x, std::move(dims), keepdim, "sum");
}

Tensor mean(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  return sum_or_mean(ReduceOp::mean, x, std::move(dims), keepdim, "mean");
}

Tensor max(const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
  ReducePlan p = plan_reduce(x, dims, "max");
  Tensor out = reduce_raw(ReduceOp::max, x, p, "max");
  if (needs_grad({&x})) {
    auto node = std::make_shared<MaxBackward>();
    node->x = SavedTensor(x);
    node->result = SavedTensor(out);
    node->keep_shape = p.keep_shape;
    set_history(node, {x}, {out});
  }
  return keepdim ? out.reshape(p.keep_shape) : out;
}

Tensor var(const Tensor& x, std::vector<int64_t> dims, int64_t correction, bool keepdim) {
  ReducePlan p = plan_reduce(x, dims, "var");
  MINIVL_CHECK(x.is_floating_point(), "var: expected a floating tensor, got ", x.desc());
  Tensor centered = sub(x, mean(x, dims, /*keepdim=*/true));
  // The mean of the squares, not their sum: the mean divides inside the f32 accumulator, so an
  // f16 variance of 70 000 unit values is 1, not a sum of 70 000 overflowed to inf.
  Tensor mean_square = mean(mul(centered, centered), dims, keepdim);
  return mul(mean_square, double(p.count) / double(std::max<int64_t>(p.count - correction, 0)));
}

namespace {
// x with `d` moved last (other dims in order), as contiguous (R, L) rows.
Tensor rows_along(const Tensor& x, int64_t d) {
  std::vector<int64_t> order;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (i != d) order.push_back(i);
  order.push_back(d);
  Tensor moved = x.detach().permute(order).contiguous();
  return moved.reshape({-1, x.size(d)});
}
// Moves the last dim of `t` back to position d.
Tensor last_to(const Tensor& t, int64_t d) {
  std::vector<int64_t> order;
  for (int64_t i = 0; i < t.dim() - 1; ++i) {
    if (i == d) order.push_back(t.dim() - 1);
    order.push_back(i);
  }
  if (d == t.dim() - 1) order.push_back(d);
  return t.permute(order).contiguous();
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  MINIVL_CHECK(x.defined(), "argmax: undefined tensor argument");
  Tensor src = x.dim() == 0 ? x.reshape({1}) : x;
  int64_t d = wrap_dim(dim, src.dim(), "argmax");
  MINIVL_CHECK(src.size(d) > 0, "argmax: empty dim ", dim, " in ", x.shape_str());
  Tensor rows = rows_along(src, d);
  Tensor out = make_tensor({rows.size(0)}, DType::i64, x.device());
  kernel_for(kernels().argmax, x.device(), "argmax")(rows.view(), out.view());
  if (x.dim() == 0) return out.reshape({});
  Shape shape = x.shape();
  shape.erase(shape.begin() + d);
  Tensor r = out.reshape(shape);
  return keepdim ? r.unsqueeze(d) : r;
}

std::pair<Tensor, Tensor> topk(const Tensor& x, int64_t k, int64_t dim) {
  MINIVL_CHECK(x.defined(), "topk: undefined tensor argument");
  Tensor src = x.dim() == 0 ? x.reshape({1}) : x;
  int64_t d = wrap_dim(dim, src.dim(), "topk");
  int64_t len = src.size(d);
  MINIVL_CHECK(k >= 0 && k <= len, "topk: k = ", k, " out of range for dim ", dim, " of size ", len, " in ",
               x.shape_str());
  Tensor rows = rows_along(src, d);
  Tensor values = make_tensor({rows.size(0), k}, x.dtype(), x.device());
  Tensor indices = make_tensor({rows.size(0), k}, DType::i64, x.device());
  kernel_for(kernels().topk, x.device(), "topk")(rows.view(), k, values.view(), indices.view());
  Shape shape;
  for (int64_t i = 0; i < src.dim(); ++i)
    if (i != d) shape.push_back(src.size(i));
  shape.push_back(k);
  Tensor v = last_to(values.reshape(shape), d), i = last_to(indices.reshape(shape), d);
  if (x.dim() == 0) return {v.reshape({}), i.reshape({})};
  return {v, i};
}

}  // namespace minivl
