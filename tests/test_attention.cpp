// attention: the tiled FlashAttention-2 kernels against the naive materialised ones (f64 to
// 1e-10, f32 to 1e-5 relative) with every mask mode and T across the tile edge, f64 gradchecks
// of the op, the all-masked row, bf16 against f32, thread-count determinism, the op's errors, and
// nn::attention_reference (public ops only) against the op.
#include <doctest/doctest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/cpu/attention_cpu.h"
#include "nn/attention_fallback.h"
#include "tests/core_test_util.h"
#include "tests/gradcheck.h"

using namespace minivl;
using namespace minivl::testing;

namespace {

struct Case {
  const char* name;
  int64_t B, H, Tq, Tk, D;
  bool causal, padded;
};

// T not a multiple of the 64-wide tiles; Tq > Tk with causal leaves the first Tq - Tk rows
// with no key at all (the all-masked rows).
const Case kCases[] = {
    {"no mask", 2, 2, 70, 70, 8, false, false},
    {"causal", 2, 2, 70, 70, 8, true, false},
    {"padding", 2, 2, 70, 70, 8, false, true},
    {"causal + padding", 2, 2, 70, 70, 8, true, true},
    {"Tq < Tk, causal + padding", 2, 1, 37, 130, 16, true, true},
    {"Tq > Tk, causal", 1, 2, 130, 37, 16, true, false},
    {"Tq != Tk, no mask", 1, 2, 65, 129, 8, false, false},
    {"B H >= 32 (one-pass backward), causal + padding, Tq > Tk", 4, 8, 70, 45, 8, true, true},
    {"B H >= 32 (one-pass backward), no mask, Tq < Tk", 2, 16, 33, 100, 8, false, false},
};

// (B, Tk) bool: batch b masks keys j with (j + 3 b) % 5 == 0, and batch 1 also its last 20.
Tensor padding_mask(int64_t B, int64_t Tk) {
  std::vector<double> m(size_t(B * Tk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < Tk; ++j) m[size_t(b * Tk + j)] = ((j + 3 * b) % 5 == 0 || (b == 1 && j >= Tk - 20)) ? 1 : 0;
  return from_vector(m, {B, Tk}, DType::boolean);
}

struct Inputs {
  Tensor q, k, v, mask, dout;
};
Inputs make_inputs(const Case& c, DType dtype, uint64_t seed) {
  Inputs in;
  in.q = random_input({c.B, c.H, c.Tq, c.D}, seed, false).to(dtype);
  in.k = random_input({c.B, c.H, c.Tk, c.D}, seed + 1, false).to(dtype);
  in.v = random_input({c.B, c.H, c.Tk, c.D}, seed + 2, false).to(dtype);
  in.dout = random_input({c.B, c.H, c.Tq, c.D}, seed + 3, false).to(dtype);
  if (c.padded) in.mask = padding_mask(c.B, c.Tk);
  return in;
}

struct Results {
  Tensor out, lse, dq, dk, dv;
};
// Calls the kernels directly: the tiled ones (naive = false) or the naive ones.
Results run_kernels(const Inputs& in, const Case& c, bool naive) {
  const DType sd = in.q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  Results r{empty(in.q.shape(), in.q.dtype()), empty({c.B, c.H, c.Tq}, sd), empty(in.q.shape(), in.q.dtype()),
            empty(in.k.shape(), in.q.dtype()), empty(in.v.shape(), in.q.dtype())};
  const StridedView mask = in.mask.defined() ? in.mask.view() : StridedView{};
  const double scale = 1.0 / std::sqrt(double(c.D));
  auto fwd = naive ? cpu::attention_forward_naive : cpu::attention_forward;
  auto bwd = naive ? cpu::attention_backward_naive : cpu::attention_backward;
  fwd(in.q.view(), in.k.view(), in.v.view(), mask, c.causal, scale, r.out.view(), r.lse.view());
  bwd(in.q.view(), in.k.view(), in.v.view(), mask, c.causal, scale, r.out.view(), r.lse.view(), in.dout.view(),
      r.dq.view(), r.dk.view(), r.dv.view());
  return r;
}

// max |got - want| / max |want| (1 when want is all zeros and got is not).
double rel_err(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  REQUIRE(g.size() == w.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isinf(w[i])) {
      CHECK(g[i] == w[i]);
      continue;
    }
    num = std::max(num, std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / std::max(den, 1e-30);
}

void check_tiled_equals_naive(DType dtype, double tol) {
  for (const Case& c : kCases) {
    CAPTURE(c.name);
    const Inputs in = make_inputs(c, dtype, 17);
    const Results tiled = run_kernels(in, c, false), naive = run_kernels(in, c, true);
    CHECK(rel_err(tiled.out, naive.out) <= tol);
    CHECK(rel_err(tiled.lse, naive.lse) <= tol);
    CHECK(rel_err(tiled.dq, naive.dq) <= tol);
    CHECK(rel_err(tiled.dk, naive.dk) <= tol);
    CHECK(rel_err(tiled.dv, naive.dv) <= tol);
  }
}

Tensor leaf(const Shape& shape, uint64_t seed) { return random_input(shape, seed, true); }

// The names of every node in the autograd graph that produced `t`.
std::multiset<std::string> graph_node_names(const Tensor& t) {
  std::multiset<std::string> names;
  std::vector<std::shared_ptr<Node>> stack;
  std::set<const Node*> seen;
  if (t.grad_fn()) stack.push_back(t.grad_fn());
  while (!stack.empty()) {
    std::shared_ptr<Node> n = stack.back();
    stack.pop_back();
    if (!seen.insert(n.get()).second) continue;
    names.insert(n->name());
    for (const Edge& e : n->next_edges)
      if (e.fn) stack.push_back(e.fn);
  }
  return names;
}

}  // namespace

TEST_SUITE("attention") {

TEST_CASE("tiled forward and backward equal the naive materialised kernels: f64 to 1e-10") {
  check_tiled_equals_naive(DType::f64, 1e-10);
}

TEST_CASE("tiled forward and backward equal the naive materialised kernels: f32 to 1e-5 relative") {
  check_tiled_equals_naive(DType::f32, 1e-5);
}

TEST_CASE("gradcheck (f64) of the op: no mask, causal, padding, both, Tq != Tk, T across the tile edge") {
  struct G {
    const char* name;
    int64_t Tq, Tk;
    bool causal, padded;
  };
  const G cases[] = {{"no mask", 67, 67, false, false},
                     {"causal", 67, 67, true, false},
                     {"padding", 67, 67, false, true},
                     {"causal + padding", 67, 67, true, true},
                     {"Tq < Tk, causal", 9, 70, true, true},
                     {"Tq > Tk, causal", 70, 9, true, false}};
  // These run the two-pass backward (B H < 32); the one-pass backward (B H >= 32) is held to the
  // naive kernels at 1e-10 above, as is the two-pass one, which is what this gradchecks.
  for (const G& g : cases) {
    CAPTURE(g.name);
    const int64_t B = 2, H = 1, D = 3;
    Tensor mask = g.padded ? padding_mask(B, g.Tk) : Tensor();
    auto fn = [&](const std::vector<Tensor>& x) {
      AttentionOptions o;
      o.causal = g.causal;
      o.key_padding_mask = mask;
      o.scale = 0.8;
      return attention(x[0], x[1], x[2], o);
    };
    const std::string err =
        gradcheck(fn, {leaf({B, H, g.Tq, D}, 1), leaf({B, H, g.Tk, D}, 2), leaf({B, H, g.Tk, D}, 3)});
    CHECK_MESSAGE(err.empty(), err);
  }
}

TEST_CASE("a query row whose keys are all masked gives zeros, lse -inf and zero gradients") {
  const int64_t B = 2, H = 2, T = 70, D = 8;
  Tensor q = leaf({B, H, T, D}, 5), k = leaf({B, H, T, D}, 6), v = leaf({B, H, T, D}, 7);
  std::vector<double> m(size_t(B * T), 0.0);
  for (int64_t j = 0; j < T; ++j) m[size_t(T + j)] = 1.0;  // batch 1: every key is padding
  AttentionOptions o;
  o.key_padding_mask = from_vector(m, {B, T}, DType::u8);
  Tensor out = attention(q, k, v, o);
  const std::vector<double> o1 = out.narrow(0, 1, 1).to_vector();
  for (double x : o1) CHECK(x == 0.0);
  sum(mul(out, out)).backward();
  for (const Tensor& g : {q.grad(), k.grad(), v.grad()}) {
    for (double x : g.to_vector()) REQUIRE(std::isfinite(x));
    for (double x : g.narrow(0, 1, 1).to_vector()) CHECK(x == 0.0);
  }
  // The kernel's lse for those rows.
  Tensor out2 = empty({B, H, T, D}, DType::f64), lse = empty({B, H, T}, DType::f64);
  Tensor mask = o.key_padding_mask;
  cpu::attention_forward(q.detach().view(), k.detach().view(), v.detach().view(), mask.view(), false, 0.5,
                         out2.view(), lse.view());
  for (double x : lse.narrow(0, 1, 1).to_vector()) CHECK(x == -std::numeric_limits<double>::infinity());
}

TEST_CASE("causal aligns the last query with the last key (Tq = 1 sees every key)") {
  Tensor q = random_input({1, 2, 1, 8}, 11, false), k = random_input({1, 2, 50, 8}, 12, false),
         v = random_input({1, 2, 50, 8}, 13, false);
  AttentionOptions causal;
  causal.causal = true;
  CHECK(rel_err(attention(q, k, v, causal), attention(q, k, v)) <= 1e-14);
}

TEST_CASE("bf16 and f16 on the CPU agree with f32 to 2e-2") {
  const Case& c = kCases[3];
  for (DType dt : {DType::bf16, DType::f16}) {
    CAPTURE(dtype_name(dt));
    const Inputs in32 = make_inputs(c, DType::f32, 23);
    Inputs in16{in32.q.to(dt), in32.k.to(dt), in32.v.to(dt), in32.mask, in32.dout.to(dt)};
    const Results r32 = run_kernels(in32, c, false), r16 = run_kernels(in16, c, false);
    CHECK(rel_err(r16.out, r32.out) <= 2e-2);
    CHECK(rel_err(r16.dq, r32.dq) <= 3e-2);
    CHECK(rel_err(r16.dk, r32.dk) <= 3e-2);
    CHECK(rel_err(r16.dv, r32.dv) <= 3e-2);
  }
}

TEST_CASE("attention outputs and gradients are bitwise identical with 1 and 3 threads (both backward paths)") {
  // Large enough to run threaded: two-pass backward (B H = 8) and one-pass backward (B H = 32).
  const Case cases[] = {{"two-pass", 2, 4, 200, 150, 16, true, true}, {"one-pass", 4, 8, 100, 130, 8, true, true}};
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Inputs in = make_inputs(c, DType::f32, 31);
    auto grads = [&](int threads) {
      const int saved = omp_get_max_threads();
      omp_set_num_threads(threads);
      Results r = run_kernels(in, c, false);
      omp_set_num_threads(saved);
      return std::vector<std::vector<double>>{r.out.to_vector(), r.dq.to_vector(), r.dk.to_vector(),
                                              r.dv.to_vector()};
    };
    CHECK(grads(1) == grads(3));
  }
}

TEST_CASE("attention rejects mismatched shapes, dtypes and masks, naming the op") {
  Tensor q = zeros({2, 2, 5, 4}), k = zeros({2, 2, 6, 4});
  minivl::testing::check_error([&] { attention(q, k, zeros({2, 2, 6, 3})); }, {"attention", "(2, 2, 6, 3)"});
  minivl::testing::check_error([&] { attention(q, k, k.to(DType::f64)); }, {"attention", "dtypes"});
  AttentionOptions o;
  o.key_padding_mask = zeros({2, 5}, DType::boolean);
  minivl::testing::check_error([&] { attention(q, k, k, o); }, {"attention", "key_padding_mask", "(2, 6)"});
  o.key_padding_mask = zeros({2, 6});
  minivl::testing::check_error([&] { attention(q, k, k, o); }, {"attention", "bool or u8"});
}

TEST_CASE("nn::attention_reference is composed from public ops and agrees with the op (f64, values, gradients)") {
  // Tq != Tk both ways, causal + padding, and Tq > Tk causal (rows with no key at all); Dv == D, where
  // the reference must still not reach for the fused op.
  const Case cases[] = {kCases[3], kCases[4], kCases[5], kCases[6], kCases[7]};
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const Inputs in = make_inputs(c, DType::f64, 41);
    const double scale = 0.7;
    auto run = [&](bool reference) {
      Tensor q = in.q.detach().requires_grad_(), k = in.k.detach().requires_grad_(),
             v = in.v.detach().requires_grad_();
      Tensor out;
      if (reference) {
        out = nn::attention_reference(q, k, v, c.causal, in.mask, scale);
      } else {
        AttentionOptions o;
        o.causal = c.causal;
        o.key_padding_mask = in.mask;
        o.scale = scale;
        out = attention(q, k, v, o);
      }
      const std::multiset<std::string> names = graph_node_names(out);
      sum(mul(out, in.dout)).backward();
      return std::make_pair(names, Results{out.detach(), Tensor(), q.grad(), k.grad(), v.grad()});
    };
    const auto [fused_names, fused] = run(false);
    const auto [ref_names, ref] = run(true);
    REQUIRE(fused_names.count("AttentionBackward") == 1);  // the probe sees the fused op where it is
    CHECK(ref_names.count("AttentionBackward") == 0);
    CHECK(ref_names.count("SoftmaxBackward") == 1);
    CHECK(ref_names.count("MatmulBackward") == 2);
    CHECK(rel_err(ref.out, fused.out) <= 1e-12);
    CHECK(rel_err(ref.dq, fused.dq) <= 1e-12);
    CHECK(rel_err(ref.dk, fused.dk) <= 1e-12);
    CHECK(rel_err(ref.dv, fused.dv) <= 1e-12);
  }
}

TEST_CASE("nn::attention_reference takes a value head dim other than q's, and names itself in errors") {
  Tensor q = random_input({1, 2, 3, 4}, 51, false), k = random_input({1, 2, 5, 4}, 52, false),
         v = random_input({1, 2, 5, 6}, 53, false);
  CHECK(nn::attention_reference(q, k, v, true, Tensor(), 0.5).shape() == Shape{1, 2, 3, 6});
  minivl::testing::check_error([&] { nn::attention_reference(q, k, v.narrow(2, 0, 4), false, Tensor(), 0.5); },
                               {"attention_reference", "(1, 2, 4, 6)"});
  minivl::testing::check_error([&] { nn::attention_reference(q, k.to(DType::f32), v, false, Tensor(), 0.5); },
                               {"attention_reference", "dtypes"});
  minivl::testing::check_error(
      [&] { nn::attention_reference(q, k, v, false, zeros({1, 3}, DType::boolean), 0.5); },
      {"attention_reference", "key_padding_mask", "(1, 5)"});
}

TEST_CASE("attention: softmax(scale q k^T + mask) v on a hand-sized case") {
  // B = H = 1, Tq = Tk = 2, D = 1; q = (1, 0), k = (1, 2), v = (10, 20), scale 1.
  Tensor q = tensor_f64({1, 0}, {1, 1, 2, 1}), k = tensor_f64({1, 2}, {1, 1, 2, 1}), v = tensor_f64({10, 20}, {1, 1, 2, 1});
  AttentionOptions o;
  o.scale = 1.0;
  // Row 0: scores (1, 2) -> weights (1, e) / (1 + e); row 1: scores (0, 0) -> (1/2, 1/2).
  const double e = std::exp(1.0);
  check_values(attention(q, k, v, o), {(10 + 20 * e) / (1 + e), 15}, 1e-12, 1e-12);
  o.causal = true;  // row 0 sees key 0 only
  check_values(attention(q, k, v, o), {10, 15}, 1e-12, 1e-12);
  o.causal = false;
  o.key_padding_mask = from_vector({0, 1}, {1, 2}).to(DType::boolean);  // key 1 is padding
  check_values(attention(q, k, v, o), {10, 10}, 1e-12, 1e-12);
  // The default scale is 1 / sqrt(D): D = 4 with q . k = 4 -> score 2.
  Tensor q4 = tensor_f64({1, 1, 1, 1}, {1, 1, 1, 4}), k4 = tensor_f64({1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 2, 4});
  Tensor v4 = tensor_f64({1, 0, 0, 0, 0, 1, 0, 0}, {1, 1, 2, 4});
  const double w0 = std::exp(2.0) / (std::exp(2.0) + 1);
  check_values(attention(q4, k4, v4), {w0, 1 - w0, 0, 0}, 1e-12, 1e-12);
}

}  // TEST_SUITE
