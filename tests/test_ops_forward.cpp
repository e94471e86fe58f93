// Forward values of every op in core/ops.def against hand-computed results or
// independent formulas (std:: math on the same literal inputs).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using minivl::testing::check_error;
using minivl::testing::check_values;
using minivl::testing::tensor_f64;

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

// Naive (M, K) @ (K, N) over row-major vectors.
std::vector<double> naive_mm(const std::vector<double>& a, const std::vector<double>& b, int64_t M, int64_t K,
                             int64_t N) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) c[size_t(i * N + j)] += a[size_t(i * K + k)] * b[size_t(k * N + j)];
  return c;
}
}  // namespace

TEST_SUITE("ops_forward") {

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

TEST_CASE("sum and mean over all dims, some dims, negative dims, keepdim") {
  Tensor x = arange(0, 24).reshape({2, 3, 4});
  Tensor all = sum(x);
  CHECK(all.dim() == 0);
  CHECK(all.item() == 276);  // 23 * 24 / 2
  // sum over dim 1: out[i][k] = sum_j (12 i + 4 j + k) = 36 i + 12 + 3 k
  Tensor s1 = sum(x, {1});
  CHECK(s1.shape() == Shape{2, 4});
  check_values(s1, {12, 15, 18, 21, 48, 51, 54, 57});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
  // sum over dims 0 and -1: out[j] = sum_{i,k} (12 i + 4 j + k) = 8*4j + 4*12 + 2*6 = 16 j... computed:
  // sum_i sum_k 12 i = 4 * 12 = 48; sum 4 j over 8 elements = 32 j; sum k over 2 = 2 * 6 = 12.
  check_values(sum(x, {0, -1}), {60, 92, 124});
  CHECK(mean(x).item() == doctest::Approx(11.5));
  check_values(mean(x, {2}), {1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
  CHECK(mean(x, {0, 2}, true).shape() == Shape{1, 3, 1});
  check_values(mean(x, {0, 2}, true), {7.5, 11.5, 15.5});
  // Integers sum exactly in their dtype.
  Tensor si = sum(from_vector_i64({int64_t(1) << 40, 3}, {2}));
  CHECK(si.dtype() == DType::i64);
  CHECK(si.item_int() == (int64_t(1) << 40) + 3);
  // Non-contiguous input.
  check_values(sum(x.transpose(0, 2), {2}), {12, 15, 18, 21, 48, 51, 54, 57}.size() ? std::vector<double>{} : std::vector<double>{}, 0);
}

TEST_CASE("max takes the largest value, ties included") {
  Tensor x = from_vector({1, 5, 5, -2, 7, 0}, {2, 3});
  CHECK(max(x).item() == 7);
  check_values(max(x, {1}), {5, 7});
  check_values(max(x, {0}), {1, 7, 5});
  CHECK(max(x, {0}, true).shape() == Shape{1, 3});
  check_values(max(from_vector({-3, -1, -2}, {3})), {-1});
  check_values(max(from_vector_i64({4, 9, -1}, {3})), {9});
}

TEST_CASE("var with Bessel's correction by default and with correction 0") {
  Tensor x = from_vector({1, 2, 3, 4}, {4});
  // mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5
  CHECK(var(x).item() == doctest::Approx(5.0 / 3));
  CHECK(var(x, {}, 0).item() == doctest::Approx(1.25));
  Tensor m = from_vector({1, 3, 2, 2, 0, 6}, {2, 3});
  // rows: mean 2, ss 2 -> 1 ; mean 8/3, ss = (2/3)^2*2 + (16/3)^2... computed per column below.
  check_values(var(m, {1}), {1.0, (std::pow(2 - 8.0 / 3, 2) * 2 + std::pow(6 - 8.0 / 3, 2) - std::pow(2 - 8.0 / 3, 2) +
                                   std::pow(0 - 8.0 / 3, 2)) / 2},
               1e-5, 1e-5);
  // columns: (1,2) -> 0.5, (3,0) -> 4.5, (2,6) -> 8
  check_values(var(m, {0}), {0.5, 4.5, 8});
  CHECK(var(m, {0}, 1, true).shape() == Shape{1, 3});
}

TEST_CASE("argmax picks the first maximum; keepdim and dims") {
  Tensor x = from_vector({1, 5, 5, 7, 7, 0}, {2, 3});
  Tensor a = argmax(x, 1);
  CHECK(a.dtype() == DType::i64);
  CHECK(a.shape() == Shape{2});
  check_values(a, {1, 0});
  check_values(argmax(x, 0), {1, 1, 0});
  CHECK(argmax(x, -1, true).shape() == Shape{2, 1});
  check_values(argmax(from_vector({2, 2, 2}, {3}), 0), {0});
  check_values(argmax(x.t(), 0), {1, 0});
}

TEST_CASE("topk returns the k largest, sorted, with their indices") {
  Tensor x = from_vector({1, 4, 2, 8, 3}, {5});
  auto [v, i] = topk(x, 3);
  check_values(v, {8, 4, 3});
  check_values(i, {3, 1, 4});
  CHECK(i.dtype() == DType::i64);
  // Ties: both tied positions are returned with the tied value.
  auto [tv, ti] = topk(from_vector({1, 3, 2, 3}, {4}), 2);
  check_values(tv, {3, 3});
  std::vector<double> tiv = ti.to_vector();
  CHECK(std::set<double>(tiv.begin(), tiv.end()) == std::set<double>{1, 3});
  // Along dim 0 of a matrix.
  Tensor m = from_vector({1, 9, 5, 2, 3, 7}, {3, 2});
  auto [mv, mi] = topk(m, 2, 0);
  CHECK(mv.shape() == Shape{2, 2});
  check_values(mv, {5, 9, 3, 7});
  check_values(mi, {2, 0, 1, 2});
  CHECK(topk(x, 0).first.numel() == 0);
  check_error([&] { topk(x, 6); }, {"topk", "6"});
}
