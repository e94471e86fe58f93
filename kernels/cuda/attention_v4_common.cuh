#pragma once
// Device pieces attention v4's forward (attention_v4.cu) and backward (attention_v4_backward.cu)
// share: row copies into padded shared memory by cp.async, the run-time-count cp.async wait, the
// A-fragment load of a warp's 16 rows, the S = A B^T product, and the coalesced store of a 16-row
// strip staged in shared memory (O += P M and the online-softmax step, shared with v3, are in
// attention_mma_tiles.cuh). The index arithmetic lives in attention_v4_plan.h.
#include <cstdint>

#include "kernels/cuda/attention_v4_plan.h"
// With the PTX primitives (MINIVL_V4_MMA_HEADER) and the fragment products v3 shares.
#include "kernels/cuda/attention_mma_tiles.cuh"

namespace minivl::cuda::v4 {

static_assert(kPadHalves == 8, "acc_times_rows (attention_mma_tiles.cuh) takes rows of D + 8 halves");

// This device's shared memory: the opt-in per-block limit and the SM's capacity (read once).
struct DeviceSmem {
  int64_t per_block = 0, per_sm = 0;
};
const DeviceSmem& device_smem();  // attention_v4.cu

// Rows [row0, row0 + rows) of a (total, D) matrix in global memory into shared memory rows of
// D + 8 halves; rows at and past `total` are zero-filled without reading global memory.
template <int D>
__device__ __forceinline__ void load_rows(uint16_t* dst, const uint16_t* src, int64_t row0, int64_t rows,
                                          int64_t total, int tid, int nthreads) {
  constexpr int kChunks = D / 8, kLd = D + kPadHalves;  // 16-byte pieces per row
  for (int64_t c = tid; c < rows * kChunks; c += nthreads) {
    const int64_t r = c / kChunks;
    const int cc = int(c % kChunks);
    const bool valid = row0 + r < total;
    cp_async16(dst + r * kLd + cc * 8, valid ? src + (row0 + r) * D + cc * 8 : src, valid);
  }
}

// cp.async.wait_group takes an immediate: a switch over the counts a plan can produce. Waiting for
// fewer pending groups than asked is always correct (only slower), hence the default.
__device__ __forceinline__ void cp_async_wait_pending(int n) {
  switch (n) {
    case 15: cp_async_wait<15>(); break;
    case 14: cp_async_wait<14>(); break;
    case 13: cp_async_wait<13>(); break;
    case 12: cp_async_wait<12>(); break;
    case 11: cp_async_wait<11>(); break;
    case 10: cp_async_wait<10>(); break;
    case 9: cp_async_wait<9>(); break;
    case 8: cp_async_wait<8>(); break;
    case 7: cp_async_wait<7>(); break;
    case 6: cp_async_wait<6>(); break;
    case 5: cp_async_wait<5>(); break;
    case 4: cp_async_wait<4>(); break;
    case 3: cp_async_wait<3>(); break;
    case 2: cp_async_wait<2>(); break;
    case 1: cp_async_wait<1>(); break;
    default: cp_async_wait<0>(); break;
  }
}

// The A fragments (16 rows x D, k16 steps) of the 16 shared-memory rows at `rows` (stride D + 8).
template <int D>
__device__ __forceinline__ void load_a_fragments(uint32_t (&frag)[D / 16][4], const uint16_t* rows) {
  constexpr int kLd = D + kPadHalves;
  const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) ldmatrix_x4(frag[kk], rows + ((mi & 1) * 8 + mr) * kLd + kk * 16 + (mi >> 1) * 8);
}

// acc (16 x 8 NT, C layout) = A (16 x D fragments) B^T, B = NT * 8 shared-memory rows of D at `rows`
// (stride D + 8): S = Q K^T for K rows, or S^T = K Q^T for Q rows. Tiles n >= 2 * pairs stay zero.
template <typename T, int D, int NT>
__device__ __forceinline__ void frag_times_rows_t(const uint32_t (&a)[D / 16][4], const uint16_t* rows, int pairs,
                                                  float (&acc)[NT][4]) {
  constexpr int kLd = D + kPadHalves;
  const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
#pragma unroll
  for (int n = 0; n < NT; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk)
#pragma unroll
    for (int np = 0; np < NT / 2; ++np) {
      if (np < pairs) {
        uint32_t b[4];
        ldmatrix_x4(b, rows + (np * 16 + (mi >> 1) * 8 + mr) * kLd + kk * 16 + (mi & 1) * 8);
        mma16816<T>(acc[2 * np], a[kk], b[0], b[1]);
        mma16816<T>(acc[2 * np + 1], a[kk], b[2], b[3]);
      }
    }
}

// Writes a warp's 16 x D accumulator (C layout) times `scale` into its 16 staging rows in shared
// memory, then copies the first `rows` of them to global memory (row stride D) with 16-byte stores.
// The caller guarantees no other warp touches the staging rows; __syncwarp orders the two halves.
template <typename T, int D>
__device__ __forceinline__ void store_strip(const float (&acc)[D / 8][4], const float (&row_scale)[2],
                                            uint16_t* staging, uint16_t* dst, int64_t rows) {
  constexpr int kLd = D + kPadHalves, kChunks = D / 8;
  const int lane = threadIdx.x & 31, quad_row = lane >> 2, quad_col = lane & 3;
  __syncwarp();  // every lane is done reading the staging rows
#pragma unroll
  for (int r = 0; r < 2; ++r)
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<uint32_t*>(staging + (quad_row + 8 * r) * kLd + n * 8 + 2 * quad_col) =
          pack2<T>(acc[n][2 * r] * row_scale[r], acc[n][2 * r + 1] * row_scale[r]);
  __syncwarp();
  for (int c = lane; c < rows * kChunks; c += 32) {
    const int r = c / kChunks, cc = c % kChunks;
    *reinterpret_cast<uint4*>(dst + int64_t(r) * D + cc * 8) =
        *reinterpret_cast<const uint4*>(staging + r * kLd + cc * 8);
  }
  __syncwarp();  // the staging rows may be reused by this warp next
}

}  // namespace minivl::cuda::v4
