#pragma once
// Tensor: a thin refcounted handle to TensorImpl (storage + sizes + strides +
// offset + dtype, and the autograd fields). Views share storage. The ops live
// in core/ops.h as free functions; the methods here are the common ones.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"
#include "kernels/strided_view.h"

namespace minivl {

using Shape = std::vector<int64_t>;
struct Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;  // in elements
  int64_t offset = 0;  // in elements
  DType dtype = DType::f32;

  // autograd
  bool requires_grad = false;           // true for leaves that want .grad, and for op results that need a graph
  std::shared_ptr<TensorImpl> grad;     // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;        // the node that produced this tensor (null for leaves)
  uint32_t output_nr = 0;               // which output of grad_fn this is
  std::weak_ptr<Node> grad_accumulator; // for leaves: the node that accumulates into .grad
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // ---- metadata ----
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const;
  int64_t size(int64_t d) const;    // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  int64_t offset() const;
  DType dtype() const;
  Device device() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  bool is_contiguous() const;
  bool is_floating_point() const { return is_floating(dtype()); }
  const std::shared_ptr<Storage>& storage() const;
  std::string shape_str() const;  // "(2, 3)"
  std::string desc() const;       // "f32 (2, 3) on cpu"

  // ---- data ----
  void* data_ptr() const;  // at the offset
  template <typename T> T* data() const { return static_cast<T*>(data_ptr()); }
  double item() const;      // a one-element tensor's value, on any device
  int64_t item_int() const;
  std::vector<double> to_vector() const;  // every element, row-major, as double
  StridedView view() const;               // what a kernel sees

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool value = true);
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad();
  std::shared_ptr<Node> grad_fn() const;
  bool is_leaf() const;
  // Backpropagates from this tensor; `gradient` defaults to 1 for a one-element tensor.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, no history
  void bump_version() const;

  // ---- views (share storage) ----
  Tensor reshape(Shape shape) const;  // a view when strides allow, a copy otherwise
  Tensor view_as_shape(Shape shape) const;  // a view or an error
  Tensor permute(std::vector<int64_t> dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor expand(Shape shape) const;
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor contiguous() const;

  // ---- conversion and copies ----
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor clone() const;
  Tensor& copy_(const Tensor& src);  // in place, broadcasting src, converting dtype/device
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  std::string str(int max_per_dim = 6) const;  // printing

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Normalises a possibly negative dim against `ndim`, with an error naming `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);
std::string shape_to_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// The broadcast of two shapes (numpy rules), or an error naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Raw constructor: a fresh, uninitialised, contiguous tensor.
Tensor make_tensor(const Shape& shape, DType dtype, Device device);
// A view onto existing storage.
Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset);

}  // namespace minivl
