// Tiled contrastive losses on the CPU: CLIP (row + column cross-entropy) and SigLIP
// (pairwise sigmoid), forward and backward, never materialising the N x N logits.
//
// Tiling: the logits L = s * image @ text^T (s = exp(logit_scale)) are visited in
// B x B tiles (B = kContrastiveTile = 128), each computed into a per-thread buffer by
// the packed CPU GEMM (kernels/cpu/gemm_cpu.h; called inside a parallel region it runs on
// one thread). Tiles are swept along wrapped diagonals: at step t, row block rb meets
// column block (rb + t) mod nb. Within a step every row block and every column block
// occurs exactly once, so OpenMP splits a step's tiles across threads with no locks or
// atomics, and each row's and each column's accumulators see a fixed order: the result
// does not depend on the thread count.
//
// CLIP forward (1 GEMM-equivalent, 2 N^2 d FLOPs): online log-sum-exp per row and per
// column (running max and scaled sum), plus the diagonal; saves lse_row, lse_col (2N).
// CLIP backward (3 GEMM-equivalents): per tile, recompute L, form
//   G = g / (2N) * (exp(L - lse_row) + exp(L - lse_col) - 2 I),
// then dimage[rows] += s G text[cols], dtext[cols] += s G^T image[rows] and
// dlogit_scale += sum(G o L) (one partial per row block, summed in order).
// SigLIP: the same sweep with G = -(g / N) z sigmoid(-z (L + b)).
// Memory: O(N d) (f32 copies of bf16/f16 features and gradient accumulators) plus one
// B x B tile per thread. Bound: the GEMMs for large d; exp for small d (2 per logit).
// See docs/kernels/contrastive.md for the derivation and measurements.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cpu/fused_cpu.h"
#include "kernels/cpu/tile_helpers.h"

namespace minivl::cpu {
namespace {

constexpr int64_t kTile = kContrastiveTile;

template <typename C>
inline C softplus(C x) {  // log(1 + e^x) without overflow
  return std::max(x, C(0)) + std::log1p(std::exp(-std::abs(x)));
}

// A zeroed gradient accumulator (N, d): the output itself for f32/f64, an f32 buffer for bf16/f16.
template <typename T>
struct GradAccumulator {
  using C = compute_t<T>;
  std::vector<C> owned;
  C* data = nullptr;
  const StridedView& out;
  explicit GradAccumulator(const StridedView& v) : out(v) {
    if constexpr (std::is_same_v<T, C>) {
      data = v.ptr<C>();
      std::fill(data, data + v.numel(), C(0));
    } else {
      owned.assign(size_t(v.numel()), C(0));
      data = owned.data();
    }
  }
  void finish() {
    if constexpr (!std::is_same_v<T, C>) {
      T* dst = out.ptr<T>();
      for (size_t i = 0; i < owned.size(); ++i) store(dst + i, owned[i]);
    }
  }
};

struct Tile {
  int64_t r0, rows, c0, cols;
  bool diagonal() const { return r0 == c0; }
};
inline Tile tile_at(int64_t rb, int64_t cb, int64_t n) {
  const int64_t r0 = rb * kTile, c0 = cb * kTile;
  return {r0, std::min(kTile, n - r0), c0, std::min(kTile, n - c0)};
}

// S (rows x cols, row stride kTile) = scale * image[r0 : r0 + rows] @ text[c0 : c0 + cols]^T.
template <typename C>
void logits_tile(const Tile& t, const C* image, const C* text, int64_t d, C scale, C* S) {
  gemm_single(t.rows, t.cols, d, scale, image + t.r0 * d, d, 1, text + t.c0 * d, 1, d, C(0), S, kTile);
}

// Calls f(rb, cb, tile_buffer) for every tile, step by step along the wrapped diagonals
// cb = (rb + step) mod nb; the implicit barrier of each `omp for` separates the steps.
template <typename C, typename F>
void diagonal_sweep(int64_t nb, F&& f) {
#pragma omp parallel if (nb > 1)
  {
    std::vector<C> tile(size_t(kTile * kTile));
    for (int64_t step = 0; step < nb; ++step) {
#pragma omp for schedule(static)
      for (int64_t rb = 0; rb < nb; ++rb) f(rb, (rb + step) % nb, tile.data());
    }
  }
}

// dimage[rows] += s G text[cols]; dtext[cols] += s G^T image[rows]  (G in S, row stride kTile).
template <typename C>
void accumulate_feature_grads(const Tile& t, const C* G, const C* image, const C* text, int64_t d, C scale,
                              C* dimage, C* dtext) {
  gemm_single(t.rows, d, t.cols, scale, G, kTile, 1, text + t.c0 * d, d, 1, C(1), dimage + t.r0 * d, d);
  gemm_single(t.cols, d, t.rows, scale, G, 1, kTile, image + t.r0 * d, d, 1, C(1), dtext + t.c0 * d, d);
}

template <typename T>
void clip_forward_impl(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                       const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col) {
  using C = compute_t<T>;
  const int64_t n = image.sizes[0], d = image.sizes[1];
  const WidenedOperand<T> img(image), txt(text);
  const C scale = std::exp(*logit_scale.ptr<C>());
  const C neg_inf = -std::numeric_limits<C>::infinity();
  std::vector<C> row_max(size_t(n), neg_inf), row_sum(size_t(n), C(0));
  std::vector<C> col_max(size_t(n), neg_inf), col_sum(size_t(n), C(0)), diag(size_t(n), C(0));
  const int64_t nb = (n + kTile - 1) / kTile;
  diagonal_sweep<C>(nb, [&](int64_t rb, int64_t cb, C* S) {
    const Tile t = tile_at(rb, cb, n);
    logits_tile(t, img.data, txt.data, d, scale, S);
    if (t.diagonal())
      for (int64_t i = 0; i < t.rows; ++i) diag[size_t(t.r0 + i)] = S[i * kTile + i];
    // Rows: online log-sum-exp over this tile's columns.
    for (int64_t i = 0; i < t.rows; ++i) {
      const C* s = S + i * kTile;
      const C old_max = row_max[size_t(t.r0 + i)];
      C m = old_max;
#pragma omp simd reduction(max : m)
      for (int64_t j = 0; j < t.cols; ++j) m = s[j] > m ? s[j] : m;
      C acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < t.cols; ++j) acc += exp_c(s[j] - m);
      row_sum[size_t(t.r0 + i)] = row_sum[size_t(t.r0 + i)] * exp_c(old_max - m) + acc;
      row_max[size_t(t.r0 + i)] = m;
    }
    // Columns: the same, vectorised across the columns, rows in order.
    C* cm = col_max.data() + t.c0;
    C* cs = col_sum.data() + t.c0;
    C new_max[kTile];
    for (int64_t j = 0; j < t.cols; ++j) new_max[j] = cm[j];
    for (int64_t i = 0; i < t.rows; ++i) {
      const C* s = S + i * kTile;
#pragma omp simd
      for (int64_t j = 0; j < t.cols; ++j) new_max[j] = s[j] > new_max[j] ? s[j] : new_max[j];
    }
#pragma omp simd
    for (int64_t j = 0; j < t.cols; ++j) {
      cs[j] *= exp_c(cm[j] - new_max[j]);
      cm[j] = new_max[j];
    }
    for (int64_t i = 0; i < t.rows; ++i) {
      const C* s = S + i * kTile;
#pragma omp simd
      for (int64_t j = 0; j < t.cols; ++j) cs[j] += exp_c(s[j] - cm[j]);
    }
  });
  C* lr = lse_row.ptr<C>();
  C* lc = lse_col.ptr<C>();
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    lr[i] = row_max[size_t(i)] + std::log(row_sum[size_t(i)]);
    lc[i] = col_max[size_t(i)] + std::log(col_sum[size_t(i)]);
    total += double(lr[i] - diag[size_t(i)]) + double(lc[i] - diag[size_t(i)]);
  }
  *loss.ptr<C>() = C(total / (2.0 * double(n)));
}

template <typename T>
void clip_backward_impl(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                        const StridedView& lse_row, const StridedView& lse_col, const StridedView& grad_loss,
                        const StridedView& dimage, const StridedView& dtext, const StridedView& dlogit_scale) {
  using C = compute_t<T>;
  const int64_t n = image.sizes[0], d = image.sizes[1];
  const WidenedOperand<T> img(image), txt(text);
  GradAccumulator<T> gi(dimage), gt(dtext);
  const C scale = std::exp(*logit_scale.ptr<C>());
  const C coef = *grad_loss.ptr<C>() / C(2 * n);
  const C* lr = lse_row.ptr<C>();
  const C* lc = lse_col.ptr<C>();
  const int64_t nb = (n + kTile - 1) / kTile;
  std::vector<double> dscale_part(size_t(nb), 0.0);  // one per row block: a fixed summation order
  diagonal_sweep<C>(nb, [&](int64_t rb, int64_t cb, C* S) {
    const Tile t = tile_at(rb, cb, n);
    logits_tile(t, img.data, txt.data, d, scale, S);
    double part = 0.0;
    for (int64_t i = 0; i < t.rows; ++i) {
      C* s = S + i * kTile;
      const C lse_i = lr[t.r0 + i];
      const C* lse_j = lc + t.c0;
      const C l_ii = t.diagonal() ? s[i] : C(0);
      C local = 0;
#pragma omp simd reduction(+ : local)
      for (int64_t j = 0; j < t.cols; ++j) {
        const C l = s[j];
        const C g = coef * (exp_c(l - lse_i) + exp_c(l - lse_j[j]));
        s[j] = g;
        local += g * l;
      }
      if (t.diagonal()) {  // the targets: -2 I / (2N)
        s[i] -= 2 * coef;
        local -= 2 * coef * l_ii;
      }
      part += double(local);
    }
    dscale_part[size_t(rb)] += part;
    accumulate_feature_grads(t, S, img.data, txt.data, d, scale, gi.data, gt.data);
  });
  double dscale = 0.0;
  for (double p : dscale_part) dscale += p;
  *dlogit_scale.ptr<C>() = C(dscale);
  gi.finish();
  gt.finish();
}

template <typename T>
void siglip_forward_impl(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                         const StridedView& logit_bias, const StridedView& loss) {
  using C = compute_t<T>;
  const int64_t n = image.sizes[0], d = image.sizes[1];
  const WidenedOperand<T> img(image), txt(text);
  const C scale = std::exp(*logit_scale.ptr<C>());
  const C bias = *logit_bias.ptr<C>();
  const int64_t nb = (n + kTile - 1) / kTile;
  std::vector<double> part(size_t(nb), 0.0);
  // No column reduction here: each row block walks all column blocks in order.
#pragma omp parallel if (nb > 1)
  {
    std::vector<C> tile(size_t(kTile * kTile));
    C* S = tile.data();
#pragma omp for schedule(static)
    for (int64_t rb = 0; rb < nb; ++rb) {
      for (int64_t cb = 0; cb < nb; ++cb) {
        const Tile t = tile_at(rb, cb, n);
        logits_tile(t, img.data, txt.data, d, scale, S);
        for (int64_t i = 0; i < t.rows; ++i) {
          const C* s = S + i * kTile;
          C local = 0;
          for (int64_t j = 0; j < t.cols; ++j) local += softplus(s[j] + bias);  // z = -1: -log sigmoid(-u)
          if (t.diagonal()) local += softplus(-(s[i] + bias)) - softplus(s[i] + bias);  // z = +1
          part[size_t(rb)] += double(local);
        }
      }
    }
  }
  double total = 0.0;
  for (double p : part) total += p;
  *loss.ptr<C>() = C(total / double(n));
}

template <typename T>
void siglip_backward_impl(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                          const StridedView& logit_bias, const StridedView& grad_loss, const StridedView& dimage,
                          const StridedView& dtext, const StridedView& dlogit_scale,
                          const StridedView& dlogit_bias) {
  using C = compute_t<T>;
  const int64_t n = image.sizes[0], d = image.sizes[1];
  const WidenedOperand<T> img(image), txt(text);
  GradAccumulator<T> gi(dimage), gt(dtext);
  const C scale = std::exp(*logit_scale.ptr<C>());
  const C bias = *logit_bias.ptr<C>();
  const C coef = *grad_loss.ptr<C>() / C(n);
  const int64_t nb = (n + kTile - 1) / kTile;
  std::vector<double> dscale_part(size_t(nb), 0.0), dbias_part(size_t(nb), 0.0);
  diagonal_sweep<C>(nb, [&](int64_t rb, int64_t cb, C* S) {
    const Tile t = tile_at(rb, cb, n);
    logits_tile(t, img.data, txt.data, d, scale, S);
    double part_scale = 0.0, part_bias = 0.0;
    for (int64_t i = 0; i < t.rows; ++i) {
      C* s = S + i * kTile;
      const C l_ii = t.diagonal() ? s[i] : C(0);
      C local_scale = 0, local_bias = 0;
      // d/du softplus(u) = sigmoid(u) off the diagonal (z = -1)
#pragma omp simd reduction(+ : local_scale, local_bias)
      for (int64_t j = 0; j < t.cols; ++j) {
        const C l = s[j];
        const C g = coef / (C(1) + exp_c(-(l + bias)));
        s[j] = g;
        local_scale += g * l;
        local_bias += g;
      }
      if (t.diagonal()) {  // z = +1: d/du softplus(-u) = -sigmoid(-u)
        const C g = -coef / (C(1) + exp_c(l_ii + bias));
        local_scale += (g - s[i]) * l_ii;
        local_bias += g - s[i];
        s[i] = g;
      }
      part_scale += double(local_scale);
      part_bias += double(local_bias);
    }
    dscale_part[size_t(rb)] += part_scale;
    dbias_part[size_t(rb)] += part_bias;
    accumulate_feature_grads(t, S, img.data, txt.data, d, scale, gi.data, gt.data);
  });
  double dscale = 0.0, dbias = 0.0;
  for (int64_t b = 0; b < nb; ++b) {
    dscale += dscale_part[size_t(b)];
    dbias += dbias_part[size_t(b)];
  }
  *dlogit_scale.ptr<C>() = C(dscale);
  *dlogit_bias.ptr<C>() = C(dbias);
  gi.finish();
  gt.finish();
}

}  // namespace

void clip_loss_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                       const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col) {
  dispatch_floating(image.dtype, "clip_loss", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    clip_forward_impl<scalar_t>(image, text, logit_scale, loss, lse_row, lse_col);
  });
}

void clip_loss_backward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                        const StridedView& lse_row, const StridedView& lse_col, const StridedView& grad_loss,
                        const StridedView& dimage, const StridedView& dtext, const StridedView& dlogit_scale) {
  dispatch_floating(image.dtype, "clip_loss_backward", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    clip_backward_impl<scalar_t>(image, text, logit_scale, lse_row, lse_col, grad_loss, dimage, dtext,
                                 dlogit_scale);
  });
}

void siglip_loss_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                         const StridedView& logit_bias, const StridedView& loss) {
  dispatch_floating(image.dtype, "siglip_loss", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    siglip_forward_impl<scalar_t>(image, text, logit_scale, logit_bias, loss);
  });
}

void siglip_loss_backward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                          const StridedView& logit_bias, const StridedView& grad_loss, const StridedView& dimage,
                          const StridedView& dtext, const StridedView& dlogit_scale,
                          const StridedView& dlogit_bias) {
  dispatch_floating(image.dtype, "siglip_loss_backward", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    siglip_backward_impl<scalar_t>(image, text, logit_scale, logit_bias, grad_loss, dimage, dtext, dlogit_scale,
                                   dlogit_bias);
  });
}

}  // namespace minivl::cpu
