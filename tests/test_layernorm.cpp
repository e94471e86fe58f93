// The fused layernorm and add_layernorm: values against the composed reference (mean,
// biased variance, rsqrt), f64 gradchecks of every input, and the determinism of the
// two-stage dweight/dbias reduction across thread counts.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>

#include "core/ops.h"
#include "tests/core_test_util.h"
#include "tests/gradcheck.h"

using namespace minivl;
using namespace minivl::testing;

namespace {

// The composed, unfused layernorm over the last dim (the op this file's kernels replaced).
Tensor composed_layernorm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  Tensor mu = mean(x, {-1}, true);
  Tensor centered = sub(x, mu);
  Tensor y = mul(centered, rsqrt(add(mean(mul(centered, centered), {-1}, true), eps)));
  if (w.defined()) y = mul(y, w);
  if (b.defined()) y = add(y, b);
  return y;
}

Tensor leaf(const Shape& shape, uint64_t seed, DType dtype = DType::f64) {
  Tensor t = random_input(shape, seed, false).to(dtype);
  return t.requires_grad_();
}

}  // namespace

TEST_SUITE("layernorm") {

TEST_CASE("layernorm equals the composed reference for f64, f32, with and without parameters") {
  for (int64_t cols : {1, 7, 64, 769}) {
    CAPTURE(cols);
    Tensor x = random_input({3, 5, cols}, 1, false) * 3.0 + 2.0;
    Tensor w = random_input({cols}, 2, false), b = random_input({cols}, 3, false);
    check_values(layernorm(x, w, b, 1e-5), composed_layernorm(x, w, b, 1e-5).to_vector(), 1e-12, 1e-12);
    check_values(layernorm(x, Tensor(), Tensor(), 1e-3), composed_layernorm(x, Tensor(), Tensor(), 1e-3).to_vector(),
                 1e-12, 1e-12);
    Tensor x32 = x.to(DType::f32), w32 = w.to(DType::f32), b32 = b.to(DType::f32);
    check_values(layernorm(x32, w32, b32), composed_layernorm(x, w, b, 1e-5).to_vector(), 1e-5, 1e-5);
  }
}

TEST_CASE("layernorm in bf16 and f16 stays within the storage precision of the f64 result") {
  Tensor x = random_input({16, 96}, 4, false), w = random_input({96}, 5, false), b = random_input({96}, 6, false);
  const std::vector<double> want = composed_layernorm(x, w, b, 1e-5).to_vector();
  for (DType t : {DType::bf16, DType::f16}) {
    CAPTURE(dtype_name(t));
    Tensor y = layernorm(x.to(t), w.to(t), b.to(t));
    CHECK(y.dtype() == t);
    check_values(y, want, t == DType::bf16 ? 5e-2 : 1e-2, t == DType::bf16 ? 2e-2 : 5e-3);
  }
}

TEST_CASE("add_layernorm returns the sum and the layernorm of the sum") {
  Tensor x = random_input({4, 33}, 7, false), r = random_input({4, 33}, 8, false);
  Tensor w = random_input({33}, 9, false), b = random_input({33}, 10, false);
  auto [s, y] = add_layernorm(x, r, w, b, 1e-5);
  check_values(s, add(x, r).to_vector(), 0, 0);
  check_values(y, composed_layernorm(add(x, r), w, b, 1e-5).to_vector(), 1e-12, 1e-12);
  minivl::testing::check_error([&] { add_layernorm(x, r.narrow(1, 0, 32), w, b); }, {"add_layernorm", "residual"});
  minivl::testing::check_error([&] { layernorm(x, random_input({32}, 1, false), Tensor()); }, {"layernorm", "(33,)"});
}

TEST_CASE("layernorm gradcheck: x (non-contiguous), weight, bias; parameters optional") {
  Tensor xt = random_input({6, 5}, 11, false).t();  // (5, 6), non-contiguous
  xt.requires_grad_();
  std::string r = gradcheck([](const std::vector<Tensor>& in) { return layernorm(in[0], in[1], in[2], 1e-5); },
                            {xt, leaf({6}, 12), leaf({6}, 13)});
  CHECK_MESSAGE(r.empty(), r);
  r = gradcheck([](const std::vector<Tensor>& in) { return layernorm(in[0], Tensor(), Tensor(), 1e-5); },
                {leaf({2, 3, 9}, 14)});
  CHECK_MESSAGE(r.empty(), r);
  r = gradcheck([](const std::vector<Tensor>& in) { return layernorm(in[0], in[1], Tensor(), 1e-3); },
                {leaf({300, 4}, 15), leaf({4}, 16)});  // > one 128-row chunk of the parameter reduction
  CHECK_MESSAGE(r.empty(), r);
}

TEST_CASE("add_layernorm gradcheck through both outputs, residual included") {
  auto fn = [](const std::vector<Tensor>& in) {
    auto [s, y] = add_layernorm(in[0], in[1], in[2], in[3], 1e-5);
    return cat({s.reshape({-1}), y.reshape({-1})}, 0);
  };
  std::string r = gradcheck(fn, {leaf({3, 4, 7}, 17), leaf({3, 4, 7}, 18), leaf({7}, 19), leaf({7}, 20)});
  CHECK_MESSAGE(r.empty(), r);
  // Only the normalised output used: the sum's gradient arrives as zeros.
  r = gradcheck([](const std::vector<Tensor>& in) { return add_layernorm(in[0], in[1], Tensor(), in[2]).second; },
                {leaf({5, 6}, 21), leaf({5, 6}, 22), leaf({6}, 23)});
  CHECK_MESSAGE(r.empty(), r);
}

TEST_CASE("layernorm backward is bitwise identical with 1 and 2 threads") {
  Tensor x = random_input({1000, 96}, 24, false).to(DType::f32), w = random_input({96}, 25, false).to(DType::f32);
  Tensor b = random_input({96}, 26, false).to(DType::f32), gy = random_input({1000, 96}, 27, false).to(DType::f32);
  auto grads = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor xl = x.clone().requires_grad_(), wl = w.clone().requires_grad_(), bl = b.clone().requires_grad_();
    layernorm(xl, wl, bl).backward(gy);
    omp_set_num_threads(saved);
    return std::vector<std::vector<double>>{xl.grad().to_vector(), wl.grad().to_vector(), bl.grad().to_vector()};
  };
  auto one = grads(1), two = grads(2);
  for (size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
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

}  // TEST_SUITE
