#pragma once
// Small helpers shared by the tests: value checks within a tolerance, f32/f64 tensors from
// literals, a naive matmul, and the message of the error a call throws.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ops.h"

namespace minivl::testing {

// Checks every element of `got` against `want` within atol + rtol * |want|.
inline void check_values(const std::vector<double>& got, const std::vector<double>& want, double atol = 1e-6,
                         double rtol = 1e-6) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    CAPTURE(got[i]);
    CAPTURE(want[i]);
    if (std::isnan(want[i])) {
      CHECK(std::isnan(got[i]));
    } else {
      CHECK(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]));
    }
  }
}

inline void check_values(const Tensor& got, const std::vector<double>& want, double atol = 1e-6,
                         double rtol = 1e-6) {
  REQUIRE(got.defined());
  REQUIRE(got.numel() == int64_t(want.size()));
  check_values(got.to_vector(), want, atol, rtol);
}

inline Tensor tensor_f32(const std::vector<double>& v, const Shape& shape) { return from_vector(v, shape); }
inline Tensor tensor_f64(const std::vector<double>& v, const Shape& shape) {
  return from_vector(v, shape, DType::f64);
}

// Naive (M, K) @ (K, N) over row-major vectors, in f64.
inline std::vector<double> naive_matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t M,
                                        int64_t K, int64_t N) {
  std::vector<double> c(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) c[size_t(i * N + j)] += a[size_t(i * K + k)] * b[size_t(k * N + j)];
  return c;
}

// Runs `fn`, expecting a minivl::Error whose message contains every one of `parts`.
template <typename Fn>
void check_error(Fn&& fn, const std::vector<std::string>& parts) {
  std::string message;
  bool threw = false;
  try {
    fn();
  } catch (const Error& e) {
    threw = true;
    message = e.what();
  }
  CAPTURE(message);
  REQUIRE_MESSAGE(threw, "expected a minivl::Error");
  for (const std::string& p : parts) {
    CAPTURE(p);
    CHECK(message.find(p) != std::string::npos);
  }
}

// The message of the exception of type E that `fn` throws, or "(no error)" when it throws none
// (an exception of another type propagates and fails the test).
template <typename E = Error, typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace minivl::testing
