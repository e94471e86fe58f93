#pragma once
// cuBLASLt calls of the contrastive losses v3 (kernels/cuda/contrastive_v3_gemm.cu).
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

}  // namespace minivl::cuda::v3
