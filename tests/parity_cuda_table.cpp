// The CPU <-> CUDA parity table: a row per op in core/ops.def (a new op gets its
// parity test by adding a row here; the coverage test in tests/test_parity_cuda.cpp
// fails until it has one), and the random-input helpers the rows use. Each row's
// cases cover several shapes: odd sizes, broadcasts, non-contiguous views made on
// each device, long rows that take the block paths.
#include "tests/parity_cuda_table.h"

#include <cmath>
#include <utility>

#include "tests/core_test_util.h"

namespace minivl::parity_cuda {

// A CPU tensor of `dtype` (values drawn in f64, then converted on the CPU, so both devices see identical bits).
Tensor input(Rng& rng, const Shape& shape, DType dtype, Domain dom) {
  std::vector<double> v(size_t(shape_numel(shape)));
  for (double& x : v) x = dom == Domain::positive ? rng.uniform(0.5, 2.0) : rng.uniform(-2.0, 2.0);
  return from_vector(v, shape, dtype);
}

namespace {

Tensor ids_input(Rng& rng, const Shape& shape, int64_t lo, int64_t hi) {
  std::vector<int64_t> v(size_t(shape_numel(shape)));
  for (int64_t& x : v) x = rng.integer(lo, hi);
  return from_vector_i64(v, shape);
}
Tensor mask_input(Rng& rng, const Shape& shape) {
  std::vector<double> v(size_t(shape_numel(shape)));
  for (double& x : v) x = rng.uniform(0, 1) < 0.5 ? 1.0 : 0.0;
  return from_vector(v, shape, DType::boolean);
}
Tensor normalized_rows(Rng& rng, int64_t n, int64_t d, DType dtype) {
  Tensor x = input(rng, {n, d}, DType::f64);
  std::vector<double> v = x.to_vector();
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += v[size_t(i * d + j)] * v[size_t(i * d + j)];
    for (int64_t j = 0; j < d; ++j) v[size_t(i * d + j)] /= std::sqrt(s);
  }
  return from_vector(v, {n, d}, dtype);
}

// ---- the table ----

const std::vector<DType> kFloat = {DType::f32, DType::bf16, DType::f16};
const std::vector<DType> kF32Bf16 = {DType::f32, DType::bf16};

using Fn1 = std::function<Tensor(const Tensor&)>;

// A unary-style op on three layouts: a small vector, an odd 2-d shape, and a transposed view.
Row unary_row(const std::string& op, Fn1 f, Domain dom = Domain::any, std::vector<DType> dtypes = kFloat) {
  return {op, dtypes, [f, dom](Rng& rng, DType dt) {
            auto one = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0])}; };
            auto tr = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0].transpose(0, 1))}; };
            return std::vector<Case>{{{input(rng, {7}, dt, dom)}, {true}, one, "(7)"},
                                     {{input(rng, {33, 65}, dt, dom)}, {true}, one, "(33, 65)"},
                                     {{input(rng, {65, 33}, dt, dom)}, {true}, tr, "(65, 33)^T"}};
          }};
}

using Fn2 = std::function<Tensor(const Tensor&, const Tensor&)>;

Row binary_row(const std::string& op, Fn2 f, Domain b_dom = Domain::any) {
  return {op, kFloat, [f, b_dom](Rng& rng, DType dt) {
            auto same = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0], in[1])}; };
            auto tr = [f](const std::vector<Tensor>& in) { return std::vector<Tensor>{f(in[0].transpose(0, 1), in[1])}; };
            return std::vector<Case>{
                {{input(rng, {17, 31}, dt), input(rng, {17, 31}, dt, b_dom)}, {true, true}, same, "same shape"},
                {{input(rng, {17, 1}, dt), input(rng, {1, 31}, dt, b_dom)}, {true, true}, same, "broadcast"},
                {{input(rng, {5, 3, 1}, dt), input(rng, {7}, dt, b_dom)}, {true, true}, same, "broadcast 3-d"},
                {{input(rng, {31, 17}, dt), input(rng, {17, 31}, dt, b_dom)}, {true, true}, tr, "transposed a"}};
          }};
}

using FnDims = std::function<Tensor(const Tensor&, std::vector<int64_t>, bool)>;

Row reduce_row(const std::string& op, FnDims f) {
  return {op, kFloat, [f](Rng& rng, DType dt) {
            auto with = [f](std::vector<int64_t> dims, bool keep, bool permuted) {
              return [f, dims, keep, permuted](const std::vector<Tensor>& in) {
                Tensor x = permuted ? in[0].permute({2, 0, 1}) : in[0];
                return std::vector<Tensor>{f(x, dims, keep)};
              };
            };
            return std::vector<Case>{
                {{input(rng, {6, 35, 9}, dt)}, {true}, with({}, false, false), "all"},
                {{input(rng, {6, 35, 9}, dt)}, {true}, with({1}, false, false), "dim 1"},
                {{input(rng, {6, 35, 9}, dt)}, {true}, with({0, 2}, true, false), "dims 0, 2 keepdim"},
                {{input(rng, {6, 35, 9}, dt)}, {true}, with({-1}, false, true), "permuted, last"},
                {{input(rng, {3, 5000}, dt)}, {true}, with({1}, false, false), "long rows"},
                {{input(rng, {70000}, dt)}, {true}, with({0}, false, false), "one long range (split)"},
                {{input(rng, {4000, 40}, dt)}, {true}, with({0}, false, false), "over the leading dim"}};
          }};
}

Case single(std::vector<Tensor> in, std::vector<bool> grad, std::function<std::vector<Tensor>(const std::vector<Tensor>&)> f,
            std::string label) {
  return {std::move(in), std::move(grad), std::move(f), std::move(label)};
}

std::vector<Row> make_table() {
  std::vector<Row> t;

  // views: computed on each device, compared after a copy, gradients through the view's backward
  t.push_back(unary_row("reshape", [](const Tensor& x) { return x.reshape({-1}); }));
  t.push_back(unary_row("permute", [](const Tensor& x) { return x.dim() == 2 ? x.permute({1, 0}) : x; }));
  t.push_back(unary_row("transpose", [](const Tensor& x) { return x.dim() == 2 ? x.transpose(0, 1) : x; }));
  t.push_back(unary_row("narrow", [](const Tensor& x) { return x.narrow(0, 1, x.size(0) - 2); }));
  t.push_back(unary_row("expand", [](const Tensor& x) {
    Shape s = x.shape();
    s.insert(s.begin(), 3);
    return x.unsqueeze(0).expand(s);
  }));
  t.push_back(unary_row("squeeze", [](const Tensor& x) { return x.unsqueeze(1).squeeze(1); }));
  t.push_back(unary_row("unsqueeze", [](const Tensor& x) { return x.unsqueeze(-1); }));
  t.push_back(unary_row("split", [](const Tensor& x) { return split(x, 3, 0)[1]; }));
  t.push_back(unary_row("contiguous", [](const Tensor& x) { return x.contiguous(); }));
  t.push_back(unary_row("to_dtype", [](const Tensor& x) { return x.to(x.dtype() == DType::f32 ? DType::bf16 : DType::f32); }));

  t.push_back(binary_row("add", [](const Tensor& a, const Tensor& b) { return add(a, b); }));
  t.push_back(binary_row("sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }));
  t.push_back(binary_row("mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }));
  t.push_back(binary_row("div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, Domain::positive));

  t.push_back(unary_row("neg", [](const Tensor& x) { return neg(x); }));
  t.push_back(unary_row("exp", [](const Tensor& x) { return exp(x); }));
  t.push_back(unary_row("log", [](const Tensor& x) { return log(x); }, Domain::positive));
  t.push_back(unary_row("sqrt", [](const Tensor& x) { return sqrt(x); }, Domain::positive));
  t.push_back(unary_row("rsqrt", [](const Tensor& x) { return rsqrt(x); }, Domain::positive));
  t.push_back(unary_row("pow", [](const Tensor& x) { return pow(x, 2.5); }, Domain::positive));
  t.push_back(unary_row("abs", [](const Tensor& x) { return abs(x); }));
  t.push_back(unary_row("tanh", [](const Tensor& x) { return tanh(x); }));
  t.push_back(unary_row("sigmoid", [](const Tensor& x) { return sigmoid(x); }));
  t.push_back(unary_row("relu", [](const Tensor& x) { return relu(x); }));
  t.push_back(unary_row("gelu", [](const Tensor& x) { return gelu(x); }));
  t.push_back(unary_row("gelu_tanh", [](const Tensor& x) { return gelu_tanh(x); }));
  t.push_back(unary_row("quick_gelu", [](const Tensor& x) { return quick_gelu(x); }));
  t.push_back(unary_row("clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }));

  t.push_back({"where", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{where(in[2], in[0], in[1])}; };
                 return std::vector<Case>{
                     single({input(rng, {9, 13}, dt), input(rng, {9, 13}, dt), mask_input(rng, {9, 13})},
                            {true, true, false}, f, "same shape"),
                     single({input(rng, {9, 1}, dt), input(rng, {13}, dt), mask_input(rng, {1, 13})},
                            {true, true, false}, f, "broadcast")};
               }});
  t.push_back({"masked_fill", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{masked_fill(in[0].transpose(0, 1), in[1], -3.0)};
                 };
                 return std::vector<Case>{
                     single({input(rng, {13, 9}, dt), mask_input(rng, {9, 13})}, {true, false}, f, "transposed x")};
               }});

  t.push_back(reduce_row("sum", [](const Tensor& x, std::vector<int64_t> d, bool k) { return sum(x, d, k); }));
  t.push_back(reduce_row("mean", [](const Tensor& x, std::vector<int64_t> d, bool k) { return mean(x, d, k); }));
  t.push_back(reduce_row("max", [](const Tensor& x, std::vector<int64_t> d, bool k) { return max(x, d, k); }));
  t.push_back(reduce_row("var", [](const Tensor& x, std::vector<int64_t> d, bool k) { return var(x, d, 1, k); }));

  t.push_back({"argmax", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](int64_t dim) {
                   return [dim](const std::vector<Tensor>& in) { return std::vector<Tensor>{argmax(in[0], dim)}; };
                 };
                 return std::vector<Case>{single({input(rng, {7, 50}, dt)}, {false}, f(-1), "rows"),
                                          single({input(rng, {7, 50}, dt)}, {false}, f(0), "columns"),
                                          single({input(rng, {3, 9000}, dt)}, {false}, f(1), "long rows")};
               }});
  t.push_back({"topk", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](int64_t k, int64_t dim) {
                   return [k, dim](const std::vector<Tensor>& in) {
                     auto [v, i] = topk(in[0], k, dim);
                     return std::vector<Tensor>{v, i};
                   };
                 };
                 return std::vector<Case>{single({input(rng, {7, 50}, dt)}, {false}, f(3, -1), "k 3"),
                                          single({input(rng, {7, 50}, dt)}, {false}, f(7, 0), "k = len, dim 0"),
                                          single({input(rng, {2, 3000}, dt)}, {false}, f(5, 1), "long rows")};
               }});

  t.push_back({"matmul", kFloat, [](Rng& rng, DType dt) {
                 auto mm = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], in[1])}; };
                 auto mm_bt = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{matmul(in[0], in[1].transpose(-2, -1))};
                 };
                 auto mm_at = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{matmul(in[0].transpose(-2, -1), in[1])};
                 };
                 auto mm_strided = [](const std::vector<Tensor>& in) {  // a view cuBLAS cannot read: copied first
                   return std::vector<Tensor>{matmul(in[0].slice(1, 0, in[0].size(1), 2), in[1])};
                 };
                 return std::vector<Case>{
                     single({input(rng, {5, 7}, dt), input(rng, {7, 9}, dt)}, {true, true}, mm, "(5, 7) @ (7, 9)"),
                     single({input(rng, {3, 17, 33}, dt), input(rng, {3, 33, 19}, dt)}, {true, true}, mm, "batched"),
                     single({input(rng, {2, 3, 8, 16}, dt), input(rng, {16, 5}, dt)}, {true, true}, mm,
                            "broadcast batch"),
                     single({input(rng, {3, 1, 8, 16}, dt), input(rng, {2, 16, 5}, dt)}, {true, true}, mm,
                            "broadcast both"),
                     single({input(rng, {6, 32}, dt), input(rng, {24, 32}, dt)}, {true, true}, mm_bt, "a @ b^T"),
                     single({input(rng, {32, 6}, dt), input(rng, {32, 24}, dt)}, {true, true}, mm_at, "a^T @ b"),
                     single({input(rng, {5, 14}, dt), input(rng, {7, 3}, dt)}, {true, true}, mm_strided,
                            "column stride 2"),
                     single({input(rng, {7}, dt), input(rng, {7, 4}, dt)}, {true, true}, mm, "vector @ matrix"),
                     single({input(rng, {64, 96}, dt), input(rng, {96, 80}, dt)}, {true, true}, mm, "(64, 96) @ (96, 80)")};
               }});

  auto softmax_cases = [](bool log_out) {
    return [log_out](Rng& rng, DType dt) {
      auto f = [log_out](int64_t dim) {
        return [log_out, dim](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{log_out ? log_softmax(in[0], dim) : softmax(in[0], dim)};
        };
      };
      return std::vector<Case>{single({input(rng, {7, 33}, dt)}, {true}, f(-1), "rows"),
                               single({input(rng, {7, 33}, dt)}, {true}, f(0), "dim 0"),
                               single({input(rng, {3, 1500}, dt)}, {true}, f(-1), "long rows")};
    };
  };
  t.push_back({"softmax", kFloat, softmax_cases(false)});
  t.push_back({"log_softmax", kFloat, softmax_cases(true)});

  t.push_back({"cross_entropy", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](double smoothing, Reduction red) {
                   return [smoothing, red](const std::vector<Tensor>& in) {
                     return std::vector<Tensor>{cross_entropy(in[0], in[1], -100, smoothing, red)};
                   };
                 };
                 auto targets = [&](int64_t n, int64_t c) {
                   Tensor t = ids_input(rng, {n}, 0, c - 1);
                   std::vector<double> v = t.to_vector();
                   std::vector<int64_t> ids(v.begin(), v.end());
                   ids[1] = -100;  // one ignored row
                   return from_vector_i64(ids, {n});
                 };
                 return std::vector<Case>{
                     single({input(rng, {9, 11}, dt), targets(9, 11)}, {true, false}, f(0.0, Reduction::mean), "mean"),
                     single({input(rng, {9, 11}, dt), targets(9, 11)}, {true, false}, f(0.1, Reduction::none),
                            "smoothing, none"),
                     single({input(rng, {4, 2000}, dt), targets(4, 2000)}, {true, false}, f(0.0, Reduction::sum),
                            "long rows, sum")};
               }});

  t.push_back({"embedding", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{embedding(in[0], in[1])}; };
                 return std::vector<Case>{
                     single({input(rng, {13, 24}, dt), ids_input(rng, {3, 5}, 0, 12)}, {true, false}, f, "small"),
                     single({input(rng, {50, 300}, dt), ids_input(rng, {40}, 0, 9)}, {true, false}, f,
                            "many repeats, wide")};
               }});

  t.push_back({"cat", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{cat({in[0], in[1].transpose(0, 1), in[2]}, 1)};
                 };
                 return std::vector<Case>{single({input(rng, {5, 3}, dt), input(rng, {7, 5}, dt), input(rng, {5, 1}, dt)},
                                                 {true, true, true}, f, "dim 1, a transposed part")};
               }});
  t.push_back({"stack", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{stack({in[0], in[1]}, 1)}; };
                 return std::vector<Case>{
                     single({input(rng, {5, 3}, dt), input(rng, {5, 3}, dt)}, {true, true}, f, "dim 1")};
               }});

  t.push_back({"dropout", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{dropout(in[0], 0.3, true, uint64_t(1234))};
                 };
                 auto ft = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{dropout(in[0].transpose(0, 1), 0.5, true, uint64_t(99))};
                 };
                 return std::vector<Case>{single({input(rng, {33, 65}, dt)}, {true}, f, "same seed, same mask"),
                                          single({input(rng, {65, 33}, dt)}, {true}, ft, "transposed")};
               }});

  t.push_back({"layernorm", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{layernorm(in[0], in[1], in[2], 1e-5)};
                 };
                 auto plain = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{layernorm(in[0], Tensor(), Tensor(), 1e-5)};
                 };
                 return std::vector<Case>{
                     single({input(rng, {6, 40}, dt), input(rng, {40}, dt), input(rng, {40}, dt)}, {true, true, true}, f,
                            "(6, 40) with weight and bias"),
                     single({input(rng, {3, 5, 768}, dt), input(rng, {768}, dt), input(rng, {768}, dt)},
                            {true, true, true}, f, "(3, 5, 768)"),
                     single({input(rng, {7, 33}, dt)}, {true}, plain, "no weight, odd C")};
               }});
  t.push_back({"add_layernorm", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   auto [s, y] = add_layernorm(in[0], in[1], in[2], in[3], 1e-5);
                   return std::vector<Tensor>{s, y};
                 };
                 return std::vector<Case>{single(
                     {input(rng, {9, 64}, dt), input(rng, {9, 64}, dt), input(rng, {64}, dt), input(rng, {64}, dt)},
                     {true, true, true, true}, f, "(9, 64)")};
               }});

  auto scale_input = [](DType dt) { return from_vector({std::log(10.0)}, {}, dt); };
  t.push_back({"clip_loss", kFloat, [scale_input](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) { return std::vector<Tensor>{clip_loss(in[0], in[1], in[2])}; };
                 return std::vector<Case>{
                     single({normalized_rows(rng, 8, 16, dt), normalized_rows(rng, 8, 16, dt), scale_input(dt)},
                            {true, true, true}, f, "N 8, d 16"),
                     single({normalized_rows(rng, 77, 40, dt), normalized_rows(rng, 77, 40, dt), scale_input(dt)},
                            {true, true, true}, f, "N 77, d 40"),
                     // Several 64-wide feature slices and a partial row tile (the tensor-core path's pipeline).
                     single({normalized_rows(rng, 130, 136, dt), normalized_rows(rng, 130, 136, dt), scale_input(dt)},
                            {true, true, true}, f, "N 130, d 136")};
               }});
  t.push_back({"siglip_loss", kFloat, [scale_input](Rng& rng, DType dt) {
                 auto f = [](const std::vector<Tensor>& in) {
                   return std::vector<Tensor>{siglip_loss(in[0], in[1], in[2], in[3])};
                 };
                 return std::vector<Case>{single({normalized_rows(rng, 8, 16, dt), normalized_rows(rng, 8, 16, dt),
                                                  scale_input(dt), from_vector({-2.0}, {}, dt)},
                                                 {true, true, true, true}, f, "N 8, d 16"),
                                          single({normalized_rows(rng, 77, 40, dt), normalized_rows(rng, 77, 40, dt),
                                                  scale_input(dt), from_vector({-2.0}, {}, dt)},
                                                 {true, true, true, true}, f, "N 77, d 40")};
               }});
  t.push_back({"attention", kFloat, [](Rng& rng, DType dt) {
                 auto f = [](bool causal, bool padded) {
                   return [causal, padded](const std::vector<Tensor>& in) {
                     AttentionOptions o;
                     o.causal = causal;
                     if (padded) o.key_padding_mask = in[3];
                     return std::vector<Tensor>{attention(in[0], in[1], in[2], o)};
                   };
                 };
                 auto transposed = [](const std::vector<Tensor>& in) {  // (B, T, H, D) views, as a model makes them
                   return std::vector<Tensor>{attention(in[0].transpose(1, 2), in[1].transpose(1, 2), in[2].transpose(1, 2))};
                 };
                 return std::vector<Case>{
                     single({input(rng, {2, 3, 17, 32}, dt), input(rng, {2, 3, 17, 32}, dt), input(rng, {2, 3, 17, 32}, dt)},
                            {true, true, true}, f(false, false), "(2, 3, 17, 32)"),
                     single({input(rng, {1, 2, 70, 64}, dt), input(rng, {1, 2, 70, 64}, dt), input(rng, {1, 2, 70, 64}, dt)},
                            {true, true, true}, f(true, false), "causal, T 70"),
                     single({input(rng, {2, 2, 9, 16}, dt), input(rng, {2, 2, 13, 16}, dt), input(rng, {2, 2, 13, 16}, dt),
                             mask_input(rng, {2, 13})},
                            {true, true, true, false}, f(false, true), "key padding, Tq 9, Tk 13"),
                     single({input(rng, {2, 11, 4, 32}, dt), input(rng, {2, 11, 4, 32}, dt), input(rng, {2, 11, 4, 32}, dt)},
                            {true, true, true}, transposed, "transposed (B, T, H, D) views"),
                     // Every mode at every templated head dim (32, 64, 128), T off the 64-tile.
                     single({input(rng, {1, 2, 37, 64}, dt), input(rng, {1, 2, 37, 64}, dt), input(rng, {1, 2, 37, 64}, dt)},
                            {true, true, true}, f(false, false), "no mask, D 64, T 37"),
                     single({input(rng, {2, 2, 9, 64}, dt), input(rng, {2, 2, 13, 64}, dt), input(rng, {2, 2, 13, 64}, dt),
                             mask_input(rng, {2, 13})},
                            {true, true, true, false}, f(true, true), "causal + padding, D 64, Tq 9, Tk 13"),
                     single({input(rng, {1, 2, 20, 128}, dt), input(rng, {1, 2, 33, 128}, dt), input(rng, {1, 2, 33, 128}, dt)},
                            {true, true, true}, f(true, false), "causal, D 128, Tq 20 < Tk 33"),
                     single({input(rng, {1, 2, 33, 128}, dt), input(rng, {1, 2, 20, 128}, dt), input(rng, {1, 2, 20, 128}, dt)},
                            {true, true, true}, f(true, false), "causal, D 128, Tq 33 > Tk 20 (all-masked rows)"),
                     single({input(rng, {1, 3, 70, 32}, dt), input(rng, {1, 3, 70, 32}, dt), input(rng, {1, 3, 70, 32}, dt),
                             mask_input(rng, {1, 70})},
                            {true, true, true, false}, f(false, true), "padding, D 32, T 70")};
               }});
  return t;
}

}  // namespace

const std::vector<Row>& table() {
  static const std::vector<Row> t = make_table();
  return t;
}

}  // namespace minivl::parity_cuda
