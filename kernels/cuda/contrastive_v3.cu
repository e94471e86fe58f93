// Contrastive losses (CLIP, SigLIP) v3: four GEMM-equivalents per forward + backward.
//
// Algorithm. L = s A B^T (A = image, B = text, (N, d) bf16/f16; s = exp(logit_scale)).
//   forward   one pass over L: every 128 x 128 logits tile updates its rows' and its columns'
//             log-sum-exp partials at once (SigLIP: the softplus sum), so L is computed once.
//   backward  one pass over L in 8192 x 8192 chunks: each chunk's logits are recomputed once and
//             turned into G / coef (16-bit, written to a chunk buffer), which then feeds both
//             dA_I += G B_J and dB_J += G^T A_I (cuBLASLt, f32 accumulators).
// FLOPs: forward 2N^2 d (tensor cores, this file) + backward 2N^2 d (this file) + 4N^2 d (cuBLASLt)
// = 8 N^2 d, the four GEMMs' count. Why G goes through memory instead of into fused dA/dB
// accumulators: at d = 1024 a 128-row f32 accumulator is 512 KiB, more than an SM holds, so
// fused accumulators live in global memory and every 128 x 128 tile reads and writes 2 x 128 x d
// of them (8 bytes each): 32 FLOP/byte, L2-bound (v2 sits there). G costs 6 bytes per logit (one
// write, two reads) against 6 d FLOPs, and the GEMMs keep their accumulators in registers.
//
// Tiling (contrastive_v3_plan.h holds the arithmetic, tested on the CPU). A chunk launch has
// (runs x row tiles) blocks; block (run, row tile) owns 128 rows and a run of 4 column tiles,
// walked by one continuous pipeline: 64-feature slices of A and B (128 x 64 halves each, rows
// padded to 72 halves so ldmatrix is conflict-free) stream through 3 cp.async stages, one
// __syncthreads per slice. 8 warps in 2 x 4; a warp owns 64 x 32 of the tile: per 16-feature
// step 4 ldmatrix.x4 for A, 2 for B and 16 mma.sync m16n8k16 (f32 accumulate, 64 per lane).
// Epilogues work in registers only (no shared memory, no extra barrier):
//   CLIP forward   rows: online (max, sum) per row per warp column (quad shuffles), written per
//                  run; columns: (max, sum) per column over the warp's 64 rows (3 xor shuffles),
//                  written per tile; diagonal where row == col. A merge launch per chunk folds the
//                  partials in slot order into running row and column states.
//   SigLIP fwd     softplus(-z u) summed per block.
//   backward       G / coef (CLIP: P_row + P_col - 2I in [-2, 2]; SigLIP: -z sigmoid(-z u)) stored
//                  as bf16/f16 pairs; sum(G L) and sum(G) per block for dlogit_scale, dlogit_bias.
// Masks: cp.async zero-fills rows >= N and features >= d; logits of rows or columns >= N are
// left out of every sum and never stored. Determinism: every partial has one writer and every
// sum a fixed order; cuBLAS is deterministic for a fixed algorithm. No atomics.
// Bounds, per 128 x 128 tile: 2 * 128^2 d FLOPs over 2 * 128 d * 2 bytes of slices from L2
// (64 FLOP/byte); CLIP adds 2 exponentials per logit (MUFU: 16 per clock per SM, 1/4 of the
// mma time at d = 512 when not overlapped); the backward writes 2 bytes of G per 2d FLOPs.
// Memory: O(N) partials and states forward; backward 2 N d f32 accumulators, one 8192 x 8192
// 16-bit G chunk (128 MiB; N^2 * 2 bytes below N = 8192) and a 32 MiB cuBLASLt workspace.
// Preconditions: contrastive_v3_supported (as v2: bf16/f16, contiguous (N, d), d % 8 == 0,
// 16-byte aligned, sm_80+). Resources: bench/results/ptxas-contrastive-v3.txt. The merges, sums
// and final scaling: contrastive_v3_finish.cu; the cuBLASLt calls: contrastive_v3_gemm.cu.

#include <cstdint>
#include <string>

#include "kernels/cuda/contrastive_common.cuh"
#include "kernels/cuda/contrastive_v3.h"
#include "kernels/cuda/contrastive_v3_parts.cuh"
#include "kernels/cuda/contrastive_v3_plan.h"
#include "kernels/cuda/fused.h"
#include "kernels/cuda/mma_sm80.cuh"

namespace minivl::cuda::v3 {
namespace {

constexpr int kSlice = kTileM * kLd;  // halves per operand per stage
constexpr int kMinBlocks = 2;        // blocks per SM the register budget is cut for

struct Operands {
  const uint16_t* a;  // (n, d) 16-bit: the rows of L
  const uint16_t* b;  // (n, d): the columns of L
  int64_t n;
  int d;
  const float* log_scale;  // 0-d, device
  const float* bias;       // 0-d (SigLIP) or nullptr
};

using Acc = float[kMTiles][kNTiles][4];

__device__ __forceinline__ float softplus(float x) { return fmaxf(x, 0.0f) + __logf(1.0f + __expf(-fabsf(x))); }
__device__ __forceinline__ float inv_one_plus_exp(float x) { return __frcp_rn(1.0f + __expf(x)); }

// The 4 lanes of a quad share an accumulator row; the 8 lanes with equal lane % 4 share a column.
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
__device__ __forceinline__ float column_max(float v) {
  for (int o = 4; o < 32; o <<= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float column_sum(float v) {
  for (int o = 4; o < 32; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Features [k0, k0 + 64) of the 128 rows starting at `rows` (rows_left of them below n) into a
// (128, kLd) stage; zeros past (n, d). Offsets inside a tile fit 32 bits (128 d < 2^31).
// Copy i of this thread: slice_copy(thread, i), i.e. copy 0 moved down by i * kCopyRowStep rows.
__device__ __forceinline__ void load_slice(uint16_t* dst, const uint16_t* rows, int rows_left, int d, int k0) {
  const SliceCopy c = slice_copy(int(threadIdx.x), 0);
  const bool k_ok = k0 + 8 * c.piece < d;
  const int src0 = c.row * d + k0 + c.piece * 8;
#pragma unroll
  for (int i = 0; i < kSliceCopies; ++i) {
    const bool valid = k_ok && c.row + i * kCopyRowStep < rows_left;
    cp_async16(dst + (c.row + i * kCopyRowStep) * kLd + c.piece * 8, valid ? rows + (src0 + i * kCopyRowStep * d) : rows,
               valid);
  }
}

// acc (this warp's 64 x 32) += A_stage B_stage^T over one 64-feature slice. Per 16-feature step
// the B fragments of all 4 n8 tiles (2 ldmatrix.x4) stay while A's 4 m16 fragments pass one at a
// time: 12 fragment registers live instead of 20.
template <typename T>
__device__ __forceinline__ void mma_slice(Acc& acc, const uint16_t* as, const uint16_t* bs, int wr, int wc,
                                          int lane) {
  const int mi = lane >> 3, mr = lane & 7;  // ldmatrix: the 8x8 matrix this lane addresses, and its row
#pragma unroll
  for (int kk = 0; kk < kSliceK / 16; ++kk) {
    uint32_t bk[kNTiles / 2][4];  // [pair]: n8 tiles 2 pair (k 0-7, 8-15) and 2 pair + 1
#pragma unroll
    for (int p = 0; p < kNTiles / 2; ++p)
      ldmatrix_x4(bk[p], bs + (wc * kWarpN + p * 16 + (mi >> 1) * 8 + mr) * kLd + kk * 16 + (mi & 1) * 8);
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
      uint32_t af[4];
      ldmatrix_x4(af, as + (wr * kWarpM + mt * 16 + (mi & 1) * 8 + mr) * kLd + kk * 16 + (mi >> 1) * 8);
#pragma unroll
      for (int p = 0; p < kNTiles / 2; ++p) {
        mma16816<T>(acc[mt][2 * p], af, bk[p][0], bk[p][1]);
        mma16816<T>(acc[mt][2 * p + 1], af, bk[p][2], bk[p][3]);
      }
    }
  }
}

// The block's tiles, one pipeline: step = (tile, slice). At step s the barrier follows the wait
// for slice s, so every warp is done with stage (s - 1) % kStages, which the prefetch of slice
// s + kStages - 1 then refills. epilogue(acc, tile) runs after a tile's last slice.
template <typename T, typename Epilogue>
__device__ __forceinline__ void run_tiles(const Operands& op, const BlockWork& w, uint16_t* smem, Epilogue&& epilogue) {
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const int nk = slices(op.d), steps = w.tiles * nk;
  uint16_t* as = smem;
  uint16_t* bs = smem + kStages * kSlice;
  const uint16_t* a_rows = op.a + w.row0 * op.d;
  const int a_left = int(min64(op.n - w.row0, kTileM));
  // The next slice to prefetch: B's tile (its first row, rows left below n), feature slice, stage.
  const uint16_t* b_rows = op.b + w.col0 * op.d;
  int64_t b_left = op.n - w.col0;
  int fetch_k = 0, fetch_stage = 0;
  auto issue = [&] {
    load_slice(as + fetch_stage * kSlice, a_rows, a_left, op.d, fetch_k * kSliceK);
    load_slice(bs + fetch_stage * kSlice, b_rows, int(min64(b_left, kTileN)), op.d, fetch_k * kSliceK);
    if (++fetch_k == nk) {
      fetch_k = 0;
      b_rows += kTileN * op.d;
      b_left -= kTileN;
    }
    fetch_stage = fetch_stage + 1 == kStages ? 0 : fetch_stage + 1;
  };
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) issue();
    cp_async_commit();  // empty groups keep the count uniform
  }
  Acc acc;
  int stage = 0, kc = 0, tile = 0;
  for (int step = 0; step < steps; ++step) {
    if (kc == 0) {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;
    }
    cp_async_wait<kStages - 2>();
    __syncthreads();
    if (step + kStages - 1 < steps) issue();
    cp_async_commit();
    mma_slice<T>(acc, as + stage * kSlice, bs + stage * kSlice, warp_row(warp), warp_col(warp), lane);
    stage = stage + 1 == kStages ? 0 : stage + 1;
    if (++kc == nk) {
      epilogue(acc, tile);
      kc = 0, ++tile;
    }
  }
  cp_async_wait<0>();
}

// Where this block's tile t sits: valid rows / columns (< 128) and the diagonal offset.
struct TileFrame {
  int rows_valid, cols_valid;
  int64_t col0;
  int64_t diag;  // row == col  <=>  local_row == local_col + diag
};
// Epilogues call it afresh instead of keeping the block's work live across the main loop: its
// inputs are kernel parameters and block indices, cheap to reread, and registers are not.
__device__ __forceinline__ BlockWork this_block(const Chunk& c) { return block_work(c, blockIdx.x, blockIdx.y); }
__device__ __forceinline__ TileFrame frame(const BlockWork& w, int64_t n, int t) {
  const int64_t c0 = w.col0 + int64_t(t) * kTileN;
  return TileFrame{int(min64(n - w.row0, kTileM)), int(min64(n - c0, kTileN)), c0, c0 - w.row0};
}

// Visits every accumulator entry this lane holds, (mt, nt, e) in row-major order, with its row and
// column in the 128 x 128 tile: the order fixes the order of any sum the visitor keeps.
template <typename Visit>
__device__ __forceinline__ void for_each_acc(Acc& acc, int warp, int lane, Visit&& visit) {
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) visit(acc[mt][nt][e], acc_row(warp, lane, mt, e), acc_col(warp, lane, nt, e));
}

// Sum over the block in a fixed order; the result is valid in thread 0. red: kWarps floats.
__device__ __forceinline__ float block_sum(float v, float* red) {
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = 0.0f;
  if (threadIdx.x == 0)
    for (int w = 0; w < kWarps; ++w) s += red[w];
  return s;
}

// Over the 2 kN accumulator entries (a, b) of one row (or column) this lane holds: the max of the
// valid ones, and the sum of __expf(x - base) over them.
template <int kN, typename Valid, typename At>
__device__ __forceinline__ float masked_max(const Valid& valid, const At& at) {
  float mx = -INFINITY;
#pragma unroll
  for (int a = 0; a < kN; ++a)
#pragma unroll
    for (int b = 0; b < 2; ++b)
      if (valid(a, b)) mx = fmaxf(mx, at(a, b));
  return mx;
}

template <int kN, typename Valid, typename At>
__device__ __forceinline__ float masked_exp_sum(float base, const Valid& valid, const At& at) {
  float sum = 0.0f;
#pragma unroll
  for (int a = 0; a < kN; ++a)
#pragma unroll
    for (int b = 0; b < 2; ++b)
      if (valid(a, b)) sum += __expf(at(a, b) - base);
  return sum;
}

// CLIP forward tiles of one chunk: row and column (max, sum) partials, the diagonal. The running
// row states (one per warp and row, over the run's tiles) sit in shared memory: kept in
// registers they would take 16 more per lane and spill at the 2-blocks-per-SM budget.
template <typename T>
__global__ void __launch_bounds__(kThreads, kMinBlocks) clip_forward_tiles(Operands op, Plan plan, Chunk chunk,
                                                                          float2* row_part, float2* col_part,
                                                                          float* diag) {
  extern __shared__ __align__(16) uint16_t smem[];
  __shared__ float2 row_state[kWarps][kWarpM];  // (max, sum) of row warp_row * 64 + i, this warp's columns
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const BlockWork w = block_work(chunk, blockIdx.x, blockIdx.y);
  const float scale = expf(*op.log_scale);
  row_state[warp][lane] = row_state[warp][lane + 32] = make_float2(-INFINITY, 0.0f);  // read after a barrier

  run_tiles<T>(op, w, smem, [&](Acc& acc, int t) {
    const BlockWork w = this_block(chunk);
    const TileFrame f = frame(w, op.n, t);
    const bool has_diag = f.diag > -kTileN && f.diag < kTileM;
    for_each_acc(acc, warp, lane, [&](float& x, int r, int c) {
      x *= scale;
      if (has_diag && r == c + int(f.diag) && r < f.rows_valid) diag[w.row0 + r] = x;
    });
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const auto col_ok = [&](int nt, int e) { return acc_col(warp, lane, nt, e) < f.cols_valid; };
        const auto x_at = [&](int nt, int e) { return acc[mt][nt][2 * h + e]; };
        const float mx = masked_max<kNTiles>(col_ok, x_at);
        const int i = acc_row(warp, lane, mt, 2 * h) - warp_row(warp) * kWarpM;
        const float2 old = row_state[warp][i];
        const float mnew = fmaxf(old.x, quad_max(mx)), base = mnew == -INFINITY ? 0.0f : mnew;
        const float sum = quad_sum(masked_exp_sum<kNTiles>(base, col_ok, x_at));
        __syncwarp();  // the quad has read `old` before its lane 0 replaces it
        if ((lane & 3) == 0) row_state[warp][i] = make_float2(mnew, old.y * __expf(old.x - base) + sum);
      }
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const auto row_ok = [&](int mt, int h) { return acc_row(warp, lane, mt, 2 * h) < f.rows_valid; };
        const auto x_at = [&](int mt, int h) { return acc[mt][nt][2 * h + e]; };
        const float mx = column_max(masked_max<kMTiles>(row_ok, x_at));
        const float base = mx == -INFINITY ? 0.0f : mx;
        const float sum = column_sum(masked_exp_sum<kMTiles>(base, row_ok, x_at));
        const int c = acc_col(warp, lane, nt, e);
        if (lane < 4 && c < f.cols_valid)
          col_part[col_part_index(plan, blockIdx.y, warp_row(warp), f.col0 + c - chunk.c0)] = make_float2(mx, sum);
        __syncwarp();  // one column at a time: interleaving all eight spills at 128 registers
      }
  });

  // Lane 0 of each quad wrote its rows' states last: the same lane reads them back.
  const int rows_valid = int(min64(op.n - w.row0, kTileM));
  if ((lane & 3) == 0) {
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = acc_row(warp, lane, mt, 2 * h);
        if (r < rows_valid)
          row_part[row_part_index(plan, blockIdx.x, warp_col(warp), w.row0 + r - chunk.r0)] =
              row_state[warp][r - warp_row(warp) * kWarpM];
      }
  }
}

// SigLIP forward tiles of one chunk: sum of softplus(-z u) over the block's logits.
template <typename T>
__global__ void __launch_bounds__(kThreads, kMinBlocks) siglip_forward_tiles(Operands op, Plan plan, Chunk chunk,
                                                                    float* block_part) {
  extern __shared__ __align__(16) uint16_t smem[];
  __shared__ float red[kWarps];
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const BlockWork w = block_work(chunk, blockIdx.x, blockIdx.y);
  const float scale = expf(*op.log_scale), bias = *op.bias;
  float part = 0.0f;
  run_tiles<T>(op, w, smem, [&](Acc& acc, int t) {
    const BlockWork w = this_block(chunk);
    const TileFrame f = frame(w, op.n, t);
    for_each_acc(acc, warp, lane, [&](float x, int r, int c) {
      const float u = x * scale + bias;
      const float term = softplus(r == c + int(f.diag) ? -u : u);
      part += r < f.rows_valid && c < f.cols_valid ? term : 0.0f;
    });
  });
  const float s = block_sum(part, red);
  if (threadIdx.x == 0) block_part[scalar_part_index(plan, chunk, blockIdx.x, blockIdx.y)] = s;
}

// Backward tiles of one chunk: G / coef into g (16-bit, plan layout); per block sum(G L / coef)
// and sum(G / coef). lse_row, lse_col: CLIP only.
template <typename T, bool kClip>
__global__ void __launch_bounds__(kThreads, kMinBlocks) grad_tiles(Operands op, Plan plan, Chunk chunk, const float* lse_row,
                                                          const float* lse_col, uint16_t* g, float* scale_part,
                                                          float* bias_part) {
  extern __shared__ __align__(16) uint16_t smem[];
  __shared__ float red[2][kWarps];
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31;
  const BlockWork w = block_work(chunk, blockIdx.x, blockIdx.y);
  const float scale = expf(*op.log_scale), bias = kClip ? 0.0f : *op.bias;
  // CLIP: the block's lse_row and its run's lse_col, staged once; the epilogues read them from
  // shared memory (held in registers across the main loop they spill). Read after a barrier.
  __shared__ float lse_s[kClip ? kTileM + kRunTiles * kTileN : 1];
  if constexpr (kClip) {
    for (int i = int(threadIdx.x); i < kTileM + kRunTiles * kTileN; i += kThreads) {
      const int64_t idx = i < kTileM ? w.row0 + i : w.col0 + (i - kTileM);
      lse_s[i] = idx < op.n ? (i < kTileM ? lse_row : lse_col)[idx] : 0.0f;
    }
  }
  float part_scale = 0.0f, part_bias = 0.0f;
  run_tiles<T>(op, w, smem, [&](Acc& acc, int t) {
    const BlockWork w = this_block(chunk);
    const TileFrame f = frame(w, op.n, t);
    uint16_t* g_tile = g + g_index(plan, chunk, w.row0, f.col0);  // this tile's (0, 0) in the chunk buffer
    const float* lse_c = lse_s + kTileM + t * kTileN;
    // One accumulator row pair (r, 2 columns) at a time: G, its sums, one 4-byte store.
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int r = acc_row(warp, lane, mt, 2 * h);
        const bool row_ok = r < f.rows_valid;
        const float lr = kClip ? lse_s[r] : 0.0f;
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          float gv[2];
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int c = acc_col(warp, lane, nt, e);
            const float x = acc[mt][nt][2 * h + e] * scale;
            float v;
            if constexpr (kClip) {
              v = __expf(x - lr) + __expf(x - lse_c[c]);  // the -2 I term: finish_grad, diag_logits
            } else {
              const float z = r == c + int(f.diag) ? 1.0f : -1.0f;  // d softplus(-z u) / du = -z sigmoid(-z u)
              v = -z * inv_one_plus_exp(z * (x + bias));
            }
            gv[e] = row_ok && c < f.cols_valid ? v : 0.0f;
            part_scale += gv[e] * x;
            if constexpr (!kClip) part_bias += gv[e];
          }
          const int c = acc_col(warp, lane, nt, 0);  // even: c + 1 stays inside the row's g_ld
          if (row_ok && c < f.cols_valid)
            *reinterpret_cast<uint32_t*>(g_tile + int64_t(r) * g_ld(plan) + c) = pack2<T>(gv[0], gv[1]);
        }
        __syncwarp();  // one row at a time: interleaving them spills at 128 registers
      }
  });
  const int64_t slot = scalar_part_index(plan, chunk, blockIdx.x, blockIdx.y);
  const float s = block_sum(part_scale, red[0]);
  if (threadIdx.x == 0) scale_part[slot] = s;
  if (bias_part) {
    const float b = block_sum(part_bias, red[1]);
    if (threadIdx.x == 0) bias_part[slot] = b;
  }
}

// ---- host ----

Operands operands(const StridedView& a, const StridedView& b, const StridedView& log_scale, const StridedView* bias) {
  return Operands{a.ptr<const uint16_t>(), b.ptr<const uint16_t>(), a.sizes[0], int(a.sizes[1]),
                  log_scale.ptr<const float>(), bias ? bias->ptr<const float>() : nullptr};
}

dim3 grid_of(const Chunk& c) { return dim3(unsigned(runs(c)), unsigned(row_tiles(c))); }

// The tile kernels take smem_bytes() of dynamic shared memory, over the default 48 KiB.
template <typename Kernel>
void allow_smem(Kernel kernel) {
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes()));
}

template <typename T>
void clip_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                  const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col) {
  const Plan plan{image.sizes[0], kChunk};
  const int64_t n = plan.n;
  const Operands op = operands(image, text, logit_scale, nullptr);
  DeviceBuffer row_part(size_t(row_part_capacity(plan)) * sizeof(float2));
  DeviceBuffer col_part(size_t(col_part_capacity(plan)) * sizeof(float2));
  DeviceBuffer states(size_t(2 * n) * sizeof(float2)), diag(size_t(n) * sizeof(float));
  float2* row_state = states.as<float2>();
  float2* col_state = row_state + n;
  static const bool configured = (allow_smem(clip_forward_tiles<T>), true);
  (void)configured;
  const int64_t sides = chunks_per_side(plan);
  for (int64_t ci = 0; ci < sides; ++ci)
    for (int64_t cj = 0; cj < sides; ++cj) {
      const Chunk c = chunk_at(plan, ci, cj);
      clip_forward_tiles<T><<<grid_of(c), kThreads, smem_bytes(), stream()>>>(
          op, plan, c, row_part.as<float2>(), col_part.as<float2>(), diag.as<float>());
      CUDA_CHECK_LAUNCH();
      launch_merge_chunk(plan, c, row_part.as<float2>(), col_part.as<float2>(), row_state, col_state);
    }
  launch_lse_from_states(n, row_state, col_state, lse_row.ptr<float>(), lse_col.ptr<float>());
  launch_fixed_sum(lse_row.ptr<float>(), lse_col.ptr<float>(), n, diag.as<float>(), n, nullptr, 1.0f / float(2 * n),
                   loss.ptr<float>());
}

template <typename T>
void siglip_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                    const StridedView& logit_bias, const StridedView& loss) {
  const Plan plan{image.sizes[0], kChunk};
  const Operands op = operands(image, text, logit_scale, &logit_bias);
  DeviceBuffer parts(size_t(scalar_part_count(plan)) * sizeof(float));
  static const bool configured = (allow_smem(siglip_forward_tiles<T>), true);
  (void)configured;
  const int64_t sides = chunks_per_side(plan);
  for (int64_t ci = 0; ci < sides; ++ci)
    for (int64_t cj = 0; cj < sides; ++cj) {
      const Chunk c = chunk_at(plan, ci, cj);
      siglip_forward_tiles<T><<<grid_of(c), kThreads, smem_bytes(), stream()>>>(op, plan, c, parts.as<float>());
      CUDA_CHECK_LAUNCH();
    }
  launch_fixed_sum(parts.as<float>(), nullptr, scalar_part_count(plan), nullptr, 0, nullptr, 1.0f / float(plan.n),
                   loss.ptr<float>());
}

// Both losses: per chunk, G / coef from the tile kernel, then dA_I += G B_J and dB_J += G^T A_I.
template <typename T, bool kClip>
void backward(const ContrastiveGrad& a) {
  const float* lse_row = a.lse_row ? a.lse_row->ptr<const float>() : nullptr;
  const float* lse_col = a.lse_col ? a.lse_col->ptr<const float>() : nullptr;
  const Plan plan{a.image.sizes[0], kChunk};
  const int64_t n = plan.n, d = a.image.sizes[1], parts = scalar_part_count(plan);
  const Operands op = operands(a.image, a.text, a.logit_scale, a.logit_bias);
  DeviceBuffer acc_a(size_t(n * d) * sizeof(float)), acc_b(size_t(n * d) * sizeof(float));
  DeviceBuffer g(size_t(g_elems(plan)) * 2), part(size_t(2 * parts) * sizeof(float)), ws(kLtWorkspaceBytes);
  static const bool configured = (allow_smem(grad_tiles<T, kClip>), true);
  (void)configured;
  const DType dt = a.image.dtype;
  const int64_t sides = chunks_per_side(plan);
  for (int64_t ci = 0; ci < sides; ++ci)
    for (int64_t cj = 0; cj < sides; ++cj) {
      const Chunk c = chunk_at(plan, ci, cj);
      grad_tiles<T, kClip><<<grid_of(c), kThreads, smem_bytes(), stream()>>>(
          op, plan, c, lse_row, lse_col, g.as<uint16_t>(), part.as<float>(), kClip ? nullptr : part.as<float>() + parts);
      CUDA_CHECK_LAUNCH();
      // column-major: dA_I^T (d x rows) += (B_J, stored d x cols) (G, stored cols x rows)
      lt_gemm(LtGemm{dt, DType::f32, d, c.rows, c.cols, op.b + c.c0 * d, d, false, g.ptr, g_ld(plan), false,
                     acc_a.as<float>() + c.r0 * d, d, cj == 0 ? 0.0f : 1.0f},
              ws.ptr, ws.bytes);
      // dB_J^T (d x cols) += (A_I, stored d x rows) (G, stored cols x rows)^T
      lt_gemm(LtGemm{dt, DType::f32, d, c.cols, c.rows, op.a + c.r0 * d, d, false, g.ptr, g_ld(plan), true,
                     acc_b.as<float>() + c.c0 * d, d, ci == 0 ? 0.0f : 1.0f},
              ws.ptr, ws.bytes);
    }
  const float coef_div = kClip ? float(2 * n) : float(n);  // coef = g / coef_div
  const float* gl = a.grad_loss.ptr<const float>();
  // CLIP's G / coef = P_row + P_col - 2 I: the tiles left out -2 I, whose share is -2 text_i in
  // dimage_i, -2 image_j in dtext_j and -2 sum_i L_ii in dlogit_scale.
  DeviceBuffer diag(kClip ? size_t(n) * sizeof(float) : 0);
  if constexpr (kClip) launch_diag_logits(dt, op.a, op.b, n, int(d), op.log_scale, diag.as<float>());
  launch_finish_grad(dt, acc_a.as<float>(), kClip ? op.b : nullptr, n * d, op.log_scale, gl, coef_div,
                     a.dimage.ptr<uint16_t>());
  launch_finish_grad(dt, acc_b.as<float>(), kClip ? op.a : nullptr, n * d, op.log_scale, gl, coef_div,
                     a.dtext.ptr<uint16_t>());
  launch_fixed_sum(part.as<float>(), nullptr, parts, kClip ? diag.as<float>() : nullptr, n, gl, 1.0f / coef_div,
                   a.dlogit_scale.ptr<float>());
  if (a.dlogit_bias)
    launch_fixed_sum(part.as<float>() + parts, nullptr, parts, nullptr, 0, gl, 1.0f / coef_div,
                     a.dlogit_bias->ptr<float>());
}


}  // namespace
}  // namespace minivl::cuda::v3

namespace minivl::cuda {

template <typename T>
struct ContrastivePasses<3, T> {
  static constexpr auto clip_loss = &v3::clip_forward<T>;
  static constexpr auto siglip_loss = &v3::siglip_forward<T>;
  template <bool kClip>
  static constexpr auto loss_backward = &v3::backward<T, kClip>;
};

bool contrastive_v3_takes(DType dtype, int64_t d) {
  // d <= 65536: 128 d fits the tiles' 32-bit offsets.
  return (dtype == DType::bf16 || dtype == DType::f16) && d >= 8 && d % 8 == 0 && d <= (int64_t(1) << 16);
}

bool contrastive_v3_supported(const StridedView& image, const StridedView& text) {
  if (text.dtype != image.dtype || image.ndim != 2 || !contrastive_v3_takes(image.dtype, image.sizes[1])) return false;
  const int64_t n = image.sizes[0], d = image.sizes[1];
  if (n < 1 || !contrastive_rows_ok(image, n, d) || !contrastive_rows_ok(text, n, d)) return false;
  return device_props().cc_major >= 8;
}

const ContrastiveKernels& contrastive_v3_kernels() { return contrastive_entry_points<3>(); }

}  // namespace minivl::cuda
