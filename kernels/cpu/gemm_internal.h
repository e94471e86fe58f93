#pragma once
// Internal to the CPU GEMM (gemm_cpu.cpp: loop nest, microkernel, threads; gemm_pack_cpu.cpp:
// packing). Not part of the public API (that is gemm_cpu.h); do not include elsewhere.
//
// Packed layouts (both zero-padded past the valid rows / columns of an edge panel):
//   A micro-panel (kc x MR): panel[k * MR + i] = A(i, k)
//   B micro-panel (kc x NR): panel[k * NR + j] = B(k, j)
#include <cstdint>

namespace minivl::cpu::detail {

// Register tiles (MR rows x NR columns of C) of the microkernels, and KernelShape<T>:
// the widest one the build has, which gemm_f32 / gemm_f64 use. Both files see the same
// ISA macros, so they agree on the panel widths.
template <int kMR, int kNR>
struct Tile {
  static constexpr int MR = kMR, NR = kNR;
};
struct Avx2TileF32 : Tile<6, 16> {};

// A build with AVX-512 also compiles the AVX2 f32 microkernel (the ladder's v4_avx2).
#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#define MINIVL_GEMM_AVX2_BESIDE_AVX512 1
#endif

template <class T>
struct KernelShape;
#if defined(__AVX512F__)
template <> struct KernelShape<float> : Tile<14, 32> {};
template <> struct KernelShape<double> : Tile<14, 16> {};
#elif defined(__AVX2__) && defined(__FMA__)
template <> struct KernelShape<float> : Avx2TileF32 {};
template <> struct KernelShape<double> : Tile<6, 8> {};
#else
template <> struct KernelShape<float> : Tile<4, 4> {};
template <> struct KernelShape<double> : Tile<4, 4> {};
#endif

// Packs the m x kc block of A at `a` (element (i, k) at a[i * row_stride + k * col_stride])
// into one A micro-panel; rows m..MR-1 are zeros. Instantiated for the MR of each tile above.
template <int MR, class T>
void pack_a_panel(const T* a, int64_t row_stride, int64_t col_stride, int m, int64_t kc, T* panel);

// Packs the kc x n block of B at `b` (element (k, j) at b[k * row_stride + j * col_stride])
// into one B micro-panel; columns n..NR-1 are zeros. Instantiated for the NR of each tile above.
template <int NR, class T>
void pack_b_panel(const T* b, int64_t row_stride, int64_t col_stride, int n, int64_t kc, T* panel);

}  // namespace minivl::cpu::detail
