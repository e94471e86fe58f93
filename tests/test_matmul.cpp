// matmul (core/ops/matmul.cpp): 2-d products, broadcast batch dims, transposed views and 1-d
// operands as numpy, f64 and bf16, and the errors naming both shapes. The GEMM kernels under it:
// tests/test_gemm_kernel.cpp and tests/test_gemm_ladder.cpp; gradients: tests/test_gradcheck.cpp.
#include <doctest/doctest.h>

#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using namespace minivl::testing;

TEST_SUITE("matmul") {

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
      for (double v : naive_matmul(ai, bj, 2, 3, 2)) want.push_back(v);
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

}  // TEST_SUITE
