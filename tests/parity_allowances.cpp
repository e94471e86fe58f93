// Per-element allowance models of the fused ops (tests/parity_allowances.h). Everything here
// is f64 on the CPU; a "one-sided" quantity is one implementation's error, doubled at the end.
#include "tests/parity_allowances.h"

#include <cmath>

namespace minivl::parity_cuda {
namespace {

constexpr double kU = 0x1p-24;
constexpr double kFinalSum = 8;  // a last f32 sum over rows or blocks: 8 u sum|terms| (parity_cuda_table.cpp)

Tensor f64(const Tensor& t) { return t.to(DType::f64); }
Tensor log64(const Tensor& t) { return minivl::log(t); }
Tensor absf(const Tensor& t) { return abs(f64(t)); }
Tensor sq(const Tensor& t) { return mul(t, t); }
Tensor minimum(const Tensor& a, const Tensor& b) { return mul(sub(add(a, b), abs(sub(a, b))), 0.5); }
Tensor rowsum(const Tensor& t) { return sum(t, {-1}, true); }
Tensor mT(const Tensor& t) { return t.transpose(-2, -1); }
bool is16(DType dt) { return dt == DType::bf16 || dt == DType::f16; }
double uT_of(DType dt) { return is16(dt) ? parity::unit_roundoff(dt) : 0.0; }
double sum_coef(int64_t n) { return (2 * std::sqrt(double(n)) + 8) * kU; }

// The rounding of `k` 16-bit terms t_k: min(u_T sum|t_k|, 4 u_T sqrt(sum t_k^2)), given the two sums.
Tensor quantization(double uT, const Tensor& linear, const Tensor& squares) {
  if (uT == 0) return mul(linear, 0.0);
  return minimum(mul(linear, uT), mul(sqrt(relu(squares)), 4 * uT));
}

// ulp_T of every element of `t`, as an f64 tensor.
Tensor ulp_of(const Tensor& t, DType dt) {
  std::vector<double> v = t.to_vector();
  for (double& x : v) x = parity::ulp(x, dt);
  return from_vector(v, t.shape(), DType::f64);
}

// 1 where a 16-bit rounding of `exact`, which each device knows only to within `delta`, could
// land on different neighbours on the two devices (the value is within delta of a midpoint);
// 0 elsewhere, and everywhere for f32 (an ulp of f32 is inside the f32 allowances).
Tensor may_round_apart(const Tensor& exact, const Tensor& delta, DType dt) {
  std::vector<double> x = exact.contiguous().to_vector(), out(x.size(), 0.0);
  if (!is16(dt)) return from_vector(out, exact.shape(), DType::f64);
  const std::vector<double> d = delta.expand(exact.shape()).contiguous().to_vector();
  const std::vector<double> r = from_vector(x, exact.shape(), dt).to_vector();  // round to nearest even
  for (size_t i = 0; i < x.size(); ++i) {
    const double a = std::abs(x[i]), ra = std::abs(r[i]), u = parity::ulp(ra, dt);
    const bool bottom = ra >= parity::smallest_normal(dt) && ra == std::ldexp(1.0, std::ilogb(ra));
    const double up = ra + u / 2, down = ra - (bottom ? u / 4 : u / 2);
    out[i] = std::abs(a - up) <= d[i] || std::abs(a - down) <= d[i] ? 1.0 : 0.0;
  }
  return from_vector(out, exact.shape(), DType::f64);
}

}  // namespace

double c_dot(int64_t k, DType dtype) { return is16(dtype) ? double(k) / 4 + 4 : 6.0; }

AllowanceFn softmax_allowance(int64_t dim, bool log) {
  return [dim, log](const CaseData& d) {
    const DType dt = d.inputs[0].dtype();
    Tensor x = f64(d.inputs[0]).transpose(dim, -1);  // the softmax dim last
    Tensor g = f64(d.weights[0]).transpose(dim, -1);
    const int64_t n = x.size(-1);
    const double c = 2 * sum_coef(n);  // exp and the row sum, both sides
    Tensor m = max(x, {-1}, true);
    Tensor p = softmax(x, -1);
    Tensor lse = add(m, log64(sum(exp(sub(x, m)), {-1}, true)));
    Allowances a;
    // softmax itself is relative (the bound's rel); log_softmax = x - lse cancels near 0.
    a.outputs.push_back(log ? mul(add(add(abs(x), abs(lse)), 1.0), c).transpose(dim, -1).contiguous() : Tensor());
    Tensor ag = abs(g);
    // softmax: dx = y (g - sum(g y)); log_softmax: dx = g - p sum(g). A 16-bit saved y (or p) that
    // rounds apart on the two devices moves the sum by u_T per term.
    const double uT = uT_of(dt);
    // log_softmax's saved 16-bit y = x - lse enters as exp(y): where the two devices may round y
    // apart, p moves by ulp_T(y) relative (6% at y = -8 in bf16).
    Tensor grad;
    if (log) {
      Tensor y = sub(x, lse);
      Tensor flips = may_round_apart(y, mul(add(add(abs(x), abs(lse)), 1.0), c), dt);
      Tensor jump = mul(mul(flips, ulp_of(y, dt)), 1.1);
      grad = add(mul(add(ag, mul(p, rowsum(ag))), c), mul(mul(p, rowsum(ag)), add(jump, 2 * uT)));
    } else {
      grad = add(mul(mul(p, add(ag, rowsum(mul(p, ag)))), c), mul(mul(p, add(ag, rowsum(mul(p, ag)))), 2 * uT));
    }
    a.grads.push_back(grad.transpose(dim, -1).contiguous());
    return a;
  };
}

AllowanceFn cross_entropy_allowance(int64_t ignore_index, double smoothing, Reduction reduction) {
  return [ignore_index, smoothing, reduction](const CaseData& d) {
    const DType dt = d.inputs[0].dtype();
    Tensor x = f64(d.inputs[0]);  // (N, C)
    const int64_t N = x.size(0), C = x.size(1);
    const std::vector<double> target = d.inputs[1].to_vector();
    const double c = 2 * sum_coef(C);
    Tensor m = max(x, {-1}, true);
    Tensor lse = add(m, log64(sum(exp(sub(x, m)), {-1}, true)));  // (N, 1)
    Tensor p = softmax(x, -1);
    const std::vector<double> lse_v = lse.to_vector(), x_v = x.to_vector(), absrow = sum(abs(x), {-1}).to_vector();
    const size_t rows = static_cast<size_t>(N);
    std::vector<double> valid(rows, 0.0), row_allow(rows, 0.0), row_mag(rows, 0.0);
    std::vector<double> tp(rows * static_cast<size_t>(C), 0.0);  // the target distribution
    double n_valid = 0;
    for (int64_t r = 0; r < N; ++r) {
      const int64_t t = int64_t(target[size_t(r)]);
      if (t == ignore_index) continue;
      valid[size_t(r)] = 1;
      n_valid += 1;
      for (int64_t k = 0; k < C; ++k) tp[size_t(r * C + k)] = smoothing / double(C) + (k == t ? 1 - smoothing : 0);
      // loss_r = lse - (1 - eps) x_t - (eps / C) sum x: its terms, and the lse's error on top.
      row_mag[size_t(r)] = std::abs(lse_v[size_t(r)]) + (1 - smoothing) * std::abs(x_v[size_t(r * C + t)]) +
                           smoothing / double(C) * absrow[size_t(r)] + 1;
      row_allow[size_t(r)] = c * row_mag[size_t(r)];
    }
    Allowances a;
    if (reduction == Reduction::none) {
      a.outputs.push_back(from_vector(row_allow, {N}, DType::f64));
    } else {
      // A sum of the per-row losses, each rounded to the output dtype first.
      double total = 0;
      for (int64_t r = 0; r < N; ++r) {
        total += row_allow[size_t(r)] + (kFinalSum * kU + 2 * uT_of(dt)) * row_mag[size_t(r)];
      }
      if (reduction == Reduction::mean) total /= std::max(n_valid, 1.0);
      a.outputs.push_back(from_vector({total}, {}, DType::f64));
    }
    // dx = g_r (p - target distribution), 0 on ignored rows; g_r is the gradient each row's loss receives.
    std::vector<double> g_row(rows, 0.0);
    const std::vector<double> w = d.weights[0].to_vector();
    for (int64_t r = 0; r < N; ++r) {
      const double g = reduction == Reduction::none ? w[size_t(r)] : reduction == Reduction::sum ? w[0] : w[0] / std::max(n_valid, 1.0);
      g_row[size_t(r)] = std::abs(g) * valid[size_t(r)];
    }
    Tensor gr = from_vector(g_row, {N, 1}, DType::f64);
    // The backward reads the lse saved in the logits' dtype: where the devices may round it apart,
    // every p of the row moves by ulp_T(lse) relative.
    Tensor flips = may_round_apart(lse, mul(add(abs(lse), 1.0), c), dt);
    Tensor jump = mul(mul(flips, ulp_of(lse, dt)), 1.1);
    a.grads.push_back(add(mul(mul(gr, add(p, from_vector(tp, {N, C}, DType::f64))), c), mul(mul(gr, p), jump)));
    a.grads.push_back(Tensor());
    return a;
  };
}

AllowanceFn layernorm_allowance(bool with_residual, bool has_weight, bool has_bias, double eps) {
  return [with_residual, has_weight, has_bias, eps](const CaseData& d) {
    const DType dt = d.inputs[0].dtype();
    const size_t wi = with_residual ? 2 : 1;
    Tensor h = f64(d.inputs[0]);
    if (with_residual) h = add(h, f64(d.inputs[1]));
    const Shape shape = h.shape();
    const int64_t C = h.size(-1), R = h.numel() / C;
    h = h.reshape({R, C});
    Tensor w = has_weight ? f64(d.inputs[wi]).reshape({1, C}) : ones({1, C}, DType::f64);
    Tensor aw = abs(w);
    Tensor ab = has_bias ? absf(d.inputs[wi + (has_weight ? 1 : 0)]).reshape({1, C}) : zeros({1, C}, DType::f64);
    Tensor mu = mean(h, {-1}, true);
    Tensor rstd = rsqrt(add(mean(sq(sub(h, mu)), {-1}, true), eps));
    Tensor xhat = mul(sub(h, mu), rstd);
    Tensor axh1 = add(abs(xhat), 1.0);
    const double cC = 2 * sum_coef(C), cR = 2 * sum_coef(R);
    // A 16-bit residual sum the two devices may normalise rounded or not: u_T |h| on the input.
    const double uh = with_residual ? uT_of(dt) : 0.0;
    Tensor shift = add(mul(abs(mu), rstd), 1.0);  // |h| rstd <= |xhat| + |mu| rstd
    Allowances a;
    if (with_residual) a.outputs.push_back(Tensor());  // the sum: one addition, compared exactly
    Tensor y_allow = add(mul(add(mul(axh1, aw), ab), cC), mul(mul(add(abs(xhat), shift), aw), 2 * uh));
    a.outputs.push_back(y_allow.reshape(shape).contiguous());
    // dh = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w.
    Tensor gy = absf(d.weights.back()).reshape({R, C});
    Tensor g = mul(gy, aw);
    Tensor mdh = mul(rstd, add(add(g, mean(g, {-1}, true)), mul(axh1, mean(mul(g, axh1), {-1}, true))));
    Tensor dh = mul(mdh, add(mul(shift, 2 * uh), cC)).reshape(shape).contiguous();
    a.grads.push_back(dh);
    if (with_residual) a.grads.push_back(dh);
    if (has_weight) {
      Tensor dw = add(mul(sum(mul(gy, axh1), {0}), cR + cC), mul(sum(mul(gy, add(abs(xhat), shift)), {0}), 2 * uh));
      a.grads.push_back(dw);
    }
    if (has_bias) a.grads.push_back(mul(sum(gy, {0}), cR));
    return a;
  };
}

namespace {

// visible (B, 1, Tq, Tk) bool and row_has_key (B, 1, Tq, 1) f64 for an attention shape.
std::pair<Tensor, Tensor> attention_visibility(const AttentionShape& s, const Tensor& mask) {
  std::vector<double> vis(size_t(s.B * s.Tq * s.Tk)), any(size_t(s.B * s.Tq));
  const std::vector<double> m = mask.defined() ? mask.to_vector() : std::vector<double>(size_t(s.B * s.Tk), 0.0);
  for (int64_t b = 0; b < s.B; ++b) {
    for (int64_t i = 0; i < s.Tq; ++i) {
      for (int64_t j = 0; j < s.Tk; ++j) {
        const bool seen = (!s.causal || j <= i + (s.Tk - s.Tq)) && m[size_t(b * s.Tk + j)] == 0;
        vis[size_t((b * s.Tq + i) * s.Tk + j)] = seen;
        if (seen) any[size_t(b * s.Tq + i)] = 1;
      }
    }
  }
  return {from_vector(vis, {s.B, 1, s.Tq, s.Tk}, DType::boolean), from_vector(any, {s.B, 1, s.Tq, 1}, DType::f64)};
}

}  // namespace

AllowanceFn attention_allowance(const AttentionShape& s) {
  return [s](const CaseData& d) {
    const DType dt = d.inputs[0].dtype();
    auto heads_first = [&](const Tensor& t) { return s.bthd_views ? f64(t).transpose(1, 2) : f64(t); };
    Tensor Q = heads_first(d.inputs[0]), K = heads_first(d.inputs[1]), V = heads_first(d.inputs[2]);  // (B, H, T, D)
    Tensor G = f64(d.weights[0]);                                                                       // dO (B, H, Tq, D)
    auto [vis, has_key] = attention_visibility(s, s.padded ? d.inputs[3] : Tensor());
    const double scale = 1.0 / std::sqrt(double(s.D));
    const double uT = uT_of(dt);
    const double cS = c_dot(s.D, dt) * kU;    // QK^T and dO V^T
    const double cPVk = c_dot(s.Tk, dt) * kU;  // products over keys: P V, dS K
    const double cPVq = c_dot(s.Tq, dt) * kU;  // products over queries: P^T dO, dS^T Q
    const double cl = sum_coef(s.Tk);          // the row sum l
    Tensor S = mul(matmul(Q, mT(K)), scale);
    Tensor S_seen = where(vis, S, full({1}, -1e30, DType::f64));
    Tensor P = mul(mul(softmax(S_seen, -1), where(vis, ones({1}, DType::f64), zeros({1}, DType::f64))),
                   has_key);  // (B, H, Tq, Tk); 0 where masked and on rows that see no key
    Tensor A = mul(matmul(abs(Q), mT(abs(K))), scale);
    Tensor O = matmul(P, V);
    Tensor aV = abs(V), aG = abs(G), aO = abs(O);
    // Relative error of each P_ij: the score's dot product, the exponential (the earlier kernels'
    // __expf: 2 + 1.16 |x| ulps at x = S - max), the lse's __logf (~8 u) and the scalings.
    Tensor below_max = relu(sub(max(S_seen, {-1}, true), S));
    Tensor PE = mul(P, add(add(mul(A, cS), mul(below_max, 2.4 * kU)), 16 * kU));
    // O = P V / l: errors of P_ij move O_i by P_ij eps_ij (V_j - O_i); P rounded to 16 bits on the GPU.
    Tensor PaV = matmul(P, aV);
    Tensor O_one = add(add(matmul(PE, aV), mul(rowsum(PE), aO)), add(mul(PaV, cPVk), mul(aO, cl)));
    Tensor O_rss = add(sub(matmul(sq(P), sq(V)), mul(mul(O, matmul(sq(P), V)), 2.0)), mul(sq(O), rowsum(sq(P))));
    Tensor O_allow = add(mul(O_one, 2.0), quantization(uT, add(PaV, mul(aO, rowsum(P))), O_rss));
    // dV = P^T dO.
    Tensor Pt = mT(P);
    Tensor PtaG = matmul(Pt, aG);
    Tensor dV_allow = add(mul(add(matmul(mT(PE), aG), mul(PtaG, cPVq)), 2.0), quantization(uT, PtaG, matmul(sq(Pt), sq(G))));
    // dS = P (dP - Delta), dP = dO V^T, Delta_i = sum_d dO_id O_id with each device's own saved O
    // (apart by O_allow plus a rounding): that difference is two-sided already.
    Tensor dP = matmul(G, mT(V));
    Tensor Delta = rowsum(mul(G, O));
    Tensor dDelta = add(rowsum(mul(aG, add(O_allow, ulp_of(O, dt)))), mul(rowsum(abs(mul(G, O))), 2 * sum_coef(s.D)));
    Tensor X = abs(sub(dP, Delta));
    Tensor dS = mul(P, sub(dP, Delta));
    Tensor adS = abs(dS);
    Tensor E = add(mul(add(mul(PE, X), mul(mul(P, matmul(aG, mT(aV))), cS)), 2.0), mul(P, dDelta));
    Tensor aK = abs(K), aQ = abs(Q);
    Tensor dSK = matmul(adS, aK), dSQ = matmul(mT(adS), aQ);
    Tensor dQ_allow = mul(add(add(matmul(E, aK), mul(dSK, 2 * cPVk)), quantization(uT, dSK, matmul(sq(dS), sq(K)))), scale);
    Tensor dK_allow = mul(add(add(matmul(mT(E), aQ), mul(dSQ, 2 * cPVq)), quantization(uT, dSQ, matmul(mT(sq(dS)), sq(Q)))), scale);
    auto input_layout = [&](const Tensor& t) { return (s.bthd_views ? t.transpose(1, 2) : t).contiguous(); };
    Allowances a;
    a.outputs.push_back(O_allow.contiguous());
    a.grads = {input_layout(dQ_allow), input_layout(dK_allow), input_layout(dV_allow)};
    if (s.padded) a.grads.push_back(Tensor());
    return a;
  };
}

namespace {

// What both contrastive losses share: L = s image text^T and the error of each logit.
struct Logits {
  double s;
  Tensor I, T, L, dL;  // dL: one implementation's error of each logit
  int64_t N, d;
};
Logits logits(const CaseData& c) {
  Logits g;
  const DType dt = c.inputs[0].dtype();
  g.I = f64(c.inputs[0]);
  g.T = f64(c.inputs[1]);
  g.N = g.I.size(0);
  g.d = g.I.size(1);
  g.s = std::exp(c.inputs[2].item());
  g.L = mul(matmul(g.I, mT(g.T)), g.s);
  Tensor A = mul(matmul(abs(g.I), mT(abs(g.T))), g.s);
  g.dL = add(mul(A, c_dot(g.d, dt) * kU), mul(abs(g.L), 2 * kU));  // the dot product; s = exp(logit_scale) in f32
  return g;
}

// dimage = s G text, dtext = s G^T image, and the scalars' sums, from G and one-sided dG.
void contrastive_grads(const Logits& g, const Tensor& G, const Tensor& dG, DType dt, Allowances& a) {
  const double uT = uT_of(dt), cN = c_dot(g.N, dt) * kU;
  Tensor aG = abs(G), aI = abs(g.I), aT = abs(g.T);
  auto side = [&](const Tensor& GG, const Tensor& dGG, const Tensor& other, const Tensor& a_other) {
    Tensor lin = matmul(abs(GG), a_other);
    return mul(add(mul(add(add(matmul(dGG, a_other), mul(lin, cN)), mul(lin, kU)), 2.0),
                   quantization(uT, lin, matmul(sq(GG), sq(other)))),
               g.s);
  };
  a.grads.push_back(side(G, dG, g.T, aT));
  a.grads.push_back(side(mT(G), mT(dG), g.I, aI));
  // d logit_scale = sum G o L.
  Tensor aL = abs(g.L);
  const double tot = sum(add(mul(dG, aL), mul(aG, g.dL))).item() + (kFinalSum * kU + sum_coef(g.N)) * sum(mul(aG, aL)).item();
  a.grads.push_back(from_vector({2 * tot}, {}, DType::f64));
}

}  // namespace

AllowanceFn clip_allowance() {
  return [](const CaseData& c) {
    const DType dt = c.inputs[0].dtype();
    Logits g = logits(c);
    const double cl = sum_coef(g.N);
    Tensor Pr = softmax(g.L, 1), Pc = softmax(g.L, 0);
    Tensor eye = from_vector([&] {
      std::vector<double> v(size_t(g.N * g.N), 0.0);
      for (int64_t i = 0; i < g.N; ++i) v[size_t(i * g.N + i)] = 1;
      return v;
    }(), {g.N, g.N}, DType::f64);
    Tensor lse_r = add(max(g.L, {1}, true), log64(sum(exp(sub(g.L, max(g.L, {1}, true))), {1}, true)));  // (N, 1)
    Tensor lse_c = add(max(g.L, {0}, true), log64(sum(exp(sub(g.L, max(g.L, {0}, true))), {0}, true)));  // (1, N)
    // Each softmax entry: its logit's error and the exponential's (CUDA's __expf: 2 + 1.16 |x|
    // ulps at x = L - lse); each lse: its terms' errors, weighted by the softmax, and the sum's rounding.
    Tensor er = add(g.dL, mul(add(mul(abs(sub(g.L, lse_r)), 1.16), 2.0), 2 * kU));
    Tensor ec = add(g.dL, mul(add(mul(abs(sub(g.L, lse_c)), 1.16), 2.0), 2 * kU));
    Tensor dlse_r = add(rowsum(mul(Pr, er)), mul(add(abs(lse_r), 1.0), cl));
    Tensor dlse_c = add(sum(mul(Pc, ec), {0}, true), mul(add(abs(lse_c), 1.0), cl));
    const double diag_err = sum(mul(eye, g.dL)).item(), diag_abs = sum(mul(eye, abs(g.L))).item();
    const double loss_one = (sum(dlse_r).item() + sum(dlse_c).item() + 2 * diag_err) / double(2 * g.N) +
                            kFinalSum * kU * (sum(abs(lse_r)).item() + sum(abs(lse_c)).item() + 2 * diag_abs) / double(2 * g.N);
    Allowances a;
    a.outputs.push_back(from_vector({2 * loss_one}, {}, DType::f64));
    // G = g / (2N) (Pr + Pc - 2 I); each softmax entry off by its logit's and its lse's error.
    const double k = std::abs(c.weights[0].item()) / double(2 * g.N);
    Tensor G = mul(sub(add(Pr, Pc), mul(eye, 2.0)), k * (c.weights[0].item() < 0 ? -1 : 1));
    Tensor dG = mul(add(mul(Pr, add(er, dlse_r)), mul(Pc, add(ec, dlse_c))), k);
    contrastive_grads(g, G, dG, dt, a);
    return a;
  };
}

AllowanceFn siglip_allowance() {
  return [](const CaseData& c) {
    const DType dt = c.inputs[0].dtype();
    Logits g = logits(c);
    const double b = c.inputs[3].item();
    std::vector<double> zv(size_t(g.N * g.N), -1.0);
    for (int64_t i = 0; i < g.N; ++i) zv[size_t(i * g.N + i)] = 1;
    Tensor z = from_vector(zv, {g.N, g.N}, DType::f64);
    Tensor u = mul(z, add(g.L, b));
    Tensor sm = sigmoid(neg(u));  // sigma(-z (L + b)): d softplus(-u) / d(-u)
    // The logit's error, the bias add's rounding and CUDA's __expf (2 + 1.16 |u| ulps), per pair.
    Tensor dU = add(add(g.dL, mul(add(abs(g.L), std::abs(b)), 4 * kU)), mul(add(mul(abs(u), 1.16), 2.0), 2 * kU));
    Tensor softplus = log64(add(exp(neg(abs(u))), 1.0));  // softplus(-u) - max(-u, 0)
    softplus = add(softplus, relu(neg(u)));
    const double n = double(g.N);
    // softplus through __logf(1 + e): ~2^-21.4 absolute per pair (8 u), N^2 pairs over N.
    const double loss_one = sum(mul(sm, dU)).item() / n + (sum_coef(g.N) + kFinalSum * kU) * sum(softplus).item() / n +
                            8 * kU * n;
    Allowances a;
    a.outputs.push_back(from_vector({2 * loss_one}, {}, DType::f64));
    const double w = c.weights[0].item();
    Tensor G = mul(mul(z, sm), -w / n);
    // d sigma(-u) / sigma(-u) = (1 - sigma(-u)) d(-u), plus the sigmoid's own few ulps.
    Tensor dG = mul(abs(G), add(mul(sub(ones({1}, DType::f64), sm), dU), 4 * kU));
    contrastive_grads(g, G, dG, dt, a);
    // d logit_bias = sum G.
    const double tb = sum(dG).item() + (kFinalSum * kU + sum_coef(g.N)) * sum(abs(G)).item();
    a.grads.push_back(from_vector({2 * tb}, {}, DType::f64));
    return a;
  };
}

}  // namespace minivl::parity_cuda
