// Contrastive losses on CUDA (CLIP, SigLIP), never materialising the N x N logits.
//
// Both losses are symmetric under (image, text, lse_row, lse_col) -> (text, image, lse_col,
// lse_row): the column quantities of L are the row quantities of L^T. So each pass below is
// a "row pass" over one operand A against all of B, launched twice with the roles swapped:
//   forward   rows_forward(image, text) -> lse_row (+ diag);  rows_forward(text, image) -> lse_col
//             (SigLIP: one launch, per-row loss sums); then a one-block, fixed-order reduction.
//   backward  rows_backward(image, text) -> dimage (+ dlogit partials per block);
//             rows_backward(text, image) -> dtext; then the partials summed in block order.
// Every output element is owned by one block: deterministic, no float atomics.
//
//   v1  SIMT, all dtypes computed in f32 (f64 in f64). A block owns kRows rows of A and walks
//       B in kCols-column tiles; a tile of logits is built from kDepth-deep slices of A and B
//       in shared memory, each thread holding kRows * kCols / 256 logits. The forward keeps an
//       online (max, sum) per row; the backward forms G in shared memory and accumulates
//       dA (kRows x d, shared memory) += s G B_tile.
// FLOPs: forward 2 passes x 2 N^2 d, backward 2 passes x 4 N^2 d (recompute + G B): 6
// GEMM-equivalents where the CPU's diagonal sweep needs 4; v2 (contrastive_v2.cu) runs the
// logit tiles on tensor cores for bf16/f16, see docs/kernels/contrastive.md. The version switch
// that calls these is contrastive.cu.
#include <algorithm>
#include <string>

#include "kernels/cuda/contrastive_common.cuh"

namespace minivl::cuda {
namespace {

enum class Loss { clip, siglip };

constexpr int kThreadsC = 256;
constexpr int kRows = 32;   // rows of A per block
constexpr int kCols = 64;   // columns (rows of B) per tile
constexpr int kDepth = 32;  // d slice per shared-memory stage
constexpr int kPerThread = kRows * kCols / kThreadsC;  // 8 logits per thread: row t / 8, columns t % 8 + 8 k

template <typename T> using Acc = compute_t<T>;

template <typename T>
struct RowPass {
  const T* a;  // (n, d)
  const T* b;  // (n, d)
  int64_t n, d;
  const Acc<T>* log_scale;  // 0-d, device
  const Acc<T>* bias;       // 0-d (SigLIP) or nullptr
};

// The block's logits tile: acc[k] = s * <a[row0 + t / 8], b[col0 + t % 8 + 8 k]>.
template <typename T>
__device__ void logits_tile(const RowPass<T>& p, int64_t row0, int64_t col0, Acc<T> scale,
                            Acc<T> (*as)[kDepth + 1], Acc<T> (*bs)[kDepth + 1], Acc<T> (&acc)[kPerThread]) {
  using C = Acc<T>;
  const int t = threadIdx.x, r = t / 8, c = t % 8;
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) acc[k] = 0;
  for (int64_t k0 = 0; k0 < p.d; k0 += kDepth) {
    for (int e = t; e < kRows * kDepth; e += kThreadsC) {
      const int rr = e / kDepth, kk = e % kDepth;
      const int64_t gr = row0 + rr, gk = k0 + kk;
      as[rr][kk] = gr < p.n && gk < p.d ? C(load(p.a + gr * p.d + gk)) : C(0);
    }
    for (int e = t; e < kCols * kDepth; e += kThreadsC) {
      const int cc = e / kDepth, kk = e % kDepth;
      const int64_t gc = col0 + cc, gk = k0 + kk;
      bs[cc][kk] = gc < p.n && gk < p.d ? C(load(p.b + gc * p.d + gk)) : C(0);
    }
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < kDepth; ++kk) {
      const C av = as[r][kk];
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) acc[k] += av * bs[c + 8 * k][kk];
    }
    __syncthreads();
  }
#pragma unroll
  for (int k = 0; k < kPerThread; ++k) acc[k] *= scale;
}

// The 8 threads of a row are 8 consecutive lanes of one warp.
template <typename C>
__device__ __forceinline__ C group8_max(C v) {
  for (int o = 1; o < 8; o <<= 1) {
    C w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}
template <typename C>
__device__ __forceinline__ C group8_sum(C v) {
  for (int o = 1; o < 8; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// log(1 + e^x) without overflow. log(1 + t), not log1p(t): log1p's out-of-line path spills
// registers, and the absolute error (one ulp of 1) is what a sum of such terms sees anyway.
template <typename C>
__device__ __forceinline__ C softplus(C x) {
  if constexpr (sizeof(C) == 4) {
    return fmaxf(x, 0.0f) + __logf(1.0f + __expf(-fabsf(x)));  // abs. error ~1e-7 per term
  } else {
    return fmax(x, 0.0) + log(1.0 + exp(-fabs(x)));
  }
}

// 1 / (1 + e^x) through the reciprocal intrinsic: no division slow path (whose call spills).
template <typename C>
__device__ __forceinline__ C inv_one_plus_exp(C x) {
  if constexpr (sizeof(C) == 4) {
    return __frcp_rn(1.0f + __expf(x));
  } else {
    return __drcp_rn(1.0 + exp(x));
  }
}

// CLIP: out[i] = lse over j of L_ij, diag[i] = L_ii (when diag != nullptr).
// SigLIP: out[i] = sum_j softplus(-z_ij (L_ij + bias)).
template <typename T, Loss kLoss>
__global__ void __launch_bounds__(kThreadsC, 2) rows_forward_v1(RowPass<T> p, Acc<T>* out, Acc<T>* diag) {
  using C = Acc<T>;
  __shared__ C as[kRows][kDepth + 1];
  __shared__ C bs[kCols][kDepth + 1];
  const int t = threadIdx.x, r = t / 8, c = t % 8;
  const int64_t row0 = int64_t(blockIdx.x) * kRows, row = row0 + r;
  const C scale = exp(*p.log_scale);
  const C bias = kLoss == Loss::siglip ? *p.bias : C(0);
  C run_max = -INFINITY, run_sum = 0, diag_value = 0;
  for (int64_t col0 = 0; col0 < p.n; col0 += kCols) {
    C acc[kPerThread];
    logits_tile(p, row0, col0, scale, as, bs, acc);
    if constexpr (kLoss == Loss::clip) {
      C m = run_max;
#pragma unroll
      for (int k = 0; k < kPerThread; ++k)
        if (col0 + c + 8 * k < p.n && acc[k] > m) m = acc[k];
      m = group8_max(m);
      C s = 0;
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) {
        const int64_t col = col0 + c + 8 * k;
        if (col < p.n) s += exp_c(acc[k] - m);
        if (col == row) diag_value = acc[k];
      }
      run_sum = run_sum * exp_c(run_max - m) + group8_sum(s);
      run_max = m;
    } else {
      C s = 0;
#pragma unroll
      for (int k = 0; k < kPerThread; ++k) {
        const int64_t col = col0 + c + 8 * k;
        const C u = acc[k] + bias;
        const C term = softplus(col == row ? -u : u);  // softplus(-z u): one call, not two branches
        s += col < p.n ? term : C(0);
      }
      run_sum += group8_sum(s);
    }
  }
  if constexpr (kLoss == Loss::clip) diag_value = group8_sum(diag_value);  // one thread of 8 holds it
  if (c == 0 && row < p.n) {
    out[row] = kLoss == Loss::clip ? run_max + log(run_sum) : run_sum;
    if (diag) diag[row] = diag_value;
  }
}

// dA[rows] = s * sum over column tiles of G_tile B_tile, G as in the CPU kernel (symmetric in
// the roles of the operands). dscale_part/dbias_part[blockIdx.x]: this block's sum(G o L), sum(G).
template <typename T, Loss kLoss>
__global__ void __launch_bounds__(kThreadsC) rows_backward_v1(RowPass<T> p, const Acc<T>* lse_a,
                                                              const Acc<T>* lse_b, const Acc<T>* grad_loss,
                                                              T* da, Acc<T>* dscale_part, Acc<T>* dbias_part) {
  using C = Acc<T>;
  extern __shared__ unsigned char smem_raw[];
  C* da_s = reinterpret_cast<C*>(smem_raw);  // (kRows, d)
  __shared__ C as[kRows][kDepth + 1];
  __shared__ C bs[kCols][kDepth + 1];
  __shared__ C gs[kRows][kCols + 1];
  __shared__ C red[kThreadsC / 32][2];
  const int t = threadIdx.x, r = t / 8, c = t % 8;
  const int64_t row0 = int64_t(blockIdx.x) * kRows, row = row0 + r;
  const C scale = exp(*p.log_scale);
  const C bias = kLoss == Loss::siglip ? *p.bias : C(0);
  const C coef = kLoss == Loss::clip ? *grad_loss / C(2 * p.n) : *grad_loss / C(p.n);
  for (int64_t e = t; e < kRows * p.d; e += kThreadsC) da_s[e] = 0;
  C part_scale = 0, part_bias = 0;
  const C lse_i = kLoss == Loss::clip && row < p.n ? lse_a[row] : C(0);
  for (int64_t col0 = 0; col0 < p.n; col0 += kCols) {
    C acc[kPerThread];
    logits_tile(p, row0, col0, scale, as, bs, acc);
#pragma unroll
    for (int k = 0; k < kPerThread; ++k) {
      const int64_t col = col0 + c + 8 * k;
      C g = 0;
      if (row < p.n && col < p.n) {
        const C l = acc[k];
        if constexpr (kLoss == Loss::clip) {
          g = coef * (exp_c(l - lse_i) + exp_c(l - lse_b[col]) - (col == row ? C(2) : C(0)));
        } else {
          const C z = col == row ? C(1) : C(-1);  // g = -z coef sigmoid(-z u), one exp
          g = -z * coef * inv_one_plus_exp(z * (l + bias));
        }
        part_scale += g * l;
        part_bias += g;
      }
      gs[r][c + 8 * k] = g;
    }
    __syncthreads();
    // da_s[i][k] += s * sum_j G[i][j] b[col0 + j][k]
    const int64_t cols_here = min(int64_t(kCols), p.n - col0);
    for (int64_t e = t; e < kRows * p.d; e += kThreadsC) {
      const int i = int(e / p.d);
      const int64_t k = e % p.d;
      C s = 0;
      for (int j = 0; j < cols_here; ++j) s += gs[i][j] * C(load(p.b + (col0 + j) * p.d + k));
      da_s[e] += scale * s;
    }
    __syncthreads();
  }
  for (int64_t e = t; e < kRows * p.d; e += kThreadsC) {
    const int64_t gr = row0 + e / p.d;
    if (gr < p.n) store(da + gr * p.d + e % p.d, da_s[e]);
  }
  if (dscale_part) {  // block sums in a fixed tree
    const int lane = t & 31, warp = t >> 5;
    C a = warp_sum(part_scale), b = warp_sum(part_bias);
    if (lane == 0) {
      red[warp][0] = a;
      red[warp][1] = b;
    }
    __syncthreads();
    if (t == 0) {
      C sa = 0, sb = 0;
      for (int w = 0; w < kThreadsC / 32; ++w) {
        sa += red[w][0];
        sb += red[w][1];
      }
      dscale_part[blockIdx.x] = sa;
      if (dbias_part) dbias_part[blockIdx.x] = sb;
    }
  }
}

// One block, fixed order: out[0] = scale_out * sum_i (x[i] + y[i] - 2 z[i]) (y, z nullable).
template <typename C>
__global__ void fixed_order_sum(const C* x, const C* y, const C* z, int64_t n, C scale_out, C* out) {
  __shared__ C scratch[32];
  C s = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i] + (y ? y[i] : C(0)) - (z ? C(2) * z[i] : C(0));
  s = block_reduce<C, false>(s, scratch);
  if (threadIdx.x == 0) *out = s * scale_out;
}

template <typename T>
RowPass<T> row_pass(const StridedView& a, const StridedView& b, const StridedView& log_scale,
                    const StridedView* bias) {
  return RowPass<T>{a.ptr<const T>(), b.ptr<const T>(), a.sizes[0], a.sizes[1], log_scale.ptr<const Acc<T>>(),
                    bias ? bias->ptr<const Acc<T>>() : nullptr};
}

unsigned blocks_for(int64_t n) { return unsigned((n + kRows - 1) / kRows); }

template <typename T, Loss kLoss>
size_t backward_smem(int64_t d) {
  const size_t bytes = size_t(kRows) * size_t(d) * sizeof(Acc<T>);
  static int configured = 0;
  const int limit = device_props().max_smem_per_block_optin;
  if (int64_t(bytes) + 24 * 1024 > limit)
    throw CudaError("contrastive loss: feature dim " + std::to_string(d) + " is too large for the v1 kernel");
  if (bytes > 16 * 1024 && configured < int(bytes)) {
    CUDA_CHECK(cudaFuncSetAttribute(rows_backward_v1<T, kLoss>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    limit - 24 * 1024));
    configured = int(bytes);
  }
  return bytes;
}

template <typename T>
void clip_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                  const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col) {
  using C = Acc<T>;
  const int64_t n = image.sizes[0];
  DeviceBuffer diag(size_t(n) * sizeof(C));
  rows_forward_v1<T, Loss::clip><<<blocks_for(n), kThreadsC, 0, stream()>>>(
      row_pass<T>(image, text, logit_scale, nullptr), lse_row.ptr<C>(), diag.as<C>());
  CUDA_CHECK_LAUNCH();
  rows_forward_v1<T, Loss::clip><<<blocks_for(n), kThreadsC, 0, stream()>>>(
      row_pass<T>(text, image, logit_scale, nullptr), lse_col.ptr<C>(), nullptr);
  CUDA_CHECK_LAUNCH();
  fixed_order_sum<C><<<1, 1024, 0, stream()>>>(lse_row.ptr<C>(), lse_col.ptr<C>(), diag.as<C>(), n,
                                               C(1) / C(2 * n), loss.ptr<C>());
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void siglip_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                    const StridedView& logit_bias, const StridedView& loss) {
  using C = Acc<T>;
  const int64_t n = image.sizes[0];
  DeviceBuffer rows(size_t(n) * sizeof(C));
  rows_forward_v1<T, Loss::siglip><<<blocks_for(n), kThreadsC, 0, stream()>>>(
      row_pass<T>(image, text, logit_scale, &logit_bias), rows.as<C>(), nullptr);
  CUDA_CHECK_LAUNCH();
  fixed_order_sum<C><<<1, 1024, 0, stream()>>>(rows.as<C>(), nullptr, nullptr, n, C(1) / C(n), loss.ptr<C>());
  CUDA_CHECK_LAUNCH();
}

// Both backward passes; CLIP's reads the forward's lse (lse_row, lse_col), SigLIP's has a bias
// (logit_bias, dlogit_bias) and a second block partial per block for its gradient.
template <typename T, Loss kLoss>
void backward(const ContrastiveGrad& a) {
  using C = Acc<T>;
  const int64_t n = a.image.sizes[0], d = a.image.sizes[1];
  const size_t smem = backward_smem<T, kLoss>(d);
  const int64_t blocks = blocks_for(n);
  const C* la = a.lse_row ? a.lse_row->ptr<const C>() : nullptr;
  const C* lb = a.lse_col ? a.lse_col->ptr<const C>() : nullptr;
  constexpr bool kBias = kLoss == Loss::siglip;
  DeviceBuffer part(size_t((kBias ? 2 : 1) * blocks) * sizeof(C));
  rows_backward_v1<T, kLoss><<<unsigned(blocks), kThreadsC, smem, stream()>>>(
      row_pass<T>(a.image, a.text, a.logit_scale, a.logit_bias), la, lb, a.grad_loss.ptr<const C>(),
      a.dimage.ptr<T>(), part.as<C>(), kBias ? part.as<C>() + blocks : nullptr);
  CUDA_CHECK_LAUNCH();
  rows_backward_v1<T, kLoss><<<unsigned(blocks), kThreadsC, smem, stream()>>>(
      row_pass<T>(a.text, a.image, a.logit_scale, a.logit_bias), lb, la, a.grad_loss.ptr<const C>(), a.dtext.ptr<T>(),
      nullptr, nullptr);
  CUDA_CHECK_LAUNCH();
  fixed_order_sum<C><<<1, 1024, 0, stream()>>>(part.as<C>(), nullptr, nullptr, blocks, C(1), a.dlogit_scale.ptr<C>());
  if constexpr (kBias)
    fixed_order_sum<C><<<1, 1024, 0, stream()>>>(part.as<C>() + blocks, nullptr, nullptr, blocks, C(1),
                                                 a.dlogit_bias->ptr<C>());
  CUDA_CHECK_LAUNCH();
}


}  // namespace

template <typename T>
struct ContrastivePasses<1, T> {
  static constexpr auto clip_loss = &clip_forward<T>;
  static constexpr auto siglip_loss = &siglip_forward<T>;
  template <bool kClip>
  static constexpr auto loss_backward = &backward<T, kClip ? Loss::clip : Loss::siglip>;
};

const ContrastiveKernels& contrastive_v1_kernels() { return contrastive_entry_points<1>(); }

}  // namespace minivl::cuda
