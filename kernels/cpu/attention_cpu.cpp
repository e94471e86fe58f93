// Fused attention on the CPU: FlashAttention-2's tiled online softmax (forward and backward)
// and the naive materialised version it is tested against.
//
// Forward, per (b, h, query block of Br = 64 rows), OpenMP over all three (dynamic schedule:
// causal blocks differ in work): the query block meets key blocks of Bc = 64 keys in order
// (causal: only up to the last key its last row sees). Per key block
//   S = scale Q K^T                     (Br x Bc, packed CPU GEMM, kernels/cpu/gemm_cpu.h)
//   m' = max(m, rowmax S), P = exp(S - m'), l = l e^(m - m') + rowsum P
//   O = O e^(m - m') + P V              (Br x D, GEMM with beta = 1)
// and at the end out = O / l, lse = m + log l (l = 0: out = 0, lse = -inf). S never leaves the
// thread's Br x Bc buffer; the working set (Q, K, V blocks, S, O: ~80 KiB at D = 64, f32) sits
// in L2. FLOPs 4 Tq Tk D per (b, h) (halved for causal); bound: the GEMMs at D >= 64, exp at
// small D (one exp per score).
//
// Backward: D_i = rowsum(dO o O) first (one pass over the rows), then S and P = exp(S - lse)
// are recomputed per tile instead of stored. With B H >= 32 (every CLIP shape): one pass per
// (b, h), key blocks outside and query blocks inside, dQ for the head in a thread buffer:
//   dV += P^T dO, dP = dO V^T, dS = P o (dP - D), dK += scale dS^T Q, dQ += scale dS K
// (5 GEMM-equivalents). With fewer heads, for parallelism, two passes:
//   key-block pass, per (b, h, key block):   dV += P^T dO, dP = dO V^T, dS = P o (dP - D),
//                                            dK += scale dS^T Q
//   query-block pass, per (b, h, query block): dP, dS again, dQ += scale dS K
// (7 GEMM-equivalents). Either way each output row belongs to one thread at a time, so there are
// no atomics and the result does not depend on the thread count.
//
// bf16/f16 inputs are widened to f32 once (O(B H T D)), outputs narrowed on store; compute is
// f32 (f64 for f64 input). See docs/kernels/attention.md.
#include "kernels/cpu/attention_cpu.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/tile_helpers.h"

namespace minivl::cpu {
namespace {

constexpr int64_t kBq = kAttentionBlockQ;
constexpr int64_t kBk = kAttentionBlockK;
// The backward runs one pass per (b, h) when there are at least this many heads in the batch
// (enough parallelism), and two block-parallel passes otherwise. A property of the shape, not of
// the thread count, so results never depend on the thread count.
constexpr int64_t kOnePassMinHeads = 32;

// Sizes and the mask rule shared by every kernel here.
struct Problem {
  int64_t B, H, Tq, Tk, D;
  const uint8_t* pad;  // (B, Tk) or nullptr
  bool causal;
  Problem(const StridedView& q, const StridedView& k, const StridedView& mask, bool causal_)
      : B(q.sizes[0]), H(q.sizes[1]), Tq(q.sizes[2]), Tk(k.sizes[2]), D(q.sizes[3]),
        pad(mask.data ? static_cast<const uint8_t*>(mask.data) : nullptr), causal(causal_) {}
  int64_t shift() const { return Tk - Tq; }
  // Threads only pay off above ~1M multiply-adds (tiny problems, e.g. gradchecks, run serially).
  bool parallel() const { return B * H * Tq * Tk * std::max<int64_t>(D, 1) > (int64_t(1) << 20); }
  // Keys [0, key_end(i1)) can be seen by some query row below i1 (causal cut-off).
  int64_t key_end(int64_t i1) const { return causal ? std::clamp(i1 + shift(), int64_t(0), Tk) : Tk; }
  // Queries [query_begin(j0), Tq) can see some key at or after j0.
  int64_t query_begin(int64_t j0) const { return causal ? std::clamp(j0 - shift(), int64_t(0), Tq) : 0; }
  bool visible(int64_t b, int64_t i, int64_t j) const {
    return (!pad || pad[b * Tk + j] == 0) && (!causal || j <= i + shift());
  }
};

// Writes rows x cols of S (row stride ld) as -inf where the key is masked for that query.
template <typename C>
void mask_tile(const Problem& p, int64_t b, int64_t i0, int64_t rows, int64_t j0, int64_t cols, C* S, int64_t ld) {
  const C neg_inf = -std::numeric_limits<C>::infinity();
  const bool causal_edge = p.causal && j0 + cols - 1 > i0 + p.shift();  // some (i, j) in the tile is causally cut
  if (!p.pad && !causal_edge) return;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      if (!p.visible(b, i0 + i, j0 + j)) S[i * ld + j] = neg_inf;
}

// P = exp(S - lse_i) in place (0 where masked or where the row sees no key), rows x cols.
template <typename C>
void probabilities_from_lse(int64_t rows, int64_t cols, const C* lse, C* S, int64_t ld) {
  const C neg_inf = -std::numeric_limits<C>::infinity();
  for (int64_t i = 0; i < rows; ++i) {
    C* s = S + i * ld;
    const C l = lse[i];
    if (l == neg_inf) {
      std::fill(s, s + cols, C(0));
      continue;
    }
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) s[j] = s[j] == neg_inf ? C(0) : exp_c(s[j] - l);
  }
}

template <typename T>
void store_rows(const compute_t<T>* src, int64_t n, T* dst) {
  for (int64_t i = 0; i < n; ++i) store(dst + i, src[i]);
}

// ---------------------------------------------------------------------------------------------
// Tiled forward.
template <typename T>
void forward_tiled(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                   bool causal, double scale_d, const StridedView& outv, const StridedView& lsev) {
  using C = compute_t<T>;
  const Problem p(qv, kv, mask, causal);
  const int64_t D = p.D, nqb = (p.Tq + kBq - 1) / kBq, BH = p.B * p.H;
  const WidenedOperand<T> Qa(qv), Ka(kv), Va(vv);
  T* out = outv.ptr<T>();
  C* lse = lsev.ptr<C>();
  const C scale = C(scale_d), neg_inf = -std::numeric_limits<C>::infinity();
#pragma omp parallel if (p.parallel())
  {
    std::vector<C> S(kBq * kBk), O(kBq * D), m(kBq), l(kBq);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < BH * nqb; ++task) {
      const int64_t bh = task / nqb, b = bh / p.H, i0 = (task % nqb) * kBq, rows = std::min(kBq, p.Tq - i0);
      const C* Q = Qa.data + (bh * p.Tq + i0) * D;   // (rows, D)
      const C* K = Ka.data + bh * p.Tk * D;          // (Tk, D)
      const C* V = Va.data + bh * p.Tk * D;          // (Tk, D)
      std::fill(O.begin(), O.end(), C(0));
      std::fill(m.begin(), m.end(), neg_inf);
      std::fill(l.begin(), l.end(), C(0));
      const int64_t kend = p.key_end(i0 + rows);
      for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
        const int64_t cols = std::min(kBk, kend - j0);
        gemm_single(rows, cols, D, scale, Q, D, 1, K + j0 * D, 1, D, C(0), S.data(), kBk);  // S = scale Q K^T
        mask_tile(p, b, i0, rows, j0, cols, S.data(), kBk);
        for (int64_t i = 0; i < rows; ++i) {
          C* s = S.data() + i * kBk;
          C mx = m[size_t(i)];
          for (int64_t j = 0; j < cols; ++j) mx = s[j] > mx ? s[j] : mx;
          if (mx == neg_inf) {  // nothing visible yet in this row: P = 0, state unchanged
            std::fill(s, s + cols, C(0));
            continue;
          }
          C sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < cols; ++j) {
            const C e = s[j] == neg_inf ? C(0) : exp_c(s[j] - mx);
            s[j] = e;
            sum += e;
          }
          const C alpha = m[size_t(i)] == neg_inf ? C(0) : exp_c(m[size_t(i)] - mx);
          l[size_t(i)] = l[size_t(i)] * alpha + sum;
          m[size_t(i)] = mx;
          if (alpha != C(1)) {
            C* o = O.data() + i * D;
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) o[d] *= alpha;
          }
        }
        gemm_single(rows, D, cols, C(1), S.data(), kBk, 1, V + j0 * D, D, 1, C(1), O.data(), D);  // O += P V
      }
      T* dst = out + (bh * p.Tq + i0) * D;
      for (int64_t i = 0; i < rows; ++i) {
        const C li = l[size_t(i)], inv = li > C(0) ? C(1) / li : C(0);
        for (int64_t d = 0; d < D; ++d) store(dst + i * D + d, O[size_t(i * D + d)] * inv);
        lse[bh * p.Tq + i0 + i] = li > C(0) ? m[size_t(i)] + std::log(li) : neg_inf;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tiled backward.
template <typename T>
void backward_tiled(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                    bool causal, double scale_d, const StridedView& outv, const StridedView& lsev,
                    const StridedView& doutv, const StridedView& dqv, const StridedView& dkv,
                    const StridedView& dvv) {
  using C = compute_t<T>;
  const Problem p(qv, kv, mask, causal);
  const int64_t D = p.D, BH = p.B * p.H;
  const int64_t nqb = (p.Tq + kBq - 1) / kBq, nkb = (p.Tk + kBk - 1) / kBk;
  const WidenedOperand<T> Qa(qv), Ka(kv), Va(vv), Oa(outv), dOa(doutv);
  const C* lse = lsev.ptr<C>();
  const C scale = C(scale_d);
  // Delta_i = rowsum(dO o O): (B, H, Tq)
  std::vector<C> delta(size_t(BH * p.Tq));
#pragma omp parallel for schedule(static) if (p.parallel())
  for (int64_t r = 0; r < BH * p.Tq; ++r) {
    const C* o = Oa.data + r * D;
    const C* g = dOa.data + r * D;
    C acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t d = 0; d < D; ++d) acc += o[d] * g[d];
    delta[size_t(r)] = acc;
  }
  // dS = P o (dP - Delta) in place in dP; P in S.
  auto softmax_grad = [&](int64_t rows, int64_t cols, const C* S, const C* dl, C* dP) {
    for (int64_t i = 0; i < rows; ++i) {
      const C di = dl[i];
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) dP[i * kBk + j] = S[i * kBk + j] * (dP[i * kBk + j] - di);
    }
  };
  if (BH >= kOnePassMinHeads) {
    // One pass per (b, h), key blocks outside, query blocks inside: dK, dV for the key block and
    // dQ for the whole head accumulate in this thread's buffers (5 GEMM-sized products per tile).
#pragma omp parallel if (p.parallel())
    {
      std::vector<C> S(kBq * kBk), dP(kBq * kBk), dK(kBk * D), dV(kBk * D), dQ(p.Tq * D);
#pragma omp for schedule(dynamic, 1)
      for (int64_t bh = 0; bh < BH; ++bh) {
        const int64_t b = bh / p.H;
        const C* Qh = Qa.data + bh * p.Tq * D;
        const C* dOh = dOa.data + bh * p.Tq * D;
        std::fill(dQ.begin(), dQ.end(), C(0));
        for (int64_t j0 = 0; j0 < p.Tk; j0 += kBk) {
          const int64_t cols = std::min(kBk, p.Tk - j0);
          const C* K = Ka.data + (bh * p.Tk + j0) * D;  // (cols, D)
          const C* V = Va.data + (bh * p.Tk + j0) * D;
          std::fill(dK.begin(), dK.end(), C(0));
          std::fill(dV.begin(), dV.end(), C(0));
          for (int64_t i0 = (p.query_begin(j0) / kBq) * kBq; i0 < p.Tq; i0 += kBq) {
            const int64_t rows = std::min(kBq, p.Tq - i0), r0 = bh * p.Tq + i0;
            const C* Q = Qh + i0 * D;
            const C* dO = dOh + i0 * D;
            gemm_single(rows, cols, D, scale, Q, D, 1, K, 1, D, C(0), S.data(), kBk);
            mask_tile(p, b, i0, rows, j0, cols, S.data(), kBk);
            probabilities_from_lse(rows, cols, lse + r0, S.data(), kBk);
            gemm_single(cols, D, rows, C(1), S.data(), 1, kBk, dO, D, 1, C(1), dV.data(), D);           // dV += P^T dO
            gemm_single(rows, cols, D, C(1), dO, D, 1, V, 1, D, C(0), dP.data(), kBk);                  // dP = dO V^T
            softmax_grad(rows, cols, S.data(), delta.data() + r0, dP.data());
            gemm_single(cols, D, rows, scale, dP.data(), 1, kBk, Q, D, 1, C(1), dK.data(), D);          // dK += scale dS^T Q
            gemm_single(rows, D, cols, scale, dP.data(), kBk, 1, K, D, 1, C(1), dQ.data() + i0 * D, D);  // dQ += scale dS K
          }
          store_rows(dK.data(), cols * D, dkv.ptr<T>() + (bh * p.Tk + j0) * D);
          store_rows(dV.data(), cols * D, dvv.ptr<T>() + (bh * p.Tk + j0) * D);
        }
        store_rows(dQ.data(), p.Tq * D, dqv.ptr<T>() + bh * p.Tq * D);
      }
    }
    return;
  }
  // Few heads: two passes, parallel over key blocks and then over query blocks.
#pragma omp parallel if (p.parallel())
  {
    std::vector<C> S(size_t(kBq * kBk)), dP(size_t(kBq * kBk)), accA(size_t(std::max(kBq, kBk) * D)),
        accB(size_t(kBk * D));
    // Key-block pass: dK, dV.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < BH * nkb; ++task) {
      const int64_t bh = task / nkb, b = bh / p.H, j0 = (task % nkb) * kBk, cols = std::min(kBk, p.Tk - j0);
      const C* K = Ka.data + (bh * p.Tk + j0) * D;  // (cols, D)
      const C* V = Va.data + (bh * p.Tk + j0) * D;
      C* dK = accA.data();  // (cols, D)
      C* dV = accB.data();
      std::fill(dK, dK + cols * D, C(0));
      std::fill(dV, dV + cols * D, C(0));
      for (int64_t i0 = (p.query_begin(j0) / kBq) * kBq; i0 < p.Tq; i0 += kBq) {
        const int64_t rows = std::min(kBq, p.Tq - i0), r0 = bh * p.Tq + i0;
        const C* Q = Qa.data + r0 * D;
        const C* dO = dOa.data + r0 * D;
        gemm_single(rows, cols, D, scale, Q, D, 1, K, 1, D, C(0), S.data(), kBk);
        mask_tile(p, b, i0, rows, j0, cols, S.data(), kBk);
        probabilities_from_lse(rows, cols, lse + r0, S.data(), kBk);
        gemm_single(cols, D, rows, C(1), S.data(), 1, kBk, dO, D, 1, C(1), dV, D);          // dV += P^T dO
        gemm_single(rows, cols, D, C(1), dO, D, 1, V, 1, D, C(0), dP.data(), kBk);         // dP = dO V^T
        softmax_grad(rows, cols, S.data(), delta.data() + r0, dP.data());
        gemm_single(cols, D, rows, scale, dP.data(), 1, kBk, Q, D, 1, C(1), dK, D);         // dK += scale dS^T Q
      }
      store_rows(dK, cols * D, dkv.ptr<T>() + (bh * p.Tk + j0) * D);
      store_rows(dV, cols * D, dvv.ptr<T>() + (bh * p.Tk + j0) * D);
    }
    // Query-block pass: dQ.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < BH * nqb; ++task) {
      const int64_t bh = task / nqb, b = bh / p.H, i0 = (task % nqb) * kBq, rows = std::min(kBq, p.Tq - i0);
      const int64_t r0 = bh * p.Tq + i0;
      const C* Q = Qa.data + r0 * D;
      const C* dO = dOa.data + r0 * D;
      const C* K = Ka.data + bh * p.Tk * D;
      const C* V = Va.data + bh * p.Tk * D;
      C* dQ = accA.data();  // (rows, D)
      std::fill(dQ, dQ + rows * D, C(0));
      const int64_t kend = p.key_end(i0 + rows);
      for (int64_t j0 = 0; j0 < kend; j0 += kBk) {
        const int64_t cols = std::min(kBk, kend - j0);
        gemm_single(rows, cols, D, scale, Q, D, 1, K + j0 * D, 1, D, C(0), S.data(), kBk);
        mask_tile(p, b, i0, rows, j0, cols, S.data(), kBk);
        probabilities_from_lse(rows, cols, lse + r0, S.data(), kBk);
        gemm_single(rows, cols, D, C(1), dO, D, 1, V + j0 * D, 1, D, C(0), dP.data(), kBk);
        softmax_grad(rows, cols, S.data(), delta.data() + r0, dP.data());
        gemm_single(rows, D, cols, scale, dP.data(), kBk, 1, K + j0 * D, D, 1, C(1), dQ, D);  // dQ += scale dS K
      }
      store_rows(dQ, rows * D, dqv.ptr<T>() + r0 * D);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Naive: per (b, h), S (Tq, Tk) materialised, softmax with std::exp, then P V.

// P (Tq, Tk) = softmax of the masked scaled scores; lse per row (-inf and P = 0 for empty rows).
template <typename C>
void naive_probabilities(const Problem& p, int64_t b, const C* Q, const C* K, C scale, C* P, C* lse) {
  const C neg_inf = -std::numeric_limits<C>::infinity();
  gemm_single(p.Tq, p.Tk, p.D, scale, Q, p.D, 1, K, 1, p.D, C(0), P, p.Tk);
  for (int64_t i = 0; i < p.Tq; ++i) {
    C* s = P + i * p.Tk;
    C mx = neg_inf;
    for (int64_t j = 0; j < p.Tk; ++j) {
      if (!p.visible(b, i, j)) s[j] = neg_inf;
      mx = std::max(mx, s[j]);
    }
    if (mx == neg_inf) {
      std::fill(s, s + p.Tk, C(0));
      lse[i] = neg_inf;
      continue;
    }
    C sum = 0;
    for (int64_t j = 0; j < p.Tk; ++j) {
      s[j] = s[j] == neg_inf ? C(0) : std::exp(s[j] - mx);
      sum += s[j];
    }
    for (int64_t j = 0; j < p.Tk; ++j) s[j] /= sum;
    lse[i] = mx + std::log(sum);
  }
}

template <typename T>
void forward_naive(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                   bool causal, double scale, const StridedView& outv, const StridedView& lsev) {
  using C = compute_t<T>;
  const Problem p(qv, kv, mask, causal);
  const int64_t D = p.D;
  const WidenedOperand<T> Qa(qv), Ka(kv), Va(vv);
#pragma omp parallel if (p.parallel())
  {
    std::vector<C> P(size_t(p.Tq * p.Tk)), O(size_t(p.Tq * D));
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < p.B * p.H; ++bh) {
      const int64_t b = bh / p.H;
      naive_probabilities(p, b, Qa.data + bh * p.Tq * D, Ka.data + bh * p.Tk * D, C(scale), P.data(),
                          lsev.ptr<C>() + bh * p.Tq);
      gemm_single(p.Tq, D, p.Tk, C(1), P.data(), p.Tk, 1, Va.data + bh * p.Tk * D, D, 1, C(0), O.data(), D);
      store_rows(O.data(), p.Tq * D, outv.ptr<T>() + bh * p.Tq * D);
    }
  }
}

template <typename T>
void backward_naive(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                    bool causal, double scale_d, const StridedView& doutv, const StridedView& dqv,
                    const StridedView& dkv, const StridedView& dvv) {
  using C = compute_t<T>;
  const Problem p(qv, kv, mask, causal);
  const int64_t D = p.D, Tq = p.Tq, Tk = p.Tk;
  const C scale = C(scale_d);
  const WidenedOperand<T> Qa(qv), Ka(kv), Va(vv), dOa(doutv);
#pragma omp parallel if (p.parallel())
  {
    std::vector<C> P(Tq * Tk), dP(Tq * Tk), lse(Tq), G(std::max(Tq, Tk) * D);
#pragma omp for schedule(static)
    for (int64_t bh = 0; bh < p.B * p.H; ++bh) {
      const int64_t b = bh / p.H;
      const C* Q = Qa.data + bh * Tq * D;
      const C* K = Ka.data + bh * Tk * D;
      const C* V = Va.data + bh * Tk * D;
      const C* dO = dOa.data + bh * Tq * D;
      naive_probabilities(p, b, Q, K, scale, P.data(), lse.data());
      gemm_single(Tk, D, Tq, C(1), P.data(), 1, Tk, dO, D, 1, C(0), G.data(), D);  // dV = P^T dO
      store_rows(G.data(), Tk * D, dvv.ptr<T>() + bh * Tk * D);
      gemm_single(Tq, Tk, D, C(1), dO, D, 1, V, 1, D, C(0), dP.data(), Tk);  // dP = dO V^T
      for (int64_t i = 0; i < Tq; ++i) {  // dS = P o (dP - rowsum(P o dP))
        C di = 0;
        for (int64_t j = 0; j < Tk; ++j) di += P[size_t(i * Tk + j)] * dP[size_t(i * Tk + j)];
        for (int64_t j = 0; j < Tk; ++j) dP[size_t(i * Tk + j)] = P[size_t(i * Tk + j)] * (dP[size_t(i * Tk + j)] - di);
      }
      gemm_single(Tq, D, Tk, scale, dP.data(), Tk, 1, K, D, 1, C(0), G.data(), D);  // dQ = scale dS K
      store_rows(G.data(), Tq * D, dqv.ptr<T>() + bh * Tq * D);
      gemm_single(Tk, D, Tq, scale, dP.data(), 1, Tk, Q, D, 1, C(0), G.data(), D);  // dK = scale dS^T Q
      store_rows(G.data(), Tk * D, dkv.ptr<T>() + bh * Tk * D);
    }
  }
}

}  // namespace

void attention_forward(const StridedView& q, const StridedView& k, const StridedView& v,
                       const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                       const StridedView& lse) {
  dispatch_floating(q.dtype, "attention", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    forward_tiled<scalar_t>(q, k, v, key_padding_mask, causal, scale, out, lse);
  });
}

void attention_backward(const StridedView& q, const StridedView& k, const StridedView& v,
                        const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                        const StridedView& lse, const StridedView& dout, const StridedView& dq,
                        const StridedView& dk, const StridedView& dv) {
  dispatch_floating(q.dtype, "attention_backward", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    backward_tiled<scalar_t>(q, k, v, key_padding_mask, causal, scale, out, lse, dout, dq, dk, dv);
  });
}

void attention_forward_naive(const StridedView& q, const StridedView& k, const StridedView& v,
                             const StridedView& key_padding_mask, bool causal, double scale,
                             const StridedView& out, const StridedView& lse) {
  dispatch_floating(q.dtype, "attention_naive", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    forward_naive<scalar_t>(q, k, v, key_padding_mask, causal, scale, out, lse);
  });
}

void attention_backward_naive(const StridedView& q, const StridedView& k, const StridedView& v,
                              const StridedView& key_padding_mask, bool causal, double scale,
                              const StridedView& out, const StridedView& lse, const StridedView& dout,
                              const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  dispatch_floating(q.dtype, "attention_backward_naive", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    backward_naive<scalar_t>(q, k, v, key_padding_mask, causal, scale, dout, dq, dk, dv);
  });
}

}  // namespace minivl::cpu
