#pragma once
// The CPU GEMM version ladder: four f32 GEMMs, each adding one idea to the one before,
// so a reader can run and time every step (bench_gemm's BM_GemmLadder rows,
// docs/kernels/gemm.md "The ladder"). All keep gemm_f32's contract and signature
// (gemm_cpu.h: batched, any strides, alpha / beta, beta == 0 never reads C), so any
// version can stand in for another, and all split their work across OpenMP threads.
//
//   v1 naive    (gemm_ladder_cpu.cpp): one dot product per C(i, j), i-j-k order, f32 sum.
//                Reads B down a column: with row-major B every B element is a new cache line.
//                Bound: cache misses on B. The ladder's reference.
//   v2 blocked  (gemm_ladder_cpu.cpp): i-k-j order, C row i += A(i, k) * B row k (unit stride in j,
//                so the compiler vectorises it), over KC x NC blocks of B that stay in L2.
//                Bound: L1 traffic, a load and a store of C for every FMA vector.
//   v3 packed   (gemm_ladder_cpu.cpp): v2 on copies: the B block is packed row-major and
//                contiguous, the rows of the A block too (with alpha applied), and each C row
//                accumulates in a contiguous L1 buffer, so every operand layout runs the same
//                unit-stride loop. Bound: still the C buffer's load and store per FMA.
//   v4          (gemm_cpu.cpp, gemm_f32): packed micro-panels and an MR x NR register tile of C
//                that stays in registers for all of KC: 1 B load per NR/width FMAs, no C
//                traffic in the loop. Bound: FMA throughput. AVX-512 (14 x 32) and AVX2
//                (6 x 16) microkernels, the widest the build has being gemm_f32's.
#include <cstdint>
#include <span>

namespace minivl::cpu {

// gemm_f32's signature (gemm_cpu.h), shared by every version.
using GemmF32Function = void (*)(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
                                 int64_t a_row_stride, int64_t a_col_stride, const int64_t* a_offsets,
                                 const float* b, int64_t b_row_stride, int64_t b_col_stride,
                                 const int64_t* b_offsets, float beta, float* c, int64_t c_row_stride,
                                 int64_t c_col_stride, const int64_t* c_offsets);

// v1 naive, v2 blocked, v3 packed (gemm_ladder_cpu.cpp); v4 is gemm_f32.
extern const GemmF32Function gemm_f32_v1_naive;
extern const GemmF32Function gemm_f32_v2_blocked;
extern const GemmF32Function gemm_f32_v3_packed;

struct GemmF32Version {
  int number;           // 1..4: the rung (the kernel version registry's number; v4's variants share 4)
  const char* name;     // "v1_naive", ..., "v4_avx512_14x32"
  const char* summary;  // the idea this step adds
  GemmF32Function run;
  bool is_default;      // gemm_f32 itself
};

// Every version this build has, v1 first; exactly one is_default (gemm_f32, the last).
std::span<const GemmF32Version> gemm_f32_versions();

// The v4 rows of that list (gemm_cpu.cpp): one per microkernel this build compiled, the
// narrower ISA first, gemm_f32's own last.
std::span<const GemmF32Version> gemm_f32_v4_variants();

}  // namespace minivl::cpu
