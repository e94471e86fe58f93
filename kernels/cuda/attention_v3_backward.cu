// Fused attention on CUDA, version 3 backward: FlashAttention-2's backward on tensor cores.
//
// After the Delta pre-pass (Delta_i = rowsum(dO o O), one warp per row), two passes, each output
// row owned by one warp (deterministic, no atomics):
//   key-block pass, one block of 4 warps per (b, h, 64 keys), 16 keys per warp, query tiles of 64
//   rows (32 at D = 128; Q, dO, lse, Delta) double-buffered through shared memory with cp.async:
//     S^T = K Q^T, P^T = exp2(S^T scale log2 e - lse log2 e)   (16 keys x 64 queries, registers)
//     dP^T = V dO^T, dS^T = P^T o (dP^T - Delta)
//     dV += P^T dO, dK += dS^T Q                                 (P^T, dS^T re-packed into A
//                                                                 fragments, dO / Q by ldmatrix.trans)
//   query-block pass, one block per (b, h, 64 query rows), 16 rows per warp, key tiles of 64:
//     S = Q K^T, P = exp2(...), dP = dO V^T, dS = P o (dP - Delta), dQ += dS K
// All products mma.sync m16n8k16 with f32 accumulation; K (dV, dK) or Q (dQ) fragments for the
// warp's own 16 rows are reloaded from shared memory by ldmatrix each tile (fewer registers).
// 7 GEMM-sized products per tile pair (the one-pass kernel with atomic dQ needs 5): the price of
// determinism. D in {32, 64, 128}; bf16, f16.

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma_tiles.cuh"

namespace minivl::cuda {
namespace {

constexpr int kThreadsB = 128;
constexpr int kTileB = 64;

// Rows [r0, r0 + kRows) of a (total, D) matrix into shared memory rows of D + 8 halves.
template <int D, int kRows = kTileB>
__device__ __forceinline__ void load_tile(uint16_t* dst, const uint16_t* src, int64_t r0, int64_t total) {
  constexpr int kChunks = D / 8, kLd = D + 8;
  for (int c = threadIdx.x; c < kRows * kChunks; c += kThreadsB) {
    const int r = c / kChunks, cc = c % kChunks;
    const bool valid = r0 + r < total;
    cp_async16(dst + r * kLd + cc * 8, valid ? src + (r0 + r) * D + cc * 8 : src, valid);
  }
}

// acc (16 x 8 NT) = A (16 rows of `a`, warp's) x B^T (8 NT rows of `b`): both (rows, D) in smem.
template <typename T, int D, int NT = 8>
__device__ __forceinline__ void rows_times_rows_t(const uint16_t* a, const uint16_t* b, float (&acc)[NT][4]) {
  constexpr int kLd = D + 8;
  const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
#pragma unroll
  for (int n = 0; n < NT; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t af[4];
    ldmatrix_x4(af, a + ((mi & 1) * 8 + mr) * kLd + kk * 16 + (mi >> 1) * 8);
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      uint32_t bf[4];
      ldmatrix_x4(bf, b + (n * 8 + (mi >> 1) * 8 + mr) * kLd + kk * 16 + (mi & 1) * 8);
      mma16816<T>(acc[n], af, bf[0], bf[1]);
      mma16816<T>(acc[n + 1], af, bf[2], bf[3]);
    }
  }
}

// Key-block pass: dK, dV for 64 keys per block; query tiles of kQ rows (32 at D = 128, where
// 64 would leave dK, dV, S^T and dP^T (192 floats) no room in 255 registers).
template <int D>
constexpr int kQTile = D >= 128 ? 32 : 64;

template <typename T, int D>
__global__ void __launch_bounds__(kThreadsB) dkdv_v3_kernel(Geometry g, const uint16_t* q, const uint16_t* k,
                                                            const uint16_t* v, const uint16_t* dout,
                                                            const float* lse, const float* delta, float scale,
                                                            T* dk, T* dv) {
  constexpr int kLd = D + 8, kQ = kQTile<D>, kNT = kQ / 8;
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* Ks = reinterpret_cast<uint16_t*>(smem_raw);  // (64, D + 8)
  uint16_t* Vs = Ks + kTileB * kLd;                        // (64, D + 8)
  uint16_t* Qs = Vs + kTileB * kLd;                        // 2 x (kQ, D + 8)
  uint16_t* Gs = Qs + 2 * kQ * kLd;                        // 2 x (kQ, D + 8): dO
  float* Ls = reinterpret_cast<float*>(Gs + 2 * kQ * kLd);  // 2 x kQ: lse log2 e (+inf: no key)
  float* Ds = Ls + 2 * kQ;                                   // 2 x kQ: Delta
  const int64_t tiles = (g.Tk + kTileB - 1) / kTileB;
  const int64_t bh = blockIdx.x / tiles, b = bh / g.H, j0 = (blockIdx.x % tiles) * kTileB;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, quad_row = lane >> 2, quad_col = lane & 3;
  const uint16_t* qg = q + bh * g.Tq * D;
  const uint16_t* gg = dout + bh * g.Tq * D;
  load_tile<D>(Ks, k + bh * g.Tk * D, j0, g.Tk);
  load_tile<D>(Vs, v + bh * g.Tk * D, j0, g.Tk);
  const int64_t first = g.query_begin(j0) / kQ * kQ;
  const int ntiles = int((g.Tq - first + kQ - 1) / kQ);
  auto stage = [&](int t, int buf) {
    const int64_t i0 = first + int64_t(t) * kQ;
    load_tile<D, kQ>(Qs + buf * kQ * kLd, qg, i0, g.Tq);
    load_tile<D, kQ>(Gs + buf * kQ * kLd, gg, i0, g.Tq);
    if (threadIdx.x < kQ) {
      const int64_t i = i0 + threadIdx.x;
      const float l = i < g.Tq ? lse[bh * g.Tq + i] : -INFINITY;
      Ls[buf * kQ + threadIdx.x] = l == -INFINITY ? INFINITY : l * kLog2e;  // +inf: P = 0
      Ds[buf * kQ + threadIdx.x] = i < g.Tq ? delta[bh * g.Tq + i] : 0.0f;
    }
  };
  if (ntiles > 0) stage(0, 0);
  cp_async_commit();

  float dK[D / 8][4], dV[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
#pragma unroll
    for (int e = 0; e < 4; ++e) dK[n][e] = dV[n][e] = 0.0f;
  const int64_t key[2] = {j0 + warp * 16 + quad_row, j0 + warp * 16 + quad_row + 8};
  const float scale_log2 = scale * kLog2e;

  for (int t = 0; t < ntiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < ntiles) stage(t + 1, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const uint16_t* Qt = Qs + buf * kQ * kLd;
    const uint16_t* Gt = Gs + buf * kQ * kLd;
    const float* Lt = Ls + buf * kQ;
    const float* Dt = Ds + buf * kQ;
    const int64_t i0 = first + int64_t(t) * kQ;
    float p[kNT][4], ds[kNT][4];
    rows_times_rows_t<T, D, kNT>(Ks + warp * 16 * kLd, Qt, p);   // S^T (16 keys x kQ queries)
    rows_times_rows_t<T, D, kNT>(Vs + warp * 16 * kLd, Gt, ds);  // dP^T
#pragma unroll
    for (int n = 0; n < kNT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = n * 8 + 2 * quad_col + (e & 1);  // query within the tile
        const int64_t i = i0 + col, j = key[e >> 1];
        const bool ok = i < g.Tq && j < g.Tk && g.visible(b, i, j);
        const float pe = ok ? exp2f(p[n][e] * scale_log2 - Lt[col]) : 0.0f;
        p[n][e] = pe;
        ds[n][e] = pe * (ds[n][e] - Dt[col]);
      }
    acc_times_rows<T, D, kNT>(p, Gt, kNT / 2, dV);   // dV += P^T dO
    acc_times_rows<T, D, kNT>(ds, Qt, kNT / 2, dK);  // dK += dS^T Q
    __syncthreads();
  }
  cp_async_wait<0>();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (key[r] >= g.Tk) continue;
    T* dkr = dk + (bh * g.Tk + key[r]) * D;
    T* dvr = dv + (bh * g.Tk + key[r]) * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {  // two adjacent columns per 32-bit store
      *reinterpret_cast<uint32_t*>(dkr + n * 8 + 2 * quad_col) = pack2<T>(dK[n][2 * r] * scale, dK[n][2 * r + 1] * scale);
      *reinterpret_cast<uint32_t*>(dvr + n * 8 + 2 * quad_col) = pack2<T>(dV[n][2 * r], dV[n][2 * r + 1]);
    }
  }
}

// Query-block pass: dQ for 64 query rows per block.
template <typename T, int D>
__global__ void __launch_bounds__(kThreadsB, 1) dq_v3_kernel(Geometry g, const uint16_t* q, const uint16_t* k,
                                                          const uint16_t* v, const uint16_t* dout,
                                                          const float* lse, const float* delta, float scale, T* dq) {
  constexpr int kLd = D + 8;
  constexpr float kLog2e = 1.4426950408889634f;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(smem_raw);  // (64, D + 8)
  uint16_t* Gs = Qs + kTileB * kLd;                        // (64, D + 8): dO
  uint16_t* Ks = Gs + kTileB * kLd;                        // 2 x (64, D + 8)
  uint16_t* Vs = Ks + 2 * kTileB * kLd;                    // 2 x (64, D + 8)
  const int64_t tiles = (g.Tq + kTileB - 1) / kTileB;
  const int64_t bh = blockIdx.x / tiles, b = bh / g.H, i0 = (blockIdx.x % tiles) * kTileB;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, quad_row = lane >> 2, quad_col = lane & 3;
  const uint16_t* kg = k + bh * g.Tk * D;
  const uint16_t* vg = v + bh * g.Tk * D;
  load_tile<D>(Qs, q + bh * g.Tq * D, i0, g.Tq);
  load_tile<D>(Gs, dout + bh * g.Tq * D, i0, g.Tq);
  const int64_t kend = g.key_end(i0 + kTileB);
  const int ntiles = int((kend + kTileB - 1) / kTileB);
  if (ntiles > 0) {
    load_tile<D>(Ks, kg, 0, g.Tk);
    load_tile<D>(Vs, vg, 0, g.Tk);
  }
  cp_async_commit();
  const int64_t row[2] = {i0 + warp * 16 + quad_row, i0 + warp * 16 + quad_row + 8};
  // lse in base 2 (+inf for a row that sees no key: P = 0) and Delta, for rows row[0], row[1].
  const float l0 = row[0] < g.Tq ? lse[bh * g.Tq + row[0]] : -INFINITY;
  const float l1 = row[1] < g.Tq ? lse[bh * g.Tq + row[1]] : -INFINITY;
  const float lr0 = l0 == -INFINITY ? INFINITY : l0 * kLog2e, lr1 = l1 == -INFINITY ? INFINITY : l1 * kLog2e;
  const float dr0 = row[0] < g.Tq ? delta[bh * g.Tq + row[0]] : 0.0f;
  const float dr1 = row[1] < g.Tq ? delta[bh * g.Tq + row[1]] : 0.0f;
  float dQ[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) dQ[n][0] = dQ[n][1] = dQ[n][2] = dQ[n][3] = 0.0f;
  const float scale_log2 = scale * kLog2e;

  for (int t = 0; t < ntiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < ntiles) {
      load_tile<D>(Ks + (buf ^ 1) * kTileB * kLd, kg, int64_t(t + 1) * kTileB, g.Tk);
      load_tile<D>(Vs + (buf ^ 1) * kTileB * kLd, vg, int64_t(t + 1) * kTileB, g.Tk);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const uint16_t* Kt = Ks + buf * kTileB * kLd;
    const uint16_t* Vt = Vs + buf * kTileB * kLd;
    const int64_t j0 = int64_t(t) * kTileB;
    float p[8][4], ds[8][4];
    rows_times_rows_t<T, D>(Qs + warp * 16 * kLd, Kt, p);   // S
    rows_times_rows_t<T, D>(Gs + warp * 16 * kLd, Vt, ds);  // dP
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t j = j0 + n * 8 + 2 * quad_col + (e & 1), i = e < 2 ? row[0] : row[1];
        const bool ok = j < g.Tk && g.visible(b, i, j);
        const float pe = ok ? exp2f(p[n][e] * scale_log2 - (e < 2 ? lr0 : lr1)) : 0.0f;
        ds[n][e] = pe * (ds[n][e] - (e < 2 ? dr0 : dr1));
      }
    acc_times_rows<T, D, 8>(ds, Kt, 4, dQ);  // dQ += dS K
    __syncthreads();
  }
  cp_async_wait<0>();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (row[r] >= g.Tq) continue;
    T* dst = dq + (bh * g.Tq + row[r]) * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<uint32_t*>(dst + n * 8 + 2 * quad_col) = pack2<T>(dQ[n][2 * r] * scale, dQ[n][2 * r + 1] * scale);
    }
  }
}

template <typename T, int D>
void launch_backward(const Geometry& g, const StridedView& q, const StridedView& k, const StridedView& v,
                     double scale, const StridedView& out, const StridedView& lse, const StridedView& dout,
                     const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  const int64_t rows = g.B * g.H * g.Tq;
  DeviceBuffer delta(size_t(rows > 0 ? rows : 1) * sizeof(float));
  if (rows > 0) {
    launch_row_delta<T>(rows, g.D, out.ptr<T>(), dout.ptr<T>(), delta.as<float>());
  }
  const auto* qp = static_cast<const uint16_t*>(q.data);
  const auto* kp = static_cast<const uint16_t*>(k.data);
  const auto* vp = static_cast<const uint16_t*>(v.data);
  const auto* gp = static_cast<const uint16_t*>(dout.data);
  const int64_t kv_blocks = g.B * g.H * ((g.Tk + kTileB - 1) / kTileB);
  if (kv_blocks > 0) {
    constexpr int kQ = kQTile<D>;
    constexpr size_t kSmem = size_t(2 * kTileB + 4 * kQ) * (D + 8) * sizeof(uint16_t) + 4 * kQ * sizeof(float);
    auto kernel = dkdv_v3_kernel<T, D>;
    allow_dynamic_smem(kernel, kSmem);
    kernel<<<unsigned(kv_blocks), kThreadsB, kSmem, stream()>>>(g, qp, kp, vp, gp, lse.ptr<float>(),
                                                                 delta.as<float>(), float(scale), dk.ptr<T>(),
                                                                 dv.ptr<T>());
    CUDA_CHECK_LAUNCH();
  }
  const int64_t q_blocks = g.B * g.H * ((g.Tq + kTileB - 1) / kTileB);
  if (q_blocks > 0) {
    constexpr size_t kSmem = size_t(6 * kTileB) * (D + 8) * sizeof(uint16_t);
    auto kernel = dq_v3_kernel<T, D>;
    allow_dynamic_smem(kernel, kSmem);
    kernel<<<unsigned(q_blocks), kThreadsB, kSmem, stream()>>>(g, qp, kp, vp, gp, lse.ptr<float>(),
                                                                delta.as<float>(), float(scale), dq.ptr<T>());
    CUDA_CHECK_LAUNCH();
  }
}

template <typename T>
void backward_head_dim(const Geometry& g, const StridedView& q, const StridedView& k, const StridedView& v,
                       double scale, const StridedView& out, const StridedView& lse, const StridedView& dout,
                       const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  switch (g.D) {
    case 32: return launch_backward<T, 32>(g, q, k, v, scale, out, lse, dout, dq, dk, dv);
    case 64: return launch_backward<T, 64>(g, q, k, v, scale, out, lse, dout, dq, dk, dv);
    default: return launch_backward<T, 128>(g, q, k, v, scale, out, lse, dout, dq, dk, dv);
  }
}

}  // namespace

bool attention_backward_v3(const StridedView& q, const StridedView& k, const StridedView& v,
                           const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                           const StridedView& lse, const StridedView& dout, const StridedView& dq,
                           const StridedView& dk, const StridedView& dv) {
  if (!attention_v3_supported(q.dtype, q.sizes[3])) return false;
  if (!aligned16(q.data) || !aligned16(k.data) || !aligned16(v.data) || !aligned16(dout.data) ||
      !aligned16(dq.data) || !aligned16(dk.data) || !aligned16(dv.data))
    return false;
  const Geometry g = geometry(q, k, key_padding_mask, causal);
  if (q.dtype == DType::bf16) {
    backward_head_dim<bf16>(g, q, k, v, scale, out, lse, dout, dq, dk, dv);
  } else {
    backward_head_dim<f16>(g, q, k, v, scale, out, lse, dout, dq, dk, dv);
  }
  return true;
}

}  // namespace minivl::cuda
