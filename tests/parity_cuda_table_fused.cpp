// The CPU <-> CUDA parity table, second half: the fused ops (softmax, log_softmax,
// cross_entropy, layernorm, add_layernorm, clip_loss, siglip_loss, attention). Each case's
// bound is a few ulps of the result for the final roundings plus a per-element allowance from
// the op's error model (tests/parity_allowances.h: the accumulation lengths, the terms'
// magnitudes, the 16-bit intermediates a kernel rounds). Values the op defines as zero (an
// ignored row, a masked key's gradient, a query row that sees no key) must be exactly zero.
#include <cmath>
#include <cstdio>

#include "tests/parity_allowances.h"
#include "tests/parity_cuda_table.h"

namespace minivl::parity_cuda {
namespace {

constexpr double kU = 0x1p-24;
const std::vector<DType> kFloat = {DType::f32, DType::bf16, DType::f16};

// Final roundings: `f32_ulps` for f32 results (library exp/log on both sides), 1 for 16-bit
// results (each device rounds an f32 value; the allowance covers how far those are apart).
Bound final_rounding(DType dt, double f32_ulps, const std::string& family) {
  return Bound::within(dt == DType::f32 ? f32_ulps : 1, family);
}

std::vector<Case> softmax_cases(Rng& rng, DType dt, bool log) {
  auto f = [log](int64_t dim) {
    return [log, dim](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{log ? log_softmax(in[0], dim) : softmax(in[0], dim)};
    };
  };
  std::vector<Case> cs = {single({input(rng, {7, 33}, dt)}, {true}, f(-1), "rows"),
                          single({input(rng, {7, 33}, dt)}, {true}, f(0), "dim 0"),
                          single({input(rng, {3, 1500}, dt)}, {true}, f(-1), "long rows")};
  const std::string name = log ? "log_softmax" : "softmax";
  for (Case& c : cs) {
    const int64_t dim = c.label == "dim 0" ? 0 : 1;
    const int64_t n = c.inputs[0].size(dim);
    // softmax = exp(x - max) / sum: relative, exp's ulps plus the row sum's (2 sqrt(n) + 8) u, both sides.
    Bound fwd = final_rounding(dt, log ? 2 : 4, name + " over " + std::to_string(n));
    if (!log) fwd.plus_rel(2 * (2 * std::sqrt(double(n)) + 8) * kU);
    c.bounds({fwd}, {final_rounding(dt, 2, name + " gradient over " + std::to_string(n))}).allow(softmax_allowance(dim, log));
  }
  return cs;
}

std::vector<Case> cross_entropy_cases(Rng& rng, DType dt) {
  auto f = [](int64_t ignore, double smoothing, Reduction red) {
    return [ignore, smoothing, red](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{cross_entropy(in[0], in[1], ignore, smoothing, red)};
    };
  };
  // Targets in [0, c), rows `ignored` set to `ignore` (for a valid class id as ignore_index, that class).
  auto targets = [&](int64_t n, int64_t c, int64_t ignore, std::vector<int64_t> ignored) {
    std::vector<double> v = ids_input(rng, {n}, 0, c - 1).to_vector();
    std::vector<int64_t> ids(v.begin(), v.end());
    for (int64_t& id : ids) {
      if (id == ignore) id = (id + 1) % c;  // only the chosen rows are ignored
    }
    for (int64_t r : ignored) ids[size_t(r)] = ignore;
    return from_vector_i64(ids, {n});
  };
  struct Spec {
    int64_t n, c, ignore;
    double smoothing;
    Reduction red;
    std::string label;
  };
  const std::vector<Spec> specs = {{9, 11, -100, 0.0, Reduction::mean, "mean"},
                                   {9, 11, -100, 0.1, Reduction::none, "smoothing, none"},
                                   {4, 2000, -100, 0.0, Reduction::sum, "long rows, sum"},
                                   {9, 11, 3, 0.0, Reduction::none, "ignore_index 3, none"},
                                   {12, 40, 7, 0.1, Reduction::mean, "ignore_index 7, smoothing, mean"}};
  std::vector<Case> cs;
  for (const Spec& s : specs) {
    Case c = single({input(rng, {s.n, s.c}, dt), targets(s.n, s.c, s.ignore, {1, s.n - 2})}, {true, false},
                    f(s.ignore, s.smoothing, s.red), s.label);
    // A 16-bit mean rounds the sum, then the product by 1 / count.
    const double fwd_ulps = s.red == Reduction::mean && dt != DType::f32 ? 2 : (dt == DType::f32 ? 2 : 1);
    c.bounds({Bound::within(fwd_ulps, "cross_entropy over " + std::to_string(s.c) + " classes")},
             {final_rounding(dt, 2, "cross_entropy gradient")});
    c.allow(cross_entropy_allowance(s.ignore, s.smoothing, s.red));
    cs.push_back(c);
  }
  return cs;
}

std::vector<Case> layernorm_cases(Rng& rng, DType dt) {
  auto f = [](bool w, bool b) {
    return [w, b](const std::vector<Tensor>& in) {
      return std::vector<Tensor>{layernorm(in[0], w ? in[1] : Tensor(), b ? in[w ? 2 : 1] : Tensor(), 1e-5)};
    };
  };
  struct Spec {
    Shape x;
    bool w, b;
    std::string label;
  };
  const std::vector<Spec> specs = {{{6, 40}, true, true, "(6, 40) with weight and bias"},
                                   {{3, 5, 768}, true, true, "(3, 5, 768)"},
                                   {{7, 33}, false, false, "no weight, odd C"},
                                   {{5, 96}, true, false, "weight, no bias"}};
  std::vector<Case> cs;
  for (const Spec& s : specs) {
    const int64_t C = s.x.back();
    std::vector<Tensor> in = {input(rng, s.x, dt)};
    if (s.w) in.push_back(input(rng, {C}, dt));
    if (s.b) in.push_back(input(rng, {C}, dt));
    Case c = single(in, std::vector<bool>(in.size(), true), f(s.w, s.b), s.label);
    const Bound b = final_rounding(dt, 2, "layernorm over C = " + std::to_string(C));
    c.bounds({b}, {b}).allow(layernorm_allowance(false, s.w, s.b, 1e-5));
    cs.push_back(c);
  }
  return cs;
}

std::vector<Case> add_layernorm_cases(Rng& rng, DType dt) {
  auto f = [](bool affine) {
    return [affine](const std::vector<Tensor>& in) {
      auto [s, y] = add_layernorm(in[0], in[1], affine ? in[2] : Tensor(), affine ? in[3] : Tensor(), 1e-5);
      return std::vector<Tensor>{s, y};
    };
  };
  Case affine = single({input(rng, {9, 64}, dt), input(rng, {9, 64}, dt), input(rng, {64}, dt), input(rng, {64}, dt)},
                       {true, true, true, true}, f(true), "(9, 64)");
  Case plain = single({input(rng, {2, 7, 48}, dt), input(rng, {2, 7, 48}, dt)}, {true, true}, f(false), "(2, 7, 48), no affine");
  const Bound b = final_rounding(dt, 2, "add_layernorm");
  affine.bounds({Bound::within(0, "add_layernorm sum: one addition"), b}, {b})
      .allow(layernorm_allowance(true, true, true, 1e-5));
  plain.bounds({Bound::within(0, "add_layernorm sum: one addition"), b}, {b})
      .allow(layernorm_allowance(true, false, false, 1e-5));
  return {affine, plain};
}

Tensor normalized_rows(Rng& rng, int64_t n, int64_t d, DType dtype) {
  std::vector<double> v = input(rng, {n, d}, DType::f64).to_vector();
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += v[size_t(i * d + j)] * v[size_t(i * d + j)];
    for (int64_t j = 0; j < d; ++j) v[size_t(i * d + j)] /= std::sqrt(s);
  }
  return from_vector(v, {n, d}, dtype);
}

std::vector<Case> contrastive_cases(Rng& rng, DType dt, bool siglip) {
  auto f = [siglip](const std::vector<Tensor>& in) {
    return std::vector<Tensor>{siglip ? siglip_loss(in[0], in[1], in[2], in[3]) : clip_loss(in[0], in[1], in[2])};
  };
  struct Spec {
    int64_t n, d;
    std::string label;
  };
  // N 130, d 136: several 64-wide feature slices and a partial row tile (the tensor-core path's pipeline).
  const std::vector<Spec> specs = {{8, 16, "N 8, d 16"}, {77, 40, "N 77, d 40"}, {130, 136, "N 130, d 136"}};
  std::vector<Case> cs;
  for (const Spec& s : specs) {
    std::vector<Tensor> in = {normalized_rows(rng, s.n, s.d, dt), normalized_rows(rng, s.n, s.d, dt),
                              from_vector({std::log(10.0)}, {}, dt)};
    if (siglip) in.push_back(from_vector({-2.0}, {}, dt));
    Case c = single(in, std::vector<bool>(in.size(), true), f, s.label);
    const Bound b = final_rounding(dt, 2, std::string(siglip ? "siglip_loss" : "clip_loss") + ", d " + std::to_string(s.d));
    c.bounds({b}, {b}).allow(siglip ? siglip_allowance() : clip_allowance());
    cs.push_back(c);
  }
  return cs;
}

std::vector<Case> attention_cases(Rng& rng, DType dt) {
  std::vector<AttentionShape> shapes = {
      {2, 3, 17, 17, 32},
      {1, 2, 70, 70, 64, true},
      {2, 2, 9, 13, 16, false, true},
      {2, 4, 11, 11, 32, false, false, DType::boolean, true},  // (B, T, H, D) views, as a model makes them
      // Every mode at every templated head dim (32, 64, 128), T off the 64-tile.
      {1, 2, 37, 37, 64},
      {2, 2, 9, 13, 64, true, true},
      {1, 2, 20, 33, 128, true},
      {1, 2, 33, 20, 128, true},  // Tq > Tk: the first rows see no key
      {1, 3, 70, 70, 32, false, true},
      {1, 3, 70, 70, 32, false, true, DType::u8},
  };
  // The sequence lengths of CLIP text (77) and ViTs (197, 257, 577), both head dims, both masks,
  // in the tensor-core dtypes; one head past 200 keys (the CPU reference and its error model
  // take most of the time).
  if (dt != DType::f32) {
    for (int64_t T : {77, 197, 257, 577}) {
      const int64_t H = T > 200 ? 1 : 2;
      for (int64_t D : {64, 128}) {
        shapes.push_back({1, H, T, T, D, true});
        shapes.push_back({1, H, T, T, D, false, true, D == 128 ? DType::u8 : DType::boolean});
      }
    }
  }
  std::vector<Case> cs;
  for (const AttentionShape& s : shapes) cs.push_back(attention_case(rng, dt, s));
  return cs;
}

}  // namespace

Case attention_case(Rng& rng, DType dt, const AttentionShape& s) {
  const Shape q_shape = s.bthd_views ? Shape{s.B, s.Tq, s.H, s.D} : Shape{s.B, s.H, s.Tq, s.D};
  const Shape kv_shape = s.bthd_views ? Shape{s.B, s.Tk, s.H, s.D} : Shape{s.B, s.H, s.Tk, s.D};
  std::vector<Tensor> in = {input(rng, q_shape, dt), input(rng, kv_shape, dt), input(rng, kv_shape, dt)};
  std::vector<bool> grad = {true, true, true};
  if (s.padded) {
    in.push_back(mask_input(rng, {s.B, s.Tk}, s.mask_dtype));
    grad.push_back(false);
  }
  auto f = [s](const std::vector<Tensor>& x) {
    AttentionOptions o;
    o.causal = s.causal;
    if (s.padded) o.key_padding_mask = x[3];
    if (s.bthd_views) return std::vector<Tensor>{attention(x[0].transpose(1, 2), x[1].transpose(1, 2), x[2].transpose(1, 2), o)};
    return std::vector<Tensor>{attention(x[0], x[1], x[2], o)};
  };
  char label[160];
  std::snprintf(label, sizeof label, "B %lld, H %lld, Tq %lld, Tk %lld, D %lld%s%s%s%s", (long long)s.B, (long long)s.H,
                (long long)s.Tq, (long long)s.Tk, (long long)s.D, s.causal ? ", causal" : "", s.padded ? ", padding" : "",
                s.padded ? (s.mask_dtype == DType::u8 ? " (u8)" : " (bool)") : "", s.bthd_views ? ", (B, T, H, D) views" : "");
  Case c = single(in, grad, f, label);
  const Bound b = final_rounding(dt, 2, "attention, D " + std::to_string(s.D) + ", Tk " + std::to_string(s.Tk));
  c.bounds({b}, {b}).allow(attention_allowance(s));
  return c;
}

void add_fused_rows(std::vector<Row>& t) {
  t.push_back({"softmax", kFloat, [](Rng& rng, DType dt) { return softmax_cases(rng, dt, false); }});
  t.push_back({"log_softmax", kFloat, [](Rng& rng, DType dt) { return softmax_cases(rng, dt, true); }});
  t.push_back({"cross_entropy", kFloat, cross_entropy_cases});
  t.push_back({"layernorm", kFloat, layernorm_cases});
  t.push_back({"add_layernorm", kFloat, add_layernorm_cases});
  t.push_back({"clip_loss", kFloat, [](Rng& rng, DType dt) { return contrastive_cases(rng, dt, false); }});
  t.push_back({"siglip_loss", kFloat, [](Rng& rng, DType dt) { return contrastive_cases(rng, dt, true); }});
  t.push_back({"attention", kFloat, attention_cases});
}

}  // namespace minivl::parity_cuda
