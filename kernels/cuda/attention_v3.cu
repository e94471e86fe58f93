// Fused attention on CUDA, version 3 forward: FlashAttention-2 on tensor cores (sm_80+).
//
// One block of 4 warps per (b, h, 64 query rows); each warp owns 16 rows. Key/value tiles of
// 64 keys stream through shared memory with cp.async, double-buffered (tile t + 1 loads while
// tile t is multiplied). Per tile and warp:
//   S (16 x 64) = Q K^T       mma.sync m16n8k16 (bf16/f16 in, f32 accumulate); Q and K
//                             fragments from shared memory with ldmatrix.x4
//   online softmax on the S fragments in registers (base 2: scores pre-multiplied by
//   scale log2 e, exp2f), row max / sum across the 4 lanes of a quad with shuffles
//   O (16 x D) += P V         P re-packed from the S accumulators straight into A fragments
//                             (the C layout of two n8 tiles is the A layout of one k16 step);
//                             V fragments with ldmatrix.x4.trans
// Masks: keys past Tk are zero-filled by cp.async (src-size 0) and scored -inf, causal and
// padding per element; the causal key range ends at the block's last visible key. A row that
// sees no key keeps m = -inf, uses 0 as its reference max, and ends with out = 0, lse = -inf.
// Shared memory: (64 + 2 * 64 + 2 * 64) = 320 rows of D + 8 halves (the 16-byte pad keeps ldmatrix
// free of bank conflicts): 25 600 B (25 KiB) at D = 32, 46 080 B (45 KiB) at 64, 87 040 B (85 KiB)
// at 128, the one size above the 48 KiB default (opted in at launch).
// Registers: S 32 + O D / 2 floats per thread. Bound: tensor-core issue at D >= 64 with T >= 512
// (FLOPs 4 Tq Tk D per (b, h)); memory at CLIP's short sequences. Head dims 32, 64, 128 are
// template instances; bf16 and f16. The backward that goes with it is attention_v3_backward.cu
// (the version switch, attention.cu, runs both for version 3 and where v4 declines a call).

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_mma_tiles.cuh"

namespace minivl::cuda {
namespace {

constexpr int kWarps3 = 4;
constexpr int kThreads3 = kWarps3 * 32;
constexpr int kBr = 64;  // query rows per block (16 per warp)
constexpr int kBc = 64;  // keys per tile

// Rows [r0, r0 + 64) of a (total, D) matrix into shared memory rows of D + 8 halves.
template <int D>
__device__ __forceinline__ void load_tile(uint16_t* dst, const uint16_t* src, int64_t r0, int64_t total) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr int kLd = D + 8;
#pragma unroll
  for (int c = threadIdx.x; c < kBr * kChunks; c += kThreads3) {
    const int r = c / kChunks, cc = c % kChunks;
    const bool valid = r0 + r < total;
    cp_async16(dst + r * kLd + cc * 8, valid ? src + (r0 + r) * D + cc * 8 : src, valid);
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads3) forward_v3_kernel(Geometry g, const uint16_t* q, const uint16_t* k,
                                                               const uint16_t* v, float scale_log2, T* out,
                                                               float* lse) {
  constexpr int kLd = D + 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(smem_raw);  // (64, D + 8)
  uint16_t* Ks = Qs + kBr * kLd;                          // 2 x (64, D + 8)
  uint16_t* Vs = Ks + 2 * kBc * kLd;                      // 2 x (64, D + 8)
  const int64_t tiles = (g.Tq + kBr - 1) / kBr;
  const int64_t bh = blockIdx.x / tiles, b = bh / g.H, i0 = (blockIdx.x % tiles) * kBr;
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31, quad_row = lane >> 2, quad_col = lane & 3;
  const uint16_t* qg = q + bh * g.Tq * D;
  const uint16_t* kg = k + bh * g.Tk * D;
  const uint16_t* vg = v + bh * g.Tk * D;
  const int64_t kend = g.key_end(i0 + kBr);
  const int ntiles = int((kend + kBc - 1) / kBc);

  load_tile<D>(Qs, qg, i0, g.Tq);
  if (ntiles > 0) {
    load_tile<D>(Ks, kg, 0, g.Tk);
    load_tile<D>(Vs, vg, 0, g.Tk);
  }
  cp_async_commit();

  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows quad_row and quad_row + 8
  const int64_t row[2] = {i0 + warp * 16 + quad_row, i0 + warp * 16 + quad_row + 8};
  const int mi = lane >> 3, mr = lane & 7;  // ldmatrix: which 8x8 matrix this lane addresses, and its row

  for (int t = 0; t < ntiles; ++t) {
    const int buf = t & 1;
    if (t + 1 < ntiles) {
      load_tile<D>(Ks + (buf ^ 1) * kBc * kLd, kg, int64_t(t + 1) * kBc, g.Tk);
      load_tile<D>(Vs + (buf ^ 1) * kBc * kLd, vg, int64_t(t + 1) * kBc, g.Tk);
    }
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const uint16_t* Kt = Ks + buf * kBc * kLd;
    const uint16_t* Vt = Vs + buf * kBc * kLd;

    // S = Q K^T: 16 rows x 64 keys per warp, 8 n8 tiles.
    float s[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t a[4];
      ldmatrix_x4(a, Qs + (warp * 16 + (mi & 1) * 8 + mr) * kLd + kk * 16 + (mi >> 1) * 8);
#pragma unroll
      for (int n = 0; n < 8; n += 2) {
        uint32_t bk[4];
        ldmatrix_x4(bk, Kt + (n * 8 + (mi >> 1) * 8 + mr) * kLd + kk * 16 + (mi & 1) * 8);
        mma16816<T>(s[n], a, bk[0], bk[1]);
        mma16816<T>(s[n + 1], a, bk[2], bk[3]);
      }
    }

    // Mask, scale to base 2, online softmax per row (4 lanes of a quad share a row).
    const int64_t j0 = int64_t(t) * kBc;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int64_t j = j0 + n * 8 + 2 * quad_col + e;
          const bool ok = j < g.Tk && g.visible(b, row[r], j);
          float& x = s[n][2 * r + e];
          x = ok ? x * scale_log2 : -INFINITY;
          mx = fmaxf(mx, x);
        }
      online_softmax_row<D>(s, r, mx, m[r], l[r], o);  // a row with nothing visible yet: P = 0
    }

    // O += P V: P from the S accumulators (k16 step kk = n8 tiles 2 kk, 2 kk + 1).
    acc_times_rows<T, D, 8>(s, Vt, kBc / 16, o);
    __syncthreads();  // this buffer is refilled by the prefetch two iterations on
  }
  cp_async_wait<0>();

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float lr = l[r];
    lr += __shfl_xor_sync(0xffffffffu, lr, 1);
    lr += __shfl_xor_sync(0xffffffffu, lr, 2);
    if (row[r] >= g.Tq) continue;
    const float inv = lr > 0.0f ? 1.0f / lr : 0.0f;
    T* dst = out + (bh * g.Tq + row[r]) * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      *reinterpret_cast<uint32_t*>(dst + n * 8 + 2 * quad_col) = pack2<T>(o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    }
    if (quad_col == 0)
      lse[bh * g.Tq + row[r]] = lr > 0.0f ? m[r] * 0.6931471805599453f + __logf(lr) : -INFINITY;
  }
}

template <typename T, int D>
void launch_forward(const Geometry& g, const StridedView& q, const StridedView& k, const StridedView& v,
                    double scale, const StridedView& out, const StridedView& lse) {
  const int64_t blocks = g.B * g.H * ((g.Tq + kBr - 1) / kBr);
  if (blocks == 0) return;
  constexpr size_t kSmem = size_t(kBr + 4 * kBc) * (D + 8) * sizeof(uint16_t);
  auto kernel = forward_v3_kernel<T, D>;
  allow_dynamic_smem(kernel, kSmem);
  kernel<<<unsigned(blocks), kThreads3, kSmem, stream()>>>(
      g, static_cast<const uint16_t*>(q.data), static_cast<const uint16_t*>(k.data),
      static_cast<const uint16_t*>(v.data), float(scale * 1.4426950408889634), out.ptr<T>(), lse.ptr<float>());
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void dispatch_head_dim(const Geometry& g, const StridedView& q, const StridedView& k, const StridedView& v,
                       double scale, const StridedView& out, const StridedView& lse) {
  switch (g.D) {
    case 32: return launch_forward<T, 32>(g, q, k, v, scale, out, lse);
    case 64: return launch_forward<T, 64>(g, q, k, v, scale, out, lse);
    default: return launch_forward<T, 128>(g, q, k, v, scale, out, lse);
  }
}

}  // namespace

bool attention_v3_supported(DType dtype, int64_t head_dim) {
  return (dtype == DType::bf16 || dtype == DType::f16) && (head_dim == 32 || head_dim == 64 || head_dim == 128);
}

bool attention_forward_v3(const StridedView& q, const StridedView& k, const StridedView& v,
                          const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                          const StridedView& lse) {
  if (!attention_v3_supported(q.dtype, q.sizes[3])) return false;
  if (!aligned16(q.data) || !aligned16(k.data) || !aligned16(v.data) || !aligned16(out.data)) return false;
  const Geometry g = geometry(q, k, key_padding_mask, causal);
  if (q.dtype == DType::bf16) {
    dispatch_head_dim<bf16>(g, q, k, v, scale, out, lse);
  } else {
    dispatch_head_dim<f16>(g, q, k, v, scale, out, lse);
  }
  return true;
}

}  // namespace minivl::cuda
