// embedding, cat, stack and split (core/ops/indexing.cpp): gathers for any id shape, concatenation
// and stacking along any dim, split's views, and embedding's errors (cat's and stack's are with the
// view errors in tests/test_tensor.cpp). Gradients: tests/test_gradcheck.cpp.
#include <doctest/doctest.h>

#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using namespace minivl::testing;

TEST_SUITE("indexing") {

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

TEST_CASE("embedding: id out of range, bad weight or ids") {
  Tensor w = zeros({4, 2});
  CHECK_THROWS_WITH_AS(embedding(w, from_vector_i64({1, 4}, {2})), doctest::Contains("embedding"), minivl::Error);
  check_error([&] { embedding(w, from_vector_i64({1, 4}, {2})); }, {"embedding", "4", "vocabulary of 4"});
  check_error([&] { embedding(w, from_vector_i64({-2}, {1})); }, {"embedding", "-2"});
  check_error([&] { embedding(w, zeros({2})); }, {"embedding", "f32"});
  check_error([&] { embedding(zeros({4}), from_vector_i64({0}, {1})); }, {"embedding", "(4,)"});
}

}  // TEST_SUITE
