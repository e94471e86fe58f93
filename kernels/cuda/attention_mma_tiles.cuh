#pragma once
// Warp-level pieces the tensor-core attention versions share (v3: attention_v3.cu,
// attention_v3_backward.cu; v4: attention_v4_common.cuh), on mma.sync m16n8k16 accumulators in the
// C layout (lane = 4 quad_row + quad_col holds rows quad_row and quad_row + 8, columns
// 2 quad_col, 2 quad_col + 1 of each n8 tile):
//   acc_times_rows        out += P M, P re-packed from accumulators into A fragments
//   online_softmax_row   the base-2 online-softmax step of one of a lane's two rows
// Device code only, in an anonymous namespace like v4's headers: the CUDA build and the CPU
// emulation test (tests/test_attention_v4_emulated.cpp, through MINIVL_V4_MMA_HEADER) each
// instantiate these templates in their own translation unit.
#include <cmath>
#include <cstdint>

// The PTX primitives (cp.async, ldmatrix, mma.sync): mma_sm80.cuh on the GPU; the CPU emulation
// test points this at its SIMT emulation of the same functions.
#ifndef MINIVL_V4_MMA_HEADER
#define MINIVL_V4_MMA_HEADER "kernels/cuda/mma_sm80.cuh"
#endif
#include MINIVL_V4_MMA_HEADER

namespace minivl::cuda {
namespace {  // internal linkage: see above

// out (16 x D) += P (16 x 8 NT, C layout, re-packed as A fragments) M, M = the NT * 8 shared-memory
// rows at `rows` (stride D + 8 halves): O += P V, dV += P^T dO, dK += dS^T Q, dQ += dS K.
// k16 steps >= `steps` are skipped (a compile-time NT / 2 skips none).
template <typename T, int D, int NT>
__device__ __forceinline__ void acc_times_rows(const float (&p)[NT][4], const uint16_t* rows, int steps,
                                               float (&out)[D / 8][4]) {
  constexpr int kLd = D + 8;
  const int lane = threadIdx.x & 31, mi = lane >> 3, mr = lane & 7;
#pragma unroll
  for (int kk = 0; kk < NT / 2; ++kk) {
    if (kk < steps) {
      const uint32_t a[4] = {pack2<T>(p[2 * kk][0], p[2 * kk][1]), pack2<T>(p[2 * kk][2], p[2 * kk][3]),
                             pack2<T>(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                             pack2<T>(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
      for (int n = 0; n < D / 8; n += 2) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, rows + (kk * 16 + (mi & 1) * 8 + mr) * kLd + n * 8 + (mi >> 1) * 8);
        mma16816<T>(out[n], a, b[0], b[1]);
        mma16816<T>(out[n + 1], a, b[2], b[3]);
      }
    }
  }
}

// One online-softmax step for row r (0: quad_row, 1: quad_row + 8) of a 16 x 64 score tile `s`
// already in base 2 (scores x scale log2 e, masked ones -inf); `mx` is this lane's max over its
// columns of the row. Folds the quad's max into the running max m, turns the row's scores into
// P = exp2(s - m), rescales this lane's partial sum l and the row's O accumulators by
// exp2(m_old - m_new). A row with nothing visible yet uses 0 as its reference: P = 0, O stays 0.
template <int D>
__device__ __forceinline__ void online_softmax_row(float (&s)[8][4], int r, float mx, float& m, float& l,
                                                    float (&o)[D / 8][4]) {
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float mnew = fmaxf(m, mx);
  const float ref = mnew == -INFINITY ? 0.0f : mnew;
  const float alpha = exp2f(m - ref);
  float sum = 0.0f;
#pragma unroll
  for (int n = 0; n < 8; ++n)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      float& x = s[n][2 * r + e];
      x = exp2f(x - ref);
      sum += x;
    }
  l = l * alpha + sum;  // this lane's partial; the quad's partials are summed at the end
  m = mnew;
#pragma unroll
  for (int n = 0; n < D / 8; ++n) {
    o[n][2 * r] *= alpha;
    o[n][2 * r + 1] *= alpha;
  }
}

}  // namespace
}  // namespace minivl::cuda
