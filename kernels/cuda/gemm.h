#pragma once
// GEMM on CUDA through cuBLASLt (host-callable, no CUDA headers).
// Row-major C[b] (M x N) = alpha * A[b] (M x K) @ B[b] (K x N) + beta * C[b], any
// strides (transposed views need no copy; strides cuBLAS cannot express are
// copied to a contiguous buffer first), batches given by per-operand offsets
// (an arithmetic progression becomes one strided-batched call).
// f32 (TF32 only when asked), f64, bf16/f16 with f32 accumulation.
// Epilogues: + bias (N) per column, and GELU(... + bias) (tanh form, cuBLASLt's).
#include <cstdint>

#include "kernels/scalar_types.h"

namespace minivl::cuda {

enum class GemmEpilogue { none, bias, bias_gelu };

struct GemmArgs {
  DType dtype = DType::f32;
  int64_t batch = 1, M = 0, N = 0, K = 0;
  double alpha = 1.0, beta = 0.0;
  const void* a = nullptr;
  int64_t a_row_stride = 0, a_col_stride = 0;
  const int64_t* a_offsets = nullptr;  // host array of `batch` element offsets, or null (all 0)
  const void* b = nullptr;
  int64_t b_row_stride = 0, b_col_stride = 0;
  const int64_t* b_offsets = nullptr;
  void* c = nullptr;
  int64_t c_row_stride = 0, c_col_stride = 0;
  const int64_t* c_offsets = nullptr;
  GemmEpilogue epilogue = GemmEpilogue::none;
  const void* bias = nullptr;  // (N) in C's dtype, on the device
};

void gemm(const GemmArgs& args);

// TF32 tensor cores for f32 GEMMs (off by default; also on with env MINIVL_CUDA_TF32=1).
void set_gemm_allow_tf32(bool allow);
bool gemm_allow_tf32();

}  // namespace minivl::cuda
