// CPU <-> CUDA parity of the contrastive losses v3 (kernels/cuda/contrastive_v3.cu), forced through
// the version registry's override (as MINIVL_CONTRASTIVE_VERSION=3 does) while it is a candidate:
// clip_loss and siglip_loss, forward and every gradient (dimage, dtext, dlogit_scale, dlogit_bias),
// bf16 and f16, N = 1, 100, 1000, 4097 (1 and ragged tiles, one and several runs, 4097 = 32 tiles
// + 1 row) x d = 256, 512, 768, 1024.
// Inputs: rows of random direction and norm in [0.5, 1.5] (the kernels must not assume unit
// rows), rounded to bf16, so both dtypes hold them exactly and the CPU reference (the tiled CPU
// kernels in f32 on the same values) is computed once per size.
//
// Tolerances, per element, from where the CUDA result may differ from the CPU's:
//   y = s coef sum_{j < N} Gc_j X_j (a gradient element; Gc = G / coef, X the other operand)
//   - Gc is rounded to 16 bits before the GEMMs (relative u: 2^-8 bf16, 2^-11 f16) and carries
//     the logits' f32 error dL (mma and CPU sum d products in different orders: a random walk,
//     |dL| <= 4 eps32 sqrt(d) s max|a||b|); both are independent from term to term, so over the
//     N-term accumulation their sum has standard deviation <= (u + dL) sqrt(sum_j (Gc_j X_j)^2)
//     <= (u + dL) ||Gc_row||_2 max|X|: the bound takes 6 of those; CLIP's lse errors (<= dL) are
//     shared by a row's terms, whose P_row sum to 1: 2 dL max|X| more;
//   - the output is rounded to 16 bits: 2 u |y|.
//   (CLIP's GPU rounds P_row + P_col and applies the -2 I term exactly at the end, so the norms
//   are taken of what is rounded; f16's subnormals below 2^-14 add up to 2^-25 absolute per term.)
//   Scalars (f32 outputs): 6 dL sqrt(sum (|Gc| (1 + |L|))^2) |coef| for the logits' error, plus
//   (dL + 300 eps32) |coef| sum |Gc L| for the lse errors shared by rows and the f32 summation
//   (a lane adds up to 256 terms in sequence before the trees: Higham's gamma_m bound). The loss
//   (16-bit out): 2 u |loss| + 4 dL + 300 eps32 times the sum of its terms' sizes.
//   ||Gc_row||_2, the sums and lse come from the CPU's f32 logits.
// CUDA allocations are poisoned (NaN) in this binary: an unwritten element fails. Without a GPU
// every case prints why it skipped. MINIVL_PARITY_V3_MAX_N=100 (say) keeps the sizes small enough
// for compute-sanitizer.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/kernel_versions.h"
#include "core/ops.h"
#include "kernels/scalar_types.h"
#include "tests/cuda_test_util.h"
#include "tests/random_rows.h"

#if MINIVL_CUDA
#include "kernels/cuda/fused.h"
#endif

using namespace minivl;

namespace {

const bool g_poison_set = minivl::testing::poison_cuda_allocations();

struct Inputs {
  int64_t n = 0, d = 0;
  std::vector<double> a, b;  // (n, d), bf16 values
  double log_scale = std::log(20.0), bias = -2.0, weight = 0.75;  // loss weight: grad_loss != 1
};

Inputs make_inputs(int64_t n, int64_t d, uint64_t seed) {
  Inputs in{n, d, std::vector<double>(size_t(n * d)), std::vector<double>(size_t(n * d))};
  minivl::testing::fill_random_norm_rows({&in.a, &in.b}, n, d, 0.5, 1.5, seed);
  for (std::vector<double>* m : {&in.a, &in.b})
    for (double& v : *m) v = to_float(to_bf16(float(v)));  // bf16 values
  return in;
}

struct Result {
  double loss = 0, dscale = 0, dbias = 0;
  std::vector<double> da, db;
};

Result run(const Inputs& in, bool siglip, DType dt, Device device) {
  Tensor a = from_vector(in.a, {in.n, in.d}, DType::f32).to(dt).to(device).requires_grad_();
  Tensor b = from_vector(in.b, {in.n, in.d}, DType::f32).to(dt).to(device).requires_grad_();
  Tensor s = scalar_tensor(in.log_scale, DType::f32, device).requires_grad_();
  Tensor bias = scalar_tensor(in.bias, DType::f32, device).requires_grad_();
#if MINIVL_CUDA
  if (device.is_cuda()) {  // the op runs v3's passes, not a fallback
    const int chosen = kernel_versions().family("contrastive").choose({dt, in.d});
    REQUIRE(chosen == 3);
    REQUIRE(cuda::contrastive_version_run(chosen, a.view(), b.view()) == 3);
  }
#endif
  Tensor loss = siglip ? siglip_loss(a, b, s, bias) : clip_loss(a, b, s);
  mul(loss, in.weight).backward();
  return Result{loss.item(), s.grad().item(), siglip ? bias.grad().item() : 0.0, a.grad().to_vector(),
                b.grad().to_vector()};
}

// What the tolerances need, from the CPU's f32 logits.
struct Bounds {
  double dl = 0;                         // logits' f32 error bound
  std::vector<double> row_norm, col_norm;  // ||Gc_i,:||_2, ||Gc_:,j||_2
  std::vector<double> max_a, max_b;        // max over rows of |a_:k|, |b_:k|
  double scale_walk = 0, scale_sum = 0, bias_walk = 0, bias_sum = 0;
  double loss_terms = 0;  // sum of the sizes of the loss's terms, over its normaliser
};

Bounds bounds(const Inputs& in, bool siglip) {
  const int64_t n = in.n, d = in.d;
  const double s = std::exp(in.log_scale);
  Tensor a = from_vector(in.a, {n, d}), b = from_vector(in.b, {n, d});
  const std::vector<double> l = mul(matmul(a, b.t()), s).to_vector();  // (n, n) f32 logits
  Bounds bd;
  double amax = 0, bmax = 0;
  bd.max_a.assign(size_t(d), 0.0), bd.max_b.assign(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double na = 0, nb = 0;
    for (int64_t k = 0; k < d; ++k) {
      const double x = in.a[size_t(i * d + k)], y = in.b[size_t(i * d + k)];
      na += x * x, nb += y * y;
      bd.max_a[size_t(k)] = std::max(bd.max_a[size_t(k)], std::abs(x));
      bd.max_b[size_t(k)] = std::max(bd.max_b[size_t(k)], std::abs(y));
    }
    amax = std::max(amax, std::sqrt(na)), bmax = std::max(bmax, std::sqrt(nb));
  }
  bd.dl = 4 * 6e-8 * std::sqrt(double(d)) * s * amax * bmax;
  std::vector<double> lse_row(size_t(n), 0.0), lse_col(size_t(n), 0.0);
  for (int64_t i = 0; i < n && !siglip; ++i) {
    double mr = -INFINITY, mc = -INFINITY, sr = 0, sc = 0;
    for (int64_t j = 0; j < n; ++j) mr = std::max(mr, l[size_t(i * n + j)]), mc = std::max(mc, l[size_t(j * n + i)]);
    for (int64_t j = 0; j < n; ++j) sr += std::exp(l[size_t(i * n + j)] - mr), sc += std::exp(l[size_t(j * n + i)] - mc);
    lse_row[size_t(i)] = mr + std::log(sr), lse_col[size_t(i)] = mc + std::log(sc);
  }
  bd.row_norm.assign(size_t(n), 0.0), bd.col_norm.assign(size_t(n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double x = l[size_t(i * n + j)], z = i == j ? 1.0 : -1.0;
      const double u = x + in.bias;
      const double rounded = siglip ? -z / (1.0 + std::exp(z * u))  // what the GPU rounds to 16 bits
                                    : std::exp(x - lse_row[size_t(i)]) + std::exp(x - lse_col[size_t(j)]);
      const double g = rounded - (!siglip && i == j ? 2.0 : 0.0);
      bd.row_norm[size_t(i)] += rounded * rounded, bd.col_norm[size_t(j)] += rounded * rounded;
      if (siglip) bd.loss_terms += (std::max(-z * u, 0.0) + std::log1p(std::exp(-std::abs(u)))) / double(n);
      bd.scale_walk += std::pow(std::abs(g) * (1 + std::abs(x)), 2), bd.scale_sum += std::abs(g * x);
      bd.bias_walk += g * g, bd.bias_sum += std::abs(g);
    }
  for (int64_t i = 0; i < n && !siglip; ++i)
    bd.loss_terms += (std::abs(lse_row[size_t(i)]) + std::abs(lse_col[size_t(i)]) + 2 * std::abs(l[size_t(i * n + i)])) /
                     double(2 * n);
  for (double& v : bd.row_norm) v = std::sqrt(v);
  for (double& v : bd.col_norm) v = std::sqrt(v);
  bd.scale_walk = std::sqrt(bd.scale_walk), bd.bias_walk = std::sqrt(bd.bias_walk);
  return bd;
}

// "" or the first element past its tolerance (with the largest error / tolerance ratio seen).
std::string compare_grad(const std::vector<double>& got, const std::vector<double>& want, int64_t d,
                         const std::vector<double>& row_norm, const std::vector<double>& max_other, double s_coef,
                         double u, double dl, double subnormal_walk, double correlated,
                         double* worst_ratio = nullptr) {
  double worst = 0;
  std::string first;
  for (size_t e = 0; e < got.size(); ++e) {
    const int64_t row = int64_t(e) / d, k = int64_t(e) % d;
    const double tol = 2 * u * std::abs(want[e]) +
                       s_coef * max_other[size_t(k)] *
                           (6 * ((u + dl) * row_norm[size_t(row)] + subnormal_walk) + correlated * dl);
    const double err = std::abs(got[e] - want[e]);
    worst = std::max(worst, std::isnan(err) ? INFINITY : err / tol);
    if (!(err <= tol) && first.empty()) {
      std::ostringstream os;
      os << "element (" << row << ", " << k << "): cuda " << got[e] << ", cpu " << want[e] << ", tolerance " << tol
         << (std::isnan(got[e]) ? " (NaN: unwritten?)" : "");
      first = os.str();
    }
  }
  if (worst_ratio) *worst_ratio = worst;
  if (!first.empty()) first += "; worst error / tolerance " + std::to_string(worst);
  return first;
}

double round16(double x, DType dt) { return dt == DType::bf16 ? to_float(to_bf16(float(x))) : to_float(to_f16(float(x))); }

// dimage as the GPU forms it: Gc (without CLIP's -2 I) rounded to 16 bits, f32 GEMM, the -2 I
// term, the output rounded; `drop` zeroes one 128 x 128 tile of Gc (rows 128.., columns 256..).
std::vector<double> emulated_dimage(const Inputs& in, bool siglip, DType dt, bool drop) {
  const int64_t n = in.n, d = in.d;
  const double s = std::exp(in.log_scale), coef = in.weight / double(siglip ? n : 2 * n);
  Tensor a = from_vector(in.a, {n, d}), b = from_vector(in.b, {n, d});
  const std::vector<double> l = mul(matmul(a, b.t()), s).to_vector();
  std::vector<double> lse_row(size_t(n), 0.0), lse_col(size_t(n), 0.0), g(size_t(n * n));
  for (int64_t i = 0; i < n && !siglip; ++i)
    for (int64_t j = 0; j < n; ++j) lse_row[size_t(i)] += std::exp(l[size_t(i * n + j)]), lse_col[size_t(j)] += std::exp(l[size_t(i * n + j)]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double x = l[size_t(i * n + j)], z = i == j ? 1.0 : -1.0;
      const double v = siglip ? -z / (1.0 + std::exp(z * (x + in.bias)))
                              : std::exp(x) / lse_row[size_t(i)] + std::exp(x) / lse_col[size_t(j)];
      const bool dropped = drop && i >= 128 && i < 256 && j >= 256 && j < 384;
      g[size_t(i * n + j)] = dropped ? 0.0 : round16(v, dt);
    }
  const std::vector<double> acc = matmul(from_vector(g, {n, n}), b).to_vector();
  std::vector<double> out(size_t(n * d));
  for (int64_t e = 0; e < n * d; ++e)
    out[size_t(e)] = round16(s * coef * (acc[size_t(e)] - (siglip ? 0.0 : 2.0 * in.b[size_t(e)])), dt);
  return out;
}

}  // namespace

TEST_SUITE("parity_contrastive_v3") {

// Runs on the CPU: the tolerance model is neither tighter than the GPU's rounding nor loose
// enough to pass a missing tile.
TEST_CASE("parity_contrastive_v3: the tolerances admit 16-bit G and outputs, and reject a missing tile") {
  const int64_t n = 1000, d = 256;
  for (bool siglip : {false, true}) {
    const Inputs in = make_inputs(n, d, 99 + (siglip ? 1 : 0));
    const Result want = run(in, siglip, DType::f32, Device::cpu());
    const Bounds bd = bounds(in, siglip);
    const double s_coef = std::exp(in.log_scale) * in.weight / double(siglip ? n : 2 * n);
    for (DType dt : {DType::bf16, DType::f16}) {
      const std::string dtype = dtype_name(dt);
      CAPTURE(siglip);
      CAPTURE(dtype);
      const double u = dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
      const double sub = dt == DType::f16 ? std::ldexp(1.0, -25) * std::sqrt(double(n)) : 0.0;
      const double corr = siglip ? 0.0 : 2.0;
      double worst = 0;
      const std::string ok = compare_grad(emulated_dimage(in, siglip, dt, false), want.da, d, bd.row_norm, bd.max_b,
                                          s_coef, u, bd.dl, sub, corr, &worst);
      CHECK_MESSAGE(ok.empty(), ok);
      MESSAGE("16-bit G and output: worst error / tolerance " << worst);
      CHECK_FALSE(compare_grad(emulated_dimage(in, siglip, dt, true), want.da, d, bd.row_norm, bd.max_b, s_coef, u,
                               bd.dl, sub, corr)
                      .empty());
    }
  }
}

TEST_CASE("parity_contrastive_v3: clip_loss and siglip_loss v3 match the CPU, forward and all gradients") {
  if (minivl::testing::skip_without_cuda("parity_contrastive_v3", "v3")) return;
#if MINIVL_CUDA
  ScopedVersionOverride v3(kernel_versions().family("contrastive"), 3);
  const char* max_env = std::getenv("MINIVL_PARITY_V3_MAX_N");
  const int64_t max_n = max_env ? std::atoll(max_env) : INT64_MAX;
  int cases = 0;
  for (int64_t n : {1, 100, 1000, 4097})
    for (int64_t d : {256, 512, 768, 1024})
      for (bool siglip : {false, true}) {
        if (n > max_n) continue;
        const Inputs in = make_inputs(n, d, 0xc0ffee + uint64_t(n * 4099 + d) + (siglip ? 7 : 0));
        const Result want = run(in, siglip, DType::f32, Device::cpu());
        const Bounds bd = bounds(in, siglip);
        const double coef = in.weight / double(siglip ? n : 2 * n), s_coef = std::exp(in.log_scale) * coef;
        for (DType dt : {DType::bf16, DType::f16}) {
          const std::string where = std::string(siglip ? "siglip_loss" : "clip_loss") + " " + dtype_name(dt) +
                                    " N " + std::to_string(n) + " d " + std::to_string(d);
          CAPTURE(where);
          const double u = dt == DType::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
          const double sub = dt == DType::f16 ? std::ldexp(1.0, -25) * std::sqrt(double(n)) : 0.0;
          const double eps = 6e-8;  // f32 unit roundoff
          Result got;
          try {
            got = run(in, siglip, dt, Device::cuda(0));
          } catch (const std::exception& e) {
            FAIL_CHECK(where << ": threw " << e.what());
            continue;
          }
          CHECK(std::abs(got.loss - want.loss) <= 2 * u * std::abs(want.loss) + 4 * bd.dl + 300 * eps * bd.loss_terms);
          std::string m = compare_grad(got.da, want.da, d, bd.row_norm, bd.max_b, s_coef, u, bd.dl, sub, siglip ? 0.0 : 2.0);
          CHECK_MESSAGE(m.empty(), where << ": dimage " << m);
          m = compare_grad(got.db, want.db, d, bd.col_norm, bd.max_a, s_coef, u, bd.dl, sub, siglip ? 0.0 : 2.0);
          CHECK_MESSAGE(m.empty(), where << ": dtext " << m);
          CHECK(std::abs(got.dscale - want.dscale) <= std::abs(coef) * (6 * bd.dl * bd.scale_walk + (bd.dl + 300 * eps) * bd.scale_sum));
          if (siglip)
            CHECK(std::abs(got.dbias - want.dbias) <= std::abs(coef) * (6 * bd.dl * bd.bias_walk + 300 * eps * bd.bias_sum));
          ++cases;
        }
      }
  MESSAGE("parity_contrastive_v3: " << cases << " cases compared");
  std::printf("parity_contrastive_v3: %d cases compared\n", cases);
#endif
}

}  // TEST_SUITE
