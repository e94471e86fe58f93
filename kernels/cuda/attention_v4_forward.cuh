#pragma once
// Fused attention on CUDA, version 4 forward: tensor cores sized for vision-language sequences.
//
// Why not v3's (or FlashAttention's) tiles: at T = 50-577 attention is memory-bound. Per (b, h) the
// forward moves (2 Tq + 2 Tk) D bf16 values (q, o, k, v) for 4 Tq Tk D FLOPs: T / 2 FLOP per byte at
// Tq = Tk (25 at ViT-B/32, 99 at ViT-B/16, 289 at 577) against an H100 ridge near 300, so the time
// is the bytes, and every row or key of padding is work that competes with loading them. A 64 x 64
// tile computes 64 x 64 scores for a 50 x 50 head (61% useful); a 192 x 192 tile (FA3 at D = 64)
// 7%. Here rows go in 16-row strips and keys in 16-key steps, so a head computes
// round16(Tq) x round16(Tk) scores: 64 x 64 at T = 50, 80 x 80 at 77 (93% useful, v3 36%),
// 208 x 208 at 197 (90%, v3 59%), 272 x 272 at 257 (89%, v3 65%), 592 x 592 at 577 (95%, v3 81%),
// 32 x 208 for 20 queries over 197 keys (59%, v3 24%).
//
// Schedule (attention_v4_plan.h, plan_forward): a block owns one (b, h) and a tile of up to 8
// strips (warps), the tiles of a head balanced: 4 warps at T = 50, 5 at 77, 2 tiles of 7 at 197,
// 3 of 6 at 257, 5 of 8 at 577, 2 warps for 20 queries. Keys come in 64-key chunks by cp.async,
// each chunk one commit group issued up front: when the head's K/V fits (every shape up to 257 at
// D = 64) all chunks stay resident, so the loads of a whole head are in flight at once and no slot
// is reused; otherwise (577) a ring of slots (5 at D = 64 on sm_90) refilled one chunk behind the
// compute. The shared memory is sized so two blocks fit per SM (one block's loads under the
// other's math): 27 KiB at T = 50, 34 at 77, 75 at 197, 90 at 257, 108 at 577 (D = 64). Per warp
// and chunk:
//   S (16 x 64) = Q K^T           mma.sync m16n8k16, f32 accumulate; Q's A fragments in registers
//                                 for the whole head, K's by ldmatrix.x4; only the 16-key steps
//                                 below the warp's last visible key (causal) or Tk are computed
//   online softmax in base 2      scores x scale log2 e, exp2f, quad shuffles for the row max and
//                                 sum; at T <= 64 one chunk, so one pass with no rescaling
//   O (16 x D) += P V             P re-packed from the S accumulators into A fragments, V by
//                                 ldmatrix.x4.trans; steps past the last visible key skipped
// Masks: a per-chunk byte per key (exists and not padded) in shared memory, the causal rule per
// element; tiles that need neither take an unmasked path. A row that sees no key keeps m = -inf,
// uses 0 as its reference, and ends with out = 0, lse = -inf. O is staged through the warp's own
// Q rows and written with 16-byte stores. Bound: the bytes above (K/V re-read from L2 once per
// query tile: 2x at 197, 3x at 257, 5x at 577), then the ldmatrix traffic at 577.
//
// Device code only, in an anonymous namespace: the CUDA build (attention_v4.cu) and the CPU
// emulation test (tests/test_attention_v4_emulated.cpp, which swaps the PTX primitives for a SIMT
// emulation through MINIVL_V4_MMA_HEADER) each instantiate these templates in their own
// translation unit.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/attention_v4_common.cuh"

namespace minivl::cuda::v4 {
namespace {  // internal linkage: see above

struct ForwardArgs {
  const uint16_t* q;    // (B, H, Tq, D)
  const uint16_t* k;    // (B, H, Tk, D)
  const uint16_t* v;    // (B, H, Tk, D)
  const uint8_t* pad;   // (B, Tk), nonzero = ignore; or nullptr
  uint16_t* out;        // (B, H, Tq, D)
  float* lse;           // (B, H, Tq)
  int64_t H, Tq, Tk;
  bool causal;
  float scale_log2;
  ForwardPlan plan;
};

// One chunk for one warp: S = Q K^T over `steps` 16-key steps, the mask, the online softmax update
// of (m, l, o) for the warp's rows r0 + quad_row and r0 + quad_row + 8, and O += P V.
template <typename T, int D>
__device__ __forceinline__ void attend_chunk(const uint32_t (&qf)[D / 16][4], const uint16_t* Kt, const uint16_t* Vt,
                                             const uint8_t* Mt, int steps, bool masked, bool causal, int shift,
                                             int r0, int j0, float scale_log2, float (&o)[D / 8][4],
                                             float (&m)[2], float (&l)[2]) {
  const int lane = threadIdx.x & 31, quad_row = lane >> 2, quad_col = lane & 3;
  float s[8][4];
  frag_times_rows_t<T, D, 8>(qf, Kt, steps, s);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = r0 + quad_row + 8 * r;  // 32-bit within a head: fewer registers than 64-bit indices
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        float& x = s[n][2 * r + e];
        if (masked) {
          const int jj = n * 8 + 2 * quad_col + e;
          const bool ok = n / 2 < steps && Mt[jj] != 0 && (!causal || j0 + jj <= i + shift);
          x = ok ? x * scale_log2 : -INFINITY;
        } else {
          x *= scale_log2;
        }
        mx = fmaxf(mx, x);
      }
    online_softmax_row<D>(s, r, mx, m[r], l[r], o);
  }
  acc_times_rows<T, D, 8>(s, Vt, steps, o);
}

template <typename T, int D>
__global__ void __launch_bounds__(kMaxWarpsForward * 32) forward_v4_kernel(const ForwardArgs a) {
  constexpr int kLd = D + kPadHalves;
  const ForwardPlan& p = a.plan;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  uint16_t* Qs = reinterpret_cast<uint16_t*>(smem_raw);            // (warps * 16, kLd): Q, later O
  uint16_t* Ks = Qs + int64_t(p.warps) * kStripRows * kLd;          // (kv_rows, kLd)
  uint16_t* Vs = Ks + p.kv_rows * kLd;                              // (kv_rows, kLd)
  uint8_t* Ms = reinterpret_cast<uint8_t*>(Vs + p.kv_rows * kLd);   // (stages, 64): 1 = key visible
  const Frontier f{a.Tq, a.Tk, a.causal};
  const ForwardBlock fb = forward_block(p, blockIdx.x);
  const int64_t b = fb.bh / a.H;
  const int tid = threadIdx.x, nthreads = p.warps * 32, warp = tid / 32, lane = tid & 31;
  const int quad_row = lane >> 2, quad_col = lane & 3;
  const uint16_t* qg = a.q + fb.bh * a.Tq * D;
  const uint16_t* kg = a.k + fb.bh * a.Tk * D;
  const uint16_t* vg = a.v + fb.bh * a.Tk * D;
  const int64_t block_row0 = fb.first_strip * kStripRows;
  const int nchunks = int(chunks_for_rows(f, min64(a.Tq, block_row0 + int64_t(p.warps) * kStripRows)));
  const int64_t strip = fb.first_strip + warp;
  const bool active = strip < p.strips;
  const int r0 = int(strip * kStripRows);
  const int key_limit = active ? int(f.key_end(min64(a.Tq, r0 + kStripRows))) : 0;
  const int my_chunks = int(ceil_div(key_limit, kKeyChunk));
  const int shift = int(f.shift());

  auto load_chunk = [&](int64_t c) {  // chunk c (keys [64 c, 64 c + 64)) into its slot
    const int slot = ring_slot(c, p.stages);
    const int64_t rows = chunk_rows(c, a.Tk);
    load_rows<D>(Ks + int64_t(slot) * kKeyChunk * kLd, kg, c * kKeyChunk, rows, a.Tk, tid, nthreads);
    load_rows<D>(Vs + int64_t(slot) * kKeyChunk * kLd, vg, c * kKeyChunk, rows, a.Tk, tid, nthreads);
    for (int t = tid; t < kKeyChunk; t += nthreads) {  // a block of one warp has 32 threads
      const int64_t j = c * kKeyChunk + t;
      Ms[slot * kKeyChunk + t] = j < a.Tk && (a.pad == nullptr || a.pad[b * a.Tk + j] == 0);
    }
  };
  // Prologue: group s holds chunk s (group 0 also Q); groups past the block's chunks are empty.
  const int prologue = p.stages > 0 ? p.stages : 1;
  for (int s = 0; s < prologue; ++s) {
    if (s == 0) load_rows<D>(Qs, qg, block_row0, int64_t(p.warps) * kStripRows, a.Tq, tid, nthreads);
    if (s < nchunks) load_chunk(s);
    cp_async_commit();
  }

  uint32_t qf[D / 16][4];
  float o[D / 8][4];
#pragma unroll
  for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  for (int c = 0; c < nchunks; ++c) {
    cp_async_wait_pending(ring_pending(c, p.stages));
    __syncthreads();  // chunk c (and at c = 0, Q) visible to every warp; chunk c - 1 consumed by all
    if (c >= 1) {
      const int64_t refill = ring_refill(c, p.stages, nchunks);
      if (refill >= 0) load_chunk(refill);
      cp_async_commit();  // one group per iteration, empty or not: the ring's group count
    }
    if (c < my_chunks) {
      if (c == 0) load_a_fragments<D>(qf, Qs + warp * kStripRows * kLd);
      const int slot = ring_slot(c, p.stages);
      const int steps = steps_in_chunk(c, key_limit);
      const bool masked = chunk_needs_mask(f, a.pad != nullptr, r0, c, steps);
      attend_chunk<T, D>(qf, Ks + int64_t(slot) * kKeyChunk * kLd, Vs + int64_t(slot) * kKeyChunk * kLd,
                         Ms + slot * kKeyChunk, steps, masked, a.causal, shift, r0, c * kKeyChunk, a.scale_log2, o,
                         m, l);
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // every copy into the Q rows has landed before they stage O
  if (!active) return;

  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float lr = l[r];
    lr += __shfl_xor_sync(0xffffffffu, lr, 1);
    lr += __shfl_xor_sync(0xffffffffu, lr, 2);
    inv[r] = lr > 0.0f ? 1.0f / lr : 0.0f;
    const int i = r0 + quad_row + 8 * r;
    if (quad_col == 0 && i < a.Tq)
      a.lse[fb.bh * a.Tq + i] = lr > 0.0f ? m[r] * 0.6931471805599453f + __logf(lr) : -INFINITY;
  }
  store_strip<T, D>(o, inv, Qs + warp * kStripRows * kLd, a.out + (fb.bh * a.Tq + r0) * D,
                    min64(kStripRows, a.Tq - r0));
}

}  // namespace
}  // namespace minivl::cuda::v4
