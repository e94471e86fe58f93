// The parity comparison itself, on the CPU (no GPU needed): the weaknesses of the tensor-wide
// tolerance it replaced are caught (a zeroed tail of bf16 exp, zeroed small softmax
// probabilities, a non-zero element where the result must be zero), correctly rounded results
// and one-ulp differences still pass, the allowance models cover the CPU's own error in f32 and
// the 16-bit rounding attention's tensor-core kernels do, and the conversion inputs catch a
// truncating conversion.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "tests/parity_cuda_table.h"

using namespace minivl;
using namespace minivl::parity_cuda;
using parity::Bound;
using parity::compare;
using parity::compare_bitwise;
using parity::ulp;

namespace {

// The rule the parity test used before: |got - want| <= rtol |want| + atol max|want|.
bool old_rule_accepts(const Tensor& got, const Tensor& want) {
  const DType dt = want.dtype();
  const double tol = dt == DType::bf16 ? 2e-2 : dt == DType::f16 ? 5e-3 : 1e-5;
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::abs(v));
  for (size_t i = 0; i < w.size(); ++i) {
    if (std::abs(g[i] - w[i]) > tol * std::abs(w[i]) + tol * scale) return false;
  }
  return true;
}

Case find_case(const std::string& op, DType dt, const std::string& label, Rng& rng) {
  for (Case& c : row(op).cases(rng, dt)) {
    if (c.label == label) return c;
  }
  FAIL("no case '" << label << "' in row " << op);
  return {};
}

struct Ran {
  Case c;
  std::vector<Tensor> weights;
  CaseRun want;
};
Ran run_on_cpu(const std::string& op, DType dt, const std::string& label, uint64_t seed = 7) {
  Rng rng(seed);
  Ran r{find_case(op, dt, label, rng), {}, {}};
  r.weights = loss_weights(rng, r.c);
  r.want = run_case(r.c, Device::cpu(), r.weights);
  return r;
}

// The verdict on `what` ("output 0", "gradient of input 1").
parity::CompareResult verdict(const Ran& r, const CaseRun& got, const std::string& what) {
  for (const Verdict& v : check_case(r.c, got, r.want, r.weights)) {
    if (v.what == what) return v.result;
  }
  FAIL("no verdict for " << what);
  return {};
}

// The next value of `dt` above |x| (away from zero) or below it (toward zero), with x's sign.
double neighbour(double x, DType dt, bool away) {
  const double a = std::abs(x), u = ulp(a, dt);
  const bool binade_bottom = a >= parity::smallest_normal(dt) && a == std::ldexp(1.0, std::ilogb(a));
  const double next = away ? a + u : a - (binade_bottom ? u / 2 : u);
  return std::copysign(next, x);
}

Tensor with_values(const Tensor& like, const std::vector<double>& v) { return from_vector(v, like.shape(), like.dtype()); }

// Sets every value of `v` under `floor` to 0 (what a kernel that flushes its small results does)
// and returns how many it set.
int zero_below(std::vector<double>& v, double floor) {
  int zeroed = 0;
  for (double& x : v)
    if (x < floor) {
      x = 0;
      ++zeroed;
    }
  return zeroed;
}

}  // namespace

TEST_SUITE("parity_compare") {

TEST_CASE("parity_compare: ulp is the spacing of each format's values") {
  CHECK(ulp(1.0, DType::bf16) == std::ldexp(1.0, -7));
  CHECK(ulp(1.99, DType::bf16) == std::ldexp(1.0, -7));
  CHECK(ulp(0.75, DType::f16) == std::ldexp(1.0, -11));
  CHECK(ulp(65504.0, DType::f16) == 32.0);
  CHECK(ulp(-1.0, DType::f32) == std::ldexp(1.0, -23));
  CHECK(ulp(1.0, DType::f64) == std::ldexp(1.0, -52));
  CHECK(ulp(0.0, DType::f16) == std::ldexp(1.0, -24));   // the subnormal spacing
  CHECK(ulp(1e-45, DType::f32) == std::ldexp(1.0, -149));
  CHECK(ulp(1e-39, DType::bf16) == std::ldexp(1.0, -133));
  CHECK(parity::unit_roundoff(DType::bf16) == std::ldexp(1.0, -8));
}

TEST_CASE("parity_compare: the comparison counts ulps, requires exact zeros, NaN and infinities") {
  const Tensor want = from_vector({1.0, -0.5, 0.0, 3.0, std::numeric_limits<double>::infinity()}, {5}, DType::bf16);
  const double u1 = ulp(1.0, DType::bf16);
  CHECK(compare(want, want, Bound::within(0, "t")).ok);
  const Tensor one_ulp = with_values(want, {1.0 + u1, -0.5, 0.0, 3.0, std::numeric_limits<double>::infinity()});
  CHECK_FALSE(compare(one_ulp, want, Bound::within(0, "t")).ok);
  const parity::CompareResult r1 = compare(one_ulp, want, Bound::within(1, "t"));
  CHECK(r1.ok);
  CHECK(r1.worst == doctest::Approx(1.0).epsilon(1e-6));
  const parity::CompareResult two = compare(with_values(want, {1.0 + 2 * u1, -0.5, 0.0, 3.0, INFINITY}), want, Bound::within(1, "fam"));
  CHECK_FALSE(two.ok);
  CHECK(two.message.find("2 ulps of bf16") != std::string::npos);
  CHECK(two.message.find("[fam]") != std::string::npos);
  // A zero of the reference must stay zero, even with a generous bound; unless zeros may be accidental.
  const Tensor tiny = with_values(want, {1.0, -0.5, 1e-30, 3.0, INFINITY});
  CHECK_FALSE(compare(tiny, want, Bound::within(100, "t").plus_max_rel(0.1)).ok);
  CHECK(compare(tiny, want, Bound::within(100, "t").plus_max_rel(0.1).accidental_zeros()).ok);
  CHECK(compare(with_values(want, {1.0, -0.5, -0.0, 3.0, INFINITY}), want, Bound::within(0, "t")).ok);  // -0 == 0
  CHECK_FALSE(compare_bitwise(with_values(want, {1.0, -0.5, -0.0, 3.0, INFINITY}), want).ok);           // not bitwise
  const parity::CompareResult nan = compare(with_values(want, {NAN, -0.5, 0.0, 3.0, INFINITY}), want, Bound::within(1e9, "t"));
  CHECK_FALSE(nan.ok);
  CHECK(nan.message.find("poisoned") != std::string::npos);
  CHECK_FALSE(compare(with_values(want, {1.0, -0.5, 0.0, 3.0, -INFINITY}), want, Bound::within(1e9, "t")).ok);
  // An allowance tensor adds per element.
  const Tensor allow = from_vector({2 * u1, 0, 0, 0, 0}, {5}, DType::f64);
  CHECK(compare(with_values(want, {1.0 + 2 * u1, -0.5, 0.0, 3.0, INFINITY}), want, Bound::within(0, "t"), allow).ok);
  // Integer results are compared bit for bit whatever the bound.
  const Tensor ids = from_vector_i64({3, 1 << 30, -7}, {3});
  CHECK_FALSE(compare(from_vector_i64({3, (1 << 30) + 1, -7}, {3}), ids, Bound::within(1e9, "t")).ok);
}

TEST_CASE("parity_compare: a bf16 exp that zeroes its tail fails (the old tolerance passed it)") {
  Ran r = run_on_cpu("exp", DType::bf16, "(33, 65)");
  // Every value the old rule's floor, 2% of the largest (exp(2) = 7.39), covers: exp(x) for x < -1.93.
  std::vector<double> y = r.want.outputs[0].to_vector();
  const double floor = 0.0196 * *std::max_element(y.begin(), y.end());
  const int zeroed = zero_below(y, floor);
  REQUIRE(zeroed > 10);
  CaseRun got = r.want;
  got.outputs[0] = with_values(r.want.outputs[0], y);
  CHECK(old_rule_accepts(got.outputs[0], r.want.outputs[0]));
  const parity::CompareResult v = verdict(r, got, "output 0");
  CHECK_FALSE(v.ok);
  CHECK(v.mismatches == zeroed);
  // The CPU's f32 exp of the same inputs, rounded to bf16, passes.
  got.outputs[0] = exp(r.c.inputs[0].to(DType::f32)).to(DType::bf16);
  CHECK(verdict(r, got, "output 0").ok);
}

TEST_CASE("parity_compare: a bf16 softmax over 1500 that zeroes its small probabilities fails (the old one passed)") {
  Ran r = run_on_cpu("softmax", DType::bf16, "long rows");
  // Every probability under the old rule's floor (2% of the row's largest, ~5e-5 here).
  std::vector<double> p = r.want.outputs[0].to_vector();
  const double floor = 0.0196 * *std::max_element(p.begin(), p.end());
  const int zeroed = zero_below(p, floor);
  REQUIRE(zeroed >= 3);
  CaseRun got = r.want;
  got.outputs[0] = with_values(r.want.outputs[0], p);
  CHECK(old_rule_accepts(got.outputs[0], r.want.outputs[0]));
  CHECK_FALSE(verdict(r, got, "output 0").ok);
  // Exact (f64) softmax and gradient of the same inputs, rounded to bf16, pass.
  std::vector<Tensor> in64 = {r.c.inputs[0].to(DType::f64)};
  const CaseRun exact = run_case_with(r.c, in64, Device::cpu(), r.weights);
  got.outputs[0] = exact.outputs[0].to(DType::bf16);
  got.grads[0] = exact.grads[0].to(DType::bf16);
  CHECK(verdict(r, got, "output 0").ok);
  CHECK(verdict(r, got, "gradient of input 0").ok);
}

TEST_CASE("parity_compare: a non-zero element where the result must be zero fails (the old tolerance passed it)") {
  SUBCASE("an ignored cross-entropy row, forward and gradient") {
    Ran r = run_on_cpu("cross_entropy", DType::bf16, "ignore_index 3, none");
    std::vector<double> loss = r.want.outputs[0].to_vector();
    REQUIRE(loss[1] == 0.0);
    double mx = 0;
    for (double v : loss) mx = std::max(mx, std::abs(v));
    loss[1] = 1e-3 * mx;
    CaseRun got = r.want;
    got.outputs[0] = with_values(r.want.outputs[0], loss);
    CHECK(old_rule_accepts(got.outputs[0], r.want.outputs[0]));
    CHECK_FALSE(verdict(r, got, "output 0").ok);
    std::vector<double> g = r.want.grads[0].to_vector();
    const int64_t C = r.c.inputs[0].size(1);
    REQUIRE(g[size_t(C)] == 0.0);  // row 1, class 0
    g[size_t(C)] = 1e-4;
    got = r.want;
    got.grads[0] = with_values(r.want.grads[0], g);
    CHECK(old_rule_accepts(got.grads[0], r.want.grads[0]));
    CHECK_FALSE(verdict(r, got, "gradient of input 0").ok);
  }
  SUBCASE("dK and dV of a padded key") {
    Ran r = run_on_cpu("attention", DType::bf16, "B 2, H 2, Tq 9, Tk 13, D 16, padding (bool)");
    const std::vector<double> mask = r.c.inputs[3].to_vector();  // (B, Tk), batch 0 first
    int64_t key = -1;
    for (int64_t j = 0; j < 13 && key < 0; ++j) key = mask[size_t(j)] != 0 ? j : -1;
    REQUIRE(key >= 0);
    for (int input = 1; input <= 2; ++input) {
      std::vector<double> g = r.want.grads[size_t(input)].to_vector();  // (B, H, Tk, D): batch 0, head 0, row `key`
      double mx = 0;
      for (double v : g) mx = std::max(mx, std::abs(v));
      REQUIRE(g[size_t(key * 16)] == 0.0);
      g[size_t(key * 16)] = 1e-3 * mx;
      CaseRun got = r.want;
      got.grads[size_t(input)] = with_values(r.want.grads[size_t(input)], g);
      CHECK(old_rule_accepts(got.grads[size_t(input)], r.want.grads[size_t(input)]));
      CHECK_FALSE(verdict(r, got, "gradient of input " + std::to_string(input)).ok);
    }
  }
}

TEST_CASE("parity_compare: f64 evaluations rounded to bf16 and f16 pass against the 16-bit CPU results") {
  // Rows whose 16-bit path rounds only its result (and saved outputs the models account for).
  // Not cross_entropy's gradient: it reads the lse saved in the logits' dtype, so it is off the
  // exact one by up to half an ulp of lse relative (both devices share that; the forward is here).
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"exp", "(33, 65)"}, {"gelu", "(33, 65)"}, {"softmax", "rows"}, {"log_softmax", "long rows"},
      {"cross_entropy", "smoothing, none"}, {"cross_entropy", "long rows, sum"}, {"layernorm", "(3, 5, 768)"},
      {"layernorm", "weight, no bias"}, {"matmul", "(64, 96) @ (96, 80)"}, {"matmul", "batched"}, {"sum", "long rows"},
      {"clip_loss", "N 77, d 40"}, {"siglip_loss", "N 130, d 136"},
      {"attention", "B 1, H 2, Tq 37, Tk 37, D 64"}, {"attention", "B 2, H 2, Tq 9, Tk 13, D 64, causal, padding (bool)"}};
  for (DType dt : {DType::bf16, DType::f16}) {
    for (const auto& [op, label] : cases) {
      CAPTURE(op);
      CAPTURE(label);
      const std::string dt_name = dtype_name(dt);
      CAPTURE(dt_name);
      Ran r = run_on_cpu(op, dt, label);
      for (Tensor& w : r.weights) w = w.to(dt).to(DType::f32);  // the same gradient seeds in both runs
      r.want = run_case(r.c, Device::cpu(), r.weights);
      std::vector<Tensor> in64;
      for (const Tensor& x : r.c.inputs) in64.push_back(x.is_floating_point() ? x.to(DType::f64) : x);
      const CaseRun exact = run_case_with(r.c, in64, Device::cpu(), r.weights);
      CaseRun got = r.want;
      for (size_t i = 0; i < got.outputs.size(); ++i) {
        if (got.outputs[i].is_floating_point()) got.outputs[i] = exact.outputs[i].to(dt);
      }
      for (size_t i = 0; i < got.grads.size(); ++i) {
        if (got.grads[i].defined() && op != "cross_entropy") got.grads[i] = exact.grads[i].to(dt);
      }
      for (const Verdict& v : check_case(r.c, got, r.want, r.weights)) CHECK_MESSAGE(v.result.ok, v.what << ": " << v.result.message);
    }
  }
}

TEST_CASE("parity_compare: every 16-bit row passes one-ulp differences where its bound allows an ulp, and fails them where it is exact") {
  std::mt19937_64 gen(5);
  int cases = 0;
  for (const Row& row : table()) {
    for (DType dt : {DType::bf16, DType::f16}) {
      Rng rng(11);
      for (const Case& c : row.cases(rng, dt)) {
        int64_t numel = 0;
        for (const Tensor& x : c.inputs) numel += x.numel();
        if (numel > 30000 && row.op == "attention") continue;  // the long rows: the same model, slow on 2 cores
        CAPTURE(row.op);
        CAPTURE(c.label);
        const std::string dt_name = dtype_name(dt);
      CAPTURE(dt_name);
        const std::vector<Tensor> weights = loss_weights(rng, c);
        const CaseRun want = run_case(c, Device::cpu(), weights);
        CaseRun got = want;
        auto nudge = [&](Tensor& t, const Bound& b) {
          if (!t.defined() || !t.is_floating_point()) return false;
          std::vector<double> v = t.to_vector();
          bool moved = false;
          for (double& x : v) {
            // Not the subnormals: the bound's floor allows two of their steps everywhere.
            if (std::abs(x) < parity::smallest_normal(t.dtype()) || !std::isfinite(x) || std::abs(x) > 30000 ||
                gen() % 3 != 0) {
              continue;
            }
            x = neighbour(x, t.dtype(), gen() % 2 == 0);
            moved = true;
          }
          t = from_vector(v, t.shape(), t.dtype());
          return moved && (b.bitwise || b.ulps < 1);
        };
        std::vector<bool> must_fail_out, must_fail_grad;
        for (size_t i = 0; i < got.outputs.size(); ++i) must_fail_out.push_back(nudge(got.outputs[i], c.output_bound(i)));
        for (size_t i = 0; i < got.grads.size(); ++i) must_fail_grad.push_back(nudge(got.grads[i], c.grad_bound(i)));
        size_t o = 0, g = 0;
        for (const Verdict& v : check_case(c, got, want, weights)) {
          const bool is_out = v.what.rfind("output", 0) == 0;
          const bool must_fail = is_out ? must_fail_out[o++] : must_fail_grad[std::stoul(v.what.substr(18))];
          if (!is_out) ++g;
          if (must_fail) CHECK_MESSAGE(!v.result.ok, v.what << " passed a one-ulp change under an exact bound");
          else CHECK_MESSAGE(v.result.ok, v.what << ": " << v.result.message);
        }
        ++cases;
      }
    }
  }
  MESSAGE(cases << " cases");
  CHECK(cases > 300);
}

namespace {

// A tensor-core attention forward as the GPU computes it (kernels/cuda/attention_v3.cu), in f64
// but for the rounding it adds: P = exp(S - max) rounded to the input dtype before P V, the
// normaliser l summed from the unrounded P. `dropped_keys` zeroes the last keys (a wrong kernel).
Tensor tensor_core_attention(const Case& c, const AttentionShape& s, int64_t dropped_keys) {
  Tensor q = c.inputs[0].to(DType::f64), k = c.inputs[1].to(DType::f64), v = c.inputs[2].to(DType::f64);
  std::vector<double> S = mul(matmul(q, k.transpose(-2, -1)), 1.0 / std::sqrt(double(s.D))).to_vector();
  const std::vector<double> mask = s.padded ? c.inputs[3].to_vector() : std::vector<double>(size_t(s.B * s.Tk), 0.0);
  const DType dt = c.inputs[0].dtype();
  std::vector<double> P(S.size()), inv_l(size_t(s.B * s.H * s.Tq));
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t h = 0; h < s.H; ++h) {
      for (int64_t i = 0; i < s.Tq; ++i) {
        const size_t row = size_t(((b * s.H + h) * s.Tq + i) * s.Tk);
        auto seen = [&](int64_t j) {
          return (!s.causal || j <= i + (s.Tk - s.Tq)) && mask[size_t(b * s.Tk + j)] == 0 && j < s.Tk - dropped_keys;
        };
        double m = -INFINITY, l = 0;
        for (int64_t j = 0; j < s.Tk; ++j) if (seen(j)) m = std::max(m, S[row + size_t(j)]);
        for (int64_t j = 0; j < s.Tk; ++j) {
          const double e = seen(j) ? std::exp(S[row + size_t(j)] - m) : 0.0;
          l += e;
          P[row + size_t(j)] = from_vector({e}, {}, dt).item();  // rounded, as the A fragments hold it
        }
        inv_l[size_t((b * s.H + h) * s.Tq + i)] = l > 0 ? 1 / l : 0;
      }
    }
  }
  Tensor O = matmul(from_vector(P, {s.B, s.H, s.Tq, s.Tk}, DType::f64), v);
  return mul(O, from_vector(inv_l, {s.B, s.H, s.Tq, 1}, DType::f64)).to(dt);
}

}  // namespace

TEST_CASE("parity_compare: the attention bound admits the tensor-core kernels' 16-bit P, and not dropped keys") {
  const std::vector<AttentionShape> shapes = {{1, 2, 77, 77, 64, true},
                                              {1, 2, 197, 197, 128, false, true, DType::u8},
                                              {2, 2, 9, 13, 64, true, true}};
  for (DType dt : {DType::bf16, DType::f16}) {
    for (const AttentionShape& s : shapes) {
      Rng rng(3);
      const Case c = attention_case(rng, dt, s);
      CAPTURE(c.label);
      const std::string dt_name = dtype_name(dt);
      CAPTURE(dt_name);
      const std::vector<Tensor> weights = loss_weights(rng, c);
      const CaseRun want = run_case(c, Device::cpu(), weights);
      CaseRun got = want;
      got.outputs[0] = tensor_core_attention(c, s, 0);
      const Verdict v = check_case(c, got, want, weights)[0];
      CHECK_MESSAGE(v.result.ok, v.result.message);
      got.outputs[0] = tensor_core_attention(c, s, 4);
      CHECK_FALSE(check_case(c, got, want, weights)[0].result.ok);
    }
  }
}

TEST_CASE("parity_compare: every f32 case's CPU result is within its bound of the f64 evaluation") {
  // The bounds model two implementations' errors; the CPU's own error against exact arithmetic
  // must fit inside. One ulp more: the f64 reference rounds once where f32 kernels round a few
  // times in sequence (a product then a scaling), which the devices share and parity does not
  // see. Bitwise and 0-ulp bounds are left out: the same correctly rounded IEEE operations in the
  // same order give the same bits on both devices, but up to 3 ulps off a single f64 rounding.
  int checked = 0;
  for (const Row& row : table()) {
    Rng rng(13);
    for (Case c : row.cases(rng, DType::f32)) {
      CAPTURE(row.op);
      CAPTURE(c.label);
      const std::vector<Tensor> weights = loss_weights(rng, c);
      const CaseRun want = run_case(c, Device::cpu(), weights);
      std::vector<Tensor> in64;
      for (const Tensor& x : c.inputs) in64.push_back(x.is_floating_point() ? x.to(DType::f64) : x);
      const CaseRun exact = run_case_with(c, in64, Device::cpu(), weights);
      CaseRun got = want;
      for (size_t i = 0; i < got.outputs.size(); ++i) {
        if (got.outputs[i].is_floating_point()) got.outputs[i] = exact.outputs[i].to(DType::f32);
      }
      for (size_t i = 0; i < got.grads.size(); ++i) {
        if (got.grads[i].defined()) got.grads[i] = exact.grads[i].to(DType::f32);
      }
      const Case original = c;
      for (Bound& b : c.output_bounds) b.ulps += 1;
      for (Bound& b : c.grad_bounds) b.ulps += 1;
      for (const Verdict& v : check_case(c, got, want, weights)) {
        const bool is_out = v.what.rfind("output", 0) == 0;
        const size_t i = is_out ? std::stoul(v.what.substr(7)) : std::stoul(v.what.substr(18));
        const Bound& b = is_out ? original.output_bound(i) : original.grad_bound(i);
        if (b.bitwise || b.ulps == 0) continue;
        CHECK_MESSAGE(v.result.ok, v.what << ": " << v.result.message);
        ++checked;
      }
    }
  }
  CHECK(checked > 200);
}

namespace {

// A conversion that truncates toward zero and saturates instead of rounding to nearest even.
Tensor truncating_conversion(const Tensor& src, DType to) {
  std::vector<double> v = src.to_vector();
  const double max = to == DType::f16 ? 65504.0 : to == DType::bf16 ? 3.3895313892515355e38 : 3.4028234663852886e38;
  for (double& x : v) {
    if (!std::isfinite(x)) continue;
    const double u = ulp(x, to);
    x = std::copysign(std::min(std::floor(std::abs(x) / u) * u, max), x);
  }
  return from_vector(v, src.shape(), to);
}

// A conversion that flushes the target's subnormals to zero.
Tensor flushing_conversion(const Tensor& src, DType to) {
  std::vector<double> v = src.to(to).to_vector();
  for (double& x : v) {
    if (std::abs(x) < parity::smallest_normal(to)) x = std::copysign(0.0, x);
  }
  return from_vector(v, src.shape(), to);
}

}  // namespace

TEST_CASE("parity_compare: the conversion inputs tell round-to-nearest-even from truncation, flushing and rounding to int") {
  const std::vector<std::pair<DType, DType>> narrowing = {{DType::f32, DType::bf16}, {DType::f32, DType::f16},
                                                          {DType::f64, DType::f32},  {DType::f64, DType::bf16},
                                                          {DType::f64, DType::f16},  {DType::f16, DType::bf16},
                                                          {DType::bf16, DType::f16}};
  for (auto [from, to] : narrowing) {
    const std::string from_name = dtype_name(from);
      CAPTURE(from_name);
    const std::string to_name = dtype_name(to);
      CAPTURE(to_name);
    const Tensor src = conversion_input(from, to);
    const Tensor rne = src.to(to);
    CHECK_FALSE(compare_bitwise(truncating_conversion(src, to), rne).ok);
    if (parity::smallest_normal(to) > parity::smallest_normal(from) / 4) {  // the source reaches the target's subnormals
      CHECK_FALSE(compare_bitwise(flushing_conversion(src, to), rne).ok);
    }
    // Ties, overflow, NaN and -0 are all there.
    const std::vector<double> out = rne.to_vector();
    CHECK(std::count_if(out.begin(), out.end(), [](double x) { return std::isinf(x); }) >= 2);
    CHECK(std::count_if(out.begin(), out.end(), [](double x) { return std::isnan(x); }) >= 1);
    CHECK(std::count_if(out.begin(), out.end(), [](double x) { return x == 0 && std::signbit(x); }) >= 1);
  }
  for (DType from : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    for (DType to : {DType::i32, DType::i64, DType::u8}) {
      const std::string from_name = dtype_name(from);
      CAPTURE(from_name);
      const std::string to_name = dtype_name(to);
      CAPTURE(to_name);
      const Tensor src = conversion_input(from, to);
      std::vector<double> rounded = src.to_vector(), truncated = src.to(to).to_vector();
      for (double& x : rounded) x = std::nearbyint(x);
      CHECK(rounded != truncated);  // fractions of both signs: truncation, not rounding
      CHECK(src.numel() >= 10);
    }
  }
}

}  // TEST_SUITE
