// The reductions (core/ops/reduce.cpp): sum and mean over any dims, max with ties, var with and
// without Bessel's correction (f16 past its range included), argmax and topk, and bad dims named.
// Gradients: tests/test_gradcheck.cpp; the f32 accumulation of the CPU kernels: tests/test_cpu_fastpaths.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using namespace minivl::testing;

TEST_SUITE("reduce") {

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

TEST_CASE("reductions and softmax: bad dims") {
  check_error([] { sum(zeros({2, 3}), {2}); }, {"sum", "2"});
  check_error([] { sum(zeros({2, 3}), {1, -1}); }, {"sum", "repeated"});
  check_error([] { mean(zeros({2}, DType::i64)); }, {"mean", "i64"});
  check_error([] { max(zeros({2, 0}), {1}); }, {"max", "(2, 0)"});
  check_error([] { softmax(zeros({2, 3}), 2); }, {"softmax"});
  check_error([] { log_softmax(zeros({2}, DType::i32), 0); }, {"log_softmax", "i32"});
  check_error([] { argmax(zeros({2, 3}), -3); }, {"argmax"});
}

}  // TEST_SUITE
