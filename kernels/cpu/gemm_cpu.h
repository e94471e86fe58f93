#pragma once
// CPU GEMM: C[b] = alpha * A[b] @ B[b] + beta * C[b] on strided, batched matrices.
//
// Algorithm: GotoBLAS/BLIS five-loop blocking. For each NC-wide column block of B
// and each KC-deep slice of K, a KC x NC block of B is packed into NR-wide
// micro-panels (shared by all threads, roughly L3-resident); for each MC-tall row
// block of A, an MC x KC block of A is packed into MR-tall micro-panels (L2);
// a register-blocked MR x NR microkernel then multiplies one A micro-panel by one
// B micro-panel (L1) with FMAs into MR x NR accumulators held in registers.
// Packing reads any strides (fast paths for unit strides), so transposed views
// need no copy. Tiling and the microkernel are described in gemm_cpu.cpp and
// docs/kernels/gemm.md. Bound: compute (FMA throughput); packing is O(MK + KN)
// against O(MNK) FLOPs.
//
// Parallelism (OpenMP): many small GEMMs in a batch run one per thread; otherwise
// the tiles of each packed block are split among the threads.
#include <cstdint>

namespace minivl::cpu {

// Element (i, j) of a strided matrix is at data[i * row_stride + j * col_stride].
// Strides are in elements and may be any values (so transposed views need no copy).
struct MatrixView32 {
  const float* data;
  int64_t row_stride, col_stride;
};

// C[b] = alpha * A[b] @ B[b] + beta * C[b] for b in [0, batch), where
//   A[b] = a + a_offsets[b]   (M x K, element (i, k) at A[b][i * a_row_stride + k * a_col_stride])
//   B[b] = b + b_offsets[b]   (K x N)
//   C[b] = c + c_offsets[b]   (M x N, written through c_row_stride / c_col_stride).
// beta == 0 means C is not read (it may hold NaN garbage). Offsets may repeat
// (broadcast batch dims) for A and B, never for C. A nullptr a_offsets or
// b_offsets means offset 0 for every batch entry of that operand; a nullptr
// c_offsets means batch is treated as 1 (C offset 0). M, N or K may be 0
// (K == 0 gives C = beta * C, or zeros when beta == 0).
void gemm_f32(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
              const float* a, int64_t a_row_stride, int64_t a_col_stride, const int64_t* a_offsets,
              const float* b, int64_t b_row_stride, int64_t b_col_stride, const int64_t* b_offsets,
              float beta, float* c, int64_t c_row_stride, int64_t c_col_stride,
              const int64_t* c_offsets);

// Same contract in f64 (used for gradient checks).
void gemm_f64(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha,
              const double* a, int64_t a_row_stride, int64_t a_col_stride, const int64_t* a_offsets,
              const double* b, int64_t b_row_stride, int64_t b_col_stride, const int64_t* b_offsets,
              double beta, double* c, int64_t c_row_stride, int64_t c_col_stride,
              const int64_t* c_offsets);

// The microkernel this build uses, for benchmarks and docs: e.g. "avx512 14x32".
const char* gemm_f32_microkernel_name();

}  // namespace minivl::cpu
