// CPU GEMM packing (beside gemm_cpu.cpp, which holds the loop nest and the
// microkernel; gemm_internal.h declares what crosses the boundary). Copies blocks of
// A and B into the contiguous micro-panels the microkernel streams:
//   pack_a_panel: MR-tall A panels; fast paths for column-major A (a memcpy per k) and
//                 row-major A (a transposing copy; f32 under AVX-512 transposes 16 x 16
//                 blocks in registers), a scalar gather for any other strides.
//   pack_b_panel: NR-wide B panels; fast paths for row-major B (a memcpy per k) and
//                 column-major B (the same transposing copy), a scalar gather otherwise.
// Both write zeros beyond the valid rows / columns of an edge panel, so the microkernel
// always runs a full tile. Only the panel widths this build's microkernels use are
// instantiated (at the bottom). A pack call copies a whole kc x MR (or NR) panel, so
// the call across translation units costs nothing measurable.
#include <algorithm>
#include <cstring>

#include "kernels/cpu/gemm_internal.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace minivl::cpu::detail {
namespace {

// panel[k * kWidth + i] = src[i * src_stride + k] for i < lines, 0 for lines <= i < kWidth:
// a transposing copy of `lines` contiguous runs of kc elements (row-major A, column-major B).
template <int kWidth, class T>
void pack_transposed_scalar(const T* src, int64_t src_stride, int lines, int64_t k_begin, int64_t kc, T* panel) {
  for (int i = 0; i < lines; ++i) {
    const T* run = src + i * src_stride;
    for (int64_t k = k_begin; k < kc; ++k) panel[k * kWidth + i] = run[k];
  }
  for (int64_t k = k_begin; k < kc; ++k)
    for (int i = lines; i < kWidth; ++i) panel[k * kWidth + i] = T(0);
}

#if defined(__AVX512F__)
// Full-mask forms of the shuffles: GCC 12's unmasked intrinsics start from
// _mm512_undefined_ps(), which trips a false -Wuninitialized at -O3 (GCC bug 105593).
inline __m512 unpacklo_32(__m512 a, __m512 b) { return _mm512_mask_unpacklo_ps(a, 0xFFFF, a, b); }
inline __m512 unpackhi_32(__m512 a, __m512 b) { return _mm512_mask_unpackhi_ps(a, 0xFFFF, a, b); }
inline __m512 unpacklo_64(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpacklo_pd(x, 0xFF, x, _mm512_castps_pd(b)));
}
inline __m512 unpackhi_64(__m512 a, __m512 b) {
  const __m512d x = _mm512_castps_pd(a);
  return _mm512_castpd_ps(_mm512_mask_unpackhi_pd(x, 0xFF, x, _mm512_castps_pd(b)));
}
template <int kLaneSelect>
inline __m512 shuffle_128(__m512 a, __m512 b) {
  return _mm512_mask_shuffle_f32x4(a, 0xFFFF, a, b, kLaneSelect);
}

// Transposes a 16 x 16 block in registers: rows[i] lane k -> rows[k] lane i.
inline void transpose_16x16(__m512 rows[16]) {
  __m512 pairs[16], quads[16];
  for (int p = 0; p < 8; ++p) {  // lane L of pairs[2p]: rows 2p, 2p+1 at columns 4L, 4L+1
    pairs[2 * p] = unpacklo_32(rows[2 * p], rows[2 * p + 1]);
    pairs[2 * p + 1] = unpackhi_32(rows[2 * p], rows[2 * p + 1]);
  }
  for (int q = 0; q < 4; ++q) {  // lane L of quads[4q + c]: rows 4q..4q+3 at column 4L + c
    quads[4 * q + 0] = unpacklo_64(pairs[4 * q], pairs[4 * q + 2]);
    quads[4 * q + 1] = unpackhi_64(pairs[4 * q], pairs[4 * q + 2]);
    quads[4 * q + 2] = unpacklo_64(pairs[4 * q + 1], pairs[4 * q + 3]);
    quads[4 * q + 3] = unpackhi_64(pairs[4 * q + 1], pairs[4 * q + 3]);
  }
  for (int c = 0; c < 4; ++c) {  // 4 x 4 transpose of 128-bit lanes: rows[4L + c] lane q = quads[4q + c] lane L
    const __m512 s0 = shuffle_128<0x44>(quads[c], quads[4 + c]);
    const __m512 s1 = shuffle_128<0xEE>(quads[c], quads[4 + c]);
    const __m512 s2 = shuffle_128<0x44>(quads[8 + c], quads[12 + c]);
    const __m512 s3 = shuffle_128<0xEE>(quads[8 + c], quads[12 + c]);
    rows[c] = shuffle_128<0x88>(s0, s2);
    rows[4 + c] = shuffle_128<0xDD>(s0, s2);
    rows[8 + c] = shuffle_128<0x88>(s1, s3);
    rows[12 + c] = shuffle_128<0xDD>(s1, s3);
  }
}

// f32 transposing copy, 16 lines x 16 k at a time through registers; scalar k tail.
template <int kWidth>
void pack_transposed(const float* src, int64_t src_stride, int lines, int64_t kc, float* panel) {
  const int64_t k_vector_end = kc / 16 * 16;
  for (int i0 = 0; i0 < kWidth; i0 += 16) {
    const int lanes = std::min(16, kWidth - i0);
    const __mmask16 store_mask = static_cast<__mmask16>((1u << lanes) - 1);
    const int valid = std::clamp(lines - i0, 0, 16);
    for (int64_t k0 = 0; k0 < k_vector_end; k0 += 16) {
      __m512 block[16];
      for (int i = 0; i < 16; ++i)
        block[i] = i < valid ? _mm512_loadu_ps(src + (i0 + i) * src_stride + k0) : _mm512_setzero_ps();
      transpose_16x16(block);
      for (int k = 0; k < 16; ++k) _mm512_mask_storeu_ps(panel + (k0 + k) * kWidth + i0, store_mask, block[k]);
    }
  }
  pack_transposed_scalar<kWidth>(src, src_stride, lines, k_vector_end, kc, panel);
}
#endif

template <int kWidth, class T>
void pack_transposed(const T* src, int64_t src_stride, int lines, int64_t kc, T* panel) {
  pack_transposed_scalar<kWidth>(src, src_stride, lines, 0, kc, panel);
}

}  // namespace

// panel[k * MR + i] = A(i, k) for i < m, k < kc; `a` points at A(0, 0) of the panel.
template <int MR, class T>
void pack_a_panel(const T* a, int64_t row_stride, int64_t col_stride, int m, int64_t kc, T* panel) {
  if (m == MR && row_stride == 1) {  // column-major A (e.g. A^T of a row-major matrix)
    for (int64_t k = 0; k < kc; ++k) std::memcpy(panel + k * MR, a + k * col_stride, MR * sizeof(T));
    return;
  }
  if (col_stride == 1) {  // row-major A
    pack_transposed<MR>(a, row_stride, m, kc, panel);
    return;
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int i = 0; i < MR; ++i) panel[k * MR + i] = i < m ? a[i * row_stride + k * col_stride] : T(0);
}

// panel[k * NR + j] = B(k, j) for k < kc, j < n; `b` points at B(0, 0) of the panel.
template <int NR, class T>
void pack_b_panel(const T* b, int64_t row_stride, int64_t col_stride, int n, int64_t kc, T* panel) {
  if (n == NR && col_stride == 1) {  // row-major B
    for (int64_t k = 0; k < kc; ++k) std::memcpy(panel + k * NR, b + k * row_stride, NR * sizeof(T));
    return;
  }
  if (row_stride == 1) {  // column-major B (e.g. W^T of a row-major Linear weight)
    pack_transposed<NR>(b, col_stride, n, kc, panel);
    return;
  }
  for (int64_t k = 0; k < kc; ++k)
    for (int j = 0; j < NR; ++j) panel[k * NR + j] = j < n ? b[k * row_stride + j * col_stride] : T(0);
}

// The panel widths of this build's microkernels (the tiles in gemm_internal.h).
template void pack_a_panel<KernelShape<float>::MR, float>(const float*, int64_t, int64_t, int, int64_t, float*);
template void pack_a_panel<KernelShape<double>::MR, double>(const double*, int64_t, int64_t, int, int64_t, double*);
template void pack_b_panel<KernelShape<float>::NR, float>(const float*, int64_t, int64_t, int, int64_t, float*);
template void pack_b_panel<KernelShape<double>::NR, double>(const double*, int64_t, int64_t, int, int64_t,
                                                            double*);
#if MINIVL_GEMM_AVX2_BESIDE_AVX512
static_assert(Avx2TileF32::MR != KernelShape<float>::MR && Avx2TileF32::NR != KernelShape<float>::NR,
              "a panel width shared by two f32 tiles is instantiated once: drop the duplicate line below");
template void pack_a_panel<Avx2TileF32::MR, float>(const float*, int64_t, int64_t, int, int64_t, float*);
template void pack_b_panel<Avx2TileF32::NR, float>(const float*, int64_t, int64_t, int, int64_t, float*);
#endif

}  // namespace minivl::cpu::detail
