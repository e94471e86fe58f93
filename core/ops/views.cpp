// View ops: pure stride arithmetic over shared storage, on every device.
// Each records a backward that maps the gradient back to the input's shape.
#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/ops.h"

namespace minivl {
namespace {

struct ReshapeBackward final : Node {
  Shape input_shape;
  const char* name() const override { return "ReshapeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].reshape(input_shape)}; }
};

struct PermuteBackward final : Node {
  std::vector<int64_t> inverse;
  const char* name() const override { return "PermuteBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].permute(inverse)}; }
};

// The gradient of a slice: zeros with the slice's region filled from g.
struct SliceBackward final : Node {
  Shape input_shape;
  int64_t dim, start, end, step;
  const char* name() const override { return "SliceBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    Tensor out = zeros(input_shape, g[0].dtype(), g[0].device());
    out.slice(dim, start, end, step).copy_(g[0]);
    return {out};
  }
};

struct ExpandBackward final : Node {
  Shape input_shape;
  const char* name() const override { return "ExpandBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {sum_to_shape(g[0], input_shape)}; }
};

// Records `node` for a view op when the input needs a gradient.
template <typename N>
Tensor with_history(const Tensor& in, Tensor out, std::shared_ptr<N> node) {
  if (needs_grad({&in})) set_history(node, {in}, {out});
  return out;
}

// Strides for viewing `t` as `shape` without a copy, or empty when impossible
// (dims may merge only where they are contiguous with each other).
std::optional<Shape> view_strides(const Tensor& t, const Shape& shape) {
  if (t.numel() == 0 || t.is_contiguous()) return contiguous_strides(shape);
  Shape out(shape.size());
  const Shape& sizes = t.shape();
  const Shape& strides = t.strides();
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Shape infer_shape(Shape shape, int64_t numel, const char* op, const Tensor& t) {
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      MINIVL_CHECK(infer < 0, op, ": only one dim can be -1 in ", shape_to_string(shape));
      infer = int64_t(i);
    } else {
      MINIVL_CHECK(shape[i] >= 0, op, ": invalid size in ", shape_to_string(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    MINIVL_CHECK(known != 0 && numel % known == 0, op, ": cannot reshape ", t.shape_str(), " into ",
                 shape_to_string(shape));
    shape[size_t(infer)] = numel / known;
  }
  MINIVL_CHECK(shape_numel(shape) == numel, op, ": cannot reshape ", t.shape_str(), " (", numel,
               " elements) into ", shape_to_string(shape));
  return shape;
}

}  // namespace

Tensor Tensor::view_as_shape(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "view", *this);
  auto strides = view_strides(*this, shape);
  MINIVL_CHECK(strides.has_value(), "view: cannot view ", shape_str(), " with strides ",
               shape_to_string(this->strides()), " as ", shape_to_string(shape), " without a copy; use reshape");
  auto node = std::make_shared<ReshapeBackward>();
  node->input_shape = this->shape();
  return with_history(*this, make_view(*this, shape, *strides, offset()), node);
}

Tensor Tensor::reshape(Shape shape) const {
  shape = infer_shape(std::move(shape), numel(), "reshape", *this);
  if (shape == this->shape()) return *this;
  if (view_strides(*this, shape)) return view_as_shape(shape);
  return contiguous().view_as_shape(shape);
}

Tensor Tensor::permute(std::vector<int64_t> dims) const {
  MINIVL_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for a ", dim(),
               "-d tensor ", shape_str());
  std::vector<bool> seen(dims.size());
  Shape sizes(dims.size()), strides(dims.size());
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    MINIVL_CHECK(!seen[size_t(d)], "permute: dim ", d, " repeated");
    seen[size_t(d)] = true;
    sizes[i] = shape()[size_t(d)];
    strides[i] = this->strides()[size_t(d)];
    inverse[size_t(d)] = int64_t(i);
  }
  auto node = std::make_shared<PermuteBackward>();
  node->inverse = inverse;
  return with_history(*this, make_view(*this, sizes, strides, offset()), node);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  std::vector<int64_t> dims(static_cast<size_t>(dim()));
  std::iota(dims.begin(), dims.end(), 0);
  if (dim() == 0) return *this;
  std::swap(dims[size_t(wrap_dim(d0, dim(), "transpose"))], dims[size_t(wrap_dim(d1, dim(), "transpose"))]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  MINIVL_CHECK(dim() > 0, "slice: cannot slice a 0-d tensor");
  d = wrap_dim(d, dim(), "slice");
  MINIVL_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape()[size_t(d)];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape sizes = shape(), strides = this->strides();
  sizes[size_t(d)] = (end - start + step - 1) / step;
  strides[size_t(d)] *= step;
  auto node = std::make_shared<SliceBackward>();
  node->input_shape = shape();
  node->dim = d;
  node->start = start;
  node->end = end;
  node->step = step;
  return with_history(*this, make_view(*this, sizes, strides, offset() + start * this->strides()[size_t(d)]), node);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  MINIVL_CHECK(dim() > 0, "narrow: cannot narrow a 0-d tensor");
  d = wrap_dim(d, dim(), "narrow");
  const int64_t n = shape()[size_t(d)];
  MINIVL_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: [", start, ", ", start + length,
               ") is out of range for dim ", d, " of size ", n, " in ", shape_str());
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  MINIVL_CHECK(dim() > 0, "select: cannot select a 0-d tensor");
  d = wrap_dim(d, dim(), "select");
  const int64_t n = shape()[size_t(d)];
  MINIVL_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d, " of size ", n);
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(Shape target) const {
  MINIVL_CHECK(int64_t(target.size()) >= dim(), "expand: cannot expand ", shape_str(), " to ",
               shape_to_string(target));
  const int64_t lead = int64_t(target.size()) - dim();
  Shape strides(target.size(), 0);
  for (int64_t i = 0; i < int64_t(target.size()); ++i) {
    if (i < lead) {
      MINIVL_CHECK(target[size_t(i)] >= 0, "expand: invalid size in ", shape_to_string(target));
      continue;
    }
    int64_t have = shape()[size_t(i - lead)];
    if (target[size_t(i)] == -1) target[size_t(i)] = have;
    MINIVL_CHECK(have == target[size_t(i)] || have == 1, "expand: cannot expand ", shape_str(), " to ",
                 shape_to_string(target));
    strides[size_t(i)] = have == target[size_t(i)] ? this->strides()[size_t(i - lead)] : 0;
  }
  if (target == shape()) return *this;
  auto node = std::make_shared<ExpandBackward>();
  node->input_shape = shape();
  return with_history(*this, make_view(*this, target, strides, offset()), node);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (dim() == 0 || shape()[size_t(d)] != 1) return *this;
  Shape sizes = shape(), strides = this->strides();
  sizes.erase(sizes.begin() + d);
  strides.erase(strides.begin() + d);
  auto node = std::make_shared<ReshapeBackward>();
  node->input_shape = shape();
  return with_history(*this, make_view(*this, sizes, strides, offset()), node);
}

Tensor Tensor::squeeze() const {
  Shape sizes, strides;
  for (int64_t d = 0; d < dim(); ++d) {
    if (shape()[size_t(d)] == 1) continue;
    sizes.push_back(shape()[size_t(d)]);
    strides.push_back(this->strides()[size_t(d)]);
  }
  if (sizes.size() == shape().size()) return *this;
  auto node = std::make_shared<ReshapeBackward>();
  node->input_shape = shape();
  return with_history(*this, make_view(*this, sizes, strides, offset()), node);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape sizes = shape(), strides = this->strides();
  int64_t stride = d < dim() ? strides[size_t(d)] * sizes[size_t(d)] : 1;
  sizes.insert(sizes.begin() + d, 1);
  strides.insert(strides.begin() + d, stride);
  auto node = std::make_shared<ReshapeBackward>();
  node->input_shape = shape();
  return with_history(*this, make_view(*this, sizes, strides, offset()), node);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  start_dim = wrap_dim(start_dim, dim(), "flatten");
  end_dim = wrap_dim(end_dim, dim(), "flatten");
  MINIVL_CHECK(start_dim <= end_dim, "flatten: start_dim ", start_dim, " after end_dim ", end_dim);
  Shape sizes;
  for (int64_t d = 0; d < start_dim; ++d) sizes.push_back(shape()[size_t(d)]);
  int64_t merged = 1;
  for (int64_t d = start_dim; d <= end_dim; ++d) merged *= shape()[size_t(d)];
  sizes.push_back(merged);
  for (int64_t d = end_dim + 1; d < dim(); ++d) sizes.push_back(shape()[size_t(d)]);
  return reshape(sizes);
}

}  // namespace minivl
