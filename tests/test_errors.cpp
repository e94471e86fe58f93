// Error messages name the op and the shapes, dtypes or devices involved.
#include <doctest/doctest.h>

#include <functional>

#include "core/device.h"
#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using minivl::testing::check_error;

TEST_SUITE("errors") {

TEST_CASE("matmul shape mismatch names matmul and both shapes") {
  Tensor a = zeros({2, 3}), b = zeros({4, 5});
  CHECK_THROWS_WITH_AS(matmul(a, b), doctest::Contains("matmul"), minivl::Error);
  check_error([&] { matmul(a, b); }, {"matmul", "(2, 3)", "(4, 5)"});
  check_error([&] { matmul(zeros({2, 2, 3}), zeros({3, 3, 4})); }, {"matmul", "(2,)", "(3,)"});  // batch dims
  check_error([&] { matmul(zeros({3}), zeros({4})); }, {"matmul"});
  check_error([&] { matmul(zeros({2, 3}), zeros({3, 2}, DType::f64)); }, {"matmul", "f32", "f64"});
  check_error([&] { matmul(zeros({}), zeros({3})); }, {"matmul", "()"});
  check_error([&] { matmul(zeros({2, 2}, DType::i64), zeros({2, 2}, DType::i64)); }, {"matmul", "i64"});
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

TEST_CASE("reductions and softmax: bad dims") {
  check_error([] { sum(zeros({2, 3}), {2}); }, {"sum", "2"});
  check_error([] { sum(zeros({2, 3}), {1, -1}); }, {"sum", "repeated"});
  check_error([] { mean(zeros({2}, DType::i64)); }, {"mean", "i64"});
  check_error([] { max(zeros({2, 0}), {1}); }, {"max", "(2, 0)"});
  check_error([] { softmax(zeros({2, 3}), 2); }, {"softmax"});
  check_error([] { log_softmax(zeros({2}, DType::i32), 0); }, {"log_softmax", "i32"});
  check_error([] { argmax(zeros({2, 3}), -3); }, {"argmax"});
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

TEST_CASE("embedding: id out of range, bad weight or ids") {
  Tensor w = zeros({4, 2});
  CHECK_THROWS_WITH_AS(embedding(w, from_vector_i64({1, 4}, {2})), doctest::Contains("embedding"), minivl::Error);
  check_error([&] { embedding(w, from_vector_i64({1, 4}, {2})); }, {"embedding", "4", "vocabulary of 4"});
  check_error([&] { embedding(w, from_vector_i64({-2}, {1})); }, {"embedding", "-2"});
  check_error([&] { embedding(w, zeros({2})); }, {"embedding", "f32"});
  check_error([&] { embedding(zeros({4}), from_vector_i64({0}, {1})); }, {"embedding", "(4,)"});
}

TEST_CASE("views: wrong numel, out-of-range narrow, bad dims") {
  Tensor x = zeros({2, 3});
  check_error([&] { x.reshape({4, 2}); }, {"reshape", "(2, 3)", "(4, 2)"});
  check_error([&] { x.reshape({-1, 4}); }, {"reshape", "(2, 3)"});
  check_error([&] { x.reshape({-1, -1}); }, {"reshape", "-1"});
  check_error([&] { x.view_as_shape({7}); }, {"view", "(2, 3)"});
  CHECK_THROWS_WITH_AS(x.narrow(1, 2, 2), doctest::Contains("narrow"), minivl::Error);
  check_error([&] { x.narrow(1, 2, 2); }, {"narrow", "[2, 4)", "size 3", "(2, 3)"});
  check_error([&] { x.narrow(0, -1, 1); }, {"narrow"});
  check_error([&] { x.narrow(2, 0, 1); }, {"narrow", "dim 2"});
  check_error([&] { x.slice(0, 0, 2, 0); }, {"slice", "step"});
  check_error([&] { x.transpose(0, 5); }, {"transpose"});
  check_error([&] { x.unsqueeze(4); }, {"unsqueeze"});
  check_error([&] { x.flatten(1, 0); }, {"flatten"});
  check_error([&] { x.copy_(zeros({3, 2})); }, {"copy_", "(3, 2)", "(2, 3)"});
  check_error([&] { cat({x, zeros({2, 2})}, 0); }, {"cat", "(2, 2)", "(2, 3)"});
  check_error([&] { cat({x, zeros({2, 3}, DType::f64)}, 0); }, {"cat", "f64"});
  check_error([&] { stack({x, zeros({3, 2})}, 0); }, {"stack", "(3, 2)", "(2, 3)"});
  check_error([&] { make_tensor({2, -1}, DType::f32, Device::cpu()); }, {"negative", "(2, -1)"});
}

TEST_CASE("dim-indexed ops on a 0-d tensor fail cleanly") {
  Tensor s = scalar_tensor(2);
  check_error([&] { s.size(0); }, {"size", "0-d"});
  check_error([&] { s.stride(-1); }, {"stride", "0-d"});
  check_error([&] { s.narrow(0, 0, 1); }, {"narrow", "0-d"});
  check_error([&] { s.select(0, 0); }, {"select", "0-d"});
  check_error([&] { s.slice(0, 0, 1); }, {"slice", "0-d"});
  check_error([&] { split(s, 1, 0); }, {"split"});
  check_error([&] { cat({s, s}, 0); }, {"cat"});
  // The dims that 0-d tensors do accept.
  CHECK(s.unsqueeze(0).shape() == Shape{1});
  CHECK(stack({s, s}, 0).shape() == Shape{2});
  CHECK(sum(s, {0}).item() == 2);
}

TEST_CASE("device cuda without a GPU says why") {
  if (cuda_available()) {
    MESSAGE("skipped: a CUDA device is available");
    return;
  }
  const std::string reason = cuda_unavailable_reason();
  CHECK((reason.find("built without CUDA") != std::string::npos || reason.find("no CUDA device") != std::string::npos));
  auto says_why = [](const std::string& m) {
    return m.find("built without CUDA") != std::string::npos || m.find("no CUDA device") != std::string::npos;
  };
  for (auto fn : std::vector<std::function<void()>>{
           [] { zeros({2}).to(Device::cuda()); },
           [] { zeros({2}, DType::f32, parse_device("cuda")); },
           [] { empty({2}, DType::f32, Device::cuda(1)); },
       }) {
    std::string message;
    try {
      fn();
    } catch (const Error& e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(says_why(message));
  }
  CHECK(parse_device("cuda:1") == Device::cuda(1));
  check_error([] { parse_device("tpu"); }, {"tpu", "cpu", "cuda"});
}

TEST_CASE("dtype names round-trip and unknown names are rejected") {
  for (DType d : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::boolean})
    CHECK(dtype_from_name(dtype_name(d)) == d);
  CHECK(dtype_from_name("bfloat16") == DType::bf16);
  check_error([] { dtype_from_name("f8"); }, {"f8"});
}

}  // TEST_SUITE
