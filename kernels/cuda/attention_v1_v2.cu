// Fused attention on CUDA, versions 1 (naive) and 2 (tiled SIMT online softmax).
//
//   v1  naive, the baseline every later version is checked against. Forward: S = scale q k^T
//       (masked entries -inf) written to a (B, H, Tq, Tk) buffer, one warp per row turns it into
//       P = softmax(S) in place and writes lse, then out = P v (one thread per output element).
//       Backward: P again, Delta_i = rowsum(dO o O), dS = P o (dO v^T - Delta) materialised,
//       dq = scale dS k, dk = scale dS^T q, dv = P^T dO (one thread per output element).
//       Bound: memory, 2-4 passes over B H Tq Tk values; it exists to be obviously right.
//   v2  FlashAttention-2's loop order on SIMT cores, f32 compute. Forward: one block of 4 warps
//       per (b, h, 16 query rows), 4 rows per warp; key tiles of 32 (one key per lane) and
//       their values staged in shared memory; per row the lane computes one score, the warp
//       reduces max and sum with shuffles, and each lane keeps D / 32 output columns of the
//       running O. Backward: Delta pre-pass; a key-block pass (block = 16 keys, lane = query
//       row of a 32-row tile) accumulating dk, dv in registers; a query-block pass (block = 16
//       rows, lane = key) accumulating dq. Every output row is owned by one warp: deterministic.
//       Bound: FP32 FMA issue (scores and P v both on SIMT cores, ~1/16 of the tensor-core
//       rate); v3 (attention_v3.cu) moves both products to tensor cores.
// The version switch that calls these is attention.cu; docs/kernels/attention.md has the derivation.
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_common.cuh"

namespace minivl::cuda {
namespace {

template <typename T> using Acc = compute_t<T>;

// =============================================================================================
// v1: naive.

// S[bh, i, j] = scale q_i . k_j, or -inf where masked.
template <typename T>
__global__ void v1_scores(Geometry g, const T* q, const T* k, Acc<T> scale, Acc<T>* S) {
  using C = Acc<T>;
  const int64_t n = g.B * g.H * g.Tq * g.Tk;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = e % g.Tk, i = (e / g.Tk) % g.Tq, bh = e / (g.Tk * g.Tq), b = bh / g.H;
    C s = neg_inf<C>();
    if (g.visible(b, i, j)) {
      const T* qi = q + (bh * g.Tq + i) * g.D;
      const T* kj = k + (bh * g.Tk + j) * g.D;
      C acc = 0;
      for (int64_t d = 0; d < g.D; ++d) acc += C(load(qi + d)) * C(load(kj + d));
      s = acc * scale;
    }
    S[e] = s;
  }
}

// One warp per row of S: P = softmax in place (0 for an all-masked row), lse (-inf there).
template <typename C>
__global__ void v1_softmax(int64_t rows, int64_t Tk, C* S, C* lse) {
  const int64_t warp = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= rows) return;
  C* s = S + warp * Tk;
  C mx = neg_inf<C>();
  for (int64_t j = lane; j < Tk; j += 32) mx = s[j] > mx ? s[j] : mx;
  mx = warp_max(mx);
  if (mx == neg_inf<C>()) {
    for (int64_t j = lane; j < Tk; j += 32) s[j] = 0;
    if (lane == 0 && lse) lse[warp] = neg_inf<C>();
    return;
  }
  C sum = 0;
  for (int64_t j = lane; j < Tk; j += 32) {
    const C p = s[j] == neg_inf<C>() ? C(0) : exp(s[j] - mx);
    s[j] = p;
    sum += p;
  }
  sum = warp_sum(sum);
  const C inv = C(1) / sum;
  for (int64_t j = lane; j < Tk; j += 32) s[j] *= inv;
  if (lane == 0 && lse) lse[warp] = mx + log(sum);
}

// out[bh, i, d] = sum_j P[bh, i, j] v[bh, j, d]  (also dq = scale dS k with P = dS, v = k).
template <typename T>
__global__ void v1_rows_times(Geometry g, const Acc<T>* P, const T* v, Acc<T> alpha, T* out) {
  using C = Acc<T>;
  const int64_t n = g.B * g.H * g.Tq * g.D;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = e % g.D, i = (e / g.D) % g.Tq, bh = e / (g.D * g.Tq);
    const C* p = P + (bh * g.Tq + i) * g.Tk;
    const T* vb = v + bh * g.Tk * g.D + d;
    C acc = 0;
    for (int64_t j = 0; j < g.Tk; ++j) acc += p[j] * C(load(vb + j * g.D));
    store(out + e, acc * alpha);
  }
}

// out[bh, j, d] = alpha sum_i P[bh, i, j] x[bh, i, d]  (dv = P^T dO, dk = scale dS^T q).
template <typename T>
__global__ void v1_cols_times(Geometry g, const Acc<T>* P, const T* x, Acc<T> alpha, T* out) {
  using C = Acc<T>;
  const int64_t n = g.B * g.H * g.Tk * g.D;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t d = e % g.D, j = (e / g.D) % g.Tk, bh = e / (g.D * g.Tk);
    const C* p = P + bh * g.Tq * g.Tk + j;
    const T* xb = x + bh * g.Tq * g.D + d;
    C acc = 0;
    for (int64_t i = 0; i < g.Tq; ++i) acc += p[i * g.Tk] * C(load(xb + i * g.D));
    store(out + e, acc * alpha);
  }
}

// dS[bh, i, j] = P (dO_i . v_j - delta_i), in place over P.
template <typename T>
__global__ void v1_dscores(Geometry g, const T* dout, const T* v, const Acc<T>* delta, Acc<T>* P) {
  using C = Acc<T>;
  const int64_t n = g.B * g.H * g.Tq * g.Tk;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const C p = P[e];
    if (p == C(0)) continue;
    const int64_t j = e % g.Tk, i = (e / g.Tk) % g.Tq, bh = e / (g.Tk * g.Tq);
    const T* gi = dout + (bh * g.Tq + i) * g.D;
    const T* vj = v + (bh * g.Tk + j) * g.D;
    C dp = 0;
    for (int64_t d = 0; d < g.D; ++d) dp += C(load(gi + d)) * C(load(vj + d));
    P[e] = p * (dp - delta[bh * g.Tq + i]);
  }
}

// The dP pass above needs P untouched for dv: dv is computed first, then dS overwrites P.
template <typename T>
void forward_v1(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                bool causal, double scale, const StridedView& out, const StridedView& lse) {
  using C = Acc<T>;
  const Geometry g = geometry(qv, kv, mask, causal);
  const int64_t rows = g.B * g.H * g.Tq;
  if (rows == 0) return;
  DeviceBuffer S(size_t(std::max<int64_t>(rows * g.Tk, 1)) * sizeof(C));
  v1_scores<T><<<grid_for(rows * g.Tk), kThreads, 0, stream()>>>(g, qv.ptr<T>(), kv.ptr<T>(), C(scale), S.as<C>());
  CUDA_CHECK_LAUNCH();
  v1_softmax<C><<<unsigned((rows * 32 + kThreads - 1) / kThreads), kThreads, 0, stream()>>>(rows, g.Tk, S.as<C>(),
                                                                                            lse.ptr<C>());
  CUDA_CHECK_LAUNCH();
  v1_rows_times<T><<<grid_for(rows * g.D), kThreads, 0, stream()>>>(g, S.as<C>(), vv.ptr<T>(), C(1), out.ptr<T>());
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward_v1(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                 bool causal, double scale, const StridedView& out, const StridedView& dout, const StridedView& dq,
                 const StridedView& dk, const StridedView& dv) {
  using C = Acc<T>;
  const Geometry g = geometry(qv, kv, mask, causal);
  const int64_t rows = g.B * g.H * g.Tq, keys = g.B * g.H * g.Tk;
  if (keys > 0 && rows == 0) {  // no queries: zero gradients for k and v
    CUDA_CHECK(cudaMemsetAsync(dk.data, 0, size_t(keys * g.D) * scalar_size(dk.dtype), stream()));
    CUDA_CHECK(cudaMemsetAsync(dv.data, 0, size_t(keys * g.D) * scalar_size(dv.dtype), stream()));
  }
  if (rows == 0) return;
  DeviceBuffer P(size_t(std::max<int64_t>(rows * g.Tk, 1)) * sizeof(C)), delta(size_t(rows) * sizeof(C));
  v1_scores<T><<<grid_for(rows * g.Tk), kThreads, 0, stream()>>>(g, qv.ptr<T>(), kv.ptr<T>(), C(scale), P.as<C>());
  CUDA_CHECK_LAUNCH();
  const unsigned warp_blocks = unsigned((rows * 32 + kThreads - 1) / kThreads);
  v1_softmax<C><<<warp_blocks, kThreads, 0, stream()>>>(rows, g.Tk, P.as<C>(), nullptr);
  CUDA_CHECK_LAUNCH();
  if (keys > 0) {
    v1_cols_times<T><<<grid_for(keys * g.D), kThreads, 0, stream()>>>(g, P.as<C>(), dout.ptr<T>(), C(1), dv.ptr<T>());
    CUDA_CHECK_LAUNCH();
  }
  launch_row_delta<T>(rows, g.D, out.ptr<T>(), dout.ptr<T>(), delta.as<C>());
  v1_dscores<T><<<grid_for(rows * g.Tk), kThreads, 0, stream()>>>(g, dout.ptr<T>(), vv.ptr<T>(), delta.as<C>(),
                                                                  P.as<C>());
  CUDA_CHECK_LAUNCH();
  v1_rows_times<T><<<grid_for(rows * g.D), kThreads, 0, stream()>>>(g, P.as<C>(), kv.ptr<T>(), C(scale), dq.ptr<T>());
  CUDA_CHECK_LAUNCH();
  if (keys > 0) {
    v1_cols_times<T><<<grid_for(keys * g.D), kThreads, 0, stream()>>>(g, P.as<C>(), qv.ptr<T>(), C(scale),
                                                                      dk.ptr<T>());
    CUDA_CHECK_LAUNCH();
  }
}

// =============================================================================================
// v2: tiled SIMT, f32 compute.

constexpr int kWarps2 = 4;
constexpr int kThreads2 = kWarps2 * 32;
constexpr int kRowsPerWarp = 4;
constexpr int kRows2 = kWarps2 * kRowsPerWarp;  // 16 query rows (or keys) per block
constexpr int kTile2 = 32;                       // keys (or query rows) per tile: one per lane
constexpr int kMaxD2 = 128;
constexpr int kCols2 = kMaxD2 / 32;              // output columns per lane: lane + 32 t

// Loads rows [r0, r0 + n) of a (total, D) matrix into smem rows of stride ld (zeros past the end).
template <typename T>
__device__ void stage_rows(const T* src, int64_t r0, int n, int64_t total, int64_t D, float mul, float* dst, int ld) {
  for (int e = threadIdx.x; e < n * int(D); e += blockDim.x) {
    const int r = e / int(D), d = e % int(D);
    dst[r * ld + d] = r0 + r < total ? float(load(src + (r0 + r) * D + d)) * mul : 0.0f;
  }
}

// The next tile of kTile2 key and value rows (a, b: (total, D)) into shared memory, between two
// barriers: every warp is done with the previous tile, and the new one is visible to all.
template <typename T>
__device__ __forceinline__ void stage_key_tile(const T* a, const T* b, int64_t r0, int64_t total, int64_t D,
                                               float* as, int lda, float* bs, int ldb) {
  __syncthreads();
  stage_rows(a, r0, kTile2, total, D, 1.0f, as, lda);
  stage_rows(b, r0, kTile2, total, D, 1.0f, bs, ldb);
  __syncthreads();
}

// acc[t] += sum over the tile's rows jj of p(lane jj) * tile[jj * ld + c], c = lane + 32 t: the warp
// multiplies the 32 values its lanes hold (one per tile row) into the tile, each lane keeping the
// output columns c < D it owns.
__device__ __forceinline__ void accumulate_lane_weighted_rows(float (&acc)[kCols2], float p, const float* tile, int ld,
                                                              int D, int lane) {
  for (int jj = 0; jj < kTile2; ++jj) {
    const float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
    for (int t = 0; t < kCols2; ++t) {
      const int c = lane + 32 * t;
      if (c < D) acc[t] += pj * tile[jj * ld + c];
    }
  }
}

// row[c] = acc[t] * mul for the lane's output columns c = lane + 32 t < D.
template <typename T>
__device__ __forceinline__ void store_lane_columns(T* row, const float (&acc)[kCols2], float mul, int D, int lane) {
#pragma unroll
  for (int t = 0; t < kCols2; ++t) {
    const int c = lane + 32 * t;
    if (c < D) store(row + c, acc[t] * mul);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads2) forward_v2_kernel(Geometry g, const T* q, const T* k, const T* v,
                                                               float scale, T* out, float* lse) {
  extern __shared__ float smem[];
  const int D = int(g.D), ldk = D + 1;
  float* Qs = smem;                       // (16, D), pre-scaled
  float* Ks = Qs + kRows2 * D;            // (32, D + 1)
  float* Vs = Ks + kTile2 * ldk;          // (32, D)
  const int64_t tiles = (g.Tq + kRows2 - 1) / kRows2;
  const int64_t bh = blockIdx.x / tiles, b = bh / g.H, i0 = (blockIdx.x % tiles) * kRows2;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const T* kb = k + bh * g.Tk * g.D;
  const T* vb = v + bh * g.Tk * g.D;
  stage_rows(q + bh * g.Tq * g.D, i0, kRows2, g.Tq, g.D, scale, Qs, D);
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kCols2];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    m[r] = -INFINITY;
    l[r] = 0;
#pragma unroll
    for (int t = 0; t < kCols2; ++t) acc[r][t] = 0;
  }
  const int64_t kend = g.key_end(i0 + kRows2);
  for (int64_t j0 = 0; j0 < kend; j0 += kTile2) {
    stage_key_tile(kb, vb, j0, g.Tk, g.D, Ks, ldk, Vs, D);
    const int64_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      const int64_t i = i0 + row;
      float s = 0;
      for (int d = 0; d < D; ++d) s += Qs[row * D + d] * Ks[lane * ldk + d];
      const bool valid = i < g.Tq && j < kend && g.visible(b, i, j);
      s = valid ? s : -INFINITY;
      const float mnew = fmaxf(m[r], warp_max(s));
      if (mnew == -INFINITY) continue;  // warp-uniform: nothing visible in this row yet
      const float p = valid ? __expf(s - mnew) : 0.0f;
      const float alpha = m[r] == -INFINITY ? 0.0f : __expf(m[r] - mnew);
      l[r] = l[r] * alpha + warp_sum(p);
      m[r] = mnew;
#pragma unroll
      for (int t = 0; t < kCols2; ++t) acc[r][t] *= alpha;
      accumulate_lane_weighted_rows(acc[r], p, Vs, D, D, lane);
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t i = i0 + warp * kRowsPerWarp + r;
    if (i >= g.Tq) continue;
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
    store_lane_columns(out + (bh * g.Tq + i) * g.D, acc[r], inv, D, lane);
    if (lane == 0) lse[bh * g.Tq + i] = l[r] > 0 ? m[r] + __logf(l[r]) : -INFINITY;
  }
}

// Key-block pass: 16 keys per block (4 per warp), lane = query row of a 32-row tile.
template <typename T>
__global__ void __launch_bounds__(kThreads2) dkdv_v2_kernel(Geometry g, const T* q, const T* k, const T* v,
                                                            const T* dout, const float* lse, const float* delta,
                                                            float scale, T* dk, T* dv) {
  extern __shared__ float smem[];
  const int D = int(g.D), ld = D + 1;
  float* Ks = smem;                // (16, D)
  float* Vs = Ks + kRows2 * D;     // (16, D)
  float* Qs = Vs + kRows2 * D;     // (32, D + 1)
  float* Gs = Qs + kTile2 * ld;    // (32, D + 1): dO
  float* Ls = Gs + kTile2 * ld;    // (32): lse
  float* Ds = Ls + kTile2;         // (32): delta
  const int64_t tiles = (g.Tk + kRows2 - 1) / kRows2;
  const int64_t bh = blockIdx.x / tiles, b = bh / g.H, j0 = (blockIdx.x % tiles) * kRows2;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  stage_rows(k + bh * g.Tk * g.D, j0, kRows2, g.Tk, g.D, 1.0f, Ks, D);
  stage_rows(v + bh * g.Tk * g.D, j0, kRows2, g.Tk, g.D, 1.0f, Vs, D);
  float dK[kRowsPerWarp][kCols2] = {}, dV[kRowsPerWarp][kCols2] = {};
  for (int64_t i0 = g.query_begin(j0) / kTile2 * kTile2; i0 < g.Tq; i0 += kTile2) {
    __syncthreads();
    stage_rows(q + bh * g.Tq * g.D, i0, kTile2, g.Tq, g.D, 1.0f, Qs, ld);
    stage_rows(dout + bh * g.Tq * g.D, i0, kTile2, g.Tq, g.D, 1.0f, Gs, ld);
    if (threadIdx.x < kTile2) {
      const int64_t i = i0 + threadIdx.x;
      Ls[threadIdx.x] = i < g.Tq ? lse[bh * g.Tq + i] : -INFINITY;
      Ds[threadIdx.x] = i < g.Tq ? delta[bh * g.Tq + i] : 0.0f;
    }
    __syncthreads();
    const int64_t i = i0 + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int key = warp * kRowsPerWarp + r;
      const int64_t j = j0 + key;
      float s = 0, dp = 0;
      for (int d = 0; d < D; ++d) {
        s += Qs[lane * ld + d] * Ks[key * D + d];
        dp += Gs[lane * ld + d] * Vs[key * D + d];
      }
      const bool valid = i < g.Tq && j < g.Tk && Ls[lane] != -INFINITY && g.visible(b, i, j);
      const float p = valid ? __expf(s * scale - Ls[lane]) : 0.0f;
      const float ds = p * (dp - Ds[lane]);
      for (int ii = 0; ii < kTile2; ++ii) {
        const float pi = __shfl_sync(0xffffffffu, p, ii), dsi = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
        for (int t = 0; t < kCols2; ++t) {
          const int c = lane + 32 * t;
          if (c < D) {
            dV[r][t] += pi * Gs[ii * ld + c];
            dK[r][t] += dsi * Qs[ii * ld + c];
          }
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t j = j0 + warp * kRowsPerWarp + r;
    if (j >= g.Tk) continue;
#pragma unroll
    for (int t = 0; t < kCols2; ++t) {
      const int c = lane + 32 * t;
      if (c < D) {
        store(dk + (bh * g.Tk + j) * g.D + c, dK[r][t] * scale);
        store(dv + (bh * g.Tk + j) * g.D + c, dV[r][t]);
      }
    }
  }
}

// Query-block pass: 16 query rows per block (4 per warp), lane = key of a 32-key tile.
template <typename T>
__global__ void __launch_bounds__(kThreads2) dq_v2_kernel(Geometry g, const T* q, const T* k, const T* v,
                                                          const T* dout, const float* lse, const float* delta,
                                                          float scale, T* dq) {
  extern __shared__ float smem[];
  const int D = int(g.D), ld = D + 1;
  float* Qs = smem;               // (16, D)
  float* Gs = Qs + kRows2 * D;    // (16, D): dO
  float* Ks = Gs + kRows2 * D;    // (32, D + 1)
  float* Vs = Ks + kTile2 * ld;   // (32, D + 1)
  const int64_t tiles = (g.Tq + kRows2 - 1) / kRows2;
  const int64_t bh = blockIdx.x / tiles, b = bh / g.H, i0 = (blockIdx.x % tiles) * kRows2;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  stage_rows(q + bh * g.Tq * g.D, i0, kRows2, g.Tq, g.D, 1.0f, Qs, D);
  stage_rows(dout + bh * g.Tq * g.D, i0, kRows2, g.Tq, g.D, 1.0f, Gs, D);
  float rl[kRowsPerWarp], rd[kRowsPerWarp], dQ[kRowsPerWarp][kCols2] = {};
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t i = i0 + warp * kRowsPerWarp + r;
    rl[r] = i < g.Tq ? lse[bh * g.Tq + i] : -INFINITY;
    rd[r] = i < g.Tq ? delta[bh * g.Tq + i] : 0.0f;
  }
  const int64_t kend = g.key_end(i0 + kRows2);
  for (int64_t j0 = 0; j0 < kend; j0 += kTile2) {
    stage_key_tile(k + bh * g.Tk * g.D, v + bh * g.Tk * g.D, j0, g.Tk, g.D, Ks, ld, Vs, ld);
    const int64_t j = j0 + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      const int row = warp * kRowsPerWarp + r;
      const int64_t i = i0 + row;
      // rl = -inf: the row sees no key (or is past Tq), so p = 0 and dS = 0 (warp-uniform).
      float s = 0, dp = 0;
      for (int d = 0; d < D; ++d) {
        s += Qs[row * D + d] * Ks[lane * ld + d];
        dp += Gs[row * D + d] * Vs[lane * ld + d];
      }
      const bool valid = rl[r] != -INFINITY && j < kend && g.visible(b, i, j);
      const float p = valid ? __expf(s * scale - rl[r]) : 0.0f;
      const float ds = p * (dp - rd[r]);
      accumulate_lane_weighted_rows(dQ[r], ds, Ks, ld, D, lane);
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int64_t i = i0 + warp * kRowsPerWarp + r;
    if (i >= g.Tq) continue;
    store_lane_columns(dq + (bh * g.Tq + i) * g.D, dQ[r], scale, D, lane);
  }
}

template <typename T>
void forward_v2(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                bool causal, double scale, const StridedView& out, const StridedView& lse) {
  const Geometry g = geometry(qv, kv, mask, causal);
  const int64_t blocks = g.B * g.H * ((g.Tq + kRows2 - 1) / kRows2);
  if (blocks == 0) return;
  const size_t smem = size_t(kRows2 * g.D + kTile2 * (g.D + 1) + kTile2 * g.D) * sizeof(float);
  allow_dynamic_smem(forward_v2_kernel<T>, smem);
  forward_v2_kernel<T><<<unsigned(blocks), kThreads2, smem, stream()>>>(g, qv.ptr<T>(), kv.ptr<T>(), vv.ptr<T>(),
                                                                        float(scale), out.ptr<T>(), lse.ptr<float>());
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void backward_v2(const StridedView& qv, const StridedView& kv, const StridedView& vv, const StridedView& mask,
                 bool causal, double scale, const StridedView& out, const StridedView& lse, const StridedView& dout,
                 const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  const Geometry g = geometry(qv, kv, mask, causal);
  const int64_t rows = g.B * g.H * g.Tq;
  DeviceBuffer delta(size_t(std::max<int64_t>(rows, 1)) * sizeof(float));
  if (rows > 0) {
    launch_row_delta<T>(rows, g.D, out.ptr<T>(), dout.ptr<T>(), delta.as<float>());
  }
  const size_t smem_kv = size_t(2 * kRows2 * g.D + 2 * kTile2 * (g.D + 1) + 2 * kTile2) * sizeof(float);
  const int64_t kv_blocks = g.B * g.H * ((g.Tk + kRows2 - 1) / kRows2);
  if (kv_blocks > 0) {
    allow_dynamic_smem(dkdv_v2_kernel<T>, smem_kv);
    dkdv_v2_kernel<T><<<unsigned(kv_blocks), kThreads2, smem_kv, stream()>>>(
        g, qv.ptr<T>(), kv.ptr<T>(), vv.ptr<T>(), dout.ptr<T>(), lse.ptr<float>(), delta.as<float>(), float(scale),
        dk.ptr<T>(), dv.ptr<T>());
    CUDA_CHECK_LAUNCH();
  }
  const size_t smem_q = size_t(2 * kRows2 * g.D + 2 * kTile2 * (g.D + 1)) * sizeof(float);
  const int64_t q_blocks = g.B * g.H * ((g.Tq + kRows2 - 1) / kRows2);
  if (q_blocks > 0) {
    allow_dynamic_smem(dq_v2_kernel<T>, smem_q);
    dq_v2_kernel<T><<<unsigned(q_blocks), kThreads2, smem_q, stream()>>>(g, qv.ptr<T>(), kv.ptr<T>(), vv.ptr<T>(),
                                                                         dout.ptr<T>(), lse.ptr<float>(),
                                                                         delta.as<float>(), float(scale), dq.ptr<T>());
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace

bool attention_v1_supported(DType dtype, int64_t head_dim) {
  return dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16 || dtype == DType::f16;
}

bool attention_v2_supported(DType dtype, int64_t head_dim) {
  return (dtype == DType::f32 || dtype == DType::bf16 || dtype == DType::f16) && head_dim <= kMaxD2;
}

void attention_forward_v1_v2(int version, const StridedView& q, const StridedView& k, const StridedView& v,
                             const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                             const StridedView& lse) {
  dispatch_cuda_floating(q.dtype, "attention", [&](auto tag_) {
    using T = typename decltype(tag_)::type;
    if (version == 1) {
      forward_v1<T>(q, k, v, key_padding_mask, causal, scale, out, lse);
    } else if constexpr (!std::is_same_v<T, double>) {
      forward_v2<T>(q, k, v, key_padding_mask, causal, scale, out, lse);
    } else {
      throw CudaError("attention: CUDA version 2 does not take f64");
    }
  });
}

void attention_backward_v1_v2(int version, const StridedView& q, const StridedView& k, const StridedView& v,
                              const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                              const StridedView& lse, const StridedView& dout, const StridedView& dq,
                              const StridedView& dk, const StridedView& dv) {
  dispatch_cuda_floating(q.dtype, "attention_backward", [&](auto tag_) {
    using T = typename decltype(tag_)::type;
    if (version == 1) {
      backward_v1<T>(q, k, v, key_padding_mask, causal, scale, out, dout, dq, dk, dv);
    } else if constexpr (!std::is_same_v<T, double>) {
      backward_v2<T>(q, k, v, key_padding_mask, causal, scale, out, lse, dout, dq, dk, dv);
    } else {
      throw CudaError("attention_backward: CUDA version 2 does not take f64");
    }
  });
}

}  // namespace minivl::cuda
