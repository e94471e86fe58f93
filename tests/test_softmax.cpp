// softmax, log_softmax and cross_entropy (core/ops/softmax.cpp): values along any dim, stability
// for large inputs, cross-entropy's reductions, ignore_index and label smoothing (PyTorch's
// definitions), and its errors. Gradients: tests/test_gradcheck.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using namespace minivl::testing;

TEST_SUITE("softmax") {

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

TEST_CASE("cross_entropy: target out of range, bad shapes, bad dtypes") {
  Tensor logits = zeros({2, 3});
  CHECK_THROWS_WITH_AS(cross_entropy(logits, from_vector_i64({0, 3}, {2})), doctest::Contains("cross_entropy"),
                       minivl::Error);
  check_error([&] { cross_entropy(logits, from_vector_i64({0, 3}, {2})); }, {"cross_entropy", "3", "3 classes"});
  check_error([&] { cross_entropy(logits, from_vector_i64({-1, 0}, {2})); }, {"cross_entropy", "-1"});
  check_error([&] { cross_entropy(logits, from_vector_i64({0, 1, 2}, {3})); }, {"cross_entropy", "(2, 3)", "(3,)"});
  check_error([&] { cross_entropy(logits, zeros({2})); }, {"cross_entropy", "f32"});
  check_error([&] { cross_entropy(zeros({2, 3, 4}), from_vector_i64({0, 1}, {2})); }, {"cross_entropy", "(2, 3, 4)"});
  check_error([&] { cross_entropy(logits, from_vector_i64({0, 1}, {2}), -100, 1.5); },
              {"cross_entropy", "label_smoothing"});
}

}  // TEST_SUITE
