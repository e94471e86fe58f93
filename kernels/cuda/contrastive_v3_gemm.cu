// cuBLASLt for the contrastive losses v3: the two gradient GEMMs of each backward chunk
// (dimage_I += G text_J, dtext_J += G^T image_I; 16-bit operands, f32 accumulators) and the
// benchmark's four-GEMM speed floor. cuBLAS is column-major: a row-major (R, C) matrix with
// leading dimension ld is read as its transpose, (C, R) column-major with the same ld.
// Algorithms: cuBLASLt's heuristic, first answer, remembered per problem; cuBLAS is
// deterministic for a fixed algorithm on a given GPU (its split-K reductions included).
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/contrastive_v3.h"
#include "kernels/cuda/contrastive_v3_parts.cuh"

namespace minivl::cuda::v3 {
namespace {

cublasLtHandle_t handle() {
  static cublasLtHandle_t h = [] {
    cublasLtHandle_t created = nullptr;
    CUBLAS_CHECK(cublasLtCreate(&created));
    return created;
  }();
  return h;
}

cudaDataType_t lt_type(DType t) {
  switch (t) {
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    case DType::f32: return CUDA_R_32F;
    default: throw CudaError("contrastive v3: cuBLASLt operands must be bf16, f16 or f32");
  }
}

// The largest power of two (<= 256) dividing an address.
uint32_t alignment(const void* p) {
  const uint64_t bits = reinterpret_cast<uintptr_t>(p) | 256u;
  return uint32_t(bits & (~bits + 1));
}

struct Layout {
  cublasLtMatrixLayout_t h = nullptr;
  Layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld) {
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&h, t, uint64_t(rows), uint64_t(cols), ld));
  }
  ~Layout() { cublasLtMatrixLayoutDestroy(h); }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
};

}  // namespace

void lt_gemm(const LtGemm& g, void* workspace, size_t workspace_bytes) {
  if (g.m == 0 || g.n == 0) return;
  cublasLtMatmulDesc_t desc = nullptr;
  CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t op_a = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  const cudaDataType_t tab = lt_type(g.ab), tc = lt_type(g.c);
  // Stored shapes: op(A) is m x k, op(B) is k x n.
  Layout la(tab, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda);
  Layout lb(tab, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb);
  Layout lc(tc, g.m, g.n, g.ldc);

  using Key = std::tuple<int, int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;
  static std::map<Key, cublasLtMatmulHeuristicResult_t> cache;
  static std::mutex mu;
  const int64_t align = int64_t(alignment(g.a)) << 20 | int64_t(alignment(g.b)) << 10 | alignment(g.c_ptr);
  const Key key{int(g.ab), int(g.c), int(op_a), int(op_b), g.m, g.n, g.k, g.lda, g.ldb, g.ldc, align, g.beta == 0.0f};
  cublasLtMatmulHeuristicResult_t heur{};
  bool found = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) heur = it->second, found = true;
  }
  if (!found) {
    cublasLtMatmulPreference_t pref = nullptr;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &workspace_bytes, sizeof(workspace_bytes)));
    const uint32_t aa = alignment(g.a), ab = alignment(g.b), ac = alignment(g.c_ptr);
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof(aa)));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof(ab)));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ac, sizeof(ac)));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ac, sizeof(ac)));
    int count = 0;
    const cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(handle(), desc, la.h, lb.h, lc.h, lc.h, pref, 1, &heur, &count);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || count == 0) {
      cublasLtMatmulDescDestroy(desc);
      throw CudaError("contrastive v3: cuBLASLt has no algorithm for a " + std::to_string(g.m) + " x " +
                      std::to_string(g.n) + " x " + std::to_string(g.k) + " GEMM");
    }
    std::lock_guard<std::mutex> lock(mu);
    cache.emplace(key, heur);
  }
  const float alpha = 1.0f, beta = g.beta;
  const cublasStatus_t st = cublasLtMatmul(handle(), desc, &alpha, g.a, la.h, g.b, lb.h, &beta, g.c_ptr, lc.h, g.c_ptr,
                                           lc.h, &heur.algo, workspace, workspace_bytes, stream());
  cublasLtMatmulDescDestroy(desc);
  CUBLAS_CHECK(st);
}

// Row-major, per strip s of `rows` rows (X_s = rows [r0, r0 + rows) of X):
//   logits_s (rows, n) = image_s text^T       twice: the forward, and the backward's recompute
//   dimage_s (rows, d) = logits_s text        logits standing in for G
//   dtext    (n, d)   += logits_s^T image_s
void four_gemms(DType dt, int64_t n, int64_t d, int64_t rows, const void* image, const void* text, void* logits,
                void* dimage, void* dtext) {
  if (rows < 1 || rows > n) throw CudaError("contrastive_four_gemms: strip rows must be in [1, n]");
  DeviceBuffer ws(kLtWorkspaceBytes);
  const int64_t es = scalar_size(dt);
  for (int64_t r0 = 0; r0 < n; r0 += rows) {
    const int64_t m = min64(rows, n - r0);
    const char* img = static_cast<const char*>(image) + r0 * d * es;
    char* di = static_cast<char*>(dimage) + r0 * d * es;
    // column-major: logits_s^T (n x m) = (text, stored d x n)^T (image_s, stored d x m)
    const LtGemm logits_gemm{dt, dt, n, m, d, text, d, true, img, d, false, logits, n, 0.0f};
    for (int pass = 0; pass < 2; ++pass) lt_gemm(logits_gemm, ws.ptr, ws.bytes);
    // dimage_s^T (d x m) = (text, stored d x n) (logits_s, stored n x m)
    lt_gemm(LtGemm{dt, dt, d, m, n, text, d, false, logits, n, false, di, d, 0.0f}, ws.ptr, ws.bytes);
    // dtext^T (d x n) += (image_s, stored d x m) (logits_s, stored n x m)^T
    lt_gemm(LtGemm{dt, dt, d, n, m, img, d, false, logits, n, true, dtext, d, r0 == 0 ? 0.0f : 1.0f}, ws.ptr,
            ws.bytes);
  }
}

}  // namespace minivl::cuda::v3

namespace minivl::cuda {

void contrastive_four_gemms(DType dtype, int64_t n, int64_t d, int64_t rows, const void* image, const void* text,
                            void* logits, void* dimage, void* dtext) {
  if (dtype != DType::bf16 && dtype != DType::f16) throw CudaError("contrastive_four_gemms: bf16 or f16 only");
  v3::four_gemms(dtype, n, d, rows, image, text, logits, dimage, dtext);
}

}  // namespace minivl::cuda
