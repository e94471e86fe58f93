// The elementwise ops (core/ops/elementwise.cpp): binary ops with broadcasting, non-contiguous
// operands and bf16 rounding, the unary math and activations against std:: math, clamp, where,
// masked_fill, equal_mask, dropout's mask statistics, and the errors naming the op.
// Gradients: tests/test_gradcheck.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using namespace minivl::testing;

namespace {
std::vector<double> map(const std::vector<double>& v, double (*f)(double)) {
  std::vector<double> out;
  for (double x : v) out.push_back(f(x));
  return out;
}
double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double gelu_ref(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double gelu_tanh_ref(double x) {
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
double quick_gelu_ref(double x) { return x * sigmoid_ref(1.702 * x); }
}  // namespace

TEST_SUITE("elementwise") {

TEST_CASE("add, sub, mul, div broadcast (3,1) with (1,4)") {
  Tensor a = from_vector({1, 2, 3}, {3, 1});
  Tensor b = from_vector({10, 20, 30, 40}, {1, 4});
  Tensor s = add(a, b);
  CHECK(s.shape() == Shape{3, 4});
  check_values(s, {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43});
  check_values(sub(a, b), {-9, -19, -29, -39, -8, -18, -28, -38, -7, -17, -27, -37});
  check_values(mul(a, b), {10, 20, 30, 40, 20, 40, 60, 80, 30, 60, 90, 120});
  check_values(div(b, a), {10, 20, 30, 40, 5, 10, 15, 20, 10.0 / 3, 20.0 / 3, 10, 40.0 / 3}, 1e-5, 1e-6);
  // (2, 3, 4) * (4,)
  Tensor x = arange(0, 24).reshape({2, 3, 4});
  Tensor w = from_vector({1, -1, 2, 0}, {4});
  std::vector<double> want;
  for (int i = 0; i < 24; ++i) want.push_back(i * std::vector<double>{1, -1, 2, 0}[size_t(i % 4)]);
  check_values(x * w, want);
  // Operators and scalar forms.
  check_values(a + 1.5, {2.5, 3.5, 4.5});
  check_values(a - 1.0, {0, 1, 2});
  check_values(2.0 * a, {2, 4, 6});
  check_values(a / 4.0, {0.25, 0.5, 0.75});
  check_values(-a, {-1, -2, -3});
  check_values(a - a, {0, 0, 0});
  // Integers and f64 keep their dtype.
  Tensor i = add(from_vector_i64({1, 2}, {2}), from_vector_i64({10, 20}, {2}));
  CHECK(i.dtype() == DType::i64);
  check_values(i, {11, 22});
  CHECK(mul(tensor_f64({3}, {1}), tensor_f64({0.5}, {1})).dtype() == DType::f64);
}

TEST_CASE("binary ops read non-contiguous operands correctly") {
  Tensor x = arange(0, 6).reshape({2, 3});
  Tensor y = arange(0, 6).reshape({3, 2}).t();  // (2, 3) from a transposed view
  // y[i][j] = 2 j + i
  check_values(add(x, y), {0, 3, 6, 4, 7, 10});
  check_values(mul(x.slice(1, 0, 3, 2), from_vector({1, 10}, {2})), {0, 20, 3, 50});
}

TEST_CASE("bf16 add computes in f32 and rounds once") {
  Tensor a = full({2}, 1.0, DType::bf16), b = full({2}, std::ldexp(1.0, -7), DType::bf16);
  Tensor c = add(a, b);
  CHECK(c.dtype() == DType::bf16);
  check_values(c, {1.0078125, 1.0078125}, 0, 0);
}

TEST_CASE("unary math: neg, exp, log, sqrt, rsqrt, pow, abs, tanh, sigmoid, relu") {
  std::vector<double> v = {0.25, 1.0, 2.0, 9.0};
  Tensor x = tensor_f64(v, {4});
  check_values(neg(x), {-0.25, -1, -2, -9});
  check_values(exp(x), map(v, std::exp), 1e-12, 1e-12);
  check_values(log(x), {std::log(0.25), 0.0, std::log(2.0), std::log(9.0)}, 1e-12, 1e-12);
  check_values(sqrt(x), {0.5, 1, std::sqrt(2.0), 3}, 1e-12, 1e-12);
  check_values(rsqrt(x), {2, 1, 1 / std::sqrt(2.0), 1.0 / 3}, 1e-12, 1e-12);
  check_values(pow(x, 2), {0.0625, 1, 4, 81}, 1e-12, 1e-12);
  check_values(pow(x, 0.5), {0.5, 1, std::sqrt(2.0), 3}, 1e-12, 1e-12);
  check_values(pow(x, -1), {4, 1, 0.5, 1.0 / 9}, 1e-12, 1e-12);
  check_values(pow(x, 0), {1, 1, 1, 1});
  Tensor s = tensor_f64({-2, -0.5, 0, 3}, {4});
  check_values(abs(s), {2, 0.5, 0, 3});
  check_values(relu(s), {0, 0, 0, 3});
  check_values(tanh(s), {std::tanh(-2.0), std::tanh(-0.5), 0, std::tanh(3.0)}, 1e-12, 1e-12);
  check_values(sigmoid(s), {sigmoid_ref(-2), sigmoid_ref(-0.5), 0.5, sigmoid_ref(3)}, 1e-12, 1e-12);
  // f32 sigmoid saturates without NaN.
  check_values(sigmoid(from_vector({-200, 200}, {2})), {0, 1});
}

TEST_CASE("gelu (erf), gelu_tanh and quick_gelu") {
  std::vector<double> v = {-3, -1, -0.5, 0, 0.5, 1, 3};
  Tensor x = tensor_f64(v, {7});
  // Known values: gelu(1) = Phi(1) = 0.841344746..., gelu(-1) = -(1 - Phi(1)).
  check_values(gelu(tensor_f64({1, -1, 0}, {3})), {0.8413447460685429, -0.15865525393145707, 0}, 1e-12, 1e-12);
  check_values(gelu(x), map(v, gelu_ref), 1e-12, 1e-12);
  check_values(gelu_tanh(x), map(v, gelu_tanh_ref), 1e-12, 1e-12);
  check_values(quick_gelu(x), map(v, quick_gelu_ref), 1e-12, 1e-12);
  // The tanh form approximates the erf form to ~1e-3, but is not the same function.
  std::vector<double> g = gelu(x).to_vector(), gt = gelu_tanh(x).to_vector();
  for (size_t i = 0; i < v.size(); ++i) CHECK(std::abs(g[i] - gt[i]) < 1e-3);
  CHECK(std::abs(g[1] - gt[1]) > 1e-6);
  // f32 agrees with the f64 reference to f32 precision.
  check_values(gelu(from_vector(v, {7})), map(v, gelu_ref), 1e-6, 1e-5);
}

TEST_CASE("clamp with min, max or both") {
  Tensor x = from_vector({-2, -0.5, 0.5, 2}, {4});
  check_values(clamp(x, -1.0, 1.0), {-1, -0.5, 0.5, 1});
  check_values(clamp(x, 0.0, std::nullopt), {0, 0, 0.5, 2});
  check_values(clamp(x, std::nullopt, 0.0), {-2, -0.5, 0, 0});
  check_values(clamp(x, 3.0, 3.0), {3, 3, 3, 3});
  check_error([&] { clamp(x, 1.0, -1.0); }, {"clamp"});
}

TEST_CASE("where and masked_fill broadcast their operands") {
  Tensor cond = from_vector({1, 0, 1}, {3}).to(DType::boolean);
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = from_vector({-1, -2}, {2, 1});
  check_values(where(cond, a, b), {1, -1, 3, 4, -2, 6});
  Tensor cond_u8 = from_vector({0, 1}, {2, 1}).to(DType::u8);
  check_values(where(cond_u8, a, b), {-1, -1, -1, 4, 5, 6});
  check_values(masked_fill(a, cond, -100), {-100, 2, -100, -100, 5, -100});
  Tensor row_mask = from_vector({0, 1}, {2, 1}).to(DType::boolean);
  check_values(masked_fill(a, row_mask, 0.5), {1, 2, 3, 0.5, 0.5, 0.5});
  CHECK(masked_fill(a, cond, 0).shape() == a.shape());
}

TEST_CASE("equal_mask is 1 where equal") {
  Tensor a = from_vector({1, 2, 3}, {3});
  check_values(equal_mask(a, from_vector({2}, {1})), {0, 1, 0});
  check_values(equal_mask(from_vector_i64({4, 5}, {2}), from_vector_i64({4, 4}, {2})), {1, 0});
}

TEST_CASE("dropout: mask fraction near p, 1/(1-p) scaling, seeded masks, identities") {
  const int64_t n = 100000;
  const double p = 0.3;
  Tensor x = ones({n});
  std::vector<double> y = dropout(x, p, true, 1234).to_vector();
  int64_t dropped = 0, badly_scaled = 0;
  for (double v : y) {
    if (v == 0.0) ++dropped;
    else if (std::abs(v - 1.0 / (1.0 - p)) > 1e-6) ++badly_scaled;  // kept values are scaled by 1/(1-p)
  }
  CHECK(badly_scaled == 0);
  // Binomial(n, 0.3): sd ~ 145, so +-0.01 * n is ~7 sd.
  CHECK(double(dropped) / double(n) == doctest::Approx(p).epsilon(0.033));
  // Same seed: same mask; another seed: another mask.
  CHECK(dropout(x, p, true, 1234).to_vector() == y);
  CHECK(dropout(x, p, true, 99).to_vector() != y);
  // Unseeded calls draw fresh masks from the default generator.
  CHECK(dropout(x, p).to_vector() != dropout(x, p).to_vector());
  // p = 0 and eval mode are the identity; p = 1 drops everything.
  Tensor v = from_vector({1, -2, 3}, {3});
  check_values(dropout(v, 0.0, true, 5), {1, -2, 3});
  check_values(dropout(v, 0.5, false), {1, -2, 3});
  check_values(dropout(v, 1.0, true, 5), {0, 0, 0});
  // A non-contiguous input uses the same mask as its contiguous copy.
  Tensor m = arange(1, 13).reshape({3, 4});
  check_values(dropout(m.t(), 0.5, true, 7), dropout(m.t().contiguous(), 0.5, true, 7).to_vector());
  check_error([&] { dropout(v, 1.5); }, {"dropout"});
}

TEST_CASE("elementwise ops: incompatible shapes and dtypes") {
  check_error([] { add(zeros({2, 3}), zeros({4})); }, {"add", "(2, 3)", "(4,)"});
  check_error([] { mul(zeros({3}), zeros({2, 2})); }, {"mul", "(3,)", "(2, 2)"});
  check_error([] { sub(zeros({2}), zeros({2}, DType::f64)); }, {"sub", "f32", "f64"});
  check_error([] { div(zeros({2}, DType::bf16), zeros({2}, DType::i32)); }, {"div", "bf16", "i32"});
  check_error([] { add(zeros({2}, DType::boolean), zeros({2}, DType::boolean)); }, {"add", "bool"});
  check_error([] { exp(zeros({2}, DType::i64)); }, {"exp", "i64"});
  check_error([] { add(Tensor(), zeros({1})); }, {"add", "undefined"});
  check_error([] { where(zeros({2}), zeros({2}), zeros({2})); }, {"where", "bool"});
  check_error([] { where(zeros({3}, DType::boolean), zeros({2}), zeros({2})); }, {"where", "(3,)", "(2,)"});
  check_error([] { where(zeros({2}, DType::boolean), zeros({2}), zeros({2}, DType::f64)); }, {"where", "f64"});
}

}  // TEST_SUITE
