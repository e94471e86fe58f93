// kernels/cpu/gemm: gemm_f32 / gemm_f64 against a naive triple loop in long double,
// over odd shapes, all transpose combinations (via strides), non-unit column
// strides, alpha / beta (beta == 0 never reads C) and broadcast batches.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "kernels/cpu/gemm_cpu.h"

namespace {

// Layout of one strided operand inside its own buffer.
struct Layout {
  int64_t row_stride, col_stride, elements;
};

// rows x cols, row-major or column-major, each column spread `col_gap` apart
// (col_gap = 2 means every other column of a wider matrix).
Layout make_layout(int64_t rows, int64_t cols, bool column_major, int64_t col_gap = 1) {
  if (column_major) {
    const int64_t ld = rows + 3;  // padded leading dimension
    return {1, ld * col_gap, std::max<int64_t>(1, cols * ld * col_gap)};
  }
  const int64_t ld = cols * col_gap + 5;
  return {ld, col_gap, std::max<int64_t>(1, rows * ld)};
}

template <class T>
std::vector<T> random_values(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<T> values(count);
  for (T& v : values) v = T(uniform(rng));
  return values;
}

template <class T>
void call_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* a, Layout la,
               const int64_t* a_off, const T* b, Layout lb, const int64_t* b_off, T beta, T* c, Layout lc,
               const int64_t* c_off) {
  if constexpr (std::is_same_v<T, float>)
    minivl::cpu::gemm_f32(batch, M, N, K, alpha, a, la.row_stride, la.col_stride, a_off, b, lb.row_stride,
                          lb.col_stride, b_off, beta, c, lc.row_stride, lc.col_stride, c_off);
  else
    minivl::cpu::gemm_f64(batch, M, N, K, alpha, a, la.row_stride, la.col_stride, a_off, b, lb.row_stride,
                          lb.col_stride, b_off, beta, c, lc.row_stride, lc.col_stride, c_off);
}

struct Case {
  int64_t M, N, K;
  bool a_transposed = false, b_transposed = false;  // stored column-major
  int64_t a_col_gap = 1, b_col_gap = 1, c_col_gap = 1;
  bool c_transposed = false;
  double alpha = 1.0, beta = 0.0;
  int64_t batch = 1;
  bool broadcast_a = false, broadcast_b = false;  // every batch entry reads entry 0
};

// Runs one case and returns the largest |ours - reference| / tolerance (pass: <= 1).
template <class T>
double run_case(const Case& cs, uint32_t seed) {
  const Layout la = make_layout(cs.M, cs.K, cs.a_transposed, cs.a_col_gap);
  const Layout lb = make_layout(cs.K, cs.N, cs.b_transposed, cs.b_col_gap);
  const Layout lc = make_layout(cs.M, cs.N, cs.c_transposed, cs.c_col_gap);
  std::vector<int64_t> a_off(cs.batch), b_off(cs.batch), c_off(cs.batch);
  for (int64_t i = 0; i < cs.batch; ++i) {
    a_off[i] = cs.broadcast_a ? 0 : i * la.elements;
    b_off[i] = cs.broadcast_b ? 0 : i * lb.elements;
    c_off[i] = i * lc.elements;
  }
  std::vector<T> a = random_values<T>(la.elements * cs.batch, seed);
  std::vector<T> b = random_values<T>(lb.elements * cs.batch, seed + 1);
  std::vector<T> c = random_values<T>(lc.elements * cs.batch, seed + 2);
  if (cs.beta == 0.0) std::fill(c.begin(), c.end(), std::numeric_limits<T>::quiet_NaN());
  const std::vector<T> c_before = c;

  call_gemm<T>(cs.batch, cs.M, cs.N, cs.K, T(cs.alpha), a.data(), la, a_off.data(), b.data(), lb, b_off.data(),
               T(cs.beta), c.data(), lc, c_off.data());

  const double eps = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  double worst = 0.0;
  for (int64_t bi = 0; bi < cs.batch; ++bi)
    for (int64_t i = 0; i < cs.M; ++i)
      for (int64_t j = 0; j < cs.N; ++j) {
        long double dot = 0, magnitude = 0;
        for (int64_t k = 0; k < cs.K; ++k) {
          const long double x = a[a_off[bi] + i * la.row_stride + k * la.col_stride];
          const long double y = b[b_off[bi] + k * lb.row_stride + j * lb.col_stride];
          dot += x * y;
          magnitude += std::fabs(x * y);
        }
        const int64_t at = c_off[bi] + i * lc.row_stride + j * lc.col_stride;
        long double expected = (long double)cs.alpha * dot;
        if (cs.beta != 0.0) expected += (long double)cs.beta * c_before[at];
        const double got = double(c[at]);
        if (!std::isfinite(got)) return std::numeric_limits<double>::infinity();
        const double tolerance =
            eps * (double(std::fabs(cs.alpha) * magnitude) + std::fabs(cs.beta) + 1.0) * std::sqrt(double(cs.K) + 1.0);
        worst = std::max(worst, double(std::fabs(expected - (long double)got)) / tolerance);
      }
  // Elements outside the matrices (padding, skipped columns) must be untouched.
  std::vector<bool> inside(c.size(), false);
  for (int64_t bi = 0; bi < cs.batch; ++bi)
    for (int64_t i = 0; i < cs.M; ++i)
      for (int64_t j = 0; j < cs.N; ++j) inside[c_off[bi] + i * lc.row_stride + j * lc.col_stride] = true;
  for (size_t e = 0; e < c.size(); ++e)
    if (!inside[e] && !(c[e] == c_before[e] || (std::isnan(c[e]) && std::isnan(c_before[e]))))
      return std::numeric_limits<double>::infinity();
  return worst;
}

template <class T>
void check_case(const Case& cs, uint32_t seed = 1234) {
  CAPTURE(cs.M);
  CAPTURE(cs.N);
  CAPTURE(cs.K);
  CAPTURE(cs.a_transposed);
  CAPTURE(cs.b_transposed);
  CAPTURE(cs.alpha);
  CAPTURE(cs.beta);
  CAPTURE(cs.batch);
  CHECK(run_case<T>(cs, seed) <= 1.0);
}

const std::vector<std::array<int64_t, 3>> kShapes = {
    {1, 1, 1},    {1, 7, 3},     {5, 1, 9},     {2, 3, 1},     {14, 32, 16},  {15, 33, 17},
    {13, 31, 8},  {37, 53, 29},  {50, 50, 64},  {64, 64, 64},  {100, 3, 257}, {3, 100, 513},
    {29, 97, 300}, {300, 200, 250}, {129, 65, 260}};

}  // namespace

TEST_SUITE_BEGIN("gemm");

TEST_CASE_TEMPLATE("gemm matches the naive product on odd and edge-tile shapes", T, float, double) {
  for (const auto& [M, N, K] : kShapes) check_case<T>(Case{M, N, K});
}

TEST_CASE_TEMPLATE("gemm reads all four transpose combinations through strides", T, float, double) {
  for (bool a_t : {false, true})
    for (bool b_t : {false, true})
      for (const auto& shape : {std::array<int64_t, 3>{37, 53, 29}, {300, 200, 250}, {1, 1, 1}, {15, 33, 17}}) {
        Case cs{shape[0], shape[1], shape[2]};
        cs.a_transposed = a_t;
        cs.b_transposed = b_t;
        check_case<T>(cs);
      }
}

TEST_CASE_TEMPLATE("gemm handles non-unit column strides on A, B and C", T, float, double) {
  for (const auto& shape : {std::array<int64_t, 3>{37, 53, 29}, {64, 96, 40}, {300, 200, 250}}) {
    Case cs{shape[0], shape[1], shape[2]};
    cs.a_col_gap = 2;
    cs.b_col_gap = 3;
    cs.c_col_gap = 2;
    check_case<T>(cs);
    cs.c_col_gap = 1;
    cs.c_transposed = true;  // C written column-major
    cs.beta = 0.5;
    check_case<T>(cs);
  }
}

TEST_CASE_TEMPLATE("gemm applies alpha and beta, and beta == 0 ignores NaN in C", T, float, double) {
  for (const auto& shape : {std::array<int64_t, 3>{37, 53, 29}, {300, 200, 250}, {14, 32, 300}}) {
    for (double alpha : {1.0, -0.5, 2.0})
      for (double beta : {0.0, 1.0, -1.5}) {
        Case cs{shape[0], shape[1], shape[2]};
        cs.alpha = alpha;
        cs.beta = beta;
        check_case<T>(cs);
      }
  }
}

TEST_CASE_TEMPLATE("gemm with K == 0 scales C by beta, or zeroes it when beta == 0", T, float, double) {
  for (double beta : {0.0, 1.0, 0.25}) {
    Case cs{7, 9, 0};
    cs.beta = beta;
    check_case<T>(cs);
  }
  Case zero_alpha{20, 40, 10};  // alpha == 0 behaves the same
  zero_alpha.alpha = 0.0;
  zero_alpha.beta = 0.0;
  check_case<T>(zero_alpha);
}

TEST_CASE_TEMPLATE("gemm with M or N == 0 writes nothing", T, float, double) {
  check_case<T>(Case{0, 5, 3});
  check_case<T>(Case{5, 0, 3});
  check_case<T>(Case{0, 0, 0});
}

TEST_CASE_TEMPLATE("gemm batches, including broadcast (repeated) A and B offsets", T, float, double) {
  Case many_small{50, 50, 64};  // attention-like: one GEMM per thread
  many_small.batch = 24;
  check_case<T>(many_small);
  many_small.broadcast_b = true;
  many_small.beta = 1.0;
  check_case<T>(many_small);

  Case few_large{300, 200, 250};  // one thread team per GEMM
  few_large.batch = 3;
  few_large.broadcast_a = true;
  few_large.b_transposed = true;
  check_case<T>(few_large);
  few_large.broadcast_a = false;
  few_large.broadcast_b = true;
  few_large.alpha = -1.0;
  few_large.beta = 0.5;
  check_case<T>(few_large);
}

TEST_CASE("gemm_f32 with null offsets runs a single GEMM at offset 0") {
  const int64_t M = 20, N = 30, K = 40;
  std::vector<float> a = random_values<float>(M * K, 1), b = random_values<float>(K * N, 2);
  std::vector<float> c(M * N, std::numeric_limits<float>::quiet_NaN());
  minivl::cpu::gemm_f32(5, M, N, K, 1.0f, a.data(), K, 1, nullptr, b.data(), N, 1, nullptr, 0.0f, c.data(), N, 1,
                        nullptr);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double expected = 0;
      for (int64_t k = 0; k < K; ++k) expected += double(a[i * K + k]) * b[k * N + j];
      CHECK(c[i * N + j] == doctest::Approx(expected).epsilon(1e-4));
    }
}

TEST_CASE("gemm crosses the K, M and N cache blocks and splits work across threads") {
  // K > KC (512) and M > MC (168): the second K slice must accumulate, not overwrite.
  Case cs{700, 70, 600};
  check_case<float>(cs);
  // Packed B is capped at 8 MiB, so K = 2100 gives nc = 992 < N: two column blocks.
  // M = 40 is one row block, so threads split the B micro-panels into chunks instead.
  cs.M = 40;
  cs.N = 1100;
  cs.K = 2100;
  cs.beta = 1.0;
  check_case<float>(cs);
  Case f64_blocks{400, 50, 500};  // f64: KC 192, MC 168
  check_case<double>(f64_blocks);
}

TEST_SUITE_END();
