#pragma once
// GEMM on CUDA through cuBLASLt (host-callable, no CUDA headers), for the KernelTable's gemm slot.
// The problem is kernels/gemm_problem.h's: row-major C[b] (M x N) = alpha * A[b] (M x K) @ B[b]
// (K x N) + beta * C[b], any strides (transposed views need no copy; strides cuBLAS cannot express
// are copied to a contiguous buffer first), batches given by per-operand offsets (an arithmetic
// progression becomes one strided-batched call). f32 (TF32 only when asked), f64, bf16/f16 with
// f32 accumulation. Epilogues: + bias (N) per column, and GELU(... + bias) (tanh form, cuBLASLt's).
#include "kernels/gemm_problem.h"

namespace minivl::cuda {

void gemm(const GemmProblem& problem);

// TF32 tensor cores for f32 GEMMs (off by default; also on with env MINIVL_CUDA_TF32=1).
void set_gemm_allow_tf32(bool allow);
bool gemm_allow_tf32();

}  // namespace minivl::cuda
