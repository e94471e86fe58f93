#pragma once
// The tile arithmetic of the contrastive losses v3 (kernels/cuda/contrastive_v3.cu): which
// logits a block computes, which lane holds which accumulator, where every partial result
// goes and how large each scratch buffer is. Plain C++ (host and device), no CUDA headers,
// so tests/test_contrastive_v3_plan.cpp checks it on the CPU at awkward sizes.
//
// Schedule. The N x N logits are cut into chunks of at most `chunk` x `chunk` (default
// kChunk = 8192), visited row-chunk-major: for I, for J. One kernel launch covers one chunk.
// Its blocks form a (runs x row tiles) grid: block (run, row tile) owns kTileM = 128 rows of
// the chunk and a run of kRunTiles = 4 consecutive kTileN = 128-column tiles, which it walks
// with one continuous cp.async pipeline. A block has 8 warps in a 2 x 4 grid; a warp owns a
// 64 x 32 part of each tile (4 x 4 mma.sync m16n8 accumulator tiles, 64 floats per lane).
//
// Partials (CLIP forward), per chunk, each slot written by exactly one warp:
//   row partial   (max, sum) of a row over one warp column of one run:  runs * 4 per row
//   col partial   (max, sum) of a column over one warp row of a tile:   row tiles * 2 per column
// A merge launch then folds them, in slot order, into running (max, sum) states per row and
// per column (rows see J in order, columns see I in order): deterministic, no atomics.
// Scalar partials (SigLIP loss, dlogit_scale, dlogit_bias): one per block, indexed by the
// block's global row tile and global run, summed in index order at the end.
#include <cmath>
#include <cstdint>

#include "kernels/scalar_types.h"

namespace minivl::cuda::v3 {

inline constexpr int kTileM = 128;    // rows of A (image) per block tile
inline constexpr int kTileN = 128;    // rows of B (text) = logits columns per block tile
inline constexpr int kSliceK = 64;    // features per pipeline stage
inline constexpr int kStages = 3;     // cp.async stages in flight
inline constexpr int kLd = kSliceK + 8;  // shared row stride in halves: 144 bytes, ldmatrix conflict-free
inline constexpr int kWarpRows = 2, kWarpCols = 4;
inline constexpr int kWarps = kWarpRows * kWarpCols;
inline constexpr int kThreads = kWarps * 32;
inline constexpr int kWarpM = kTileM / kWarpRows;  // 64 rows per warp: 4 m16 tiles
inline constexpr int kWarpN = kTileN / kWarpCols;  // 32 columns per warp: 4 n8 tiles
inline constexpr int kMTiles = kWarpM / 16, kNTiles = kWarpN / 8;
inline constexpr int kRunTiles = 4;  // column tiles per block
inline constexpr int64_t kChunk = 8192;
inline constexpr int kChunksPerRow16B = kSliceK / 8;  // 16-byte copies per slice row
inline constexpr int kSliceCopies = kTileM * kChunksPerRow16B / kThreads;  // per thread per operand
static_assert(kTileM == kTileN, "one slice loader serves both operands");
static_assert(kTileM * kChunksPerRow16B % kThreads == 0, "slice copies split evenly over the threads");
static_assert(kChunk % (kTileN * kRunTiles) == 0 && kChunk % kTileM == 0, "runs never cross a chunk");

// Dynamic shared memory of the tile kernels: kStages x (A slice + B slice), 16-bit elements.
MINIVL_HOST_DEVICE constexpr int smem_bytes() { return kStages * 2 * kTileM * kLd * 2; }
static_assert(smem_bytes() <= 160 * 1024, "fits sm_80's 163 KiB opt-in limit (and sm_90's 227 KiB)");

MINIVL_HOST_DEVICE constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
MINIVL_HOST_DEVICE constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
MINIVL_HOST_DEVICE constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// n: rows of A and B; chunk: edge of a chunk (a multiple of kTileN * kRunTiles).
struct Plan {
  int64_t n = 0;
  int64_t chunk = kChunk;
};
MINIVL_HOST_DEVICE constexpr bool plan_valid(const Plan& p) {
  return p.n >= 1 && p.chunk >= kTileN * kRunTiles && p.chunk % (kTileN * kRunTiles) == 0;
}

struct Chunk {
  int64_t r0 = 0, rows = 0;  // logits rows [r0, r0 + rows)
  int64_t c0 = 0, cols = 0;  // logits columns [c0, c0 + cols)
};

MINIVL_HOST_DEVICE constexpr int64_t chunks_per_side(const Plan& p) { return ceil_div(p.n, p.chunk); }
MINIVL_HOST_DEVICE constexpr Chunk chunk_at(const Plan& p, int64_t ci, int64_t cj) {
  return Chunk{ci * p.chunk, min64(p.chunk, p.n - ci * p.chunk), cj * p.chunk, min64(p.chunk, p.n - cj * p.chunk)};
}
// The rows (and columns) of the largest chunk: the first dimension of every per-chunk buffer.
MINIVL_HOST_DEVICE constexpr int64_t chunk_capacity(const Plan& p) { return min64(p.chunk, p.n); }

// The block grid of one chunk launch: gridDim.x = runs, gridDim.y = row tiles.
MINIVL_HOST_DEVICE constexpr int64_t row_tiles(const Chunk& c) { return ceil_div(c.rows, kTileM); }
MINIVL_HOST_DEVICE constexpr int64_t col_tiles(const Chunk& c) { return ceil_div(c.cols, kTileN); }
MINIVL_HOST_DEVICE constexpr int64_t runs(const Chunk& c) { return ceil_div(col_tiles(c), kRunTiles); }

// What block (run, row_tile) of a chunk computes: rows [row0, row0 + kTileM) and the column
// tiles starting at col0, col0 + kTileN, ... (`tiles` of them); rows and columns >= n are masked.
struct BlockWork {
  int64_t row0 = 0, col0 = 0;
  int tiles = 0;
};
MINIVL_HOST_DEVICE constexpr BlockWork block_work(const Chunk& c, int64_t run, int64_t row_tile) {
  const int64_t first = run * kRunTiles;
  const int64_t left = col_tiles(c) - first;
  return BlockWork{c.r0 + row_tile * kTileM, c.c0 + first * kTileN, int(left < kRunTiles ? left : kRunTiles)};
}

// ---- the mma.sync m16n8k16 accumulator layout ----
// Warp w covers rows [warp_row * 64, +64) and columns [warp_col * 32, +32) of a tile. Its lane
// holds acc[mt][nt][e]: row mt * 16 + lane / 4 + 8 * (e / 2), column nt * 8 + 2 * (lane % 4) + e % 2.
MINIVL_HOST_DEVICE constexpr int warp_row(int warp) { return warp / kWarpCols; }
MINIVL_HOST_DEVICE constexpr int warp_col(int warp) { return warp % kWarpCols; }
MINIVL_HOST_DEVICE constexpr int acc_row(int warp, int lane, int mt, int e) {
  return warp_row(warp) * kWarpM + mt * 16 + lane / 4 + 8 * (e / 2);
}
MINIVL_HOST_DEVICE constexpr int acc_col(int warp, int lane, int nt, int e) {
  return warp_col(warp) * kWarpN + nt * 8 + 2 * (lane % 4) + e % 2;
}

// ---- slice loads ----
// Copy i (0 <= i < kSliceCopies) of thread t moves features [k0 + 8 * piece, +8) of slice row
// `row` (both operands use the same map). Rows >= n and features >= d are zero-filled instead.
struct SliceCopy {
  int row = 0, piece = 0;
};
MINIVL_HOST_DEVICE constexpr SliceCopy slice_copy(int thread, int i) {
  const int c = thread + i * kThreads;
  return SliceCopy{c / kChunksPerRow16B, c % kChunksPerRow16B};
}
// Copy i of a thread is its copy 0 moved down by i * kCopyRowStep rows (the kernel's form).
inline constexpr int kCopyRowStep = kThreads / kChunksPerRow16B;
MINIVL_HOST_DEVICE constexpr int slices(int64_t d) { return int(ceil_div(d, kSliceK)); }
// Whether a copy reads memory (a row < n, features inside d; d % 8 == 0 keeps a copy whole).
MINIVL_HOST_DEVICE constexpr bool copy_in_bounds(int64_t row, int64_t n, int k0, int piece, int64_t d) {
  return row < n && k0 + 8 * piece < d;
}

// ---- per-chunk partial slots (CLIP forward) ----
// Row partials: slot q = run * kWarpCols + warp_col, for the chunk row r (0 <= r < rows).
MINIVL_HOST_DEVICE constexpr int64_t row_part_slots(const Chunk& c) { return runs(c) * kWarpCols; }
MINIVL_HOST_DEVICE constexpr int64_t row_part_index(const Plan& p, int64_t run, int wcol, int64_t r) {
  return (run * kWarpCols + wcol) * chunk_capacity(p) + r;
}
// Column partials: slot q = row_tile * kWarpRows + warp_row, for the chunk column c (0 <= c < cols).
MINIVL_HOST_DEVICE constexpr int64_t col_part_slots(const Chunk& c) { return row_tiles(c) * kWarpRows; }
MINIVL_HOST_DEVICE constexpr int64_t col_part_index(const Plan& p, int64_t row_tile, int wrow, int64_t c) {
  return (row_tile * kWarpRows + wrow) * chunk_capacity(p) + c;
}
// (max, sum) pairs each per-chunk partial buffer holds (the largest chunk's slots).
MINIVL_HOST_DEVICE constexpr int64_t row_part_capacity(const Plan& p) {
  return ceil_div(ceil_div(chunk_capacity(p), kTileN), kRunTiles) * kWarpCols * chunk_capacity(p);
}
MINIVL_HOST_DEVICE constexpr int64_t col_part_capacity(const Plan& p) {
  return ceil_div(chunk_capacity(p), kTileM) * kWarpRows * chunk_capacity(p);
}

// ---- scalar partials (one per block over the whole matrix) ----
MINIVL_HOST_DEVICE constexpr int64_t total_row_tiles(const Plan& p) { return ceil_div(p.n, kTileM); }
MINIVL_HOST_DEVICE constexpr int64_t total_runs(const Plan& p) { return ceil_div(ceil_div(p.n, kTileN), kRunTiles); }
MINIVL_HOST_DEVICE constexpr int64_t scalar_part_count(const Plan& p) { return total_row_tiles(p) * total_runs(p); }
MINIVL_HOST_DEVICE constexpr int64_t scalar_part_index(const Plan& p, const Chunk& c, int64_t run, int64_t row_tile) {
  return (c.r0 / kTileM + row_tile) * total_runs(p) + c.c0 / (kTileN * kRunTiles) + run;
}

// ---- the backward's G chunk: (rows, g_ld) 16-bit, row-major, G / coef in [-2, 2] ----
MINIVL_HOST_DEVICE constexpr int64_t g_ld(const Plan& p) { return round_up(chunk_capacity(p), kTileN); }
MINIVL_HOST_DEVICE constexpr int64_t g_elems(const Plan& p) { return chunk_capacity(p) * g_ld(p); }
MINIVL_HOST_DEVICE constexpr int64_t g_index(const Plan& p, const Chunk& c, int64_t row, int64_t col) {
  return (row - c.r0) * g_ld(p) + (col - c.c0);
}

// ---- online log-sum-exp ----
// A running (max, sum of e^(x - max)); max = -inf with sum = 0 is the empty set. Merging is
// the same arithmetic in the kernels (device expf) and the CPU tests.
struct MaxSum {
  float m = -INFINITY, s = 0.0f;
};
MINIVL_HOST_DEVICE inline MaxSum merge(MaxSum a, MaxSum b) {
  const float m = a.m > b.m ? a.m : b.m;
  if (m == -INFINITY) return MaxSum{};
  return MaxSum{m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}
MINIVL_HOST_DEVICE inline float lse(MaxSum a) { return a.m + logf(a.s); }

// ---- scratch, in bytes, for one call ----
struct Scratch {
  int64_t forward_bytes = 0, backward_bytes = 0;
};
MINIVL_HOST_DEVICE constexpr Scratch scratch_bytes(const Plan& p, int64_t d, bool clip) {
  const int64_t pairs = clip ? row_part_capacity(p) + col_part_capacity(p) + 2 * p.n : 0;  // + row/col states
  const int64_t fwd = pairs * 8 + (clip ? p.n * 4 : scalar_part_count(p) * 4);          // + diag or block sums
  const int64_t bwd = 2 * p.n * d * 4 + g_elems(p) * 2 + 2 * scalar_part_count(p) * 4;  // f32 dA, dB; G; sums
  return Scratch{fwd, bwd};
}

}  // namespace minivl::cuda::v3
