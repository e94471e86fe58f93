#pragma once
// The pieces of the contrastive losses v3 around its tile kernels (kernels/cuda/contrastive_v3.cu):
// the cuBLASLt calls (contrastive_v3_gemm.cu) and the small kernels' launches
// (contrastive_v3_finish.cu), all on the backend stream.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cuda/contrastive_v3_plan.h"
#include "kernels/scalar_types.h"

namespace minivl::cuda::v3 {

inline constexpr size_t kLtWorkspaceBytes = size_t(32) << 20;

// Column-major C (m x n) = op(A) (m x k) op(B) (k x n) + beta C on the backend stream; A and B
// of type `ab`, C of type `c`, f32 compute. Leading dimensions are those of the stored matrices.
struct LtGemm {
  DType ab = DType::bf16, c = DType::f32;
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;
  int64_t lda = 0;
  bool trans_a = false;
  const void* b = nullptr;
  int64_t ldb = 0;
  bool trans_b = false;
  void* c_ptr = nullptr;
  int64_t ldc = 0;
  float beta = 0.0f;
};
void lt_gemm(const LtGemm& g, void* workspace, size_t workspace_bytes);

void four_gemms(DType dt, int64_t n, int64_t d, int64_t rows, const void* image, const void* text, void* logits,
                void* dimage, void* dtext);

// Folds chunk c's row and column (max, sum) partials, slot by slot, into the running states.
void launch_merge_chunk(const Plan& plan, const Chunk& c, const float2* row_part, const float2* col_part,
                        float2* row_state, float2* col_state);
void launch_lse_from_states(int64_t n, const float2* row_state, const float2* col_state, float* lse_row,
                            float* lse_col);
// One block, fixed order: out = scale * (mult ? *mult : 1) * (sum_{i<nxy} (x + y)_i - 2 sum_{i<nz} z_i).
void launch_fixed_sum(const float* x, const float* y, int64_t nxy, const float* z, int64_t nz, const float* mult,
                      float scale, float* out);
// out[i] = s <a_i, b_i> (CLIP's diagonal logits), a and b (n, d) 16-bit of dtype dt.
void launch_diag_logits(DType dt, const uint16_t* a, const uint16_t* b, int64_t n, int d, const float* log_scale,
                        float* out);
// out = s * (g / coef_div) * (acc - 2 target) in dtype dt; target (16-bit, nullable): CLIP's -2 I term.
void launch_finish_grad(DType dt, const float* acc, const uint16_t* target, int64_t count, const float* log_scale,
                        const float* grad_loss, float coef_div, uint16_t* out);

}  // namespace minivl::cuda::v3
