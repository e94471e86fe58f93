// Pointwise ops: binary with broadcasting, unary, clamp/pow, where, dropout.
#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/generator.h"

namespace minivl {
namespace {

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::eq: return "equal_mask";
  }
  return "binary";
}

void check_same_device_dtype(const char* op, const Tensor& a, const Tensor& b) {
  MINIVL_CHECK(a.defined() && b.defined(), op, ": undefined tensor argument");
  MINIVL_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.desc(), " and ", b.desc());
  MINIVL_CHECK(a.dtype() == b.dtype(), op, ": dtypes do not match: ", a.desc(), " and ", b.desc());
}

void check_floating(const char* op, const Tensor& x) {
  MINIVL_CHECK(x.defined(), op, ": undefined tensor argument");
  MINIVL_CHECK(x.is_floating_point(), op, ": expected a floating tensor, got ", x.desc());
}

Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_same_device_dtype(name, a, b);
  MINIVL_CHECK(a.dtype() != DType::boolean, name, ": not defined for bool tensors");
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = make_tensor(shape, a.dtype(), a.device());
  kernel_for(kernels().binary, a.device(), name)(op, a.expand(shape).view(), b.expand(shape).view(), out.view());
  return out;
}

struct BinaryBackward final : Node {
  BinaryOp op;
  SavedTensor a, b;  // saved only for mul and div
  Shape a_shape, b_shape;
  const char* name() const override {
    switch (op) {
      case BinaryOp::add: return "AddBackward";
      case BinaryOp::sub: return "SubBackward";
      case BinaryOp::mul: return "MulBackward";
      case BinaryOp::div: return "DivBackward";
      case BinaryOp::eq: break;
    }
    return "BinaryBackward";
  }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    const Tensor& g = grads[0];
    const bool need_a = next_edges[0].fn != nullptr, need_b = next_edges[1].fn != nullptr;
    Tensor ga, gb;
    switch (op) {
      case BinaryOp::add:
        if (need_a) ga = g;
        if (need_b) gb = g;
        break;
      case BinaryOp::sub:
        if (need_a) ga = g;
        if (need_b) gb = neg(g);
        break;
      case BinaryOp::mul:
        if (need_a) ga = mul(g, b.get(name()));
        if (need_b) gb = mul(g, a.get(name()));
        break;
      case BinaryOp::div: {
        Tensor bv = b.get(name());
        if (need_a) ga = div(g, bv);
        if (need_b) gb = neg(div(mul(g, a.get(name())), mul(bv, bv)));
        break;
      }
      case BinaryOp::eq: break;
    }
    if (ga.defined()) ga = sum_to_shape(ga, a_shape);
    if (gb.defined()) gb = sum_to_shape(gb, b_shape);
    return {ga, gb};
  }
  void release_saved() override {
    a.release();
    b.release();
  }
};

Tensor binary_op(BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(op, a, b);
  if (needs_grad({&a, &b})) {
    auto node = std::make_shared<BinaryBackward>();
    node->op = op;
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    if (op == BinaryOp::mul || op == BinaryOp::div) {
      node->a = SavedTensor(a);
      node->b = SavedTensor(b);
    }
    set_history(node, {a, b}, {out});
  }
  return out;
}

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::pow: return "pow";
    case UnaryOp::abs: return "abs";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::relu: return "relu";
    case UnaryOp::gelu: return "gelu";
    case UnaryOp::gelu_tanh: return "gelu_tanh";
    case UnaryOp::quick_gelu: return "quick_gelu";
    case UnaryOp::clamp: return "clamp";
    case UnaryOp::affine: return "affine";
  }
  return "unary";
}

struct UnaryBackward final : Node {
  UnaryOp op;
  UnaryParams params;
  SavedTensor x;
  const char* name() const override { return "UnaryBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    // Constant derivatives need no saved input (so a later in-place write to x is harmless).
    if (op == UnaryOp::affine) return {mul(grads[0], params.a)};
    if (op == UnaryOp::neg) return {neg(grads[0])};
    Tensor xv = x.get(unary_name(op));
    Tensor gx = make_tensor(xv.shape(), xv.dtype(), xv.device());
    kernel_for(kernels().unary_backward, xv.device(), unary_name(op))(op, params, xv.view(), grads[0].view(),
                                                                         gx.view());
    return {gx};
  }
  void release_saved() override { x.release(); }
};

Tensor unary_op(UnaryOp op, const Tensor& x, UnaryParams params = {}) {
  const char* name = unary_name(op);
  check_floating(name, x);
  Tensor out = make_tensor(x.shape(), x.dtype(), x.device());
  kernel_for(kernels().unary, x.device(), name)(op, params, x.view(), out.view());
  if (needs_grad({&x})) {
    auto node = std::make_shared<UnaryBackward>();
    node->op = op;
    node->params = params;
    if (op != UnaryOp::affine && op != UnaryOp::neg) node->x = SavedTensor(x);
    set_history(node, {x}, {out});
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary_op(BinaryOp::div, a, b); }
Tensor equal_mask(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::eq, a, b); }
Tensor add(const Tensor& a, double b) { return unary_op(UnaryOp::affine, a, {1.0, b}); }
Tensor mul(const Tensor& a, double b) { return unary_op(UnaryOp::affine, a, {b, 0.0}); }
Tensor neg(const Tensor& x) { return unary_op(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary_op(UnaryOp::rsqrt, x); }
Tensor pow(const Tensor& x, double exponent) { return unary_op(UnaryOp::pow, x, {exponent, 0.0}); }
Tensor abs(const Tensor& x) { return unary_op(UnaryOp::abs, x); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::tanh, x); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::sigmoid, x); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::relu, x); }
Tensor gelu(const Tensor& x) { return unary_op(UnaryOp::gelu, x); }
Tensor gelu_tanh(const Tensor& x) { return unary_op(UnaryOp::gelu_tanh, x); }
Tensor quick_gelu(const Tensor& x) { return unary_op(UnaryOp::quick_gelu, x); }

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max) {
  const double inf = std::numeric_limits<double>::infinity();
  double lo = min.value_or(-inf), hi = max.value_or(inf);
  MINIVL_CHECK(!(lo > hi), "clamp: min ", lo, " is greater than max ", hi);
  return unary_op(UnaryOp::clamp, x, {lo, hi});
}

// ---- where ----
namespace {
struct WhereBackward final : Node {
  SavedTensor cond;
  Shape a_shape, b_shape;
  const char* name() const override { return "WhereBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor c = cond.get(name());
    const Tensor& g = grads[0];
    Tensor zero = zeros({}, g.dtype(), g.device());
    Tensor ga, gb;
    if (next_edges[1].fn) ga = sum_to_shape(where(c, g, zero), a_shape);
    if (next_edges[2].fn) gb = sum_to_shape(where(c, zero, g), b_shape);
    return {Tensor(), ga, gb};
  }
  void release_saved() override { cond.release(); }
};
}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_device_dtype("where", a, b);
  MINIVL_CHECK(cond.defined() && (cond.dtype() == DType::boolean || cond.dtype() == DType::u8),
               "where: condition must be bool or u8, got ", cond.defined() ? cond.desc() : "undefined");
  MINIVL_CHECK(cond.device() == a.device(), "where: condition on ", cond.device().str(), ", values on ",
               a.device().str());
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = make_tensor(shape, a.dtype(), a.device());
  kernel_for(kernels().where, a.device(), "where")(cond.expand(shape).view(), a.expand(shape).view(),
                                                    b.expand(shape).view(), out.view());
  if (needs_grad({&a, &b})) {
    auto node = std::make_shared<WhereBackward>();
    node->cond = SavedTensor(cond);
    node->a_shape = a.shape();
    node->b_shape = b.shape();
    set_history(node, {cond, a, b}, {out});
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  MINIVL_CHECK(x.defined(), "masked_fill: undefined tensor argument");
  return where(mask, full({}, value, x.dtype(), x.device()), x);
}

// ---- dropout ----
namespace {
struct DropoutBackward final : Node {
  double p;
  uint64_t seed, offset;
  const char* name() const override { return "DropoutBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor g = grads[0].contiguous();
    Tensor gx = make_tensor(g.shape(), g.dtype(), g.device());
    kernel_for(kernels().dropout, g.device(), "dropout")(g.view(), gx.view(), p, seed, offset);
    return {gx};
  }
};
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, std::optional<uint64_t> seed) {
  check_floating("dropout", x);
  MINIVL_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  uint64_t s, offset;
  if (seed) {
    s = *seed;
    offset = 0;
  } else {
    GeneratorState stream = default_generator().reserve_stream(uint64_t(x.numel()));  // seed and offset together
    s = stream.seed;
    offset = stream.offset;
  }
  Tensor out = make_tensor(x.shape(), x.dtype(), x.device());
  kernel_for(kernels().dropout, x.device(), "dropout")(x.view(), out.view(), p, s, offset);
  if (needs_grad({&x})) {
    auto node = std::make_shared<DropoutBackward>();
    node->p = p;
    node->seed = s;
    node->offset = offset;
    set_history(node, {x}, {out});
  }
  return out;
}

}  // namespace minivl
