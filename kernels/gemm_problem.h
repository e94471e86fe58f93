#pragma once
// GemmProblem: one GEMM as every backend's GEMM takes it (the KernelTable's gemm slot,
// kernels/cpu/gemm_cpu.h's adapter in core/register_cpu.cpp, kernels/cuda/gemm.h).
//   C[b] = alpha * A[b] @ B[b] + beta * C[b], row-major, for b < batch; element (i, j) of A[b] is
//   a[a_offsets[b] + i * a_row_stride + j * a_col_stride] (the same for B, C). Offsets are host
//   arrays of `batch` element offsets, or null (all 0). beta == 0: C is not read.
// No core/ types: pointers, sizes and strides in elements.
#include <cstdint>

#include "kernels/scalar_types.h"

namespace minivl {

// cuBLASLt epilogues after the product: + bias (N) per column, GELU(... + bias) (tanh form).
// The CUDA GEMM takes them; the CPU GEMM rejects anything but none.
enum class GemmEpilogue { none, bias, bias_gelu };

struct GemmProblem {
  DType dtype = DType::f32;
  int64_t batch = 1, M = 0, N = 0, K = 0;
  double alpha = 1.0, beta = 0.0;
  const void* a = nullptr;
  int64_t a_row_stride = 0, a_col_stride = 0;
  const int64_t* a_offsets = nullptr;
  const void* b = nullptr;
  int64_t b_row_stride = 0, b_col_stride = 0;
  const int64_t* b_offsets = nullptr;
  void* c = nullptr;
  int64_t c_row_stride = 0, c_col_stride = 0;
  const int64_t* c_offsets = nullptr;
  GemmEpilogue epilogue = GemmEpilogue::none;
  const void* bias = nullptr;  // (N) in C's dtype, on C's device
};

}  // namespace minivl
