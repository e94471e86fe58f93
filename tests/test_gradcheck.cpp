// Finite-difference gradchecks in f64 for every differentiable op in
// core/ops.def: broadcast and non-contiguous inputs, non-last softmax dims,
// matmul batch broadcast and 1-d operands, cross-entropy's ignore_index and
// label smoothing, and the view ops.
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "core/dispatch.h"
#include "core/ops.h"
#include "tests/core_test_util.h"
#include "tests/gradcheck.h"

using namespace minivl;
using minivl::testing::check_grad;
using minivl::testing::check_values;
using minivl::testing::gradcheck;
using minivl::testing::GradcheckOptions;
using minivl::testing::random_input;
using Inputs = std::vector<Tensor>;

namespace {

// A (rows, cols) leaf that is the transpose of a (cols, rows) tensor: non-contiguous.
Tensor transposed_input(int64_t rows, int64_t cols, uint64_t seed) {
  Tensor t = random_input({cols, rows}, seed, false).t();
  t.requires_grad_();
  return t;
}

// A leaf with values in [0.5, ...): for log, sqrt, rsqrt, fractional pow, div.
Tensor positive_input(const Shape& shape, uint64_t seed) {
  Tensor t;
  {
    NoGradGuard no_grad;
    t = abs(random_input(shape, seed, false)) + 0.5;
  }
  return t.requires_grad_();
}

Tensor values_input(const std::vector<double>& v, const Shape& shape) {
  return from_vector(v, shape, DType::f64).requires_grad_();
}

}  // namespace

TEST_SUITE("gradcheck") {

// Reads the MINIVL_GRADCHECK_CASE declarations of the whole binary (collected before main), so it
// holds under any filter: add a case for a new differentiable op and this passes.
TEST_CASE("every differentiable op of ops.def has a gradcheck case") {
  const auto& cases = testing::gradcheck_cases_by_op();
  std::map<std::string, bool> differentiable;  // every ops.def name -> its differentiable flag
  for (int i = 0; i < kNumOps; ++i) differentiable[op_info(OpId(i)).name] = op_info(OpId(i)).differentiable;
  int checked = 0;
  for (const auto& [name, is_differentiable] : differentiable) {
    if (!is_differentiable) continue;
    CAPTURE(name);
    CHECK_MESSAGE(cases.count(name) == 1, "no MINIVL_GRADCHECK_CASE declares '" << name
                                              << "' (add one to tests/test_gradcheck.cpp)");
    checked += cases.count(name) == 1;
  }
  for (const auto& [name, titles] : cases) {
    CAPTURE(name);
    CAPTURE(titles.front());
    CHECK_MESSAGE(differentiable.count(name) == 1, "a gradcheck case declares '" << name << "', not an op of ops.def");
    CHECK_MESSAGE((differentiable.count(name) == 0 || differentiable.at(name)),
                  "a gradcheck case declares '" << name << "', which ops.def marks non-differentiable");
  }
  CHECK(checked >= 40);  // ops.def was read: it has more than 40 differentiable ops
}

TEST_CASE("the gradcheck helper catches a wrong gradient") {
  // A sanity check of the checker itself: detach() hides a dependency, so
  // autograd misses the x * x term's second factor and gradcheck must notice.
  Tensor x = random_input({3}, 1);
  std::string r = gradcheck([](const Inputs& in) { return mul(in[0], in[0].detach()); }, {x});
  CHECK_FALSE(r.empty());
  CHECK(r.find("input 0") != std::string::npos);
  // Inputs must be f64 (it perturbs the storage as doubles).
  std::string f32 = gradcheck([](const Inputs& in) { return mul(in[0], 2.0); }, {ones({2}).requires_grad_()});
  CHECK(f32.find("not f64") != std::string::npos);
  // And a right one passes.
  CHECK(gradcheck([](const Inputs& in) { return mul(in[0], in[0]); }, {random_input({3}, 2)}).empty());
}

MINIVL_GRADCHECK_CASE("binary ops with broadcast and non-contiguous inputs",
                      "add", "sub", "mul", "div") {
  for (const char* op : {"add", "sub", "mul", "div"}) {
    auto f = [op](const Tensor& a, const Tensor& b) {
      std::string o = op;
      return o == "add" ? add(a, b) : o == "sub" ? sub(a, b) : o == "mul" ? mul(a, b) : div(a, b);
    };
    auto fn = [f](const Inputs& in) { return f(in[0], in[1]); };
    check_grad(op, fn, {random_input({3, 1}, 1), positive_input({1, 4}, 2)});
    check_grad(op, fn, {random_input({2, 3, 4}, 3), positive_input({4}, 4)});
    check_grad(op, fn, {transposed_input(3, 4, 5), positive_input({3, 4}, 6)});
    check_grad(op, fn, {random_input({3, 4}, 7), positive_input({}, 8)});
    // Only one side needs a gradient.
    check_grad(op, fn, {random_input({2, 3}, 9), positive_input({2, 3}, 10).detach()});
  }
  // The same tensor on both sides: gradients from both uses add up.
  check_grad("mul", [](const Inputs& in) { return mul(in[0], in[0]); }, {random_input({5}, 11)});
  check_grad("div", [](const Inputs& in) { return div(in[0], add(in[0], in[0].detach() * 0.0 + 3.0)); },
             {positive_input({4}, 12)});
  // Scalar forms (the affine unary).
  check_grad("add", [](const Inputs& in) { return add(in[0], 2.5); }, {random_input({3}, 13)});
  check_grad("mul", [](const Inputs& in) { return mul(in[0], -1.5); }, {transposed_input(2, 3, 14)});
}

MINIVL_GRADCHECK_CASE("unary ops",
                      "neg", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "gelu", "gelu_tanh", "quick_gelu", "abs", "relu", "pow") {
  struct U {
    const char* name;
    Tensor (*fn)(const Tensor&);
    bool positive;
  };
  const U ops[] = {{"neg", neg, false},        {"exp", exp, false},     {"log", log, true},
                   {"sqrt", sqrt, true},       {"rsqrt", rsqrt, true},  {"tanh", tanh, false},
                   {"sigmoid", sigmoid, false}, {"gelu", gelu, false},   {"gelu_tanh", gelu_tanh, false},
                   {"quick_gelu", quick_gelu, false}};
  for (const U& u : ops) {
    auto fn = [f = u.fn](const Inputs& in) { return f(in[0]); };
    Tensor x = u.positive ? positive_input({3, 4}, 21) : random_input({3, 4}, 21);
    check_grad(u.name, fn, {x});
    // Non-contiguous input.
    Tensor t = u.positive ? positive_input({4, 3}, 22).detach().t() : transposed_input(3, 4, 22);
    if (u.positive) t.requires_grad_();
    check_grad(u.name, fn, {t});
  }
  // abs and relu away from their kink at 0.
  Tensor k = values_input({-2, -0.7, -0.1, 0.2, 0.9, 3}, {2, 3});
  check_grad("abs", [](const Inputs& in) { return abs(in[0]); }, {k});
  check_grad("relu", [](const Inputs& in) { return relu(in[0]); }, {k});
  check_grad("pow", [](const Inputs& in) { return pow(in[0], 3.0); }, {random_input({6}, 23)});
  check_grad("pow", [](const Inputs& in) { return pow(in[0], 0.5); }, {positive_input({6}, 24)});
  check_grad("pow", [](const Inputs& in) { return pow(in[0], -1.5); }, {positive_input({2, 3}, 25)});
  check_grad("pow", [](const Inputs& in) { return pow(in[0], 0.0); }, {random_input({3}, 26)});
}

MINIVL_GRADCHECK_CASE("clamp away from the kinks",
                      "clamp") {
  Tensor x = values_input({-2, -0.7, -0.3, 0.2, 0.45, 1.5}, {3, 2});
  check_grad("clamp", [](const Inputs& in) { return clamp(in[0], -0.5, 0.5); }, {x});
  check_grad("clamp", [](const Inputs& in) { return clamp(in[0], 0.0, std::nullopt); }, {x});
  check_grad("clamp", [](const Inputs& in) { return clamp(in[0], std::nullopt, 0.3); }, {x});
}

MINIVL_GRADCHECK_CASE("where and masked_fill with broadcasting",
                      "where", "masked_fill") {
  Tensor cond = from_vector({1, 0, 0, 1}, {4}).to(DType::boolean);
  Tensor row_cond = from_vector({1, 0, 1}, {3, 1}).to(DType::boolean);
  check_grad("where", [&](const Inputs& in) { return where(cond, in[0], in[1]); },
             {random_input({3, 4}, 31), random_input({3, 1}, 32)});
  check_grad("where", [&](const Inputs& in) { return where(row_cond, in[0], in[1]); },
             {random_input({4}, 33), transposed_input(3, 4, 34)});
  check_grad("masked_fill", [&](const Inputs& in) { return masked_fill(in[0], cond, -7.0); },
             {random_input({2, 3, 4}, 35)});
  check_grad("masked_fill", [&](const Inputs& in) { return masked_fill(in[0], row_cond, 0.0); },
             {transposed_input(3, 2, 36)});
}

MINIVL_GRADCHECK_CASE("sum, mean, max, var over all dims, some dims, keepdim",
                      "sum", "mean", "max", "var") {
  for (const char* op : {"sum", "mean"}) {
    auto red = [op](const Tensor& x, std::vector<int64_t> dims, bool keep) {
      return std::string(op) == "sum" ? sum(x, dims, keep) : mean(x, dims, keep);
    };
    check_grad(op, [&](const Inputs& in) { return red(in[0], {}, false); }, {random_input({2, 3, 4}, 41)});
    check_grad(op, [&](const Inputs& in) { return red(in[0], {0, 2}, false); }, {random_input({2, 3, 4}, 42)});
    check_grad(op, [&](const Inputs& in) { return red(in[0], {-1}, true); }, {transposed_input(3, 5, 43)});
    check_grad(op, [&](const Inputs& in) { return red(in[0], {1}, false); }, {random_input({4, 1, 2}, 44)});
  }
  // max: random normals have no ties.
  check_grad("max", [](const Inputs& in) { return max(in[0]); }, {random_input({3, 4}, 45)});
  check_grad("max", [](const Inputs& in) { return max(in[0], {1}); }, {random_input({3, 4}, 46)});
  check_grad("max", [](const Inputs& in) { return max(in[0], {0, 2}, true); }, {random_input({2, 3, 4}, 47)});
  check_grad("max", [](const Inputs& in) { return max(in[0], {0}); }, {transposed_input(4, 3, 48)});
  check_grad("var", [](const Inputs& in) { return var(in[0]); }, {random_input({6}, 49)});
  check_grad("var", [](const Inputs& in) { return var(in[0], {1}); }, {random_input({3, 5}, 50)});
  check_grad("var", [](const Inputs& in) { return var(in[0], {0}, 0, true); }, {transposed_input(4, 3, 51)});
}

MINIVL_GRADCHECK_CASE("matmul: 2-d, batch broadcast, 1-d operands, transposed views",
                      "matmul") {
  auto mm = [](const Inputs& in) { return matmul(in[0], in[1]); };
  check_grad("matmul", mm, {random_input({3, 4}, 61), random_input({4, 5}, 62)});
  check_grad("matmul", mm, {random_input({2, 3, 4}, 63), random_input({4, 5}, 64)});
  check_grad("matmul", mm, {random_input({3, 4}, 65), random_input({2, 4, 5}, 66)});
  check_grad("matmul", mm, {random_input({2, 1, 3, 4}, 67), random_input({3, 4, 2}, 68)});
  check_grad("matmul", mm, {transposed_input(3, 4, 69), transposed_input(4, 2, 70)});
  // A batched activation times a shared 2-d weight (one merged GEMM, merged weight gradient), also
  // with rows that cannot merge (a transposed batch) and with a size-1 weight batch.
  check_grad("matmul", mm, {random_input({2, 3, 3, 4}, 71), random_input({4, 5}, 72)});
  Tensor batch_transposed = random_input({3, 2, 4}, 73, false).transpose(0, 1);  // (2, 3, 4), rows not merged
  batch_transposed.requires_grad_();
  check_grad("matmul", mm, {batch_transposed, random_input({4, 5}, 74)});
  check_grad("matmul", mm, {random_input({2, 3, 4}, 75), random_input({1, 4, 5}, 76)});
  // A broadcast activation against an expanded (stride-0) weight: must not be read as 2 x 3 rows.
  const Tensor a1 = random_input({1, 3, 4}, 77, false), w = random_input({4, 5}, 78, false);
  const std::vector<double> got = matmul(a1, w.unsqueeze(0).expand({2, 4, 5})).to_vector();
  const std::vector<double> one = matmul(a1.squeeze(0), w).to_vector();
  REQUIRE(got.size() == 2 * one.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(one[i % one.size()]));
  check_grad("matmul", mm, {random_input({4}, 71), random_input({4, 5}, 72)});
  check_grad("matmul", mm, {random_input({3, 4}, 73), random_input({4}, 74)});
  check_grad("matmul", mm, {random_input({4}, 75), random_input({4}, 76)});
  check_grad("matmul", mm, {random_input({4}, 77), random_input({2, 4, 3}, 78)});
  check_grad("matmul", mm, {random_input({2, 3, 4}, 79), random_input({4}, 80)});
  // One operand without a gradient.
  check_grad("matmul", mm, {random_input({3, 4}, 81), random_input({4, 2}, 82, false)});
}

MINIVL_GRADCHECK_CASE("softmax and log_softmax along non-last dims",
                      "softmax", "log_softmax") {
  for (const char* op : {"softmax", "log_softmax"}) {
    auto sm = [op](const Tensor& x, int64_t d) {
      return std::string(op) == "softmax" ? softmax(x, d) : log_softmax(x, d);
    };
    check_grad(op, [&](const Inputs& in) { return sm(in[0], 0); }, {random_input({3, 4}, 91)});
    check_grad(op, [&](const Inputs& in) { return sm(in[0], 1); }, {random_input({2, 3, 4}, 92)});
    check_grad(op, [&](const Inputs& in) { return sm(in[0], -1); }, {random_input({2, 3, 4}, 93)});
    check_grad(op, [&](const Inputs& in) { return sm(in[0], 1); }, {transposed_input(3, 4, 94)});
  }
}

MINIVL_GRADCHECK_CASE("cross_entropy with ignore_index, label smoothing and every reduction",
                      "cross_entropy") {
  Tensor target = from_vector_i64({1, -100, 4, 0}, {4});
  for (double eps : {0.0, 0.1}) {
    for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
      CAPTURE(eps);
      CAPTURE(int(r));
      check_grad("cross_entropy",
                 [&](const Inputs& in) { return cross_entropy(in[0], target, -100, eps, r); },
                 {random_input({4, 5}, 101)});
    }
  }
  // Non-contiguous logits and another ignore index.
  Tensor t2 = from_vector_i64({2, 0, 3, 3}, {4});
  check_grad("cross_entropy", [&](const Inputs& in) { return cross_entropy(in[0], t2, 3, 0.2); },
             {transposed_input(4, 5, 102)});
  // Through a log_softmax-free composition: loss of (logits * 2).
  check_grad("cross_entropy", [&](const Inputs& in) { return cross_entropy(in[0] * 2.0, t2); },
             {random_input({4, 5}, 103)});
}

MINIVL_GRADCHECK_CASE("embedding with repeated ids",
                      "embedding") {
  Tensor ids = from_vector_i64({1, 1, 3, 1}, {2, 2});
  check_grad("embedding", [&](const Inputs& in) { return embedding(in[0], ids); }, {random_input({5, 3}, 111)});
  Tensor ids32 = from_vector_i64({0, 4, 0}, {3}, DType::i32);
  check_grad("embedding", [&](const Inputs& in) { return embedding(in[0], ids32); },
             {transposed_input(5, 3, 112)});
}

MINIVL_GRADCHECK_CASE("cat, stack and split",
                      "cat", "stack", "split") {
  check_grad("cat", [](const Inputs& in) { return cat({in[0], in[1], in[2]}, 1); },
             {random_input({2, 3}, 121), transposed_input(2, 1, 122), random_input({2, 2}, 123, false)});
  check_grad("cat", [](const Inputs& in) { return cat({in[0], in[1]}, 0); },
             {random_input({1, 3}, 124), random_input({2, 3}, 125)});
  check_grad("stack", [](const Inputs& in) { return stack({in[0], in[1]}, 1); },
             {random_input({2, 3}, 126), transposed_input(2, 3, 127)});
  check_grad("stack", [](const Inputs& in) { return stack({in[0], in[0] * 2.0}, 0); }, {random_input({3}, 128)});
  check_grad("split", [](const Inputs& in) {
    std::vector<Tensor> p = split(in[0], 2, 1);
    return add(mul(p[0], p[2]), p[1]);
  }, {random_input({3, 6}, 129)});
  check_grad("split", [](const Inputs& in) {
    std::vector<Tensor> p = split(in[0], std::vector<int64_t>{1, 3}, 0);
    return sum(p[1], {0});  // the first part is unused
  }, {random_input({4, 2}, 130)});
}

MINIVL_GRADCHECK_CASE("dropout with a fixed seed",
                      "dropout") {
  check_grad("dropout", [](const Inputs& in) { return dropout(in[0], 0.4, true, 77); }, {random_input({4, 5}, 141)});
  check_grad("dropout", [](const Inputs& in) { return dropout(in[0], 0.5, true, 78); },
             {transposed_input(3, 4, 142)});
}

MINIVL_GRADCHECK_CASE("layernorm with and without weight and bias",
                      "layernorm") {
  check_grad("layernorm", [](const Inputs& in) { return layernorm(in[0], in[1], in[2]); },
             {random_input({3, 5}, 151), random_input({5}, 152), random_input({5}, 153)});
  check_grad("layernorm", [](const Inputs& in) { return layernorm(in[0], Tensor(), Tensor()); },
             {random_input({2, 2, 4}, 154)});
  check_grad("layernorm", [](const Inputs& in) { return layernorm(in[0], in[1], Tensor(), 1e-3); },
             {transposed_input(4, 3, 155), random_input({3}, 156)});
}

MINIVL_GRADCHECK_CASE("add_layernorm: both outputs, or only one of them, carry gradients",
                      "add_layernorm") {
  Inputs in4 = {random_input({3, 5}, 191), random_input({3, 5}, 192), random_input({5}, 193), random_input({5}, 194)};
  check_grad("add_layernorm", [](const Inputs& in) {
    auto [h, y] = add_layernorm(in[0], in[1], in[2], in[3]);
    return add(mul(h, 0.3), y);
  }, in4);
  check_grad("add_layernorm", [](const Inputs& in) { return add_layernorm(in[0], in[1], in[2], in[3]).second; },
             in4);
  check_grad("add_layernorm", [](const Inputs& in) { return add_layernorm(in[0], in[1], in[2], in[3]).first; },
             {random_input({2, 4}, 195), random_input({2, 4}, 196), random_input({4}, 197), random_input({4}, 198)});
  check_grad("add_layernorm", [](const Inputs& in) { return add_layernorm(in[0], in[1], Tensor(), Tensor()).second; },
             {transposed_input(4, 3, 199), random_input({4, 3}, 200)});
}

MINIVL_GRADCHECK_CASE("clip_loss and siglip_loss: features, logit_scale and logit_bias",
                      "clip_loss", "siglip_loss") {
  // Raw and L2-normalised features; the scale is a 0-d log(scale).
  auto normalise = [](const Tensor& x) { return mul(x, rsqrt(sum(mul(x, x), {-1}, true))); };
  check_grad("clip_loss", [](const Inputs& in) { return clip_loss(in[0], in[1], in[2]); },
             {random_input({4, 3}, 201), random_input({4, 3}, 202), values_input({0.7}, {})});
  check_grad("clip_loss", [&](const Inputs& in) { return clip_loss(normalise(in[0]), normalise(in[1]), in[2]); },
             {random_input({5, 4}, 203), transposed_input(5, 4, 204), values_input({1.2}, {1})});
  check_grad("siglip_loss", [](const Inputs& in) { return siglip_loss(in[0], in[1], in[2], in[3]); },
             {random_input({4, 3}, 205), random_input({4, 3}, 206), values_input({0.5}, {}), values_input({-1.5}, {})});
  check_grad("siglip_loss", [&](const Inputs& in) { return siglip_loss(normalise(in[0]), normalise(in[1]), in[2], in[3]); },
             {transposed_input(3, 6, 207), random_input({3, 6}, 208), values_input({2.0}, {}), values_input({-3.0}, {1})});
}

MINIVL_GRADCHECK_CASE("attention: plain, causal with padding, and q/k/v as permuted views",
                      "attention") {
  auto attn = [](AttentionOptions o) {
    return [o](const Inputs& in) { return attention(in[0], in[1], in[2], o); };
  };
  check_grad("attention", attn({}), {random_input({1, 2, 3, 4}, 231), random_input({1, 2, 5, 4}, 232),
                                     random_input({1, 2, 5, 4}, 233)});
  AttentionOptions masked;
  masked.causal = true;
  masked.key_padding_mask = from_vector({0, 0, 1, 0, 0, 0, 0, 1}, {2, 4}).to(DType::boolean);
  masked.scale = 0.7;
  check_grad("attention", attn(masked), {random_input({2, 1, 4, 3}, 234), random_input({2, 1, 4, 3}, 235),
                                         random_input({2, 1, 4, 3}, 236)});
  // The usual layout: (B, T, H, D) projections permuted to (B, H, T, D), not contiguous.
  auto bthd = [](uint64_t seed) {
    Tensor t = random_input({2, 3, 2, 4}, seed, false).permute({0, 2, 1, 3});
    return t.requires_grad_();
  };
  check_grad("attention", attn({}), {bthd(237), bthd(238), bthd(239)});
}

MINIVL_GRADCHECK_CASE("view ops",
                      "reshape", "permute", "transpose", "narrow", "expand", "squeeze", "unsqueeze", "contiguous") {
  check_grad("reshape", [](const Inputs& in) { return in[0].reshape({6, 4}); }, {random_input({2, 3, 4}, 161)});
  check_grad("reshape", [](const Inputs& in) { return in[0].reshape({-1}); }, {transposed_input(3, 4, 162)});
  check_grad("reshape", [](const Inputs& in) { return in[0].view_as_shape({2, 2, 3}); }, {random_input({4, 3}, 163)});
  check_grad("reshape", [](const Inputs& in) { return in[0].flatten(1); }, {random_input({2, 3, 2}, 164)});
  check_grad("permute", [](const Inputs& in) { return in[0].permute({2, 0, 1}); }, {random_input({2, 3, 4}, 165)});
  check_grad("transpose", [](const Inputs& in) { return in[0].transpose(0, 2) * 1.0; }, {random_input({2, 3, 4}, 166)});
  check_grad("narrow", [](const Inputs& in) { return in[0].narrow(1, 1, 2); }, {random_input({3, 4}, 167)});
  check_grad("narrow", [](const Inputs& in) { return in[0].slice(1, 0, 5, 2); }, {random_input({2, 5}, 168)});
  check_grad("narrow", [](const Inputs& in) { return in[0].select(0, -1); }, {transposed_input(3, 4, 169)});
  check_grad("narrow", [](const Inputs& in) { return in[0].slice(0, 1, 4, 2).slice(1, 1, 3); },
             {random_input({5, 4}, 170)});
  check_grad("expand", [](const Inputs& in) { return in[0].expand({2, 3, 4}); }, {random_input({3, 1}, 171)});
  check_grad("expand", [](const Inputs& in) { return in[0].expand({3, 4}); }, {random_input({4}, 172)});
  check_grad("squeeze", [](const Inputs& in) { return in[0].squeeze(); }, {random_input({1, 3, 1}, 173)});
  check_grad("squeeze", [](const Inputs& in) { return in[0].squeeze(0); }, {random_input({1, 3}, 174)});
  check_grad("unsqueeze", [](const Inputs& in) { return in[0].unsqueeze(1); }, {transposed_input(2, 3, 175)});
  check_grad("contiguous", [](const Inputs& in) { return in[0].contiguous(); }, {transposed_input(3, 4, 176)});
  check_grad("contiguous", [](const Inputs& in) { return in[0].clone(); }, {random_input({3}, 177)});
  // A chain of views ending in a reduction.
  check_grad("permute", [](const Inputs& in) { return sum(in[0].permute({1, 0}).unsqueeze(0).expand({2, 4, 3}), {0}); },
             {random_input({3, 4}, 178)});
}

MINIVL_GRADCHECK_CASE("backward nodes accept non-contiguous incoming gradients",
                      "exp", "gelu", "mul", "softmax", "log_softmax", "matmul", "layernorm", "add_layernorm", "embedding", "cross_entropy", "dropout", "max", "sum", "var", "where") {
  // Each op's output goes through a transpose or a cat, so the gradient reaching
  // its node is a strided view rather than a fresh contiguous tensor.
  check_grad("exp", [](const Inputs& in) { return exp(in[0]).t(); }, {random_input({3, 4}, 211)});
  check_grad("gelu", [](const Inputs& in) { return cat({gelu(in[0]), tanh(in[0])}, 1); }, {random_input({3, 2}, 212)});
  check_grad("mul", [](const Inputs& in) { return mul(in[0], in[1]).t(); }, {random_input({3, 4}, 213), random_input({4}, 214)});
  check_grad("softmax", [](const Inputs& in) { return softmax(in[0], 1).t(); }, {random_input({3, 4}, 215)});
  check_grad("log_softmax", [](const Inputs& in) { return log_softmax(in[0], 0).transpose(0, 2); },
             {random_input({2, 3, 4}, 216)});
  check_grad("matmul", [](const Inputs& in) { return matmul(in[0], in[1]).transpose(-2, -1); },
             {random_input({2, 3, 4}, 217), random_input({4, 5}, 218)});
  check_grad("layernorm", [](const Inputs& in) { return layernorm(in[0], in[1], in[1]).t(); },
             {random_input({3, 4}, 219), random_input({4}, 220)});
  check_grad("add_layernorm", [](const Inputs& in) {
    auto [h, y] = add_layernorm(in[0], in[1], Tensor(), Tensor());
    return cat({h, y}, 1);
  }, {random_input({3, 4}, 221), random_input({3, 4}, 222)});
  Tensor ids = from_vector_i64({2, 0, 2}, {3});
  check_grad("embedding", [&](const Inputs& in) { return embedding(in[0], ids).t(); }, {random_input({4, 2}, 223)});
  Tensor target = from_vector_i64({1, 0, -100}, {3});
  check_grad("cross_entropy", [&](const Inputs& in) {
    Tensor l = cross_entropy(in[0], target, -100, 0.1, Reduction::none);
    return stack({l, l * 2.0}, 1);
  }, {random_input({3, 4}, 224)});
  check_grad("dropout", [](const Inputs& in) { return dropout(in[0], 0.3, true, 5).t(); }, {random_input({3, 4}, 225)});
  check_grad("max", [](const Inputs& in) { return max(in[0], {2}).t(); }, {random_input({2, 3, 4}, 226)});
  check_grad("sum", [](const Inputs& in) { return sum(in[0], {0}).t(); }, {random_input({2, 3, 4}, 227)});
  check_grad("var", [](const Inputs& in) { return var(in[0], {2}).t(); }, {random_input({2, 3, 4}, 228)});
  Tensor cond = from_vector({1, 0, 1}, {3, 1}).to(DType::boolean);
  check_grad("where", [&](const Inputs& in) { return where(cond, in[0], in[1]).t(); },
             {random_input({3, 4}, 229), random_input({4}, 230)});
}

MINIVL_GRADCHECK_CASE("to_dtype: ToDTypeBackward returns the gradient in the input's dtype and shape",
                      "to_dtype") {
  Tensor x = random_input({2, 3}, 181);
  Tensor y = x.to(DType::f32);
  REQUIRE(y.grad_fn());
  CHECK(std::string(y.grad_fn()->name()) == "ToDTypeBackward");
  Tensor w = from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(mul(y, w)).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == DType::f64);
  CHECK(x.grad().shape() == Shape{2, 3});
  check_values(x.grad(), {1, 2, 3, 4, 5, 6}, 0, 0);
  // f32 -> bf16 -> the gradient comes back as f32.
  Tensor f = ones({4}).requires_grad_();
  sum(f.to(DType::bf16) * 3.0).backward();
  CHECK(f.grad().dtype() == DType::f32);
  check_values(f.grad(), {3, 3, 3, 3}, 0, 0);
  // f64 -> f64 through f32 and back is gradchecked with f32-level tolerance.
  GradcheckOptions loose;
  loose.eps = 1e-3;
  loose.atol = 1e-4;
  loose.rtol = 1e-3;
  check_grad("to_dtype", [](const Inputs& in) { return in[0].to(DType::f32).to(DType::f64) * in[0]; },
             {random_input({3}, 182)}, loose);
  // A conversion to an integer dtype has no gradient.
  CHECK_FALSE(x.to(DType::i64).requires_grad());
}

}  // TEST_SUITE
