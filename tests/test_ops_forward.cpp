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
  // sum over dims 0 and -1: out[j] = sum_{i,k} (12 i + 4 j + k) = 48 + 32 j + 12.
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
  // x.transpose(0, 2)[k][j][i] = 12 i + 4 j + k; summing over i gives 12 + 8 j + 2 k.
  check_values(sum(x.transpose(0, 2), {2}), {12, 20, 28, 14, 22, 30, 16, 24, 32, 18, 26, 34});
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
  // rows: (1, 3, 2): mean 2, ss 2 -> 1; (2, 0, 6): mean 8/3, ss (4 + 64 + 100) / 9 -> 84 / 9
  check_values(var(m, {1}), {1.0, 84.0 / 9}, 1e-5, 1e-5);
  // columns: (1,2) -> 0.5, (3,0) -> 4.5, (2,6) -> 8
  check_values(var(m, {0}), {0.5, 4.5, 8});
  CHECK(var(m, {0}, 1, true).shape() == Shape{1, 3});
}

TEST_CASE("var in f16 over more values than f16 can count stays finite") {
  // 70 000 values of +-1: the sum of squares (70 000) is past f16's largest finite value (65 504),
  // the variance (70 000 / 69 999) is not.
  std::vector<double> v(70000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 2 ? 1.0 : -1.0;
  Tensor x = from_vector(v, {70000}).to(DType::f16);
  CHECK(var(x).item() == doctest::Approx(70000.0 / 69999).epsilon(1e-3));
  CHECK(var(x, {}, 0).item() == doctest::Approx(1.0).epsilon(1e-3));
  // One value with Bessel's correction: 0 / 0, NaN, as in PyTorch.
  CHECK(std::isnan(var(from_vector({3}, {1})).item()));
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
  check_values(mi, {1, 0, 2, 2});
  CHECK(topk(x, 0).first.numel() == 0);
  check_error([&] { topk(x, 6); }, {"topk", "6"});
}

TEST_CASE("matmul: 2-d, broadcast batch dims, transposed views, 1-d operands") {
  std::vector<double> av = {1, 2, 3, 4, 5, 6}, bv = {7, 8, 9, 10, 11, 12};
  Tensor a = from_vector(av, {2, 3}), b = from_vector(bv, {3, 2});
  // [[1*7+2*9+3*11, 1*8+2*10+3*12], [4*7+5*9+6*11, 4*8+5*10+6*12]]
  check_values(matmul(a, b), {58, 64, 139, 154});
  // Transposed views as operands: a^T (3, 2) @ a (2, 3) and b^T @ b.
  check_values(matmul(a.t(), a), {17, 22, 27, 22, 29, 36, 27, 36, 45});
  check_values(matmul(b.t(), b.t().t()), {7 * 7 + 9 * 9 + 11 * 11, 7 * 8 + 9 * 10 + 11 * 12,
                                          7 * 8 + 9 * 10 + 11 * 12, 8 * 8 + 10 * 10 + 12 * 12});
  // Batch broadcast: (2, 1, 2, 3) @ (3, 3, 2) -> (2, 3, 2, 2)
  std::vector<double> a4(12), b3(18);
  for (size_t i = 0; i < a4.size(); ++i) a4[i] = double(i) - 5;
  for (size_t i = 0; i < b3.size(); ++i) b3[i] = 0.5 * double(i % 7) - 1;
  Tensor c = matmul(from_vector(a4, {2, 1, 2, 3}), from_vector(b3, {3, 3, 2}));
  CHECK(c.shape() == Shape{2, 3, 2, 2});
  std::vector<double> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      std::vector<double> ai(a4.begin() + i * 6, a4.begin() + i * 6 + 6), bj(b3.begin() + j * 6, b3.begin() + j * 6 + 6);
      for (double v : naive_mm(ai, bj, 2, 3, 2)) want.push_back(v);
    }
  check_values(c, want, 1e-5, 1e-6);
  // 1-d operands as numpy: (3,) @ (3, 2) -> (2,), (2, 3) @ (3,) -> (2,), (3,) @ (3,) -> ()
  Tensor v = from_vector({1, -1, 2}, {3});
  Tensor vb = matmul(v, b);
  CHECK(vb.shape() == Shape{2});
  check_values(vb, {7 - 9 + 22, 8 - 10 + 24});
  Tensor av_ = matmul(a, v);
  CHECK(av_.shape() == Shape{2});
  check_values(av_, {1 - 2 + 6, 4 - 5 + 12});
  Tensor dot = matmul(v, v);
  CHECK(dot.dim() == 0);
  CHECK(dot.item() == 6);
  // (3,) @ (2, 3, 2) -> (2, 2)
  Tensor bb = stack({b, b * 2.0}, 0);
  check_values(matmul(v, bb), {20, 22, 40, 44});
  // f64 and bf16
  check_values(matmul(from_vector(av, {2, 3}, DType::f64), from_vector(bv, {3, 2}, DType::f64)),
               {58, 64, 139, 154}, 0, 0);
  Tensor hb = matmul(a.to(DType::bf16), b.to(DType::bf16));
  CHECK(hb.dtype() == DType::bf16);
  check_values(hb, {58, 64, 139, 154}, 0, 1e-2);
}

TEST_CASE("softmax and log_softmax along any dim, stable for large inputs") {
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0), z = e1 + e2 + e3;
  std::vector<double> want = {e1 / z, e2 / z, e3 / z};  // 0.0900306, 0.2447285, 0.6652410
  check_values(softmax(from_vector({1, 2, 3}, {3}), 0), want, 1e-6, 1e-6);
  check_values(softmax(from_vector({1001, 1002, 1003}, {3}), -1), want, 1e-6, 1e-6);
  check_values(log_softmax(tensor_f64({1, 2, 3}, {3}), 0), {std::log(want[0]), std::log(want[1]), std::log(want[2])},
               1e-12, 1e-12);
  check_values(log_softmax(from_vector({-1000, -999, -998}, {3}), 0),
               {std::log(want[0]), std::log(want[1]), std::log(want[2])}, 2e-4, 0);
  // Along dim 0 of (3, 2): each column normalised.
  Tensor x = from_vector({1, 0, 2, 0, 3, 0}, {3, 2});
  Tensor s = softmax(x, 0);
  CHECK(s.shape() == Shape{3, 2});
  check_values(s, {want[0], 1.0 / 3, want[1], 1.0 / 3, want[2], 1.0 / 3}, 1e-6, 1e-6);
  // Rows of a 3-d tensor along the middle dim sum to 1.
  Tensor r = softmax(arange(0, 24).reshape({2, 3, 4}) * 0.1, 1);
  check_values(sum(r, {1}), std::vector<double>(8, 1.0), 1e-6, 1e-6);
  check_values(softmax(full({4}, 7.0), 0), {0.25, 0.25, 0.25, 0.25});
}

TEST_CASE("cross_entropy: mean over rows, ignore_index, label smoothing, reductions") {
  Tensor logits = tensor_f64({1, 2, 3, 1, 1, 1, 0, 5, -1}, {3, 3});
  // Per-row log-softmax computed independently.
  auto neg_log_p = [](std::vector<double> row) {
    double m = *std::max_element(row.begin(), row.end()), s = 0;
    for (double v : row) s += std::exp(v - m);
    std::vector<double> out;
    for (double v : row) out.push_back(-(v - m - std::log(s)));
    return out;
  };
  std::vector<std::vector<double>> nlp = {neg_log_p({1, 2, 3}), neg_log_p({1, 1, 1}), neg_log_p({0, 5, -1})};
  Tensor target = from_vector_i64({2, 0, 1}, {3});
  double r0 = nlp[0][2], r1 = nlp[1][0], r2 = nlp[2][1];
  CHECK(r0 == doctest::Approx(0.40760596444));  // -log softmax([1,2,3])[2]
  CHECK(r1 == doctest::Approx(std::log(3.0)));
  CHECK(cross_entropy(logits, target).item() == doctest::Approx((r0 + r1 + r2) / 3).epsilon(1e-12));
  CHECK(cross_entropy(logits, target, -100, 0.0, Reduction::sum).item() ==
        doctest::Approx(r0 + r1 + r2).epsilon(1e-12));
  check_values(cross_entropy(logits, target, -100, 0.0, Reduction::none), {r0, r1, r2}, 1e-12, 1e-12);
  // ignore_index: the mean is over the non-ignored rows only.
  Tensor ignored = from_vector_i64({2, -100, 1}, {3});
  CHECK(cross_entropy(logits, ignored).item() == doctest::Approx((r0 + r2) / 2).epsilon(1e-12));
  check_values(cross_entropy(logits, ignored, -100, 0.0, Reduction::none), {r0, 0, r2}, 1e-12, 1e-12);
  Tensor custom = from_vector_i64({2, 0, 7}, {3});  // 7 is the ignore index here, not out of range
  CHECK(cross_entropy(logits, custom, 7).item() == doctest::Approx((r0 + r1) / 2).epsilon(1e-12));
  // Label smoothing eps: (1 - eps) * nll + eps / C * sum_c(-log p_c), PyTorch's definition.
  const double eps = 0.1;
  auto smooth = [&](int row, int t) {
    double all = 0;
    for (double v : nlp[size_t(row)]) all += v;
    return (1 - eps) * nlp[size_t(row)][size_t(t)] + eps / 3 * all;
  };
  CHECK(smooth(0, 2) == doctest::Approx(0.50760596444));  // lse - 0.9 * 3 - 0.1 / 3 * 6
  CHECK(cross_entropy(logits, target, -100, eps).item() ==
        doctest::Approx((smooth(0, 2) + smooth(1, 0) + smooth(2, 1)) / 3).epsilon(1e-12));
  CHECK(cross_entropy(logits, ignored, -100, eps).item() ==
        doctest::Approx((smooth(0, 2) + smooth(2, 1)) / 2).epsilon(1e-12));
  // i32 targets and f32 logits.
  CHECK(cross_entropy(logits.to(DType::f32), target.to(DType::i32)).item() ==
        doctest::Approx((r0 + r1 + r2) / 3).epsilon(1e-6));
  // All rows ignored: the mean is NaN (0 / 0), as in PyTorch.
  CHECK(std::isnan(cross_entropy(logits, from_vector_i64({-100, -100, -100}, {3})).item()));
}

TEST_CASE("embedding gathers rows for any id shape") {
  Tensor w = from_vector({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  Tensor ids = from_vector_i64({0, 3, 3, 1}, {2, 2});
  Tensor e = embedding(w, ids);
  CHECK(e.shape() == Shape{2, 2, 2});
  check_values(e, {0, 1, 30, 31, 30, 31, 10, 11});
  check_values(embedding(w, from_vector_i64({2}, {1}, DType::i32)), {20, 21});
  CHECK(embedding(w, from_vector_i64({2}, {})).shape() == Shape{2});
  check_values(embedding(w.t().contiguous().t(), from_vector_i64({1}, {1})), {10, 11});
}

TEST_CASE("cat, stack and split") {
  Tensor a = from_vector({1, 2, 3, 4}, {2, 2}), b = from_vector({5, 6}, {1, 2});
  Tensor c0 = cat({a, b}, 0);
  CHECK(c0.shape() == Shape{3, 2});
  check_values(c0, {1, 2, 3, 4, 5, 6});
  Tensor c1 = cat({a, b.t().expand({2, 2}), a.t()}, -1);
  CHECK(c1.shape() == Shape{2, 6});
  check_values(c1, {1, 2, 5, 5, 1, 3, 3, 4, 6, 6, 2, 4});
  Tensor s0 = stack({a, a * 10.0}, 0);
  CHECK(s0.shape() == Shape{2, 2, 2});
  check_values(s0, {1, 2, 3, 4, 10, 20, 30, 40});
  Tensor s2 = stack({a, a * 10.0}, -1);
  CHECK(s2.shape() == Shape{2, 2, 2});
  check_values(s2, {1, 10, 2, 20, 3, 30, 4, 40});
  Tensor s1 = stack({a, a * 10.0}, 1);
  check_values(s1, {1, 2, 10, 20, 3, 4, 30, 40});

  Tensor x = arange(0, 10).reshape({2, 5});
  std::vector<Tensor> parts = split(x, 2, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[2].shape() == Shape{2, 1});
  check_values(parts[0], {0, 1, 5, 6});
  check_values(parts[1], {2, 3, 7, 8});
  check_values(parts[2], {4, 9});
  std::vector<Tensor> sized = split(x, std::vector<int64_t>{1, 4}, -1);
  REQUIRE(sized.size() == 2);
  check_values(sized[1], {1, 2, 3, 4, 6, 7, 8, 9});
  CHECK(sized[0].storage().get() == x.storage().get());  // split gives views
  check_error([&] { split(x, std::vector<int64_t>{2, 2}, 1); }, {"split", "(2, 5)"});
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

TEST_CASE("layernorm uses the biased variance over the last dim") {
  Tensor x = tensor_f64({1, 2, 3, 4, -1, 0, 0, 5}, {2, 4});
  const double eps = 1e-5;
  // row 0: mean 2.5, biased var 1.25; row 1: mean 1, var (4 + 1 + 1 + 16) / 4 = 5.5
  std::vector<double> want;
  for (double v : {1, 2, 3, 4}) want.push_back((v - 2.5) / std::sqrt(1.25 + eps));
  for (double v : {-1, 0, 0, 5}) want.push_back((v - 1.0) / std::sqrt(5.5 + eps));
  check_values(layernorm(x, Tensor(), Tensor(), eps), want, 1e-12, 1e-12);
  Tensor w = tensor_f64({1, 2, 0.5, -1}, {4}), b = tensor_f64({0, 1, 0, 3}, {4});
  std::vector<double> wb(want.size());
  for (size_t i = 0; i < want.size(); ++i)
    wb[i] = want[i] * std::vector<double>{1, 2, 0.5, -1}[i % 4] + std::vector<double>{0, 1, 0, 3}[i % 4];
  check_values(layernorm(x, w, b, eps), wb, 1e-12, 1e-12);
  check_values(layernorm(x.to(DType::f32), w.to(DType::f32), Tensor(), eps).to_vector(),
               [&] {
                 std::vector<double> r(want.size());
                 for (size_t i = 0; i < want.size(); ++i) r[i] = want[i] * std::vector<double>{1, 2, 0.5, -1}[i % 4];
                 return r;
               }(),
               1e-5, 1e-5);
}

TEST_CASE("add_layernorm returns (x + residual, layernorm(x + residual))") {
  Tensor x = tensor_f64({1, 2, 3, 4, 0, 0, 0, 1}, {2, 4}), r = tensor_f64({1, 0, -1, 0, 2, 2, 2, 2}, {2, 4});
  const double eps = 1e-5;
  auto [h, y] = add_layernorm(x, r, Tensor(), Tensor(), eps);
  check_values(h, {2, 2, 2, 4, 2, 2, 2, 3});
  // row 0: mean 2.5, biased var (3 * 0.25 + 2.25) / 4 = 0.75; row 1: mean 2.25, var (3 * 0.0625 + 0.5625) / 4 = 0.1875
  std::vector<double> want;
  for (double v : {2, 2, 2, 4}) want.push_back((v - 2.5) / std::sqrt(0.75 + eps));
  for (double v : {2, 2, 2, 3}) want.push_back((v - 2.25) / std::sqrt(0.1875 + eps));
  check_values(y, want, 1e-12, 1e-12);
  Tensor w = tensor_f64({2, 1, 1, 0.5}, {4}), b = tensor_f64({0, 0, 1, 0}, {4});
  std::vector<double> wb(want.size());
  for (size_t i = 0; i < want.size(); ++i)
    wb[i] = want[i] * std::vector<double>{2, 1, 1, 0.5}[i % 4] + std::vector<double>{0, 0, 1, 0}[i % 4];
  check_values(add_layernorm(x, r, w, b, eps).second, wb, 1e-12, 1e-12);
  check_values(add_layernorm(x.to(DType::f32), r.to(DType::f32), Tensor(), Tensor(), eps).second, want, 1e-5, 1e-5);
}

namespace {
// Reference CLIP and SigLIP losses from their definitions, over naive logits.
std::vector<double> ref_logits(const std::vector<double>& img, const std::vector<double>& txt, int64_t n, int64_t d,
                               double scale) {
  std::vector<double> l(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < d; ++k) l[size_t(i * n + j)] += scale * img[size_t(i * d + k)] * txt[size_t(j * d + k)];
  return l;
}
double ref_clip(const std::vector<double>& l, int64_t n) {
  double rows = 0, cols = 0;
  for (int64_t i = 0; i < n; ++i) {
    double sr = 0, sc = 0;
    for (int64_t j = 0; j < n; ++j) {
      sr += std::exp(l[size_t(i * n + j)]);
      sc += std::exp(l[size_t(j * n + i)]);
    }
    rows += std::log(sr) - l[size_t(i * n + i)];
    cols += std::log(sc) - l[size_t(i * n + i)];
  }
  return (rows / double(n) + cols / double(n)) / 2;
}
double ref_siglip(const std::vector<double>& l, int64_t n, double bias) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double z = i == j ? 1.0 : -1.0;
      total += std::log1p(std::exp(-z * (l[size_t(i * n + j)] + bias)));  // -log sigmoid(z (L + b))
    }
  return total / double(n);
}
}  // namespace

TEST_CASE("clip_loss and siglip_loss match their definitions") {
  // N = 2, d = 2, scale 2: logits [[2, 1.2], [0, 1.6]].
  std::vector<double> img = {1, 0, 0, 1}, txt = {1, 0, 0.6, 0.8};
  Tensor image = tensor_f64(img, {2, 2}), text = tensor_f64(txt, {2, 2});
  Tensor log_scale = tensor_f64({std::log(2.0)}, {});
  std::vector<double> l = ref_logits(img, txt, 2, 2, 2.0);
  check_values(l, {2, 1.2, 0, 1.6}, 1e-12, 1e-12);
  // rows: log(1 + e^-0.8), log(1 + e^-1.6); columns: log(1 + e^-2), log(1 + e^-0.4)
  const double by_hand = ((std::log1p(std::exp(-0.8)) + std::log1p(std::exp(-1.6))) / 2 +
                          (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-0.4))) / 2) / 2;
  CHECK(ref_clip(l, 2) == doctest::Approx(by_hand).epsilon(1e-12));
  Tensor c = clip_loss(image, text, log_scale);
  CHECK(c.dim() == 0);
  CHECK(c.dtype() == DType::f64);
  CHECK(c.item() == doctest::Approx(by_hand).epsilon(1e-12));
  // SigLIP with bias -1: arguments z (L + b) = 1, -0.2, 1, 0.6.
  const double sig_hand =
      (2 * std::log1p(std::exp(-1.0)) + std::log1p(std::exp(0.2)) + std::log1p(std::exp(-0.6))) / 2;
  CHECK(ref_siglip(l, 2, -1.0) == doctest::Approx(sig_hand).epsilon(1e-12));
  CHECK(siglip_loss(image, text, log_scale, tensor_f64({-1.0}, {})).item() == doctest::Approx(sig_hand).epsilon(1e-12));
  // A larger random case, f64 and f32, against the reference.
  const int64_t n = 7, d = 5;
  Tensor ri = randn({n, d}, DType::f64) * 0.5, rt = randn({n, d}, DType::f64) * 0.5;
  std::vector<double> L = ref_logits(ri.to_vector(), rt.to_vector(), n, d, std::exp(1.5));
  Tensor s15 = tensor_f64({1.5}, {});
  CHECK(clip_loss(ri, rt, s15).item() == doctest::Approx(ref_clip(L, n)).epsilon(1e-10));
  CHECK(siglip_loss(ri, rt, s15, tensor_f64({-2.0}, {})).item() == doctest::Approx(ref_siglip(L, n, -2.0)).epsilon(1e-10));
  Tensor f = clip_loss(ri.to(DType::f32), rt.to(DType::f32), s15.to(DType::f32));
  CHECK(f.dtype() == DType::f32);
  CHECK(f.item() == doctest::Approx(ref_clip(L, n)).epsilon(1e-4));
}

TEST_CASE("attention: softmax(scale q k^T + mask) v on a hand-sized case") {
  // B = H = 1, Tq = Tk = 2, D = 1; q = (1, 0), k = (1, 2), v = (10, 20), scale 1.
  Tensor q = tensor_f64({1, 0}, {1, 1, 2, 1}), k = tensor_f64({1, 2}, {1, 1, 2, 1}), v = tensor_f64({10, 20}, {1, 1, 2, 1});
  AttentionOptions o;
  o.scale = 1.0;
  // Row 0: scores (1, 2) -> weights (1, e) / (1 + e); row 1: scores (0, 0) -> (1/2, 1/2).
  const double e = std::exp(1.0);
  check_values(attention(q, k, v, o), {(10 + 20 * e) / (1 + e), 15}, 1e-12, 1e-12);
  o.causal = true;  // row 0 sees key 0 only
  check_values(attention(q, k, v, o), {10, 15}, 1e-12, 1e-12);
  o.causal = false;
  o.key_padding_mask = from_vector({0, 1}, {1, 2}).to(DType::boolean);  // key 1 is padding
  check_values(attention(q, k, v, o), {10, 10}, 1e-12, 1e-12);
  // The default scale is 1 / sqrt(D): D = 4 with q . k = 4 -> score 2.
  Tensor q4 = tensor_f64({1, 1, 1, 1}, {1, 1, 1, 4}), k4 = tensor_f64({1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 2, 4});
  Tensor v4 = tensor_f64({1, 0, 0, 0, 0, 1, 0, 0}, {1, 1, 2, 4});
  const double w0 = std::exp(2.0) / (std::exp(2.0) + 1);
  check_values(attention(q4, k4, v4), {w0, 1 - w0, 0, 0}, 1e-12, 1e-12);
}

TEST_CASE("view ops, contiguous and to_dtype keep values (forward)") {
  Tensor x = arange(0, 6).reshape({2, 3});
  check_values(x.permute({1, 0}).contiguous(), {0, 3, 1, 4, 2, 5});
  check_values(x.narrow(1, 2, 1).squeeze(1).unsqueeze(0), {2, 5});
  check_values(x.unsqueeze(1).expand({2, 2, 3}), {0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5});
  Tensor d = x.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  check_values(d, {0, 1, 2, 3, 4, 5});
}

}  // TEST_SUITE
