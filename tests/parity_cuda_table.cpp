// The CPU <-> CUDA parity table, first half: views, copies, elementwise ops, reductions,
// matmul, indexing, dropout (the fused ops are in tests/parity_cuda_table_fused.cpp). A new op
// gets its parity test by adding a row; the coverage test in tests/test_parity_cuda.cpp fails
// until it has one. Each row's cases cover odd sizes, broadcasts, non-contiguous views made on
// each device, long rows that take the block paths, and the op's variants.
//
// Bounds (tests/parity_compare.h), and why. u = 2^-24, the unit roundoff of the f32 arithmetic
// behind every float dtype (bf16/f16 load into f32, compute, round once on store).
//  - Bitwise: ops that move or select values: views, contiguous, to_dtype, cat, stack, where,
//    masked_fill, embedding's gather, max, topk, dropout (its mask and x * scale, one correctly
//    rounded product), relu/abs/neg/clamp, and the gradients of all of these that add nothing.
//  - 0 ulps (exact values): add/sub/mul/div and sqrt/rsqrt, log's and sqrt's derivatives: one or
//    two IEEE-correctly-rounded f32 operations (nvcc's defaults: -prec-div, -prec-sqrt, no fast
//    math) then one rounding to the storage type, the same on both devices.
//  - Library functions: the CPU's exp/tanh are within 0.93 / 2.4 ulps (kernels/cpu/vec_math_f32.h),
//    glibc's logf/powf within 1; CUDA's guide gives expf/tanhf/erff 2, logf 1, powf a few: f32
//    results 4-8 ulps apart at most. A 16-bit result rounds an f32 value both devices agree on
//    to a few f32 ulps, so it is within 1 of its own ulps. Where the formula cancels (GELU's
//    1 + erf for x < 0, 1 - tanh^2 in the derivatives), the f32 error is absolute: an allowance
//    of k u |x| (forward) or k u |dy| (backward) per element.
//  - Sums (sum, mean, broadcast gradients, expand's gradient): the CPU sums in f64, CUDA in f32
//    over a tree; both round once. 1 ulp + 8 u M, M = sum |terms| per element (the case rerun on
//    |inputs|): a tree's error is ~u M for positive terms and far less for mixed signs; 8 is margin.
//  - matmul (cuBLASLt, the CPU's packed GEMM): f32 accumulation over K, then one rounding:
//    1 ulp + (K/4 + 4) u M with M = sum_k |a_ik b_kj| (the abs rerun). K/4: tensor cores
//    truncate, once per k-block of 8 or 16 products, not round; f32 FFMA chains do better. K is
//    the longest inner length of the case's products (forward, dA, dB). A batch broadcast in the
//    backward sums rounded 16-bit partial products: + 2 u_T M.
//  - var (composed: mean, sub, mul, mean): the mean may round to neighbouring values on the two
//    devices and move every centred value: 2 ulps + 16 u |var|; its gradient adds a sum that
//    cancels (sum of centred values): 2 ulps + (4 u_T + 8 u) max |grad|.
#include "tests/parity_cuda_table.h"

#include <cmath>
#include <map>
#include <stdexcept>
#include <utility>

#include "tests/core_test_util.h"

namespace minivl::parity_cuda {

Tensor input(Rng& rng, const Shape& shape, DType dtype, Domain dom) {
  std::vector<double> v(size_t(shape_numel(shape)));
  for (double& x : v) x = dom == Domain::positive ? rng.uniform(0.5, 2.0) : rng.uniform(-2.0, 2.0);
  return from_vector(v, shape, dtype);
}

Tensor ids_input(Rng& rng, const Shape& shape, int64_t lo, int64_t hi, DType dtype) {
  std::vector<int64_t> v(size_t(shape_numel(shape)));
  for (int64_t& x : v) x = rng.integer(lo, hi);
  return from_vector_i64(v, shape, dtype);
}

Tensor mask_input(Rng& rng, const Shape& shape, DType dtype) {
  std::vector<double> v(size_t(shape_numel(shape)));
  for (double& x : v) x = rng.uniform(0, 1) < 0.5 ? 1.0 : 0.0;
  return from_vector(v, shape, dtype);
}

namespace {

constexpr double kU = 0x1p-24;  // f32 unit roundoff
constexpr double kSumCoef = 8;  // sums: 8 u M (see the header)

const std::vector<DType> kFloat = {DType::f32, DType::bf16, DType::f16};

Bound exact(const std::string& why) { return Bound::exact(why); }
Bound same_value(const std::string& why) { return Bound::within(0, why); }
// f32: `f32_ulps`; bf16/f16: 1 (a rounding of an f32 value the devices agree on to a few f32 ulps).
Bound fn_ulps(DType dt, double f32_ulps, const std::string& why) { return Bound::within(dt == DType::f32 ? f32_ulps : 1, why); }
Bound sum_bound() { return Bound::within(1, "sum: f64 (CPU) vs f32 tree (CUDA), one rounding each; 1 ulp + 8 u sum|terms|"); }

// ---- unary ops ----

struct UnarySpec {
  bool exact_forward = false, exact_backward = false;  // bitwise (selections and sign flips)
  double f32_ulps = 0, f32_grad_ulps = 0;               // otherwise: f32 ulps (16-bit: 1; 0: exact value)
  double x_coef = 0;                                     // forward allowance k u |x| (cancelling formulas)
  double dy_coef = 0;                                    // backward allowance k u |dy|
  std::string why;
};

Bound unary_forward_bound(const UnarySpec& s, DType dt) {
  if (s.exact_forward) return exact(s.why);
  return s.f32_ulps == 0 ? same_value(s.why) : fn_ulps(dt, s.f32_ulps, s.why);
}
Bound unary_backward_bound(const UnarySpec& s, DType dt) {
  if (s.exact_backward) return exact(s.why + " (gradient: dy times 0, 1 or -1)");
  return s.f32_grad_ulps == 0 ? same_value(s.why + " (gradient)") : fn_ulps(dt, s.f32_grad_ulps, s.why + " (gradient)");
}

// Allowances k u |x| and k u |dy| (x as the op sees it: transposed for the transposed case).
AllowanceFn unary_allowance(const UnarySpec& s, bool transposed) {
  if (s.x_coef == 0 && s.dy_coef == 0) return nullptr;
  return [s, transposed](const CaseData& d) {
    Allowances a;
    Tensor x = transposed ? d.inputs[0].transpose(0, 1) : d.inputs[0];
    a.outputs.push_back(s.x_coef > 0 ? mul(abs(x.to(DType::f64)), s.x_coef * kU) : Tensor());
    Tensor dy = transposed ? d.weights[0].transpose(0, 1) : d.weights[0];
    a.grads.push_back(s.dy_coef > 0 ? mul(abs(dy.to(DType::f64)), s.dy_coef * kU).contiguous() : Tensor());
    return a;
  };
}

using Fn1 = std::function<Tensor(const Tensor&)>;

// A unary op on three layouts: a small vector, an odd 2-d shape, and a transposed view.
std::vector<Case> unary_cases(Rng& rng, DType dt, const Fn1& f, Domain dom, const UnarySpec& s, const std::string& tag = "") {
  auto one = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0])}; };
  auto tr = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0].transpose(0, 1))}; };
  std::vector<Case> cases = {single({input(rng, {7}, dt, dom)}, {true}, one, tag + "(7)"),
                             single({input(rng, {33, 65}, dt, dom)}, {true}, one, tag + "(33, 65)"),
                             single({input(rng, {65, 33}, dt, dom)}, {true}, tr, tag + "(65, 33)^T")};
  for (size_t i = 0; i < cases.size(); ++i) {
    cases[i].bounds({unary_forward_bound(s, dt)}, {unary_backward_bound(s, dt)}).allow(unary_allowance(s, i == 2));
  }
  return cases;
}

Row unary_row(const std::string& op, Fn1 f, UnarySpec s, Domain dom = Domain::any) {
  return {op, kFloat, [f, s, dom](Rng& rng, DType dt) { return unary_cases(rng, dt, f, dom, s); }};
}

// Views and copies: exact forward; a gradient that adds nothing is exact too.
Row view_row(const std::string& op, Fn1 f) {
  UnarySpec s;
  s.exact_forward = s.exact_backward = true;
  s.why = op + ": moves values";
  return unary_row(op, std::move(f), s);
}

Row pow_row() {
  return {"pow", kFloat, [](Rng& rng, DType dt) {
            // powf: glibc < 1 ulp, CUDA a few; the derivative a x^(a-1) dy rounds twice more.
            UnarySpec s{false, false, 8, 10, 0, 0, "pow: powf, a few ulps on each device"};
            std::vector<Case> all;
            for (auto [e, dom] : {std::pair{2.5, Domain::positive}, {0.5, Domain::positive}, {2.0, Domain::any},
                                  {-1.0, Domain::positive}, {3.0, Domain::any}}) {
              const double exponent = e;
              std::vector<Case> cs = unary_cases(rng, dt, [exponent](const Tensor& x) { return pow(x, exponent); }, dom, s,
                                                 "exponent " + std::to_string(exponent).substr(0, 4) + ", ");
              all.insert(all.end(), cs.begin(), cs.end());
            }
            return all;
          }};
}

Row clamp_row() {
  return {"clamp", kFloat, [](Rng& rng, DType dt) {
            UnarySpec s;
            s.exact_forward = s.exact_backward = true;
            s.why = "clamp: a selection";
            std::vector<Case> all;
            const std::vector<std::pair<std::optional<double>, std::optional<double>>> limits = {
                {-0.5, 0.7}, {-0.5, std::nullopt}, {std::nullopt, 0.7}};
            const std::vector<std::string> tags = {"both bounds, ", "min only, ", "max only, "};
            for (size_t i = 0; i < limits.size(); ++i) {
              auto [lo, hi] = limits[i];
              std::vector<Case> cs = unary_cases(rng, dt, [lo, hi](const Tensor& x) { return clamp(x, lo, hi); },
                                                 Domain::any, s, tags[i]);
              all.insert(all.end(), cs.begin(), cs.end());
            }
            return all;
          }};
}

// ---- binary ops ----

using Fn2 = std::function<Tensor(const Tensor&, const Tensor&)>;

Row binary_row(const std::string& op, Fn2 f, Domain b_dom = Domain::any) {
  return {op, kFloat, [op, f, b_dom](Rng& rng, DType dt) {
            auto same = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0], in[1])}; };
            auto tr = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0].transpose(0, 1), in[1])}; };
            std::vector<Case> cs = {
                single({input(rng, {17, 31}, dt), input(rng, {17, 31}, dt, b_dom)}, {true, true}, same, "same shape"),
                single({input(rng, {17, 1}, dt), input(rng, {1, 31}, dt, b_dom)}, {true, true}, same, "broadcast"),
                single({input(rng, {5, 3, 1}, dt), input(rng, {7}, dt, b_dom)}, {true, true}, same, "broadcast 3-d"),
                single({input(rng, {31, 17}, dt), input(rng, {17, 31}, dt, b_dom)}, {true, true}, tr, "transposed a")};
            const Bound fwd = same_value(op + ": one correctly rounded f32 op, one rounding");
            for (Case& c : cs) {
              const bool broadcast = c.label.rfind("broadcast", 0) == 0;
              c.bounds({fwd}, {broadcast ? sum_bound() : same_value(op + " gradient: elementwise, correctly rounded")});
              if (broadcast) c.allow(abs_terms_allowance(c, {0}, {kSumCoef * kU}));
            }
            return cs;
          }};
}

// ---- reductions ----

using FnDims = std::function<Tensor(const Tensor&, std::vector<int64_t>, bool)>;

Row reduce_row(const std::string& op, FnDims f) {
  return {op, kFloat, [op, f](Rng& rng, DType dt) {
            auto with = [f](std::vector<int64_t> dims, bool keep, bool permuted) {
              return [f, dims, keep, permuted](const std::vector<Tensor>& in) {
                Tensor x = permuted ? in[0].permute({2, 0, 1}) : in[0];
                return std::vector<Tensor>{f(x, dims, keep)};
              };
            };
            std::vector<Case> cs = {
                single({input(rng, {6, 35, 9}, dt)}, {true}, with({}, false, false), "all"),
                single({input(rng, {6, 35, 9}, dt)}, {true}, with({1}, false, false), "dim 1"),
                single({input(rng, {6, 35, 9}, dt)}, {true}, with({0, 2}, true, false), "dims 0, 2 keepdim"),
                single({input(rng, {6, 35, 9}, dt)}, {true}, with({-1}, false, true), "permuted, last"),
                single({input(rng, {3, 5000}, dt)}, {true}, with({1}, false, false), "long rows"),
                single({input(rng, {70000}, dt)}, {true}, with({0}, false, false), "one long range (split)"),
                single({input(rng, {4000, 40}, dt)}, {true}, with({0}, false, false), "over the leading dim")};
            const double uT = parity::unit_roundoff(dt);
            for (Case& c : cs) {
              if (op == "sum" || op == "mean") {
                c.bounds({sum_bound()}, {same_value(op + " gradient: dy expanded (and times 1/n)")});
                c.allow(abs_terms_allowance(c, {kSumCoef * kU}, {0}));
              } else if (op == "max") {
                c.bounds({exact("max: a selection")}, {same_value("max gradient: dy / ties at the maxima")});
              } else {  // var
                c.bounds({Bound::within(2, "var: composed; the mean may round apart").plus_rel(16 * kU)},
                         {Bound::within(2, "var gradient: composed, a cancelling sum of centred values")
                              .plus_max_rel(4 * uT + kSumCoef * kU)});
              }
            }
            return cs;
          }};
}

std::vector<Case> where_cases(Rng& rng, DType dt) {
  auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{where(in[2], in[0], in[1])}; };
  std::vector<Case> cs;
  for (DType mask_dt : {DType::boolean, DType::u8}) {
    const std::string tag = std::string(", ") + dtype_name(mask_dt) + " mask";
    Case same = single({input(rng, {9, 13}, dt), input(rng, {9, 13}, dt), mask_input(rng, {9, 13}, mask_dt)},
                       {true, true, false}, f, "same shape" + tag);
    same.bounds({exact("where: a selection")}, {exact("where gradient: dy or 0")});
    Case bc = single({input(rng, {9, 1}, dt), input(rng, {13}, dt), mask_input(rng, {1, 13}, mask_dt)}, {true, true, false},
                     f, "broadcast" + tag);
    bc.bounds({exact("where: a selection")}, {sum_bound()}).allow(abs_terms_allowance(bc, {0}, {kSumCoef * kU}));
    cs.push_back(same);
    cs.push_back(bc);
  }
  return cs;
}

// ---- matmul ----

std::vector<Case> matmul_cases(Rng& rng, DType dt) {
  auto mm = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], in[1])}; };
  auto mm_bt = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], in[1].transpose(-2, -1))}; };
  auto mm_at = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0].transpose(-2, -1), in[1])}; };
  auto mm_strided = [](const std::vector<Tensor>& in) {  // a view cuBLAS cannot read: copied first
    return std::vector<Tensor>{matmul(in[0].slice(1, 0, in[0].size(1), 2), in[1])};
  };
  struct Spec {
    Shape a, b;
    Apply f;
    std::string label;
    int64_t k;              // the longest inner length: forward K, dA's N, dB's M (times a shared batch)
    bool batch_broadcast;   // a backward sums rounded partial products over a broadcast batch
  };
  const std::vector<Spec> specs = {
      {{5, 7}, {7, 9}, mm, "(5, 7) @ (7, 9)", 9, false},
      {{3, 17, 33}, {3, 33, 19}, mm, "batched", 33, false},
      {{2, 3, 8, 16}, {16, 5}, mm, "broadcast batch", 48, false},  // dB: one GEMM over K = 2 * 3 * 8
      {{3, 1, 8, 16}, {2, 16, 5}, mm, "broadcast both", 16, true},
      {{6, 32}, {24, 32}, mm_bt, "a @ b^T", 32, false},
      {{32, 6}, {32, 24}, mm_at, "a^T @ b", 32, false},
      {{5, 14}, {7, 3}, mm_strided, "column stride 2", 7, false},
      {{7}, {7, 4}, mm, "vector @ matrix", 7, false},
      {{64, 96}, {96, 80}, mm, "(64, 96) @ (96, 80)", 96, false}};
  std::vector<Case> cs;
  for (const Spec& s : specs) {
    Case c = single({input(rng, s.a, dt), input(rng, s.b, dt)}, {true, true}, s.f, s.label);
    const double coef = (double(s.k) / 4 + 4) * kU + (s.batch_broadcast ? 2 * parity::unit_roundoff(dt) : 0);
    const Bound b = Bound::within(1, "matmul: f32 accumulation over K = " + std::to_string(s.k) + ", one rounding");
    c.bounds({b}, {b}).allow(abs_terms_allowance(c, {coef}, {coef}));
    cs.push_back(c);
  }
  return cs;
}

// ---- indexing ----

std::vector<Case> embedding_cases(Rng& rng, DType dt) {
  auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{embedding(in[0], in[1])}; };
  std::vector<Case> cs = {
      single({input(rng, {13, 24}, dt), ids_input(rng, {3, 5}, 0, 12)}, {true, false}, f, "small"),
      single({input(rng, {50, 300}, dt), ids_input(rng, {40}, 0, 9)}, {true, false}, f, "many repeats, wide"),
      single({input(rng, {50, 300}, dt), ids_input(rng, {6, 7}, 0, 9, DType::i32)}, {true, false}, f, "i32 ids, repeats")};
  for (Case& c : cs) {
    // The backward sums each row's gradients: CUDA in f32, then one rounding; the CPU adds into
    // the 16-bit gradient row, rounding after every add: (repeats + 1) u_T on its side.
    std::map<int64_t, int64_t> count;
    for (double id : c.inputs[1].to_vector()) ++count[int64_t(id)];
    int64_t repeats = 0;
    for (auto [id, n] : count) repeats = std::max(repeats, n);
    const double coef = (dt == DType::f32 ? 0 : double(repeats + 1) * parity::unit_roundoff(dt)) +
                        (double(repeats) + kSumCoef) * kU;
    c.bounds({exact("embedding: a gather")}, {Bound::within(1, "embedding gradient: a scatter-add of " +
                                                                   std::to_string(repeats) + " rows at most")});
    c.allow(abs_terms_allowance(c, {0}, {coef}));
  }
  return cs;
}

// argmax, topk, matmul, embedding, cat, stack, dropout.
void add_selection_and_copy_rows(std::vector<Row>& t) {
  t.push_back({"argmax", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](int64_t dim) {
                   return [dim](const std::vector<Tensor>& in) { return std::vector<Tensor>{argmax(in[0], dim)}; };
                 };
                 std::vector<Case> cs = {single({input(rng, {7, 50}, dt)}, {false}, f(-1), "rows"),
                                         single({input(rng, {7, 50}, dt)}, {false}, f(0), "columns"),
                                         single({input(rng, {3, 9000}, dt)}, {false}, f(1), "long rows")};
                 for (Case& c : cs) c.bounds({exact("argmax: the first maximum")}, {exact("no gradient")});
                 return cs;
               }});
  t.push_back({"topk", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](int64_t k, int64_t dim) {
                   return [k, dim](const std::vector<Tensor>& in) {
                     auto [v, i] = topk(in[0], k, dim);
                     return std::vector<Tensor>{v, i};
                   };
                 };
                 std::vector<Case> cs = {single({input(rng, {7, 50}, dt)}, {false}, f(3, -1), "k 3"),
                                         single({input(rng, {7, 50}, dt)}, {false}, f(7, 0), "k = len, dim 0"),
                                         single({input(rng, {2, 3000}, dt)}, {false}, f(5, 1), "long rows")};
                 for (Case& c : cs) c.bounds({exact("topk: a selection, ties by index")}, {exact("no gradient")});
                 return cs;
               }});

  t.push_back({"matmul", kFloat, matmul_cases});
  t.push_back({"embedding", kFloat, embedding_cases});

  t.push_back({"cat", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{cat({in[0], in[1].transpose(0, 1), in[2]}, 1)};
                 };
                 Case c = single({input(rng, {5, 3}, dt), input(rng, {7, 5}, dt), input(rng, {5, 1}, dt)},
                                 {true, true, true}, f, "dim 1, a transposed part");
                 return std::vector<Case>{c.bounds({exact("cat: a copy")}, {exact("cat gradient: slices of dy")})};
               }});
  t.push_back({"stack", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{stack({in[0], in[1]}, 1)}; };
                 Case c = single({input(rng, {5, 3}, dt), input(rng, {5, 3}, dt)}, {true, true}, f, "dim 1");
                 return std::vector<Case>{c.bounds({exact("stack: a copy")}, {exact("stack gradient: slices of dy")})};
               }});

  t.push_back({"dropout", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{dropout(in[0], 0.3, true, uint64_t(1234))};
                 };
                 auto ft = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{dropout(in[0].transpose(0, 1), 0.5, true, uint64_t(99))};
                 };
                 std::vector<Case> cs = {single({input(rng, {33, 65}, dt)}, {true}, f, "same seed, same mask"),
                                         single({input(rng, {65, 33}, dt)}, {true}, ft, "transposed")};
                 const Bound b = exact("dropout: the Philox mask and x * 1/(1-p), one correctly rounded product");
                 for (Case& c : cs) c.bounds({b}, {b});
                 return cs;
               }});
}

std::vector<Row> make_table() {
  std::vector<Row> t;
  add_basic_rows(t);
  add_fused_rows(t);
  return t;
}

}  // namespace

void add_basic_rows(std::vector<Row>& t) {
  // views: computed on each device, compared after a copy, gradients through the view's backward
  t.push_back(view_row("reshape", [](const Tensor& x) { return x.reshape({-1}); }));
  t.push_back(view_row("permute", [](const Tensor& x) { return x.dim() == 2 ? x.permute({1, 0}) : x; }));
  t.push_back(view_row("transpose", [](const Tensor& x) { return x.dim() == 2 ? x.transpose(0, 1) : x; }));
  t.push_back(view_row("narrow", [](const Tensor& x) { return x.narrow(0, 1, x.size(0) - 2); }));
  {  // expand's gradient sums the three copies
    Row r = view_row("expand", [](const Tensor& x) {
      Shape sh = x.shape();
      sh.insert(sh.begin(), 3);
      return x.unsqueeze(0).expand(sh);
    });
    auto inner = r.cases;
    r.cases = [inner](Rng& rng, DType dt) {
      std::vector<Case> cs = inner(rng, dt);
      for (Case& c : cs) {
        c.bounds({exact("expand: moves values")}, {sum_bound()}).allow(abs_terms_allowance(c, {0}, {kSumCoef * kU}));
      }
      return cs;
    };
    t.push_back(r);
  }
  t.push_back(view_row("squeeze", [](const Tensor& x) { return x.unsqueeze(1).squeeze(1); }));
  t.push_back(view_row("unsqueeze", [](const Tensor& x) { return x.unsqueeze(-1); }));
  t.push_back(view_row("split", [](const Tensor& x) { return split(x, 3, 0)[1]; }));
  t.push_back(view_row("contiguous", [](const Tensor& x) { return x.contiguous(); }));
  t.push_back(view_row("to_dtype", [](const Tensor& x) { return x.to(x.dtype() == DType::f32 ? DType::bf16 : DType::f32); }));

  t.push_back(binary_row("add", [](const Tensor& a, const Tensor& b) { return add(a, b); }));
  t.push_back(binary_row("sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }));
  t.push_back(binary_row("mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }));
  t.push_back(binary_row("div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, Domain::positive));

  UnarySpec sign;
  sign.exact_forward = sign.exact_backward = true;
  sign.why = "a sign change or selection";
  const std::string lib = "a libm/libdevice function: ";
  t.push_back(unary_row("neg", [](const Tensor& x) { return neg(x); }, sign));
  t.push_back(unary_row("exp", [](const Tensor& x) { return exp(x); }, {false, false, 4, 5, 0, 0, lib + "expf"}));
  t.push_back(unary_row("log", [](const Tensor& x) { return log(x); }, {false, false, 3, 0, 0, 0, lib + "logf"},
                        Domain::positive));
  t.push_back(unary_row("sqrt", [](const Tensor& x) { return sqrt(x); }, {false, false, 0, 0, 0, 0, "sqrt: IEEE"},
                        Domain::positive));
  t.push_back(unary_row("rsqrt", [](const Tensor& x) { return rsqrt(x); }, {false, false, 0, 0, 0, 0, "1 / sqrt: IEEE"},
                        Domain::positive));
  t.push_back(pow_row());
  t.push_back(unary_row("abs", [](const Tensor& x) { return abs(x); }, sign));
  t.push_back(unary_row("tanh", [](const Tensor& x) { return tanh(x); },
                        {false, false, 5, 5, 0, 32, lib + "tanhf; 1 - tanh^2 cancels"}));
  t.push_back(unary_row("sigmoid", [](const Tensor& x) { return sigmoid(x); },
                        {false, false, 5, 5, 0, 32, lib + "expf; s (1 - s)"}));
  t.push_back(unary_row("relu", [](const Tensor& x) { return relu(x); }, sign));
  t.push_back(unary_row("gelu", [](const Tensor& x) { return gelu(x); },
                        {false, false, 4, 4, 8, 32, lib + "erff; 1 + erf cancels for x < 0"}));
  t.push_back(unary_row("gelu_tanh", [](const Tensor& x) { return gelu_tanh(x); },
                        {false, false, 4, 4, 16, 64, lib + "tanhf; 1 + tanh cancels for x < 0"}));
  t.push_back(unary_row("quick_gelu", [](const Tensor& x) { return quick_gelu(x); },
                        {false, false, 8, 8, 0, 64, lib + "expf of a rounded 1.702 x; the derivative's terms cancel"}));
  t.push_back(clamp_row());

  t.push_back({"where", kFloat, where_cases});
  t.push_back({"masked_fill", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{masked_fill(in[0].transpose(0, 1), in[1], -3.0)};
                 };
                 std::vector<Case> cs = {
                     single({input(rng, {13, 9}, dt), mask_input(rng, {9, 13})}, {true, false}, f, "transposed x"),
                     single({input(rng, {13, 9}, dt), mask_input(rng, {9, 13}, DType::u8)}, {true, false}, f,
                            "transposed x, u8 mask")};
                 for (Case& c : cs) c.bounds({exact("masked_fill: a selection")}, {exact("masked_fill gradient: dy or 0")});
                 return cs;
               }});

  t.push_back(reduce_row("sum", [](const Tensor& x, std::vector<int64_t> d, bool k) { return sum(x, d, k); }));
  t.push_back(reduce_row("mean", [](const Tensor& x, std::vector<int64_t> d, bool k) { return mean(x, d, k); }));
  t.push_back(reduce_row("max", [](const Tensor& x, std::vector<int64_t> d, bool k) { return max(x, d, k); }));
  t.push_back(reduce_row("var", [](const Tensor& x, std::vector<int64_t> d, bool k) { return var(x, d, 1, k); }));

  add_selection_and_copy_rows(t);
}

const std::vector<Row>& table() {
  static const std::vector<Row> t = make_table();
  return t;
}

const Row& row(const std::string& op) {
  for (const Row& r : table()) {
    if (r.op == op) return r;
  }
  throw std::runtime_error("parity table: no row for '" + op + "'");
}

}  // namespace minivl::parity_cuda
