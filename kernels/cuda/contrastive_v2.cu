// Contrastive losses (CLIP, SigLIP) on tensor cores, v2: bf16/f16 features, sm_80+.
//
// Same algorithm and pass structure as v1 (kernels/cuda/contrastive_v1.cu): every pass is a "row
// pass" of an operand A against all of B, launched twice with the roles swapped for the column
// quantities; every output element has one owning block; scalars are block partials summed in a
// fixed order. Deterministic, no atomics, O(N d) memory.
//
// Tiling: one block of 4 warps owns kBm = 64 rows of A (16 per warp) and walks B in kBn = 64-row
// tiles. A logits tile S (64 x 64, f32) is built from kBk = 64-wide feature slices of A and B that
// stream through shared memory with cp.async, double-buffered (slice t + 1 loads while slice t is
// multiplied); rows of kBk + 8 halves keep ldmatrix conflict-free. Per slice and warp:
//   S (16 x 64) += A_slice B_slice^T   mma.sync m16n8k16 (bf16/f16 in, f32 accumulate), A and B
//                                      fragments from shared memory with ldmatrix.x4
// forward   S -> L = s S in f32; online (max, sum) per row in registers (the 4 lanes of a quad
//           share a row), the diagonal; SigLIP sums softplus(-z u) per row instead.
// backward  S recomputed, G (16 x 64 per warp, f32) formed in registers as in v1 but carried as
//           G / coef (in [-2, 2]; coef ~ 1/N is applied in f32 at the end), rounded to bf16/f16
//           straight into A fragments (the C layout of two n8 tiles is the A layout of
//           one k16 step); then B's feature slices stream through again and
//           dA_slice (16 x 64) = G B_tile[:, slice] (B fragments with ldmatrix.x4.trans) is added
//           in f32 into a (N, d) f32 scratch row owned by this block (the first column tile
//           writes, the last converts s * sum to T into dA). Fixed order: deterministic.
// Masks: rows / features past (n, d) are zero-filled by cp.async (src-size 0); columns past n
// are -inf (forward) or G = 0 (backward).
// Preconditions (contrastive_v2_supported): bf16/f16, contiguous (N, d) with d % 8 == 0,
// 16-byte aligned, a device with compute capability >= 8.0. Otherwise the version switch
// (contrastive.cu) runs v1.
// Shared memory: 2 stages x (64 + 64) rows x 72 halves = 36 KiB, static. Registers: S 32 floats,
// G fragments 16, dA slice 32 per thread.
// Bounds (per pass, per 64 x 64 tile, d features): forward 2*64*64*d FLOPs over 2*64*d*2 bytes of
// L2 reads (A slice reloaded per tile) = 32 FLOP/byte; backward 4*64*64*d FLOPs over 3*64*d*2
// bytes of slices + 64*d*8 bytes of f32 accumulator traffic = 18 FLOP/byte. With an L2 of
// roughly 5 TB/s (A100; estimate) the backward is L2-bound near 90 TFLOP/s and the forward sits
// between L2 and the tensor cores (312 TFLOP/s dense bf16). Measured times (H100):
// docs/kernels/contrastive.md.

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/cuda/contrastive_common.cuh"
#include "kernels/cuda/mma_sm80.cuh"

namespace minivl::cuda {
namespace {

enum class Loss { clip, siglip };

constexpr int kWarps = 4;
constexpr int kThreads2 = kWarps * 32;
constexpr int kBm = 64;              // rows of A per block, 16 per warp
constexpr int kBn = 64;              // rows of B (columns of L) per tile
constexpr int kBk = 64;              // features per pipeline stage
constexpr int kLd = kBk + 8;         // shared row stride in halves (144 bytes: ldmatrix conflict-free)
constexpr int kSlice = kBm * kLd;    // halves per operand slice (kBm == kBn)
static_assert(kBm == kBn, "one slice loader for both operands");

struct MmaPass {
  const uint16_t* a;  // (n, d) bf16/f16 bits
  const uint16_t* b;  // (n, d)
  int64_t n;
  int d;
  const float* log_scale;  // 0-d, device
  const float* bias;       // 0-d (SigLIP) or nullptr
};

// log(1 + e^x) and 1 / (1 + e^x) as in v1 (intrinsics: no slow paths, no spills).
__device__ __forceinline__ float softplus(float x) { return fmaxf(x, 0.0f) + __logf(1.0f + __expf(-fabsf(x))); }
__device__ __forceinline__ float inv_one_plus_exp(float x) { return __frcp_rn(1.0f + __expf(x)); }

__device__ __forceinline__ float quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

// ---- tiles ----

// Features [k0, k0 + kBk) of rows [r0, r0 + 64) of a (n, d) matrix into a (64, kLd) slice.
__device__ __forceinline__ void load_slice(uint16_t* dst, const uint16_t* src, int64_t r0, int64_t n, int d,
                                           int k0) {
  constexpr int kChunks = kBk / 8;  // 16-byte chunks per row
#pragma unroll
  for (int i = 0; i < kBm * kChunks / kThreads2; ++i) {
    const int c = int(threadIdx.x) + i * kThreads2;
    const int r = c / kChunks, cc = c % kChunks;
    const int64_t row = r0 + r;
    const int col = k0 + cc * 8;
    const bool valid = row < n && col < d;
    cp_async16(dst + r * kLd + cc * 8, valid ? src + row * d + col : src, valid);
  }
}

// s (16 x 64, this warp's rows) += A_slice B_slice^T over one kBk-wide slice.
template <typename T>
__device__ __forceinline__ void mma_logits_slice(float (&s)[8][4], const uint16_t* as, const uint16_t* bs,
                                                 int warp, int lane) {
  const int mi = lane >> 3, mr = lane & 7;  // ldmatrix: which 8x8 matrix this lane addresses, and its row
#pragma unroll
  for (int kk = 0; kk < kBk / 16; ++kk) {
    uint32_t a[4];
    ldmatrix_x4(a, as + (warp * 16 + (mi & 1) * 8 + mr) * kLd + kk * 16 + (mi >> 1) * 8);
#pragma unroll
    for (int nt = 0; nt < 8; nt += 2) {
      uint32_t bk[4];
      ldmatrix_x4(bk, bs + (nt * 8 + (mi >> 1) * 8 + mr) * kLd + kk * 16 + (mi & 1) * 8);
      mma16816<T>(s[nt], a, bk[0], bk[1]);
      mma16816<T>(s[nt + 1], a, bk[2], bk[3]);
    }
  }
}

// One pipeline step: slice `step` is (or, for the last, was) in flight; prefetch the next one
// with `issue`, then wait for this one and make it visible to the block.
template <typename Issue>
__device__ __forceinline__ void pipeline_advance(int64_t step, int64_t steps, Issue&& issue) {
  if (step + 1 < steps) issue(step + 1);
  cp_async_commit();
  cp_async_wait<1>();
  __syncthreads();
}

// s = this warp's 16 x 64 logits of A's rows against one column tile of B, summed over the nk
// feature slices; the pipeline advances one step per slice (`step` counts the pass's steps).
template <typename T, typename Issue>
__device__ __forceinline__ void logits_tile(float (&s)[8][4], int64_t& step, int nk, int64_t steps, Issue&& issue,
                                            const uint16_t (*as)[kSlice], const uint16_t (*bs)[kSlice], int warp,
                                            int lane) {
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
  for (int kc = 0; kc < nk; ++kc, ++step) {
    pipeline_advance(step, steps, issue);
    mma_logits_slice<T>(s, as[step & 1], bs[step & 1], warp, lane);
    __syncthreads();  // this stage is refilled by the prefetch two steps on
  }
}

// CLIP: out[i] = lse over j of L_ij, diag[i] = L_ii (diag nullable).
// SigLIP: out[i] = sum_j softplus(-z_ij (L_ij + bias)).
template <typename T, Loss kLoss>
__global__ void __launch_bounds__(kThreads2) rows_forward_v2(MmaPass p, float* out, float* diag) {
  __shared__ __align__(16) uint16_t as[2][kSlice];  // (64, kLd) x 2 stages
  __shared__ __align__(16) uint16_t bs[2][kSlice];
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31, qr = lane >> 2, qc = lane & 3;
  const int64_t row0 = int64_t(blockIdx.x) * kBm;
  const int64_t rows[2] = {row0 + warp * 16 + qr, row0 + warp * 16 + qr + 8};
  const float scale = expf(*p.log_scale);
  const float bias = kLoss == Loss::siglip ? *p.bias : 0.0f;
  const int nk = (p.d + kBk - 1) / kBk;
  const int64_t ntiles = (p.n + kBn - 1) / kBn, steps = ntiles * nk;
  auto issue = [&](int64_t step) {  // step = (column tile, feature slice)
    const int buf = int(step & 1), k0 = int(step % nk) * kBk;
    load_slice(as[buf], p.a, row0, p.n, p.d, k0);
    load_slice(bs[buf], p.b, (step / nk) * kBn, p.n, p.d, k0);
  };
  issue(0);
  cp_async_commit();

  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, dg[2] = {0.0f, 0.0f};  // rows qr, qr + 8
  for (int64_t ct = 0, step = 0; ct < ntiles; ++ct) {  // step: the pipeline's, over the whole pass
    float s[8][4];
    logits_tile<T>(s, step, nk, steps, issue, as, bs, warp, lane);
    const int64_t col0 = ct * kBn;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if constexpr (kLoss == Loss::clip) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t col = col0 + nt * 8 + 2 * qc + e;
            float& x = s[nt][2 * r + e];
            x *= scale;
            if (col == rows[r]) dg[r] = x;
            x = col < p.n ? x : -INFINITY;
            mx = fmaxf(mx, x);
          }
        const float mnew = fmaxf(m[r], quad_max(mx));  // finite: column col0 < n is in every tile
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) sum += __expf(s[nt][2 * r] - mnew) + __expf(s[nt][2 * r + 1] - mnew);
        l[r] = l[r] * __expf(m[r] - mnew) + sum;  // per-lane partial; the quad shares m
        m[r] = mnew;
      } else {
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t col = col0 + nt * 8 + 2 * qc + e;
            const float u = s[nt][2 * r + e] * scale + bias;
            const float term = softplus(col == rows[r] ? -u : u);
            sum += col < p.n ? term : 0.0f;
          }
        l[r] += sum;
      }
    }
  }
  cp_async_wait<0>();
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const float lr = quad_sum(l[r]), dr = quad_sum(dg[r]);  // one lane of the quad holds the diagonal
    if (qc == 0 && rows[r] < p.n) {
      out[rows[r]] = kLoss == Loss::clip ? m[r] + logf(lr) : lr;
      if (diag) diag[rows[r]] = dr;
    }
  }
}

// dA[rows] = s * sum over column tiles of G_tile B_tile, G as in v1 (symmetric in the roles of
// the operands). acc: (n, d) f32 scratch (nullptr when there is one column tile).
// dscale_part/dbias_part[blockIdx.x]: this block's sum(G o L), sum(G) (nullable). G is carried
// as G / coef (coef = g / 2N for CLIP, g / N for SigLIP) and coef applied in f32 at the end.
template <typename T, Loss kLoss>
__global__ void __launch_bounds__(kThreads2) rows_backward_v2(MmaPass p, const float* lse_a, const float* lse_b,
                                                              const float* grad_loss, float* acc, T* da,
                                                              float* dscale_part, float* dbias_part) {
  __shared__ __align__(16) uint16_t as[2][kSlice];
  __shared__ __align__(16) uint16_t bs[2][kSlice];
  __shared__ float red[kWarps][2];
  const int warp = int(threadIdx.x) >> 5, lane = int(threadIdx.x) & 31, qr = lane >> 2, qc = lane & 3;
  const int mi = lane >> 3, mr = lane & 7;
  const int64_t row0 = int64_t(blockIdx.x) * kBm;
  const int64_t rows[2] = {row0 + warp * 16 + qr, row0 + warp * 16 + qr + 8};
  const float scale = expf(*p.log_scale);
  const float bias = kLoss == Loss::siglip ? *p.bias : 0.0f;
  const float coef = kLoss == Loss::clip ? *grad_loss / float(2 * p.n) : *grad_loss / float(p.n);
  const float out_scale = scale * coef;  // dA = s coef sum_j (G / coef)_ij B_j
  float lse_i[2] = {0.0f, 0.0f};
  if constexpr (kLoss == Loss::clip) {
#pragma unroll
    for (int r = 0; r < 2; ++r) lse_i[r] = rows[r] < p.n ? lse_a[rows[r]] : 0.0f;
  }
  const int nk = (p.d + kBk - 1) / kBk;
  const int64_t ntiles = (p.n + kBn - 1) / kBn, steps = ntiles * 2 * nk;
  // Per column tile: nk logits steps (A and B slices), then nk dA steps (B slices again).
  auto issue = [&](int64_t step) {
    const int buf = int(step & 1), ph = int(step % (2 * nk));
    const int k0 = (ph < nk ? ph : ph - nk) * kBk;
    if (ph < nk) load_slice(as[buf], p.a, row0, p.n, p.d, k0);
    load_slice(bs[buf], p.b, (step / (2 * nk)) * kBn, p.n, p.d, k0);
  };
  issue(0);
  cp_async_commit();

  float part_scale = 0.0f, part_bias = 0.0f;
  for (int64_t ct = 0, step = 0; ct < ntiles; ++ct) {  // step: the pipeline's, over the whole pass
    float s[8][4];
    logits_tile<T>(s, step, nk, steps, issue, as, bs, warp, lane);

    // G / coef in place of S (entries in [-2, 2]: coef ~ 1 / N would push f16 G into its
    // subnormals), then rounded into A fragments: k16 step kk = n8 tiles 2 kk, 2 kk + 1.
    const int64_t col0 = ct * kBn;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
      for (int r = 0; r < 2; ++r)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t col = col0 + nt * 8 + 2 * qc + e;
          float& x = s[nt][2 * r + e];
          float g = 0.0f;
          if (rows[r] < p.n && col < p.n) {
            const float lv = x * scale;
            if constexpr (kLoss == Loss::clip) {
              g = __expf(lv - lse_i[r]) + __expf(lv - __ldg(lse_b + col)) - (col == rows[r] ? 2.0f : 0.0f);
            } else {
              const float z = col == rows[r] ? 1.0f : -1.0f;  // g = -z sigmoid(-z u)
              g = -z * inv_one_plus_exp(z * (lv + bias));
            }
            part_scale += g * lv;
            part_bias += g;
          }
          x = g;
        }
    uint32_t gf[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      gf[kk][0] = pack2<T>(s[2 * kk][0], s[2 * kk][1]);
      gf[kk][1] = pack2<T>(s[2 * kk][2], s[2 * kk][3]);
      gf[kk][2] = pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      gf[kk][3] = pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }

    const bool first = ct == 0, last = ct + 1 == ntiles;
    for (int kc = 0; kc < nk; ++kc, ++step) {
      pipeline_advance(step, steps, issue);
      const uint16_t* bt = bs[step & 1];  // (64 columns j, kBk features)
      float c[8][4];
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kBn / 16; ++kk)
#pragma unroll
        for (int nt = 0; nt < 8; nt += 2) {
          uint32_t bv[4];
          ldmatrix_x4_trans(bv, bt + (kk * 16 + (mi & 1) * 8 + mr) * kLd + nt * 8 + (mi >> 1) * 8);
          mma16816<T>(c[nt], gf[kk], bv[0], bv[1]);
          mma16816<T>(c[nt + 1], gf[kk], bv[2], bv[3]);
        }
      __syncthreads();  // the stage is free; what follows touches only registers and global memory
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          const int col = kc * kBk + nt * 8 + 2 * qc;  // even; d % 8 == 0, so col + 1 < d too
          if (rows[r] >= p.n || col >= p.d) continue;
          const int64_t idx = rows[r] * p.d + col;
          float2 v = make_float2(c[nt][2 * r], c[nt][2 * r + 1]);
          if (!first) {
            const float2 o = *reinterpret_cast<const float2*>(acc + idx);
            v.x += o.x;
            v.y += o.y;
          }
          if (last) {
            *reinterpret_cast<uint32_t*>(da + idx) = pack2<T>(out_scale * v.x, out_scale * v.y);
          } else {
            *reinterpret_cast<float2*>(acc + idx) = v;
          }
        }
    }
  }
  cp_async_wait<0>();

  if (dscale_part) {  // block sums in a fixed tree
    const float a = warp_sum(part_scale), b = warp_sum(part_bias);
    if (lane == 0) {
      red[warp][0] = a;
      red[warp][1] = b;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      float sa = 0.0f, sb = 0.0f;
      for (int w = 0; w < kWarps; ++w) {
        sa += red[w][0];
        sb += red[w][1];
      }
      dscale_part[blockIdx.x] = coef * sa;
      if (dbias_part) dbias_part[blockIdx.x] = coef * sb;
    }
  }
}

// One block, fixed order: out[0] = scale_out * sum_i (x[i] + y[i] - 2 z[i]) (y, z nullable).
__global__ void fixed_order_sum_v2(const float* x, const float* y, const float* z, int64_t n, float scale_out,
                                   float* out) {
  __shared__ float scratch[32];
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i] + (y ? y[i] : 0.0f) - (z ? 2.0f * z[i] : 0.0f);
  s = block_reduce<float, false>(s, scratch);
  if (threadIdx.x == 0) *out = s * scale_out;
}

// ---- host ----

MmaPass mma_pass(const StridedView& a, const StridedView& b, const StridedView& log_scale, const StridedView* bias) {
  return MmaPass{a.ptr<const uint16_t>(), b.ptr<const uint16_t>(), a.sizes[0], int(a.sizes[1]),
                 log_scale.ptr<const float>(), bias ? bias->ptr<const float>() : nullptr};
}

unsigned blocks_for(int64_t n) { return unsigned((n + kBm - 1) / kBm); }

// The f32 dA accumulator, shared by the two backward passes (stream-ordered); none for one tile.
DeviceBuffer accumulator(int64_t n, int64_t d) {
  return DeviceBuffer(n > kBn ? size_t(n) * size_t(d) * sizeof(float) : 0);
}

template <typename T>
void clip_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                  const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col) {
  const int64_t n = image.sizes[0];
  DeviceBuffer diag(size_t(n) * sizeof(float));
  rows_forward_v2<T, Loss::clip><<<blocks_for(n), kThreads2, 0, stream()>>>(
      mma_pass(image, text, logit_scale, nullptr), lse_row.ptr<float>(), diag.as<float>());
  CUDA_CHECK_LAUNCH();
  rows_forward_v2<T, Loss::clip><<<blocks_for(n), kThreads2, 0, stream()>>>(
      mma_pass(text, image, logit_scale, nullptr), lse_col.ptr<float>(), nullptr);
  CUDA_CHECK_LAUNCH();
  fixed_order_sum_v2<<<1, 1024, 0, stream()>>>(lse_row.ptr<float>(), lse_col.ptr<float>(), diag.as<float>(), n,
                                               1.0f / float(2 * n), loss.ptr<float>());
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void siglip_forward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                    const StridedView& logit_bias, const StridedView& loss) {
  const int64_t n = image.sizes[0];
  DeviceBuffer rows(size_t(n) * sizeof(float));
  rows_forward_v2<T, Loss::siglip><<<blocks_for(n), kThreads2, 0, stream()>>>(
      mma_pass(image, text, logit_scale, &logit_bias), rows.as<float>(), nullptr);
  CUDA_CHECK_LAUNCH();
  fixed_order_sum_v2<<<1, 1024, 0, stream()>>>(rows.as<float>(), nullptr, nullptr, n, 1.0f / float(n),
                                               loss.ptr<float>());
  CUDA_CHECK_LAUNCH();
}

// Both backward passes; CLIP's reads the forward's lse (lse_row, lse_col), SigLIP's has a bias
// (logit_bias, dlogit_bias) and a second block partial per block for its gradient.
template <typename T, Loss kLoss>
void backward(const ContrastiveGrad& a) {
  const int64_t n = a.image.sizes[0], d = a.image.sizes[1];
  const int64_t blocks = blocks_for(n);
  const float* la = a.lse_row ? a.lse_row->ptr<const float>() : nullptr;
  const float* lb = a.lse_col ? a.lse_col->ptr<const float>() : nullptr;
  constexpr bool kBias = kLoss == Loss::siglip;
  DeviceBuffer acc = accumulator(n, d);
  DeviceBuffer part(size_t((kBias ? 2 : 1) * blocks) * sizeof(float));
  rows_backward_v2<T, kLoss><<<unsigned(blocks), kThreads2, 0, stream()>>>(
      mma_pass(a.image, a.text, a.logit_scale, a.logit_bias), la, lb, a.grad_loss.ptr<const float>(), acc.as<float>(),
      a.dimage.ptr<T>(), part.as<float>(), kBias ? part.as<float>() + blocks : nullptr);
  CUDA_CHECK_LAUNCH();
  rows_backward_v2<T, kLoss><<<unsigned(blocks), kThreads2, 0, stream()>>>(
      mma_pass(a.text, a.image, a.logit_scale, a.logit_bias), lb, la, a.grad_loss.ptr<const float>(), acc.as<float>(),
      a.dtext.ptr<T>(), nullptr, nullptr);
  CUDA_CHECK_LAUNCH();
  fixed_order_sum_v2<<<1, 1024, 0, stream()>>>(part.as<float>(), nullptr, nullptr, blocks, 1.0f,
                                               a.dlogit_scale.ptr<float>());
  if constexpr (kBias)
    fixed_order_sum_v2<<<1, 1024, 0, stream()>>>(part.as<float>() + blocks, nullptr, nullptr, blocks, 1.0f,
                                                 a.dlogit_bias->ptr<float>());
  CUDA_CHECK_LAUNCH();
}


}  // namespace

template <typename T>
struct ContrastivePasses<2, T> {
  static constexpr auto clip_loss = &clip_forward<T>;
  static constexpr auto siglip_loss = &siglip_forward<T>;
  template <bool kClip>
  static constexpr auto loss_backward = &backward<T, kClip ? Loss::clip : Loss::siglip>;
};

const ContrastiveKernels& contrastive_v2_kernels() { return contrastive_entry_points<2>(); }

bool contrastive_v2_takes(DType dtype, int64_t d) {
  return (dtype == DType::bf16 || dtype == DType::f16) && d >= 8 && d % 8 == 0 && d <= (int64_t(1) << 30);
}

bool contrastive_v2_supported(const StridedView& image, const StridedView& text) {
  if (text.dtype != image.dtype || image.ndim != 2 || !contrastive_v2_takes(image.dtype, image.sizes[1])) return false;
  const int64_t n = image.sizes[0], d = image.sizes[1];
  if (n < 1 || !contrastive_rows_ok(image, n, d) || !contrastive_rows_ok(text, n, d)) return false;
  return device_props().cc_major >= 8;
}

}  // namespace minivl::cuda
