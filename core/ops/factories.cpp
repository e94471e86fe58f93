// Factories, copies and conversions: the ops that make or move tensors.
#include <cmath>

#include "core/counters.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/generator.h"

namespace minivl {

Tensor empty(const Shape& shape, DType dtype, Device device) { return make_tensor(shape, dtype, device); }

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = make_tensor(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  MINIVL_CHECK(step != 0.0, "arange: step must be non-zero");
  int64_t n = std::max<int64_t>(0, int64_t(std::ceil((end - start) / step)));
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = start + double(i) * step;
  return from_vector(v, {n}, dtype, device);
}

static Tensor random_tensor(const Shape& shape, DType dtype, Device device, RandomKind kind, const char* op) {
  MINIVL_CHECK(is_floating(dtype), op, ": expected a floating dtype, got ", dtype_name(dtype));
  Tensor t = make_tensor(shape, dtype, device);
  uint64_t n = uint64_t(t.numel());
  // Two stream positions per element covers f64 uniforms and normal pairs; seed and offset read together.
  GeneratorState stream = default_generator().reserve_stream(2 * n + 2);
  kernel_for(kernels().random_fill, device, op)(t.view(), kind, stream.seed, stream.offset);
  return t;
}

Tensor rand(const Shape& shape, DType dtype, Device device) {
  return random_tensor(shape, dtype, device, RandomKind::uniform, "rand");
}
Tensor randn(const Shape& shape, DType dtype, Device device) {
  return random_tensor(shape, dtype, device, RandomKind::normal, "randn");
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  MINIVL_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
               " values for shape ", shape_to_string(shape));
  Tensor host = make_tensor(shape, DType::f64, Device::cpu());
  std::copy(values.begin(), values.end(), host.data<double>());
  Tensor t = host.to(dtype);
  return device.is_cpu() ? t : t.to(device);
}

Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape, DType dtype) {
  MINIVL_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector_i64: ", values.size(),
               " values for shape ", shape_to_string(shape));
  Tensor host = make_tensor(shape, DType::i64, Device::cpu());
  std::copy(values.begin(), values.end(), host.data<int64_t>());
  return dtype == DType::i64 ? host : host.to(dtype);
}

// ---- copies ----
namespace {

struct ToDTypeBackward final : Node {
  DType input_dtype;
  const char* name() const override { return "ToDTypeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].to(input_dtype)}; }
};

struct ToDeviceBackward final : Node {
  Device input_device;
  const char* name() const override { return "ToDeviceBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].to(input_device)}; }
};

struct CloneBackward final : Node {
  const char* name() const override { return "CloneBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0]}; }
};

}  // namespace

Tensor& Tensor::copy_(const Tensor& src) {
  MINIVL_CHECK(!(grad_enabled() && requires_grad()), "copy_: cannot write in place into ", desc(),
               " which requires grad (wrap the update in NoGradGuard)");
  // In-place copies record no history: refuse rather than silently drop a gradient.
  MINIVL_CHECK(!(grad_enabled() && src.requires_grad()), "copy_: the source ", src.desc(),
               " requires grad but an in-place copy is not differentiable; use the op's result, or "
               "copy src.detach() (or run under NoGradGuard)");
  Shape b = broadcast_shapes(shape(), src.shape(), "copy_");
  MINIVL_CHECK(b == shape(), "copy_: cannot copy ", src.shape_str(), " into ", shape_str());
  Tensor s = src.expand(shape()).detach();
  if (s.device() != device()) {
    // Cross-device: make a contiguous same-dtype staging copy on the source device, move the bytes.
    Tensor staged = s.to(dtype()).contiguous();
    Tensor moved = make_tensor(shape(), dtype(), device());
    auto fn = kernels().device_copy;
    MINIVL_CHECK(fn != nullptr, "copy_: cannot copy from ", s.device().str(), " to ", device().str(), ": ",
                 cuda_unavailable_reason());
    fn(staged.data_ptr(), staged.device(), moved.data_ptr(), moved.device(), moved.nbytes());
    if (moved.device().is_cpu()) count_sync(int64_t(moved.nbytes()));  // the host waits for the values
    else count_host_device_bytes(int64_t(moved.nbytes()));
    s = moved;
  }
  kernel_for(kernels().copy, device(), "copy_")(s.view(), view());
  bump_version();
  return *this;
}

Tensor& Tensor::fill_(double value) {
  MINIVL_CHECK(!(grad_enabled() && requires_grad()), "fill_: cannot write in place into ", desc(),
               " which requires grad");
  kernel_for(kernels().fill, device(), "fill_")(view(), value);
  bump_version();
  return *this;
}

Tensor Tensor::clone() const {
  Tensor out = make_tensor(shape(), dtype(), device());
  kernel_for(kernels().copy, device(), "clone")(view(), out.view());
  if (needs_grad({this})) set_history(std::make_shared<CloneBackward>(), {*this}, {out});
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = make_tensor(shape(), target, device());
  kernel_for(kernels().copy, device(), "to")(view(), out.view());
  if (needs_grad({this}) && is_floating(target)) {
    auto node = std::make_shared<ToDTypeBackward>();
    node->input_dtype = dtype();
    set_history(node, {*this}, {out});
  }
  return out;
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  Tensor out = make_tensor(shape(), dtype(), target);
  {
    NoGradGuard no_grad;
    out.copy_(*this);
  }
  if (needs_grad({this})) {
    auto node = std::make_shared<ToDeviceBackward>();
    node->input_device = device();
    set_history(node, {*this}, {out});
  }
  return out;
}

}  // namespace minivl
