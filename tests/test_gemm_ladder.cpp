// kernels/cpu/gemm_ladder: v1 against an f64 triple loop, then every version of the
// ladder (gemm_f32_versions) against v1, on awkward sizes (1, 7, 17, 255, block edges),
// transposed operands, padded leading dimensions, gapped columns, alpha / beta, NaN in
// C with beta == 0, batches with broadcast operands; memory around C must stay untouched.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_cpu.h"
#include "kernels/cpu/gemm_ladder_cpu.h"

namespace {

using minivl::cpu::GemmF32Function;
using minivl::cpu::GemmF32Version;

// One operand inside its own buffer: element (i, j) at i * row + j * col.
struct Layout {
  int64_t row, col, elements;
};

// rows x cols, row-major or column-major, leading dimension padded, columns `gap` apart.
Layout make_layout(int64_t rows, int64_t cols, bool column_major, int64_t gap) {
  if (column_major) {
    const int64_t ld = rows + 2;
    return {1, ld * gap, std::max<int64_t>(1, cols * ld * gap)};
  }
  const int64_t ld = cols * gap + 3;
  return {ld, gap, std::max<int64_t>(1, rows * ld)};
}

struct Case {
  int64_t M, N, K;
  bool a_t = false, b_t = false, c_t = false;  // stored column-major
  int64_t a_gap = 1, b_gap = 1, c_gap = 1;
  float alpha = 1.0f, beta = 0.0f;
  int64_t batch = 1;
  bool broadcast_b = false;  // every batch entry reads B entry 0
};

std::string describe(const Case& cs) {
  return std::to_string(cs.M) + "x" + std::to_string(cs.N) + "x" + std::to_string(cs.K) + " a_t=" +
         std::to_string(cs.a_t) + " b_t=" + std::to_string(cs.b_t) + " c_t=" + std::to_string(cs.c_t) +
         " gaps=" + std::to_string(cs.a_gap) + std::to_string(cs.b_gap) + std::to_string(cs.c_gap) +
         " alpha=" + std::to_string(cs.alpha) + " beta=" + std::to_string(cs.beta) +
         " batch=" + std::to_string(cs.batch);
}

// Inputs of one case, and C as it was before the call (NaN everywhere when beta == 0).
struct Inputs {
  Layout la, lb, lc;
  std::vector<int64_t> a_off, b_off, c_off;
  std::vector<float> a, b, c_before;
};

Inputs make_inputs(const Case& cs, uint32_t seed) {
  Inputs in{make_layout(cs.M, cs.K, cs.a_t, cs.a_gap), make_layout(cs.K, cs.N, cs.b_t, cs.b_gap),
            make_layout(cs.M, cs.N, cs.c_t, cs.c_gap), {}, {}, {}, {}, {}, {}};
  for (int64_t i = 0; i < cs.batch; ++i) {
    in.a_off.push_back(i * in.la.elements);
    in.b_off.push_back(cs.broadcast_b ? 0 : i * in.lb.elements);
    in.c_off.push_back(i * in.lc.elements);
  }
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  auto fill = [&](std::vector<float>& v, int64_t n) {
    v.resize(size_t(n));
    for (float& x : v) x = uniform(rng);
  };
  fill(in.a, in.la.elements * cs.batch);
  fill(in.b, in.lb.elements * cs.batch);
  fill(in.c_before, in.lc.elements * cs.batch);
  if (cs.beta == 0.0f) std::fill(in.c_before.begin(), in.c_before.end(), std::numeric_limits<float>::quiet_NaN());
  return in;
}

std::vector<float> run(GemmF32Function gemm, const Case& cs, const Inputs& in) {
  std::vector<float> c = in.c_before;
  gemm(cs.batch, cs.M, cs.N, cs.K, cs.alpha, in.a.data(), in.la.row, in.la.col, in.a_off.data(), in.b.data(),
       in.lb.row, in.lb.col, in.b_off.data(), cs.beta, c.data(), in.lc.row, in.lc.col, in.c_off.data());
  return c;
}

// Largest |got - expected| / tolerance over C, where expected(b, i, j) comes from `expected_at`
// and the tolerance is 1e-5 * sqrt(K + 1) * (|alpha| sum_k |a b| + |beta c| + 1) * `slack`.
// Infinity when an entry is not finite or memory around C changed.
template <class Expected>
double worst_error(const Case& cs, const Inputs& in, const std::vector<float>& got, double slack,
                   Expected expected_at) {
  double worst = 0.0;
  std::vector<bool> inside(got.size(), false);
  for (int64_t bi = 0; bi < cs.batch; ++bi)
    for (int64_t i = 0; i < cs.M; ++i)
      for (int64_t j = 0; j < cs.N; ++j) {
        double magnitude = 0.0;
        for (int64_t k = 0; k < cs.K; ++k)
          magnitude += std::fabs(double(in.a[size_t(in.a_off[bi] + i * in.la.row + k * in.la.col)]) *
                                 double(in.b[size_t(in.b_off[bi] + k * in.lb.row + j * in.lb.col)]));
        const size_t at = size_t(in.c_off[bi] + i * in.lc.row + j * in.lc.col);
        inside[at] = true;
        if (!std::isfinite(got[at])) return std::numeric_limits<double>::infinity();
        const double old_c = cs.beta == 0.0f ? 0.0 : std::fabs(double(cs.beta) * in.c_before[at]);
        const double tolerance =
            slack * 1e-5 * std::sqrt(double(cs.K) + 1.0) * (std::fabs(cs.alpha) * magnitude + old_c + 1.0);
        worst = std::max(worst, std::fabs(double(got[at]) - expected_at(bi, i, j, at)) / tolerance);
      }
  for (size_t e = 0; e < got.size(); ++e) {
    const bool same = got[e] == in.c_before[e] || (std::isnan(got[e]) && std::isnan(in.c_before[e]));
    if (!inside[e] && !same) return std::numeric_limits<double>::infinity();
  }
  return worst;
}

// The f64 triple loop, independent of every version.
double f64_entry(const Case& cs, const Inputs& in, int64_t bi, int64_t i, int64_t j, size_t at) {
  double dot = 0.0;
  for (int64_t k = 0; k < cs.K; ++k)
    dot += double(in.a[size_t(in.a_off[bi] + i * in.la.row + k * in.la.col)]) *
           double(in.b[size_t(in.b_off[bi] + k * in.lb.row + j * in.lb.col)]);
  const double result = double(cs.alpha) * dot;
  return cs.beta == 0.0f ? result : result + double(cs.beta) * double(in.c_before[at]);
}

std::vector<Case> awkward_cases() {
  std::vector<Case> cases;
  for (int64_t m : {1, 7, 17, 255})
    for (int64_t n : {1, 17, 33})
      for (int64_t k : {1, 7, 255}) cases.push_back({m, n, k});
  // Across v2 / v3 blocks (KC 128, NC 512, 32 rows) and v4's (KC 512, MC 168, 14 x 32 tiles).
  cases.push_back({255, 530, 300});
  cases.push_back({350, 70, 520});
  for (bool a_t : {false, true})
    for (bool b_t : {false, true}) {
      Case cs{37, 45, 29};
      cs.a_t = a_t;
      cs.b_t = b_t;
      cases.push_back(cs);
      cs = {129, 17, 260};
      cs.a_t = a_t;
      cs.b_t = b_t;
      cs.c_t = a_t;
      cases.push_back(cs);
    }
  Case gaps{40, 50, 30};  // every other column of A, every third of B, C column-major with gaps
  gaps.a_gap = 2;
  gaps.b_gap = 3;
  gaps.c_gap = 2;
  cases.push_back(gaps);
  gaps.c_t = true;
  cases.push_back(gaps);
  for (float alpha : {-0.5f, 2.0f})
    for (float beta : {1.0f, -1.5f}) {
      Case cs{17, 33, 45};
      cs.alpha = alpha;
      cs.beta = beta;
      cases.push_back(cs);
    }
  Case batched{7, 17, 33};
  batched.batch = 5;
  batched.broadcast_b = true;
  batched.beta = 0.5f;
  cases.push_back(batched);
  return cases;
}

GemmF32Function v1_naive() {
  for (const GemmF32Version& v : minivl::cpu::gemm_f32_versions())
    if (std::string(v.name) == "v1_naive") return v.run;
  return nullptr;
}

}  // namespace

TEST_SUITE("gemm_ladder") {
  TEST_CASE("the ladder lists v1, v2, v3 and v4, with gemm_f32 as its one default") {
    const auto versions = minivl::cpu::gemm_f32_versions();
    REQUIRE(versions.size() >= 4);
    std::set<std::string> names;
    int defaults = 0;
    for (const GemmF32Version& v : versions) {
      names.insert(v.name);
      CHECK(static_cast<bool>(v.run));
      CHECK(std::string(v.summary).size() > 10);
      if (v.is_default) {
        ++defaults;
        const bool runs_gemm_f32 = v.run == &minivl::cpu::gemm_f32;
        CHECK(runs_gemm_f32);
        CHECK(std::string(v.name).rfind("v4_", 0) == 0);
      }
    }
    CHECK(names.size() == versions.size());
    CHECK(defaults == 1);
    CHECK(versions.back().is_default);
    for (const char* prefix : {"v1_", "v2_", "v3_", "v4_"})
      CHECK(std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; }));
  }

  TEST_CASE("v1 naive matches an f64 triple loop on awkward shapes and layouts") {
    const GemmF32Function v1 = v1_naive();
    REQUIRE(static_cast<bool>(v1));
    uint32_t seed = 100;
    for (const Case& cs : awkward_cases()) {
      const Inputs in = make_inputs(cs, seed++);
      const std::vector<float> got = run(v1, cs, in);
      INFO(describe(cs));
      CHECK(worst_error(cs, in, got, 1.0, [&](int64_t bi, int64_t i, int64_t j, size_t at) {
              return f64_entry(cs, in, bi, i, j, at);
            }) <= 1.0);
    }
  }

  TEST_CASE("every version of the ladder matches v1 on awkward shapes and layouts") {
    const GemmF32Function v1 = v1_naive();
    REQUIRE(static_cast<bool>(v1));
    uint32_t seed = 500;
    for (const Case& cs : awkward_cases()) {
      const Inputs in = make_inputs(cs, seed++);
      const std::vector<float> reference = run(v1, cs, in);
      for (const GemmF32Version& v : minivl::cpu::gemm_f32_versions()) {
        const std::vector<float> got = run(v.run, cs, in);
        INFO(v.name, " ", describe(cs));
        // Both sums carry f32 rounding of their own order: twice one sum's bound.
        CHECK(worst_error(cs, in, got, 2.0, [&](int64_t, int64_t, int64_t, size_t at) {
                return double(reference[at]);
              }) <= 1.0);
      }
    }
  }

  TEST_CASE("every version with K == 0 or alpha == 0 sets C = beta * C, never reading C when beta == 0") {
    for (const GemmF32Version& v : minivl::cpu::gemm_f32_versions()) {
      for (float beta : {0.0f, 0.25f}) {
        Case cs{7, 17, 0};
        cs.beta = beta;
        Inputs in = make_inputs(cs, 9);
        const std::vector<float> got = run(v.run, cs, in);
        INFO(v.name, " beta=", beta);
        for (int64_t i = 0; i < cs.M; ++i)
          for (int64_t j = 0; j < cs.N; ++j) {
            const size_t at = size_t(i * in.lc.row + j * in.lc.col);
            CHECK(got[at] == (beta == 0.0f ? 0.0f : beta * in.c_before[at]));
          }
        cs.K = 5;
        cs.alpha = 0.0f;
        in = make_inputs(cs, 10);
        std::fill(in.a.begin(), in.a.end(), std::numeric_limits<float>::infinity());  // alpha == 0: A not used
        const std::vector<float> zero_alpha = run(v.run, cs, in);
        for (int64_t i = 0; i < cs.M; ++i)
          for (int64_t j = 0; j < cs.N; ++j) {
            const size_t at = size_t(i * in.lc.row + j * in.lc.col);
            CHECK(zero_alpha[at] == (beta == 0.0f ? 0.0f : beta * in.c_before[at]));
          }
      }
    }
  }

  TEST_CASE("every version with M or N == 0 writes nothing") {
    for (const GemmF32Version& v : minivl::cpu::gemm_f32_versions())
      for (const Case& cs : {Case{0, 5, 3}, Case{5, 0, 3}}) {
        const Inputs in = make_inputs(cs, 3);
        const std::vector<float> got = run(v.run, cs, in);
        INFO(v.name);
        for (size_t e = 0; e < got.size(); ++e) CHECK(std::isnan(got[e]));  // untouched NaN poison
      }
  }
}
