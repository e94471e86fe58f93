#pragma once
// The functions of kernels/cuda/mma_sm80.cuh (cp.async, ldmatrix, mma.sync m16n8k16, pack2) for the
// CPU emulation of tests/simt_emulator.h. The fragment layouts are the PTX ISA's ("Matrix
// fragments for mma.m16n8k16", "ldmatrix"), with groupID = lane / 4 and t = lane % 4:
//   A (16 x 16, row-major), 4 registers of two halves: {A[g][2t], A[g][2t+1]}, {A[g+8][2t], ..},
//     {A[g][2t+8], ..}, {A[g+8][2t+8], ..}
//   B (16 x 8, "col"), 2 registers: {B[2t][g], B[2t+1][g]}, {B[2t+8][g], B[2t+9][g]}
//   C, D (16 x 8, f32): D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]
//   ldmatrix .x4: lanes 8m..8m+7 give the row addresses of 8x8 matrix m; lane l receives, in
//     register m, row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 of it (.trans: of its transpose)
// The low half of a register is the first element.
#include <cstdint>
#include <type_traits>

#include "kernels/scalar_types.h"
#include "tests/simt_emulator.h"

namespace minivl::cuda {

inline void cp_async16(void* dst, const void* src, bool valid) { simt::cp_async(dst, src, valid); }
inline void cp_async_commit() { simt::cp_async_commit(); }
template <int N>
inline void cp_async_wait() {
  simt::cp_async_wait(N);
}

inline void ldmatrix_emulated(uint32_t (&r)[4], const void* p, bool trans) {
  simt::WarpScratch& w = simt::warp_scratch();
  const int lane = simt::lane_id();
  simt::check_smem(p, 16, "ldmatrix row");
  w.ptr[lane] = p;
  simt::warp_barrier();
  for (int m = 0; m < 4; ++m) {
    uint16_t lo, hi;
    if (!trans) {
      const auto* row = static_cast<const uint16_t*>(w.ptr[8 * m + lane / 4]);
      lo = row[2 * (lane % 4)];
      hi = row[2 * (lane % 4) + 1];
    } else {
      lo = static_cast<const uint16_t*>(w.ptr[8 * m + 2 * (lane % 4)])[lane / 4];
      hi = static_cast<const uint16_t*>(w.ptr[8 * m + 2 * (lane % 4) + 1])[lane / 4];
    }
    r[m] = uint32_t(lo) | uint32_t(hi) << 16;
  }
  simt::warp_barrier();
}
inline void ldmatrix_x4(uint32_t (&r)[4], const void* p) { ldmatrix_emulated(r, p, false); }
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) { ldmatrix_emulated(r, p, true); }

template <typename T>
inline float half_to_float(uint32_t reg, int which) {
  const uint16_t bits = uint16_t(which ? reg >> 16 : reg & 0xffffu);
  if constexpr (std::is_same_v<T, bf16>) {
    return to_float(bf16{bits});
  } else {
    return to_float(f16{bits});
  }
}

// c (16 x 8, f32) += a (16 x 16) b (16 x 8), from the fragments of all 32 lanes.
template <typename T>
inline void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  simt::WarpScratch& w = simt::warp_scratch();
  const int lane = simt::lane_id();
  for (int i = 0; i < 4; ++i) w.a[lane][i] = a[i];
  w.b[lane][0] = b0;
  w.b[lane][1] = b1;
  simt::warp_barrier();
  auto A = [&](int row, int col) {  // the lane holding A[row][col], its register and half
    return half_to_float<T>(w.a[(row % 8) * 4 + (col % 8) / 2][(row >= 8 ? 1 : 0) + (col >= 8 ? 2 : 0)], col % 2);
  };
  auto B = [&](int k, int n) { return half_to_float<T>(w.b[n * 4 + (k % 8) / 2][k >= 8 ? 1 : 0], k % 2); };
  const int g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + 8 * (i / 2), col = 2 * t + (i % 2);
    float sum = 0.0f;
    for (int k = 0; k < 16; ++k) sum += A(row, k) * B(k, col);
    c[i] += sum;
  }
  simt::warp_barrier();
}

template <typename T>
inline uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, bf16>) {
    return uint32_t(to_bf16(lo).bits) | uint32_t(to_bf16(hi).bits) << 16;
  } else {
    return uint32_t(to_f16(lo).bits) | uint32_t(to_f16(hi).bits) << 16;
  }
}

}  // namespace minivl::cuda
