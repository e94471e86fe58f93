// The lower rungs of the CPU GEMM ladder (v1 naive, v2 blocked, v3 packed; see
// gemm_ladder_cpu.h for what each adds and what bounds it). v4 is gemm_f32 (gemm_cpu.cpp).
// These are written to be read: plain loops, no intrinsics, one idea per version.
#include "kernels/cpu/gemm_ladder_cpu.h"

#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/gemm_cpu.h"

namespace minivl::cpu {
namespace {

// One GEMM of the batch, offsets applied. Element (i, k) of A is a[i * a_row + k * a_col].
struct Problem {
  int64_t M, N, K;
  float alpha;
  const float* a;
  int64_t a_row, a_col;
  const float* b;
  int64_t b_row, b_col;
  float beta;
  float* c;
  int64_t c_row, c_col;
};

// C = beta * C, writing zeros (never reading C) when beta == 0.
void scale_c(const Problem& p) {
#pragma omp parallel for schedule(static) if (p.M * p.N > 4096)
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      float& out = p.c[i * p.c_row + j * p.c_col];
      out = p.beta == 0.0f ? 0.0f : p.beta * out;
    }
}

// Runs `single` on every GEMM of the batch, after the cases with no product to add
// (K == 0 or alpha == 0: C = beta * C), exactly as gemm_f32 treats them.
template <class Single>
void for_each_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t a_row,
                   int64_t a_col, const int64_t* a_offsets, const float* b, int64_t b_row, int64_t b_col,
                   const int64_t* b_offsets, float beta, float* c, int64_t c_row, int64_t c_col,
                   const int64_t* c_offsets, Single single) {
  if (c_offsets == nullptr) batch = 1;
  if (M <= 0 || N <= 0) return;
  for (int64_t index = 0; index < batch; ++index) {
    const Problem p{M,
                    N,
                    K,
                    alpha,
                    a + (a_offsets ? a_offsets[index] : 0),
                    a_row,
                    a_col,
                    b + (b_offsets ? b_offsets[index] : 0),
                    b_row,
                    b_col,
                    beta,
                    c + (c_offsets ? c_offsets[index] : 0),
                    c_row,
                    c_col};
    if (K <= 0 || alpha == 0.0f)
      scale_c(p);
    else
      single(p);
  }
}

// ---- v1: one dot product per output ------------------------------------------
void naive(const Problem& p) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < p.M; ++i)
    for (int64_t j = 0; j < p.N; ++j) {
      float sum = 0.0f;
      for (int64_t k = 0; k < p.K; ++k) sum += p.a[i * p.a_row + k * p.a_col] * p.b[k * p.b_row + j * p.b_col];
      float& out = p.c[i * p.c_row + j * p.c_col];
      out = p.beta == 0.0f ? p.alpha * sum : p.alpha * sum + p.beta * out;
    }
}

// ---- v2: i-k-j order over cache blocks of B ------------------------------------
// A KC x NC block of B (128 x 512 x 4 B = 256 KiB) stays in L2 while a block of kRowsV2
// rows of C is updated; the C row segment (NC x 4 B = 2 KiB) stays in L1 across k.
constexpr int64_t kKcV2 = 128, kNcV2 = 512, kRowsV2 = 32;

void blocked(const Problem& p) {
  scale_c(p);
  const int64_t row_blocks = (p.M + kRowsV2 - 1) / kRowsV2;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t block = 0; block < row_blocks; ++block) {
    const int64_t i_end = std::min(p.M, (block + 1) * kRowsV2);
    for (int64_t jc = 0; jc < p.N; jc += kNcV2) {
      const int64_t nc = std::min(kNcV2, p.N - jc);
      for (int64_t pc = 0; pc < p.K; pc += kKcV2) {
        const int64_t k_end = std::min(p.K, pc + kKcV2);
        for (int64_t i = block * kRowsV2; i < i_end; ++i) {
          float* c_row = p.c + i * p.c_row + jc * p.c_col;
          for (int64_t k = pc; k < k_end; ++k) {
            const float a_ik = p.alpha * p.a[i * p.a_row + k * p.a_col];
            const float* b_row = p.b + k * p.b_row + jc * p.b_col;
            for (int64_t j = 0; j < nc; ++j) c_row[j * p.c_col] += a_ik * b_row[j * p.b_col];
          }
        }
      }
    }
  }
}

// ---- v3: v2 on packed copies -----------------------------------------------------
// Each block of kRowsV3 rows of C copies, per KC x NC block of B, that block of B
// (row-major, contiguous: packed_b[k * nc + j]) and its rows of A (alpha applied:
// packed_a[i * kc + k]), and sums each C row segment in a contiguous buffer before adding
// it to C. Same byte budgets as v2; the B copy costs kc * nc copies per kRowsV3 * kc * nc
// FMAs (1 / 64), and keeps threads independent (no barrier between blocks).
constexpr int64_t kKcV3 = 128, kNcV3 = 512, kRowsV3 = 64;

void packed(const Problem& p) {
  scale_c(p);
  const int64_t row_blocks = (p.M + kRowsV3 - 1) / kRowsV3;
#pragma omp parallel
  {
    std::vector<float> packed_a(static_cast<size_t>(kRowsV3 * kKcV3));
    std::vector<float> packed_b(static_cast<size_t>(kKcV3 * kNcV3));
    std::vector<float> c_segment(static_cast<size_t>(kNcV3));
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < row_blocks; ++block) {
      const int64_t i_begin = block * kRowsV3, rows = std::min(kRowsV3, p.M - i_begin);
      for (int64_t jc = 0; jc < p.N; jc += kNcV3) {
        const int64_t nc = std::min(kNcV3, p.N - jc);
        for (int64_t pc = 0; pc < p.K; pc += kKcV3) {
          const int64_t kc = std::min(kKcV3, p.K - pc);
          for (int64_t k = 0; k < kc; ++k)
            for (int64_t j = 0; j < nc; ++j)
              packed_b[size_t(k * nc + j)] = p.b[(pc + k) * p.b_row + (jc + j) * p.b_col];
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t k = 0; k < kc; ++k)
              packed_a[size_t(i * kc + k)] = p.alpha * p.a[(i_begin + i) * p.a_row + (pc + k) * p.a_col];
          for (int64_t i = 0; i < rows; ++i) {
            float* __restrict segment = c_segment.data();
            std::fill(segment, segment + nc, 0.0f);
            for (int64_t k = 0; k < kc; ++k) {
              const float a_ik = packed_a[size_t(i * kc + k)];
              const float* __restrict b_row = packed_b.data() + k * nc;
              for (int64_t j = 0; j < nc; ++j) segment[j] += a_ik * b_row[j];
            }
            float* c_row = p.c + (i_begin + i) * p.c_row + jc * p.c_col;
            for (int64_t j = 0; j < nc; ++j) c_row[j * p.c_col] += segment[j];
          }
        }
      }
    }
  }
}

// v1-v3 as gemm_f32's signature: `single` run on each GEMM of the batch.
template <void (*single)(const Problem&)>
void ladder_gemm(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* a, int64_t a_row_stride,
                 int64_t a_col_stride, const int64_t* a_offsets, const float* b, int64_t b_row_stride,
                 int64_t b_col_stride, const int64_t* b_offsets, float beta, float* c, int64_t c_row_stride,
                 int64_t c_col_stride, const int64_t* c_offsets) {
  for_each_gemm(batch, M, N, K, alpha, a, a_row_stride, a_col_stride, a_offsets, b, b_row_stride, b_col_stride,
                b_offsets, beta, c, c_row_stride, c_col_stride, c_offsets, single);
}

}  // namespace

const GemmF32Function gemm_f32_v1_naive = ladder_gemm<naive>;
const GemmF32Function gemm_f32_v2_blocked = ladder_gemm<blocked>;
const GemmF32Function gemm_f32_v3_packed = ladder_gemm<packed>;

// The one place that lists the versions (core/register_cpu.cpp registers them as the kernel
// version registry's CPU "gemm" family).
std::span<const GemmF32Version> gemm_f32_versions() {
  static const std::vector<GemmF32Version> versions = [] {
    std::vector<GemmF32Version> list = {
        {1, "v1_naive", "one dot product per output, i-j-k order", gemm_f32_v1_naive, false},
        {2, "v2_blocked", "i-k-j order (unit-stride rows), KC x NC blocks of B kept in L2", gemm_f32_v2_blocked,
         false},
        {3, "v3_packed", "v2 on contiguous packed copies of the A and B blocks", gemm_f32_v3_packed, false},
    };
    for (const GemmF32Version& v4 : gemm_f32_v4_variants()) list.push_back(v4);
    return list;
  }();
  return versions;
}

}  // namespace minivl::cpu
