// The autograd engine: shared subgraphs, accumulation, retain_graph, no-grad,
// the saved-tensor version check, leaves, deep graphs, multi-output nodes.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using minivl::testing::check_error;
using minivl::testing::check_values;
using minivl::testing::tensor_f64;

namespace {

Tensor leaf(const std::vector<double>& v, const Shape& shape) { return tensor_f64(v, shape).requires_grad_(); }

// A two-output node written against the public Node API (no op in ops.def has
// several outputs: split makes one view node per part): the first and second
// halves of a 1-d tensor, copied. Its backward concatenates the two gradients.
struct HalvesBackward final : Node {
  int64_t half = 0;
  const char* name() const override { return "HalvesBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {cat({g[0], g[1]}, 0)}; }
};

std::pair<Tensor, Tensor> halves(const Tensor& x) {
  const int64_t h = x.size(0) / 2;
  Tensor a, b;
  {
    NoGradGuard no_grad;
    a = x.narrow(0, 0, h).clone();
    b = x.narrow(0, h, h).clone();
  }
  if (needs_grad({&x})) {
    auto node = std::make_shared<HalvesBackward>();
    node->half = h;
    set_history(node, {x}, {a, b});
  }
  return {a, b};
}

// The identity, whose backward counts its calls: an engine that ran a node once per path to it, or
// once per gradient arriving, would call it more than once.
struct CountingIdentityBackward final : Node {
  int* calls = nullptr;
  const char* name() const override { return "CountingIdentityBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override {
    ++*calls;
    return {g[0]};
  }
};

Tensor counting_identity(const Tensor& x, int& calls) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = x.clone();
  }
  if (needs_grad({&x})) {
    auto node = std::make_shared<CountingIdentityBackward>();
    node->calls = &calls;
    set_history(node, {x}, {y});
  }
  return y;
}

// A node whose backward returns a gradient of the wrong shape (a broken op).
struct WrongShapeBackward final : Node {
  const char* name() const override { return "WrongShapeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {zeros({5}, DType::f64)}; }
};

}  // namespace

TEST_SUITE("autograd") {

TEST_CASE("a tensor used twice gets the sum of both gradients") {
  Tensor x = leaf({1, 2, -3}, {3});
  sum(add(mul(x, x), mul(x, 3.0))).backward();  // d/dx (x^2 + 3x) = 2x + 3
  check_values(x.grad(), {5, 7, -3});

  // A shared intermediate: z = exp(x); out = z * z + z; d/dx = 2 e^{2x} + e^x.
  Tensor y = leaf({0.5, -1}, {2});
  Tensor z = exp(y);
  sum(add(mul(z, z), z)).backward();
  check_values(y.grad(), {2 * std::exp(1.0) + std::exp(0.5), 2 * std::exp(-2.0) + std::exp(-1.0)}, 1e-12, 1e-12);

  // A diamond through broadcasting: b (4,) feeds both (3, 4) + b and b * b.
  Tensor b = leaf({1, 2, 3, 4}, {4});
  Tensor m = zeros({3, 4}, DType::f64);
  sum(add(sum(add(m, b), {0}), mul(b, b))).backward();  // d/db = 3 + 2b
  check_values(b.grad(), {5, 7, 9, 11});
}

TEST_CASE("detach cuts the graph") {
  Tensor x = leaf({2, 3}, {2});
  sum(mul(x.detach(), x)).backward();
  check_values(x.grad(), {2, 3});  // not 2x
}

TEST_CASE("gradients accumulate into .grad across backward calls until zero_grad") {
  Tensor x = leaf({1, 1, 1}, {3});
  sum(mul(x, 2.0)).backward();
  Tensor first = x.grad();
  check_values(first, {2, 2, 2});
  sum(mul(x, 3.0)).backward();
  check_values(x.grad(), {5, 5, 5});
  check_values(first, {2, 2, 2});  // accumulation is out of place: the old grad tensor is untouched
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  check_values(x.grad(), {1, 1, 1});
  // Gradients are plain tensors: no history of their own.
  CHECK_FALSE(x.grad().requires_grad());
}

TEST_CASE("retain_graph: without it a second backward fails clearly; with it, it accumulates") {
  Tensor x = leaf({1, 2}, {2}), w = leaf({3, 5}, {2});
  Tensor y = sum(mul(x, w));
  y.backward();
  check_values(x.grad(), {3, 5});
  check_error([&] { y.backward(); }, {"retain_graph"});

  Tensor a = leaf({1, 2}, {2}), b = leaf({3, 5}, {2});
  Tensor z = sum(mul(a, b));
  z.backward(Tensor(), /*retain_graph=*/true);
  z.backward(Tensor(), /*retain_graph=*/true);
  check_values(a.grad(), {6, 10});
  check_values(b.grad(), {2, 4});
  z.backward();  // the last one may free the graph
  check_values(a.grad(), {9, 15});
  check_error([&] { z.backward(); }, {"retain_graph"});
}

TEST_CASE("NoGradGuard: no graph is recorded and the mode is restored") {
  Tensor x = leaf({1, 2}, {2});
  CHECK(grad_enabled());
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_enabled());
    Tensor y = exp(mul(x, 2.0));
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    CHECK_FALSE(y.grad_fn());
    {
      NoGradGuard nested;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());  // the inner guard restores "off", not "on"
    check_error([&] { sum(y).backward(); }, {"backward", "does not require grad"});
  }
  CHECK(grad_enabled());
  Tensor z = mul(x, 2.0);
  CHECK(z.requires_grad());
  CHECK(z.grad_fn());
}

TEST_CASE("an input modified in place after it was saved makes backward fail") {
  Tensor x = leaf({1, 2}, {2}), w = leaf({3, 4}, {2});
  Tensor y = sum(mul(x, w));
  {
    NoGradGuard no_grad;
    w.copy_(tensor_f64({7, 8}, {2}));
  }
  check_error([&] { y.backward(); }, {"MulBackward", "modified in place"});

  // Through a view: writing into part of the saved tensor's storage counts too.
  Tensor a = leaf({0.5, 1.5, 2.5}, {3});
  Tensor e = exp(a);
  {
    NoGradGuard no_grad;
    a.narrow(0, 1, 1).fill_(0);
  }
  check_error([&] { sum(e).backward(); }, {"modified in place"});

  // Writing in place into a tensor that requires grad, with grad mode on, is refused.
  Tensor p = leaf({1}, {1});
  check_error([&] { p.fill_(2); }, {"fill_", "requires grad"});
  check_error([&] { p.copy_(tensor_f64({3}, {1})); }, {"copy_", "requires grad"});

  // An op that saves nothing is unaffected by a later write.
  Tensor c = leaf({1, 2}, {2});
  Tensor s = sum(add(c, 1.0));
  {
    NoGradGuard no_grad;
    c.fill_(5);
  }
  s.backward();
  check_values(c.grad(), {1, 1});
}

TEST_CASE("leaves and non-leaves") {
  Tensor x = leaf({1, 2}, {2});
  Tensor c = tensor_f64({3, 4}, {2});  // a constant
  CHECK(x.is_leaf());
  CHECK(x.requires_grad());
  CHECK(c.is_leaf());
  CHECK_FALSE(c.requires_grad());
  Tensor y = mul(x, c);
  CHECK_FALSE(y.is_leaf());
  CHECK(y.requires_grad());
  CHECK(std::string(y.grad_fn()->name()) == "MulBackward");
  CHECK(mul(c, c).is_leaf());  // no input requires grad: no graph
  check_error([&] { y.requires_grad_(); }, {"requires_grad_", "MulBackward"});
  check_error([] { from_vector_i64({1}, {1}).requires_grad_(); }, {"requires_grad_", "i64"});
  sum(y).backward();
  check_values(x.grad(), {3, 4});
  CHECK_FALSE(c.grad().defined());
  CHECK_FALSE(y.grad().defined());  // non-leaf grads are not retained
  // requires_grad_(false) turns a leaf back into a constant.
  Tensor z = leaf({1}, {1});
  z.requires_grad_(false);
  CHECK_FALSE(mul(z, 2.0).requires_grad());
}

TEST_CASE("backward with an explicit gradient, and its checks") {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = mul(x, 2.0);
  check_error([&] { y.backward(); }, {"backward", "(3,)"});
  check_error([&] { y.backward(tensor_f64({1, 1}, {2})); }, {"backward", "(2,)", "(3,)"});
  y.backward(tensor_f64({1, -1, 0.5}, {3}));
  check_values(x.grad(), {2, -2, 1});
  // A leaf root accumulates its seed directly.
  Tensor l = leaf({4, 5}, {2});
  l.backward(tensor_f64({1, 2}, {2}));
  check_values(l.grad(), {1, 2});
}

TEST_CASE("a deep chain of 10000 ops runs without recursion") {
  const int depth = 10000;
  Tensor x = leaf({1.0, 2.0}, {2});
  {
    Tensor y = x;
    for (int i = 0; i < depth; ++i) y = mul(y, 1.0001);
    sum(y).backward();
    // y is dropped here: freeing the graph must not recurse 10000 deep either.
  }
  const double want = std::pow(1.0001, depth);
  check_values(x.grad(), {want, want}, 1e-9, 1e-9);
  // Mixed binary ops with a constant at every step.
  Tensor a = leaf({0.5}, {1});
  Tensor c = tensor_f64({1.0}, {1});
  Tensor s = a;
  for (int i = 0; i < depth; ++i) s = (i % 2 == 0) ? add(s, c) : sub(s, c);
  s.backward();
  check_values(a.grad(), {1});
}

TEST_CASE("freeing a 200000-deep graph does not recurse once per node") {
  // Without backward, the whole chain is still alive when the last tensor goes:
  // a recursive ~Node would overflow an 8 MB stack at this depth.
  Tensor x = leaf({1.0}, {1});
  Tensor y = x;
  for (int i = 0; i < 200000; ++i) y = mul(y, 1.0);
  CHECK(y.requires_grad());
  y = Tensor();
  CHECK_FALSE(y.defined());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("split: only some outputs used; the rest get zero gradient") {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {6});
  std::vector<Tensor> parts = split(x, 2, 0);
  sum(mul(parts[1], 3.0)).backward();
  check_values(x.grad(), {0, 0, 3, 3, 0, 0});
  x.zero_grad();
  parts = split(x, std::vector<int64_t>{1, 2, 3}, 0);
  sum(add(sum(parts[0]), sum(mul(parts[2], parts[2])))).backward();  // d/dx: 1 for part 0, 2x for part 2
  check_values(x.grad(), {1, 0, 0, 8, 10, 12});
}

TEST_CASE("a multi-output node: unused outputs get zero gradients, used ones add up") {
  Tensor x = leaf({1, 2, 3, 4}, {4});
  auto [a, b] = halves(x);
  CHECK(a.grad_fn() == b.grad_fn());
  CHECK(a.impl()->output_nr == 0);
  CHECK(b.impl()->output_nr == 1);
  sum(mul(b, 2.0)).backward();  // only the second output
  check_values(x.grad(), {0, 0, 2, 2});
  x.zero_grad();
  auto [c, d] = halves(x);
  sum(add(mul(c, d), c)).backward();  // d/dc = d + 1, d/dd = c
  check_values(x.grad(), {4, 5, 1, 2});
}

TEST_CASE("max splits the gradient evenly among tied maxima") {
  Tensor x = leaf({1, 3, 3, 2}, {4});
  max(x).backward();
  check_values(x.grad(), {0, 0.5, 0.5, 0});
  Tensor m = leaf({4, 4, 1, 0, 2, 2, 2, 1}, {2, 4});
  sum(max(m, {1})).backward();
  check_values(m.grad(), {0.5, 0.5, 0, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3, 0});
}

TEST_CASE("a backward node returning a wrongly shaped gradient is caught at the leaf") {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = zeros({3}, DType::f64);
  set_history(std::make_shared<WrongShapeBackward>(), {x}, {y});
  check_error([&] { sum(y).backward(); }, {"AccumulateGrad", "(5,)", "(3,)"});
}

TEST_CASE("the engine visits every node once, however many paths lead to it") {
  // x -> y = id(x * 2) -> ten uses of y: y's node runs once, with the ten gradients summed.
  Tensor x = leaf({1}, {1});
  int y_calls = 0;
  Tensor y = counting_identity(mul(x, 2.0), y_calls);
  Tensor total = zeros({1}, DType::f64);
  for (int i = 0; i < 10; ++i) total = add(total, y);
  total.backward();
  CHECK(y_calls == 1);
  check_values(x.grad(), {20});

  // A ladder of 12 diamonds, a_k = id(y_k), y_{k+1} = a_k + a_k: 2^(12 - k) paths lead to a_k's node,
  // which still runs once.
  Tensor z = leaf({1}, {1});
  std::vector<int> calls(12, 0);
  Tensor h = z;
  for (int k = 0; k < 12; ++k) {
    Tensor a = counting_identity(h, calls[size_t(k)]);
    h = add(a, a);
  }
  h.backward();
  for (int k = 0; k < 12; ++k) {
    CAPTURE(k);
    CHECK(calls[size_t(k)] == 1);
  }
  check_values(z.grad(), {4096});
}

}  // TEST_SUITE
