#pragma once
// Fused attention on CUDA, version 4 backward: one block per (b, h), one recomputation of P, no
// atomics, no separate dQ pass, for heads that fit one block's shared memory.
//
// Per (b, h) the backward moves q, k, v, o, dO in and dq, dk, dv out (8 T D bf16 values at Tq = Tk)
// for 5 products of 2 T^2 D FLOPs each (S, dP, dV, dK, dQ): 5 T / 8 FLOP per byte, 31 at T = 50 and
// 123 at 197, under the H100 ridge. v3 (FlashAttention-2's deterministic backward) makes three
// passes over memory for it: a Delta pre-pass, a key-block pass for dK, dV and a query-block pass
// that recomputes S, P and dP for dQ (7 products). Where a head fits, this kernel makes one:
//   prologue  Q, dO, K, V of the head into shared memory by cp.async (rows past Tq / Tk
//             zero-filled); while they land, Delta_i = rowsum(dO_i o O_i) from global memory
//             (16-byte loads, D / 8 lanes per row), lse log2 e (+inf for a row that sees no key)
//             and one byte per key (exists and not padded)
//   phase 1   warp w takes key strips w, w + warps, ... (16 keys; K, V A fragments in registers
//             at D <= 64) and walks the queries from the strip's causal start in 32-row steps:
//               S^T = K Q^T, dP^T = V dO^T           (16 x 32, mma.sync m16n8k16, f32)
//               P^T = exp2(S^T scale log2 e - lse log2 e), dS^T = P^T o (dP^T - Delta)
//               dV += P^T dO, dK += dS^T Q            (P^T, dS^T re-packed as A fragments)
//               dS^T -> shared memory (bf16/f16, the precision the dQ product takes anyway)
//             then dV, dK (x scale) staged through the strip's V rows, 16-byte stores
//   phase 2   after one barrier, warp w takes query strips w, w + warps, ...:
//               dQ (16 x D) = dS K over the keys the strip sees, dS by ldmatrix.trans of the
//               stored dS^T, K by ldmatrix.trans; staged through the strip's Q rows
// Every output row is written by one warp: deterministic. Shared memory (attention_v4_plan.h,
// plan_backward): Q, dO (round32(Tq) rows of D + 8 halves), K, V (round16(Tk) rows), dS^T
// (round16(Tk) x (round32(Tq) + 8) halves), lse and Delta: at D = 64, 46 KiB for T = 50 (three
// blocks per SM at 167 registers), 67 KiB for 77, 84 KiB for 20 queries over 197 keys, 218 KiB
// for 197 (sm_90 only, one block per SM). Larger heads (ViT-L/14's 257, 577) decline, and
// attention_backward_cuda_version runs v3's backward for them. Bound: the bytes above at T <= 77; at 197 the block's prologue
// (a head's loads) does not overlap its math, so the one resident block per SM alternates.
//
// Device code only, in an anonymous namespace: the CUDA build (attention_v4_backward.cu) and the CPU
// emulation test (tests/test_attention_v4_emulated.cpp, which swaps the PTX primitives for a SIMT
// emulation through MINIVL_V4_MMA_HEADER) each instantiate these templates in their own
// translation unit.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/attention_v4_common.cuh"

namespace minivl::cuda::v4 {
namespace {  // internal linkage: see above

struct BackwardArgs {
  const uint16_t* q;     // (B, H, Tq, D)
  const uint16_t* k;     // (B, H, Tk, D)
  const uint16_t* v;     // (B, H, Tk, D)
  const uint16_t* out;   // (B, H, Tq, D)
  const uint16_t* dout;  // (B, H, Tq, D)
  const uint8_t* pad;    // (B, Tk), nonzero = ignore; or nullptr
  const float* lse;      // (B, H, Tq)
  uint16_t* dq;          // (B, H, Tq, D)
  uint16_t* dk;          // (B, H, Tk, D)
  uint16_t* dv;          // (B, H, Tk, D)
  int64_t H, Tq, Tk;
  bool causal;
  float scale, scale_log2;
  BackwardPlan plan;
};

// The block's shared memory, carved as plan_backward lays it out.
struct BackwardSmem {
  uint16_t* Q;   // (q_rows, D + 8); phase 2 stages dQ in a strip's rows
  uint16_t* G;   // (q_rows, D + 8): dO
  uint16_t* K;   // (k_rows, D + 8)
  uint16_t* V;   // (k_rows, D + 8); phase 1 stages dV, dK in a strip's rows
  uint16_t* St;  // (k_rows, ds_ld): dS^T
  float* L;      // (q_rows): lse log2 e, +inf where a row sees no key (P = 0)
  float* Dl;     // (q_rows): Delta
  uint8_t* M;    // (k_rows): 1 = key exists and is not padded
};

template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t u) {
  if constexpr (std::is_same_v<T, bf16>) {
    __nv_bfloat162 h;
    memcpy(&h, &u, 4);
    return __bfloat1622float2(h);
  } else {
    __half2 h;
    memcpy(&h, &u, 4);
    return __half22float2(h);
  }
}

// Delta_i = sum_d O[i, d] dO[i, d] for rows [0, q_rows) (0 past Tq): D / 8 consecutive lanes per
// row, one 16-byte load of each operand per lane, a shuffle sum over the row's lanes.
template <typename T, int D>
__device__ __forceinline__ void row_deltas(const uint16_t* o, const uint16_t* g, int64_t Tq, int64_t q_rows,
                                           float* delta, int tid, int nthreads) {
  constexpr int kLanes = D / 8;  // divides 32, and q_rows is a multiple of 32 / kLanes: whole warps iterate
  for (int64_t i = tid / kLanes; i < q_rows; i += nthreads / kLanes) {
    float acc = 0.0f;
    if (i < Tq) {
      const uint4 ov = *reinterpret_cast<const uint4*>(o + i * D + (tid % kLanes) * 8);
      const uint4 gv = *reinterpret_cast<const uint4*>(g + i * D + (tid % kLanes) * 8);
      const uint32_t ow[4] = {ov.x, ov.y, ov.z, ov.w}, gw[4] = {gv.x, gv.y, gv.z, gv.w};
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float2 a = unpack2<T>(ow[w]), b = unpack2<T>(gw[w]);
        acc += a.x * b.x + a.y * b.y;
      }
    }
#pragma unroll
    for (int off = kLanes / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (tid % kLanes == 0) delta[i] = acc;
  }
}

// Phase 1 for one warp and key strip ks: dK, dV of its 16 keys, and dS^T for every query step.
template <typename T, int D>
__device__ __forceinline__ void key_strip(const BackwardArgs& a, const BackwardSmem& sm, int64_t bh, int64_t ks) {
  constexpr int kLd = D + kPadHalves, kNT = kBwdQueryChunk / 8;
  constexpr bool kHoldKV = D <= 64;  // K, V fragments stay in registers (at D = 128 they reload per step)
  const BackwardPlan& p = a.plan;
  const Frontier f{a.Tq, a.Tk, a.causal};
  const int lane = threadIdx.x & 31, quad_row = lane >> 2, quad_col = lane & 3;
  const int j0 = int(ks * kKeyStep);  // 32-bit within a head: fewer registers than 64-bit indices
  const int key[2] = {j0 + quad_row, j0 + quad_row + 8};
  const int Tq = int(a.Tq), shift = int(f.shift());
  const bool key_ok[2] = {sm.M[key[0]] != 0, sm.M[key[1]] != 0};
  uint32_t kf[D / 16][4], vf[D / 16][4];
  if constexpr (kHoldKV) {
    load_a_fragments<D>(kf, sm.K + j0 * kLd);
    load_a_fragments<D>(vf, sm.V + j0 * kLd);
  }
  float dK[D / 8][4], dV[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dK[n][e] = dV[n][e] = 0.0f;

  for (int qc = int(bwd_first_query_chunk(f, ks)); qc < int(p.q_rows / kBwdQueryChunk); ++qc) {
    const int i0 = qc * kBwdQueryChunk;
    const int qsteps = bwd_query_steps(i0, a.Tq);
    float st[kNT][4], dpt[kNT][4];
    if constexpr (!kHoldKV) load_a_fragments<D>(kf, sm.K + j0 * kLd);
    frag_times_rows_t<T, D, kNT>(kf, sm.Q + i0 * kLd, qsteps, st);  // S^T (16 keys x 32 queries)
    if constexpr (!kHoldKV) load_a_fragments<D>(vf, sm.V + j0 * kLd);
    frag_times_rows_t<T, D, kNT>(vf, sm.G + i0 * kLd, qsteps, dpt);  // dP^T
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int i = i0 + n * 8 + 2 * quad_col + (e & 1);
        const int r = e >> 1;
        const bool ok = i < Tq && key_ok[r] && (!a.causal || key[r] <= i + shift);
        const float pe = ok ? exp2f(st[n][e] * a.scale_log2 - sm.L[i]) : 0.0f;
        st[n][e] = pe;                         // P^T
        dpt[n][e] = pe * (dpt[n][e] - sm.Dl[i]);  // dS^T (unscaled)
      }
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int r = 0; r < 2; ++r)
        *reinterpret_cast<uint32_t*>(sm.St + (quad_row + 8 * r + j0) * int(p.ds_ld) + i0 + n * 8 + 2 * quad_col) =
            pack2<T>(dpt[n][2 * r], dpt[n][2 * r + 1]);
    acc_times_rows<T, D, kNT>(st, sm.G + i0 * kLd, qsteps, dV);   // dV += P^T dO
    acc_times_rows<T, D, kNT>(dpt, sm.Q + i0 * kLd, qsteps, dK);  // dK += dS^T Q
  }
  const int64_t rows = min64(kKeyStep, a.Tk - j0);
  if (rows <= 0) return;  // a strip of padding keys only (never: k_rows = round16(Tk))
  const float one[2] = {1.0f, 1.0f}, scale[2] = {a.scale, a.scale};
  store_strip<T, D>(dV, one, sm.V + j0 * kLd, a.dv + (bh * a.Tk + j0) * D, rows);
  store_strip<T, D>(dK, scale, sm.V + j0 * kLd, a.dk + (bh * a.Tk + j0) * D, rows);
}

// Phase 2 for one warp and query strip qs: dQ = scale dS K from the stored dS^T.
template <typename T, int D>
__device__ __forceinline__ void query_strip(const BackwardArgs& a, const BackwardSmem& sm, int64_t bh, int64_t qs) {
  constexpr int kLd = D + kPadHalves;
  const BackwardPlan& p = a.plan;
  const Frontier f{a.Tq, a.Tk, a.causal};
  const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
  const int64_t r0 = qs * kStripRows;
  const int64_t steps = bwd_key_steps(f, qs);
  float dQ[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) dQ[n][0] = dQ[n][1] = dQ[n][2] = dQ[n][3] = 0.0f;
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t jb = s * kKeyStep;
    uint32_t af[4];  // dS (16 queries x 16 keys) from dS^T rows jb.. (keys), columns r0.. (queries)
    ldmatrix_x4_trans(af, sm.St + (jb + (mi >> 1) * 8 + mr) * p.ds_ld + r0 + (mi & 1) * 8);
#pragma unroll
    for (int n = 0; n < D / 8; n += 2) {
      uint32_t bk[4];
      ldmatrix_x4_trans(bk, sm.K + (jb + (mi & 1) * 8 + mr) * kLd + n * 8 + (mi >> 1) * 8);
      mma16816<T>(dQ[n], af, bk[0], bk[1]);
      mma16816<T>(dQ[n + 1], af, bk[2], bk[3]);
    }
  }
  const float scale[2] = {a.scale, a.scale};
  store_strip<T, D>(dQ, scale, sm.Q + r0 * kLd, a.dq + (bh * a.Tq + r0) * D, min64(kStripRows, a.Tq - r0));
}

template <typename T, int D>
__global__ void __launch_bounds__(kMaxWarpsBackward * 32) backward_v4_kernel(const BackwardArgs a) {
  constexpr float kLog2e = 1.4426950408889634f;
  const BackwardPlan& p = a.plan;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const BackwardSmem sm{reinterpret_cast<uint16_t*>(smem_raw),
                        reinterpret_cast<uint16_t*>(smem_raw + p.off_dout),
                        reinterpret_cast<uint16_t*>(smem_raw + p.off_k),
                        reinterpret_cast<uint16_t*>(smem_raw + p.off_v),
                        reinterpret_cast<uint16_t*>(smem_raw + p.off_ds),
                        reinterpret_cast<float*>(smem_raw + p.off_lse),
                        reinterpret_cast<float*>(smem_raw + p.off_delta),
                        smem_raw + p.off_mask};
  const int64_t bh = blockIdx.x, b = bh / a.H;
  const int tid = threadIdx.x, nthreads = p.warps * 32, warp = tid / 32;
  const int64_t qoff = bh * a.Tq * D, koff = bh * a.Tk * D;

  load_rows<D>(sm.Q, a.q + qoff, 0, p.q_rows, a.Tq, tid, nthreads);
  load_rows<D>(sm.G, a.dout + qoff, 0, p.q_rows, a.Tq, tid, nthreads);
  load_rows<D>(sm.K, a.k + koff, 0, p.k_rows, a.Tk, tid, nthreads);
  load_rows<D>(sm.V, a.v + koff, 0, p.k_rows, a.Tk, tid, nthreads);
  cp_async_commit();
  // While the copies land: Delta, lse in base 2, the key mask (ordinary loads and stores).
  row_deltas<T, D>(a.out + qoff, a.dout + qoff, a.Tq, p.q_rows, sm.Dl, tid, nthreads);
  for (int64_t i = tid; i < p.q_rows; i += nthreads) {
    const float l = i < a.Tq ? a.lse[bh * a.Tq + i] : -INFINITY;
    sm.L[i] = l == -INFINITY ? INFINITY : l * kLog2e;
  }
  for (int64_t j = tid; j < p.k_rows; j += nthreads)
    sm.M[j] = j < a.Tk && (a.pad == nullptr || a.pad[b * a.Tk + j] == 0);
  cp_async_wait<0>();
  __syncthreads();

  for (int64_t ks = warp; ks < p.key_strips; ks += p.warps) key_strip<T, D>(a, sm, bh, ks);
  __syncthreads();  // all of dS^T written; Q, dO no longer read
  for (int64_t qs = warp; qs < p.query_strips; qs += p.warps) query_strip<T, D>(a, sm, bh, qs);
}

}  // namespace
}  // namespace minivl::cuda::v4
