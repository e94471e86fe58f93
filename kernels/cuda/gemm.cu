// GEMM through cuBLASLt (see gemm.h for the contract).
//
// Layout: cuBLAS is column-major, our tensors row-major, so we compute
// C^T (N x M) = B^T (N x K) @ A^T (K x M). A row-major operand X (R x C) with
// strides (rs, cs) is, read column-major, either X^T with ld = rs (when
// cs == 1: op N) or X with ld = cs (when rs == 1: op T). Anything else
// (broadcast 0 strides, both strides > 1) is first copied to a contiguous
// buffer. Batches whose offsets form an arithmetic progression (>= 0 step)
// become one strided-batched matmul, otherwise one matmul per batch.
// Algorithm choice: cuBLASLt's heuristic (first result), with a 32 MiB
// workspace from the caching allocator. Bound: compute for large shapes
// (H100 SXM dense peak: ~990 TFLOP/s bf16/f16, ~495 TF32, ~67 f32 without
// TF32), memory for skinny ones.
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/gemm.h"

namespace minivl::cuda {

namespace {

int g_allow_tf32 = -1;  // -1: read MINIVL_CUDA_TF32 on first use

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

cublasLtHandle_t lt_handle() {
  static cublasLtHandle_t h = [] {
    cublasLtHandle_t created = nullptr;
    CUBLAS_CHECK(cublasLtCreate(&created));
    return created;
  }();
  return h;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: throw CudaError("matmul: no CUDA GEMM for this dtype (f32, f64, bf16, f16 only)");
  }
}

// How a row-major R x C operand is read by cuBLAS (column-major): op N on a stored C x R
// matrix (X^T, ld = rs) or op T on a stored R x C matrix (X itself, ld = cs).
struct Operand {
  bool ok = false;
  bool transpose = false;  // cuBLAS op T
  int64_t stored_rows = 0, stored_cols = 0, ld = 0;
};

Operand describe(int64_t R, int64_t C, int64_t rs, int64_t cs) {
  Operand o;
  if (C == 1) cs = 1;                                // a single column: its stride is never used
  if (R == 1) rs = cs == 1 ? std::max<int64_t>(C, 1) : 1;  // a single row: likewise
  if (cs == 1 && rs >= std::max<int64_t>(C, 1)) {
    o = {true, false, C, R, rs};
  } else if (rs == 1 && cs >= std::max<int64_t>(R, 1)) {
    o = {true, true, R, C, cs};
  }
  return o;
}

// Offsets as (first, step) when they form an arithmetic progression with step >= 0.
bool arithmetic(const int64_t* off, int64_t batch, int64_t& first, int64_t& step) {
  first = off ? off[0] : 0;
  step = off && batch > 1 ? off[1] - off[0] : 0;
  if (step < 0) return false;
  if (off)
    for (int64_t i = 0; i < batch; ++i)
      if (off[i] != first + i * step) return false;
  return true;
}

StridedView view3(void* data, DType t, int64_t b, int64_t r, int64_t c, int64_t sb, int64_t sr, int64_t sc) {
  StridedView v;
  v.data = data;
  v.dtype = t;
  v.ndim = 3;
  v.sizes[0] = b, v.sizes[1] = r, v.sizes[2] = c;
  v.strides[0] = sb, v.strides[1] = sr, v.strides[2] = sc;
  return v;
}

// Copies every batch of a strided operand into a contiguous (batch, R, C) buffer, or back.
void gather(const void* src, const int64_t* off, DType t, int64_t batch, int64_t R, int64_t C, int64_t rs, int64_t cs,
            void* dst, bool to_contiguous) {
  const size_t elem = size_t(scalar_size(t));
  int64_t first, step;
  auto strided_at = [&](int64_t base) { return static_cast<char*>(const_cast<void*>(src)) + base * int64_t(elem); };
  if (arithmetic(off, batch, first, step)) {
    StridedView s = view3(strided_at(first), t, batch, R, C, step, rs, cs);
    StridedView d = view3(dst, t, batch, R, C, R * C, C, 1);
    to_contiguous ? copy(s, d) : copy(d, s);
    return;
  }
  for (int64_t b = 0; b < batch; ++b) {
    StridedView s = view3(strided_at(off[b]), t, 1, R, C, 0, rs, cs);
    StridedView d = view3(static_cast<char*>(dst) + b * R * C * int64_t(elem), t, 1, R, C, 0, C, 1);
    to_contiguous ? copy(s, d) : copy(d, s);
  }
}

struct LtLayout {
  cublasLtMatrixLayout_t h = nullptr;
  LtLayout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&h, t, uint64_t(rows), uint64_t(cols), ld));
    if (batch > 1) {
      int32_t count = int32_t(batch);
      CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(h, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
      CUBLAS_CHECK(
          cublasLtMatrixLayoutSetAttribute(h, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
    }
  }
  ~LtLayout() { cublasLtMatrixLayoutDestroy(h); }
  LtLayout(const LtLayout&) = delete;
  LtLayout& operator=(const LtLayout&) = delete;
};

struct LtDesc {
  cublasLtMatmulDesc_t h = nullptr;
  LtDesc(cublasComputeType_t compute, cudaDataType_t scale) { CUBLAS_CHECK(cublasLtMatmulDescCreate(&h, compute, scale)); }
  ~LtDesc() { cublasLtMatmulDescDestroy(h); }
  LtDesc(const LtDesc&) = delete;
  LtDesc& operator=(const LtDesc&) = delete;
};

// The largest power of two (<= 256) dividing the address and the batch stride in bytes.
uint32_t alignment(const void* p, int64_t stride_bytes) {
  uint64_t bits = reinterpret_cast<uintptr_t>(p) | uint64_t(stride_bytes) | 256u;
  return uint32_t(bits & (~bits + 1));
}

// One (possibly strided-batched) cuBLASLt call on operands that are already expressible.
void lt_matmul(const GemmProblem& g, const Operand& oa, const Operand& ob, int64_t ldc, const char* a, const char* b,
               char* c, int64_t batch, int64_t sa, int64_t sb, int64_t sc) {
  const cudaDataType_t t = cuda_type(g.dtype);
  const bool f64 = g.dtype == DType::f64;
  cublasComputeType_t compute = f64 ? CUBLAS_COMPUTE_64F
                                : (g.dtype == DType::f32 && gemm_allow_tf32()) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                               : CUBLAS_COMPUTE_32F;
  const cudaDataType_t scale_t = f64 ? CUDA_R_64F : CUDA_R_32F;
  LtDesc desc(compute, scale_t);
  // cuBLAS "A" is our B (stored per ob), cuBLAS "B" is our A (stored per oa).
  cublasOperation_t op_a = ob.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasOperation_t op_b = oa.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
  CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
  if (g.epilogue != GemmEpilogue::none) {
    cublasLtEpilogue_t epi = g.epilogue == GemmEpilogue::bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_GELU_BIAS;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  }
  LtLayout la(t, ob.stored_rows, ob.stored_cols, ob.ld, batch, sb);
  LtLayout lb(t, oa.stored_rows, oa.stored_cols, oa.ld, batch, sa);
  LtLayout lc(t, g.N, g.M, ldc, batch, sc);

  DeviceBuffer workspace(kWorkspaceBytes);
  cublasLtMatmulPreference_t pref = nullptr;
  CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = kWorkspaceBytes;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  // The heuristic assumes 256-byte aligned buffers unless told otherwise: say what these are
  // (a narrowed view or an odd batch stride may be aligned to the element size only).
  const int64_t elem = scalar_size(g.dtype);
  const uint32_t align_b = alignment(b, sb * elem), align_a = alignment(a, sa * elem), align_c = alignment(c, sc * elem);
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_b, sizeof(align_b)));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_a, sizeof(align_a)));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof(align_c)));
  CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof(align_c)));
  // The heuristic costs tens of microseconds: remember its answer per problem description.
  using Key = std::tuple<int, int, int, int, int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                         int64_t, int64_t, int64_t, int>;
  static std::map<Key, cublasLtMatmulHeuristicResult_t> cache;
  static std::mutex cache_mu;
  Key key{int(g.dtype), int(compute), int(op_a), int(op_b), int(g.epilogue), g.M, g.N, g.K, ob.ld, oa.ld, ldc,
          batch, sa, sb, sc, int64_t(align_a) << 20 | int64_t(align_b) << 10 | int64_t(align_c), 0};
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(key);
    if (it != cache.end()) {
      heur = it->second;
      found = 1;
    }
  }
  if (!found) {
    st = cublasLtMatmulAlgoGetHeuristic(lt_handle(), desc.h, la.h, lb.h, lc.h, lc.h, pref, 1, &heur, &found);
    if (st == CUBLAS_STATUS_SUCCESS && found > 0) {
      std::lock_guard<std::mutex> lock(cache_mu);
      cache.emplace(key, heur);
    }
  }
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    throw CudaError("matmul: cuBLASLt has no algorithm for M=" + std::to_string(g.M) + " N=" + std::to_string(g.N) +
                    " K=" + std::to_string(g.K) + " (status " + std::to_string(int(st)) + ")");
  }
  float alpha32 = float(g.alpha), beta32 = float(g.beta);
  const void* alpha = f64 ? static_cast<const void*>(&g.alpha) : &alpha32;
  const void* beta = f64 ? static_cast<const void*>(&g.beta) : &beta32;
  CUBLAS_CHECK(cublasLtMatmul(lt_handle(), desc.h, alpha, b, la.h, a, lb.h, beta, c, lc.h, c, lc.h, &heur.algo,
                              workspace.ptr, kWorkspaceBytes, stream()));
}

}  // namespace

void set_gemm_allow_tf32(bool allow) { g_allow_tf32 = allow ? 1 : 0; }
bool gemm_allow_tf32() {
  if (g_allow_tf32 < 0) {
    const char* env = std::getenv("MINIVL_CUDA_TF32");
    g_allow_tf32 = env && env[0] == '1' ? 1 : 0;
  }
  return g_allow_tf32 == 1;
}

void gemm(const GemmProblem& in) {
  GemmProblem g = in;
  if (g.batch == 0 || g.M == 0 || g.N == 0) return;
  const int64_t elem = scalar_size(g.dtype);
  cuda_type(g.dtype);  // rejects other dtypes early
  if (g.K == 0) {      // C = beta * C: an empty sum, nothing for cuBLASLt to do
    for (int64_t i = 0; i < g.batch; ++i) {
      char* c = static_cast<char*>(g.c) + (g.c_offsets ? g.c_offsets[i] : 0) * elem;
      StridedView v = view3(c, g.dtype, 1, g.M, g.N, 0, g.c_row_stride, g.c_col_stride);
      if (g.beta == 0.0) fill(v, 0.0);
      else unary(UnaryOp::affine, UnaryParams{g.beta, 0.0}, v, v);
    }
    return;
  }

  // Operands cuBLAS cannot read as they are become contiguous copies.
  Operand oa = describe(g.M, g.K, g.a_row_stride, g.a_col_stride);
  Operand ob = describe(g.K, g.N, g.b_row_stride, g.b_col_stride);
  DeviceBuffer a_copy, b_copy, c_copy;
  std::vector<int64_t> dense_a, dense_b, dense_c;
  auto dense_offsets = [&](int64_t per) {
    std::vector<int64_t> o(size_t(g.batch));
    for (int64_t i = 0; i < g.batch; ++i) o[size_t(i)] = i * per;
    return o;
  };
  // Operand x (batch of R x C at strides rs, cs) repointed at a contiguous copy of itself.
  auto make_dense = [&](const void*& x, const int64_t*& offsets, int64_t R, int64_t C, int64_t& rs, int64_t& cs,
                        DeviceBuffer& copy, std::vector<int64_t>& dense) {
    copy = DeviceBuffer(size_t(g.batch * R * C * elem));
    gather(x, offsets, g.dtype, g.batch, R, C, rs, cs, copy.ptr, true);
    dense = dense_offsets(R * C);
    x = copy.ptr, rs = C, cs = 1, offsets = dense.data();
    return describe(R, C, C, 1);
  };
  if (!oa.ok) oa = make_dense(g.a, g.a_offsets, g.M, g.K, g.a_row_stride, g.a_col_stride, a_copy, dense_a);
  if (!ob.ok) ob = make_dense(g.b, g.b_offsets, g.K, g.N, g.b_row_stride, g.b_col_stride, b_copy, dense_b);
  // C must be op N: unit column stride and row stride >= N (or a single row).
  int64_t c_rs = g.M == 1 ? std::max<int64_t>(g.N, 1) : g.c_row_stride;
  const bool c_ok = (g.c_col_stride == 1 || g.N == 1) && c_rs >= g.N;
  void* const c_orig = g.c;
  const int64_t* const c_orig_off = g.c_offsets;
  if (!c_ok) {
    c_copy = DeviceBuffer(size_t(g.batch * g.M * g.N * elem));
    if (g.beta != 0.0)
      gather(g.c, g.c_offsets, g.dtype, g.batch, g.M, g.N, g.c_row_stride, g.c_col_stride, c_copy.ptr, true);
    dense_c = dense_offsets(g.M * g.N);
    g.c = c_copy.ptr, c_rs = g.N, g.c_offsets = dense_c.data();
  }

  const char* a = static_cast<const char*>(g.a);
  const char* b = static_cast<const char*>(g.b);
  char* c = static_cast<char*>(g.c);
  int64_t a0, sa, b0, sb, c0, sc;
  const bool strided = arithmetic(g.a_offsets, g.batch, a0, sa) && arithmetic(g.b_offsets, g.batch, b0, sb) &&
                       arithmetic(g.c_offsets, g.batch, c0, sc);
  if (strided && (g.batch == 1 || sc > 0)) {
    lt_matmul(g, oa, ob, c_rs, a + a0 * elem, b + b0 * elem, c + c0 * elem, g.batch, sa, sb, sc);
  } else {
    for (int64_t i = 0; i < g.batch; ++i) {
      const int64_t ao = g.a_offsets ? g.a_offsets[i] : 0, bo = g.b_offsets ? g.b_offsets[i] : 0,
                    co = g.c_offsets ? g.c_offsets[i] : 0;
      lt_matmul(g, oa, ob, c_rs, a + ao * elem, b + bo * elem, c + co * elem, 1, 0, 0, 0);
    }
  }
  if (!c_ok) gather(c_orig, c_orig_off, g.dtype, g.batch, g.M, g.N, in.c_row_stride, in.c_col_stride, c_copy.ptr, false);
}

}  // namespace minivl::cuda
