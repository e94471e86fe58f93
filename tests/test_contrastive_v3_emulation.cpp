// The contrastive losses v3 schedule emulated on the CPU from kernels/cuda/contrastive_v3_plan.h:
// chunk launches, blocks, the warps' row and column (max, sum) partials in their slots, the merge
// in slot order, block scalar partials, the 16-bit G chunk (kept in f32 here) and the two GEMMs
// with cuBLAS's beta = 0 on a first contribution, CLIP's -2 I term applied at the end. Compared
// with the CPU kernels (clip_loss, siglip_loss, their backward) on features that are not unit
// norm, at sizes that span several chunks with ragged edges. Every partial slot, block sum and
// G element the emulation reads must have been written (buffers start as NaN).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/ops.h"
#include "kernels/cuda/contrastive_v3_plan.h"
#include "tests/random_rows.h"

using namespace minivl;
namespace v3 = minivl::cuda::v3;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Problem {
  int64_t n = 0, d = 0;
  std::vector<float> a, b;  // image, text: (n, d)
  float log_scale = 0, bias = 0, grad = 0;
};

// Rows of random direction and random norm in [0.5, 2]: the kernels must not assume unit rows.
Problem make_problem(int64_t n, int64_t d, uint64_t seed) {
  Problem p{n, d, std::vector<float>(size_t(n * d)), std::vector<float>(size_t(n * d)), std::log(12.0f), -3.0f, 0.7f};
  minivl::testing::fill_random_norm_rows({&p.a, &p.b}, n, d, 0.5f, 2.0f, seed);
  return p;
}

struct Result {
  double loss = 0, dscale = 0, dbias = 0;
  std::vector<double> da, db;
};

Result reference(const Problem& p, bool siglip) {
  auto leaf = [&](const std::vector<float>& v) {
    return from_vector(std::vector<double>(v.begin(), v.end()), {p.n, p.d}, DType::f32).requires_grad_();
  };
  Tensor a = leaf(p.a), b = leaf(p.b);
  Tensor s = scalar_tensor(p.log_scale, DType::f32).requires_grad_(), bias = scalar_tensor(p.bias).requires_grad_();
  Tensor loss = siglip ? siglip_loss(a, b, s, bias) : clip_loss(a, b, s);
  mul(loss, double(p.grad)).backward();
  return Result{loss.item(), s.grad().item(), siglip ? bias.grad().item() : 0.0, a.grad().to_vector(),
                b.grad().to_vector()};
}

float logit(const Problem& p, int64_t i, int64_t j) {
  double s = 0;
  for (int64_t k = 0; k < p.d; ++k) s += double(p.a[size_t(i * p.d + k)]) * p.b[size_t(j * p.d + k)];
  return std::exp(p.log_scale) * float(s);
}

template <typename F>
void for_each_chunk(const v3::Plan& plan, F&& f) {
  for (int64_t ci = 0; ci < v3::chunks_per_side(plan); ++ci)
    for (int64_t cj = 0; cj < v3::chunks_per_side(plan); ++cj) f(v3::chunk_at(plan, ci, cj));
}

// One CLIP forward tile of block (run, rt), as clip_forward_tiles computes it per warp.
void clip_tile(const Problem& p, const v3::Plan& plan, const v3::Chunk& c, int64_t rt, const v3::BlockWork& w, int t,
               std::vector<v3::MaxSum>& state, std::vector<v3::MaxSum>& col_part, std::vector<float>& diag) {
  const int64_t c0 = w.col0 + t * v3::kTileN;
  const int rows_valid = int(std::min<int64_t>(p.n - w.row0, v3::kTileM));
  const int cols_valid = int(std::min<int64_t>(p.n - c0, v3::kTileN));
  std::vector<float> x(size_t(v3::kTileM * v3::kTileN), -INFINITY);
  for (int r = 0; r < rows_valid; ++r)
    for (int col = 0; col < cols_valid; ++col) {
      x[size_t(r * v3::kTileN + col)] = logit(p, w.row0 + r, c0 + col);
      if (w.row0 + r == c0 + col) diag[size_t(w.row0 + r)] = x[size_t(r * v3::kTileN + col)];
    }
  for (int warp = 0; warp < v3::kWarps; ++warp) {
    const int r_lo = v3::warp_row(warp) * v3::kWarpM, c_lo = v3::warp_col(warp) * v3::kWarpN;
    for (int r = r_lo; r < r_lo + v3::kWarpM && r < rows_valid; ++r) {
      float mx = -INFINITY;
      for (int col = c_lo; col < c_lo + v3::kWarpN && col < cols_valid; ++col) mx = std::max(mx, x[size_t(r * v3::kTileN + col)]);
      v3::MaxSum& st = state[size_t(warp * v3::kWarpM + r - r_lo)];
      const float mnew = std::max(st.m, mx), base = mnew == -INFINITY ? 0.0f : mnew;
      float sum = 0;
      for (int col = c_lo; col < c_lo + v3::kWarpN && col < cols_valid; ++col) sum += std::exp(x[size_t(r * v3::kTileN + col)] - base);
      st = v3::MaxSum{mnew, st.s * std::exp(st.m - base) + sum};
    }
    for (int col = c_lo; col < c_lo + v3::kWarpN && col < cols_valid; ++col) {
      float mx = -INFINITY, sum = 0;
      for (int r = r_lo; r < r_lo + v3::kWarpM && r < rows_valid; ++r) mx = std::max(mx, x[size_t(r * v3::kTileN + col)]);
      const float base = mx == -INFINITY ? 0.0f : mx;
      for (int r = r_lo; r < r_lo + v3::kWarpM && r < rows_valid; ++r) sum += std::exp(x[size_t(r * v3::kTileN + col)] - base);
      col_part[size_t(v3::col_part_index(plan, rt, v3::warp_row(warp), c0 + col - c.c0))] = v3::MaxSum{mx, sum};
    }
  }
}

// Folds a chunk's partials into the running states, as merge_chunk; every slot must be written.
void merge(const v3::Plan& plan, const v3::Chunk& c, const std::vector<v3::MaxSum>& row_part,
           const std::vector<v3::MaxSum>& col_part, std::vector<v3::MaxSum>& rows, std::vector<v3::MaxSum>& cols) {
  const int64_t cap = v3::chunk_capacity(plan);
  bool written = true;
  // Merges the partial slots of each of `count` lines (rows or columns) into `out` from `offset`;
  // a line starts afresh in the first chunk along it (`first`).
  auto merge_lines = [&](int64_t count, int64_t slots, const std::vector<v3::MaxSum>& part, bool first,
                         std::vector<v3::MaxSum>& out, int64_t offset) {
    for (int64_t t = 0; t < count; ++t) {
      v3::MaxSum st = first ? v3::MaxSum{} : out[size_t(offset + t)];
      for (int64_t q = 0; q < slots; ++q) {
        written &= !std::isnan(part[size_t(q * cap + t)].s);
        st = v3::merge(st, part[size_t(q * cap + t)]);
      }
      out[size_t(offset + t)] = st;
    }
  };
  merge_lines(c.rows, v3::row_part_slots(c), row_part, c.c0 == 0, rows, c.r0);
  merge_lines(c.cols, v3::col_part_slots(c), col_part, c.r0 == 0, cols, c.c0);
  REQUIRE(written);
}

struct ClipForward {
  double loss = 0;
  std::vector<float> lse_row, lse_col;
};

ClipForward emulate_clip_forward(const Problem& p, const v3::Plan& plan) {
  std::vector<v3::MaxSum> rows(size_t(p.n)), cols(size_t(p.n));
  std::vector<float> diag(size_t(p.n), kNaN);
  for_each_chunk(plan, [&](const v3::Chunk& c) {
    std::vector<v3::MaxSum> row_part(size_t(v3::row_part_capacity(plan)), v3::MaxSum{kNaN, kNaN});
    std::vector<v3::MaxSum> col_part(size_t(v3::col_part_capacity(plan)), v3::MaxSum{kNaN, kNaN});
    for (int64_t rt = 0; rt < v3::row_tiles(c); ++rt)
      for (int64_t run = 0; run < v3::runs(c); ++run) {
        const v3::BlockWork w = v3::block_work(c, run, rt);
        std::vector<v3::MaxSum> state(size_t(v3::kWarps * v3::kWarpM));
        for (int t = 0; t < w.tiles; ++t) clip_tile(p, plan, c, rt, w, t, state, col_part, diag);
        for (int warp = 0; warp < v3::kWarps; ++warp)
          for (int i = 0; i < v3::kWarpM; ++i) {
            const int64_t row = w.row0 + v3::warp_row(warp) * v3::kWarpM + i;
            if (row < p.n)
              row_part[size_t(v3::row_part_index(plan, run, v3::warp_col(warp), row - c.r0))] =
                  state[size_t(warp * v3::kWarpM + i)];
          }
      }
    merge(plan, c, row_part, col_part, rows, cols);
  });
  ClipForward f{0, std::vector<float>(size_t(p.n)), std::vector<float>(size_t(p.n))};
  for (int64_t i = 0; i < p.n; ++i) {
    REQUIRE_FALSE(std::isnan(diag[size_t(i)]));
    f.lse_row[size_t(i)] = v3::lse(rows[size_t(i)]);
    f.lse_col[size_t(i)] = v3::lse(cols[size_t(i)]);
    f.loss += double(f.lse_row[size_t(i)]) + f.lse_col[size_t(i)] - 2.0 * diag[size_t(i)];
  }
  f.loss /= double(2 * p.n);
  return f;
}

// The SigLIP forward (block sums) and both backwards (G chunks, the two GEMMs, the finish).
Result emulate_rest(const Problem& p, const v3::Plan& plan, bool siglip, const ClipForward* clip) {
  const int64_t n = p.n, d = p.d, parts = v3::scalar_part_count(plan);
  const float s = std::exp(p.log_scale);
  std::vector<float> loss_part(size_t(parts), kNaN), scale_part(size_t(parts), kNaN), bias_part(size_t(parts), kNaN);
  std::vector<double> acc_a(size_t(n * d), kNaN), acc_b(size_t(n * d), kNaN);
  const int64_t ld = v3::g_ld(plan);
  for_each_chunk(plan, [&](const v3::Chunk& c) {
    std::vector<float> g(size_t(v3::g_elems(plan)), kNaN);
    for (int64_t rt = 0; rt < v3::row_tiles(c); ++rt)
      for (int64_t run = 0; run < v3::runs(c); ++run) {
        const v3::BlockWork w = v3::block_work(c, run, rt);
        float sum_loss = 0, sum_scale = 0, sum_bias = 0;
        for (int t = 0; t < w.tiles; ++t)
          for (int64_t r = w.row0; r < std::min(n, w.row0 + v3::kTileM); ++r)
            for (int64_t col = w.col0 + t * v3::kTileN; col < std::min(n, w.col0 + (t + 1) * v3::kTileN); ++col) {
              const float x = logit(p, r, col), z = r == col ? 1.0f : -1.0f, u = x + p.bias;
              sum_loss += std::max(-z * u, 0.0f) + std::log1p(std::exp(-std::abs(u)));
              const float gv = siglip ? -z / (1.0f + std::exp(z * u))
                                      : std::exp(x - clip->lse_row[size_t(r)]) + std::exp(x - clip->lse_col[size_t(col)]);
              sum_scale += gv * x;
              sum_bias += gv;
              g[size_t(v3::g_index(plan, c, r, col))] = gv;
            }
        const int64_t slot = v3::scalar_part_index(plan, c, run, rt);
        REQUIRE(std::isnan(scale_part[size_t(slot)]));
        loss_part[size_t(slot)] = sum_loss, scale_part[size_t(slot)] = sum_scale, bias_part[size_t(slot)] = sum_bias;
      }
    for (int64_t r = 0; r < c.rows; ++r)  // dA_I (+)= G B_J: beta = 0 on the first column chunk
      for (int64_t k = 0; k < d; ++k) {
        double acc = c.c0 == 0 ? 0.0 : acc_a[size_t((c.r0 + r) * d + k)];
        for (int64_t col = 0; col < c.cols; ++col) acc += double(g[size_t(r * ld + col)]) * p.b[size_t((c.c0 + col) * d + k)];
        acc_a[size_t((c.r0 + r) * d + k)] = acc;
      }
    for (int64_t col = 0; col < c.cols; ++col)  // dB_J (+)= G^T A_I: beta = 0 on the first row chunk
      for (int64_t k = 0; k < d; ++k) {
        double acc = c.r0 == 0 ? 0.0 : acc_b[size_t((c.c0 + col) * d + k)];
        for (int64_t r = 0; r < c.rows; ++r) acc += double(g[size_t(r * ld + col)]) * p.a[size_t((c.r0 + r) * d + k)];
        acc_b[size_t((c.c0 + col) * d + k)] = acc;
      }
  });
  const double coef_div = siglip ? double(n) : double(2 * n), f = s * p.grad / coef_div;
  Result out;
  double sum_loss = 0, sum_scale = 0, sum_bias = 0, sum_diag = 0;
  for (int64_t i = 0; i < parts; ++i) sum_loss += loss_part[size_t(i)], sum_scale += scale_part[size_t(i)], sum_bias += bias_part[size_t(i)];
  for (int64_t i = 0; i < n && !siglip; ++i) sum_diag += logit(p, i, i);
  out.loss = sum_loss / double(n);
  out.dscale = p.grad / coef_div * (sum_scale - 2.0 * sum_diag);
  out.dbias = p.grad / coef_div * sum_bias;
  for (int64_t i = 0; i < n * d; ++i) {
    out.da.push_back(f * (acc_a[size_t(i)] - (siglip ? 0.0 : 2.0 * p.b[size_t(i)])));
    out.db.push_back(f * (acc_b[size_t(i)] - (siglip ? 0.0 : 2.0 * p.a[size_t(i)])));
  }
  REQUIRE_FALSE(std::isnan(sum_scale));
  return out;
}

double rel_err(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num = std::max(num, std::isnan(got[i]) ? INFINITY : std::abs(got[i] - want[i]));
    den = std::max(den, std::abs(want[i]));
  }
  return num / std::max(den, 1e-30);
}

}  // namespace

TEST_SUITE("contrastive_v3_plan") {

TEST_CASE("the v3 schedule emulated from the plan equals the CPU kernels, CLIP and SigLIP, all gradients") {
  const int64_t smallest = v3::kTileN * v3::kRunTiles;  // 512: several chunks at small N
  struct Size {
    int64_t n, d, chunk;
  };
  for (const Size& z : {Size{1, 24, smallest}, Size{129, 24, smallest}, Size{777, 72, smallest},
                        Size{600, 40, v3::kChunk}})
    for (bool siglip : {false, true}) {
      CAPTURE(z.n);
      CAPTURE(z.d);
      CAPTURE(z.chunk);
      CAPTURE(siglip);
      const Problem p = make_problem(z.n, z.d, 1000 + uint64_t(z.n));
      const v3::Plan plan{z.n, z.chunk};
      const Result want = reference(p, siglip);
      ClipForward fwd;
      if (!siglip) fwd = emulate_clip_forward(p, plan);
      const Result got = emulate_rest(p, plan, siglip, siglip ? nullptr : &fwd);
      const double loss = siglip ? got.loss : fwd.loss;
      CHECK(loss == doctest::Approx(want.loss).epsilon(2e-5));
      CHECK(rel_err(got.da, want.da) <= 2e-5);
      CHECK(rel_err(got.db, want.db) <= 2e-5);
      // dlogit_scale sums terms of size ~ s |L| / N that cancel (to 0 at N = 1): an absolute floor.
      CHECK(std::abs(got.dscale - want.dscale) <= 1e-5 + 1e-4 * std::abs(want.dscale));
      if (siglip) CHECK(std::abs(got.dbias - want.dbias) <= 1e-5 + 1e-4 * std::abs(want.dbias));
    }
}

}  // TEST_SUITE
