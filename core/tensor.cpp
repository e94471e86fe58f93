#include "core/tensor.h"

#include <cmath>
#include <functional>
#include <iomanip>
#include <sstream>

#include "core/autograd.h"
#include "core/counters.h"
#include "core/dispatch.h"
#include "core/error.h"

namespace minivl {

// ---- shape helpers ----
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t n = ndim == 0 ? 1 : ndim;  // a 0-d tensor accepts dim 0 / -1
  MINIVL_CHECK(dim >= -n && dim < n, op, ": dim ", dim, " out of range for a ", ndim, "-d tensor");
  return dim < 0 ? dim + n : dim;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    s *= std::max<int64_t>(shape[d], 1);
  }
  return strides;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    MINIVL_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_to_string(a), " and ",
                 shape_to_string(b), " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Tensor make_tensor(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) MINIVL_CHECK(s >= 0, "tensor: negative size in shape ", shape_to_string(shape));
  MINIVL_CHECK(int(shape.size()) <= kMaxDims, "tensor: at most ", kMaxDims, " dims, got ", shape.size());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  MINIVL_CHECK(int(sizes.size()) <= kMaxDims, "view: at most ", kMaxDims, " dims, got ", sizes.size());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// ---- metadata ----
const Shape& Tensor::shape() const { return impl_->sizes; }
const Shape& Tensor::strides() const { return impl_->strides; }
int64_t Tensor::dim() const { return int64_t(impl_->sizes.size()); }
int64_t Tensor::size(int64_t d) const {
  MINIVL_CHECK(dim() > 0, "size: a 0-d tensor has no dim ", d);
  return impl_->sizes[wrap_dim(d, dim(), "size")];
}
int64_t Tensor::stride(int64_t d) const {
  MINIVL_CHECK(dim() > 0, "stride: a 0-d tensor has no dim ", d);
  return impl_->strides[wrap_dim(d, dim(), "stride")];
}
int64_t Tensor::numel() const { return shape_numel(impl_->sizes); }
int64_t Tensor::offset() const { return impl_->offset; }
DType Tensor::dtype() const { return impl_->dtype; }
Device Tensor::device() const { return impl_->storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return impl_->storage; }
std::string Tensor::shape_str() const { return shape_to_string(shape()); }
std::string Tensor::desc() const {
  return std::string(dtype_name(dtype())) + " " + shape_str() + " on " + device().str();
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (impl_->sizes[d] != 1 && impl_->strides[d] != expected) return false;
    expected *= impl_->sizes[d];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * int64_t(dtype_size(dtype()));
}

StridedView Tensor::view() const {
  StridedView v;
  v.data = data_ptr();
  v.dtype = dtype();
  v.ndim = int(dim());
  for (int d = 0; d < v.ndim; ++d) {
    v.sizes[d] = impl_->sizes[d];
    v.strides[d] = impl_->strides[d];
  }
  return v;
}

// Host reads are sync points (core/counters.h): a device tensor's copy to the host counts in
// copy_; a CPU tensor's read counts here, where the CUDA path would have waited.
namespace {
Tensor to_host_for_read(const Tensor& t) {
  if (!t.device().is_cpu()) return t.to(Device::cpu());
  count_sync(int64_t(t.nbytes()));
  return t;
}
}  // namespace

std::vector<double> Tensor::to_vector() const {
  Tensor t = to_host_for_read(*this);
  t = t.to(DType::f64).contiguous();
  const double* p = t.data<double>();
  return std::vector<double>(p, p + t.numel());
}

double Tensor::item() const {
  MINIVL_CHECK(numel() == 1, "item: expected a one-element tensor, got ", shape_str());
  return to_vector()[0];
}

int64_t Tensor::item_int() const {
  MINIVL_CHECK(numel() == 1, "item: expected a one-element tensor, got ", shape_str());
  Tensor t = to_host_for_read(*this).to(DType::i64).contiguous();
  return *t.data<int64_t>();
}

// ---- autograd fields ----
bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

Tensor& Tensor::requires_grad_(bool value) {
  MINIVL_CHECK(!value || is_floating_point(), "requires_grad_: only floating tensors can require grad, got ",
               desc());
  MINIVL_CHECK(is_leaf(), "requires_grad_: can only be set on leaf tensors (this one comes from ",
               impl_->grad_fn->name(), ")");
  impl_->requires_grad = value;
  return *this;
}

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
void Tensor::set_grad(const Tensor& g) { impl_->grad = g.impl_ptr(); }
void Tensor::zero_grad() { impl_->grad.reset(); }
std::shared_ptr<Node> Tensor::grad_fn() const { return impl_->grad_fn; }
bool Tensor::is_leaf() const { return impl_->grad_fn == nullptr; }
void Tensor::bump_version() const { impl_->storage->bump_version(); }

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  MINIVL_CHECK(requires_grad(), "backward: this tensor (", desc(),
               ") does not require grad; no input of the ops that made it requires grad");
  Tensor g = gradient;
  if (!g.defined()) {
    MINIVL_CHECK(numel() == 1, "backward: a gradient is needed for a non-scalar output ", shape_str());
    g = Tensor(make_tensor(shape(), dtype(), device()));
    g.fill_(1.0);
  }
  MINIVL_CHECK(g.shape() == shape(), "backward: gradient shape ", g.shape_str(), " does not match output shape ",
               shape_str());
  run_backward({*this}, {g}, retain_graph);
}

// ---- printing ----
std::string Tensor::str(int max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(" << desc();
  if (requires_grad()) os << ", requires_grad";
  os << ")\n";
  std::vector<double> v = to_vector();
  const Shape& s = shape();
  bool integral = !is_floating_point();
  std::function<void(int64_t, int64_t, int)> rec = [&](int64_t d, int64_t base, int indent) {
    if (d == dim()) {
      if (integral) os << int64_t(v[base]);
      else os << std::setprecision(6) << v[base];
      return;
    }
    int64_t inner = 1;
    for (int64_t k = d + 1; k < dim(); ++k) inner *= s[k];
    os << "[";
    for (int64_t i = 0; i < s[d]; ++i) {
      if (s[d] > 2 * max_per_dim && i == max_per_dim) {
        os << "..., ";
        i = s[d] - max_per_dim;
      }
      if (i > 0 && d + 1 < dim()) os << "\n" << std::string(indent + 1, ' ');
      rec(d + 1, base + i * inner, indent + 1);
      if (i + 1 < s[d]) os << ", ";
    }
    os << "]";
  };
  rec(0, 0, 0);
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace minivl
