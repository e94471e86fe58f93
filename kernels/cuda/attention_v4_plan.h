#pragma once
// The arithmetic of attention v4 (kernels/cuda/attention_v4.cu): which (b, h) pair and query rows
// a block and a warp own, which 64-key chunks and 16-key steps a warp visits (the causal frontier,
// the ragged key edge), the cp.async ring schedule, and the shared-memory layout per (D, Tq, Tk),
// so the host can decide whether a shape fits before it launches. Plain C++ callable from host and
// device; no CUDA headers, so tests/test_attention_v4_plan.cpp checks every function on the CPU.
//
// Conventions (the KernelTable's, core/dispatch.h): q (B, H, Tq, D), k, v (B, H, Tk, D); causal:
// query i sees key j iff j <= i + (Tk - Tq). Rows are handled in 16-row strips (one m16 tile per
// warp), keys in 16-key steps (one k16 tile of P V), so padding work is under 16 rows and 16 keys
// per head instead of a 64- or 192-row tile's.
#include <cstdint>

#include "kernels/scalar_types.h"  // MINIVL_HOST_DEVICE

namespace minivl::cuda::v4 {

inline constexpr int kStripRows = 16;        // query rows per warp strip (one mma m16 tile)
inline constexpr int kKeyStep = 16;          // keys per k16 step of P V (and per backward key strip)
inline constexpr int kKeyChunk = 64;         // keys per forward pipeline chunk (4 steps)
inline constexpr int kMaxWarpsForward = 8;   // 256 threads: two blocks per SM at <= 128 registers
inline constexpr int kMaxWarpsBackward = 8;  // 256 threads at <= 255 registers
inline constexpr int kBwdQueryChunk = 32;    // queries per backward phase-1 step (4 n8 tiles)
inline constexpr int kPadHalves = 8;         // 16-byte row pad: ldmatrix rows land on distinct banks

// Per-block shared-memory limits (cudaDevAttrMaxSharedMemoryPerBlockOptin) and per-SM capacity.
inline constexpr int64_t kSmemPerBlockSm80 = 163 * 1024;
inline constexpr int64_t kSmemPerSmSm80 = 164 * 1024;
inline constexpr int64_t kSmemPerBlockSm90 = 227 * 1024;
inline constexpr int64_t kSmemPerSmSm90 = 228 * 1024;
inline constexpr int64_t kSmemReservedPerBlock = 1024;  // the runtime's per-block reservation (sm_80+)

MINIVL_HOST_DEVICE constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
MINIVL_HOST_DEVICE constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
MINIVL_HOST_DEVICE constexpr int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
MINIVL_HOST_DEVICE constexpr int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// The dtypes and head dims v4's kernels are instantiated for (bf16/f16; D in {32, 64, 128}).
constexpr bool takes_dtype_and_head_dim(DType dtype, int64_t D) {
  return (dtype == DType::bf16 || dtype == DType::f16) && (D == 32 || D == 64 || D == 128);
}

// Shared-memory row stride in halves of a (rows, D) operand: D + 8, so the stride in 4-byte words is
// 4 mod 8 and the 8 rows one ldmatrix reads (16 bytes each) cover all 32 banks once.
MINIVL_HOST_DEVICE constexpr int64_t operand_ld(int64_t D) { return D + kPadHalves; }

// The causal frontier (and its absence), shared by the forward and the backward.
struct Frontier {
  int64_t Tq, Tk;
  bool causal;
  MINIVL_HOST_DEVICE constexpr int64_t shift() const { return Tk - Tq; }
  // Keys [0, key_end(i1)) are seen (causally) by some row below i1; 0 <= key_end <= Tk.
  MINIVL_HOST_DEVICE constexpr int64_t key_end(int64_t i1) const {
    return causal ? max64(int64_t(0), min64(Tk, i1 + shift())) : Tk;
  }
  // Rows [query_begin(j0), Tq) see (causally) some key at or after j0.
  MINIVL_HOST_DEVICE constexpr int64_t query_begin(int64_t j0) const {
    return causal ? max64(int64_t(0), min64(Tq, j0 - shift())) : 0;
  }
  MINIVL_HOST_DEVICE constexpr bool sees(int64_t i, int64_t j) const { return !causal || j <= i + shift(); }
};

// ---- forward ----
// Grid: B H q_tiles blocks; block = `warps` warps, warp w owns strip tile * warps + w (idle past
// `strips`). Keys stream in 64-key chunks through a ring of `stages` slots; stages == chunks means
// the head's whole K/V stays resident (no slot is reused). Shared memory, in order:
//   Q / O staging: warps * 16 rows x ld halves (a warp reads and later overwrites only its own rows)
//   K, V:          kv_rows x ld halves each (resident: round_up(Tk, 16); ring: stages * 64)
//   key mask:      stages * 64 bytes (1 = key exists and is not padded)
struct ForwardPlan {
  int64_t strips = 0;   // 16-row strips per head: ceil(Tq / 16)
  int64_t q_tiles = 0;  // blocks per (b, h)
  int warps = 0;        // warps per block
  int64_t chunks = 0;   // 64-key chunks per head: ceil(Tk / 64)
  int stages = 0;       // ring slots (== chunks: resident)
  int64_t kv_rows = 0;  // rows of K (and of V) in shared memory
  int64_t smem_bytes = 0;
  bool fits = false;
  MINIVL_HOST_DEVICE constexpr bool resident() const { return stages == chunks; }
};

MINIVL_HOST_DEVICE constexpr int64_t forward_smem_bytes(int64_t D, int warps, int64_t kv_rows, int stages) {
  return (int64_t(warps) * kStripRows + 2 * kv_rows) * operand_ld(D) * 2 + int64_t(stages) * kKeyChunk;
}

// smem_per_block: the opt-in per-block limit; smem_per_sm: the SM's capacity. The plan prefers a
// layout that leaves room for two blocks per SM (so one block's loads overlap another's math),
// first with the whole K/V resident, then as a ring of >= 2 slots; else the most the block limit allows.
MINIVL_HOST_DEVICE constexpr ForwardPlan plan_forward(int64_t Tq, int64_t Tk, int64_t D, int64_t smem_per_block,
                                                       int64_t smem_per_sm) {
  ForwardPlan p;
  p.strips = ceil_div(Tq, kStripRows);
  p.q_tiles = p.strips == 0 ? 0 : ceil_div(p.strips, kMaxWarpsForward);
  p.warps = p.strips == 0 ? 1 : int(ceil_div(p.strips, p.q_tiles));
  p.chunks = ceil_div(Tk, kKeyChunk);
  const int64_t two_per_sm = smem_per_sm / 2 - kSmemReservedPerBlock;
  const int64_t targets[2] = {min64(smem_per_block, two_per_sm), smem_per_block};
  const int64_t resident_rows = round_up(Tk, kKeyStep);
  for (int t = 0; t < 2 && !p.fits; ++t) {
    const int64_t budget = targets[t];
    if (forward_smem_bytes(D, p.warps, resident_rows, int(p.chunks)) <= budget) {
      p.stages = int(p.chunks);
      p.kv_rows = resident_rows;
      p.fits = true;
      break;
    }
    const int64_t fixed = forward_smem_bytes(D, p.warps, 0, 0);
    const int64_t per_stage = forward_smem_bytes(D, 0, kKeyChunk, 1);
    const int64_t stages = budget > fixed ? min64((budget - fixed) / per_stage, p.chunks - 1) : 0;
    if (stages >= 2) {
      p.stages = int(stages);
      p.kv_rows = stages * kKeyChunk;
      p.fits = true;
    }
  }
  p.smem_bytes = p.fits ? forward_smem_bytes(D, p.warps, p.kv_rows, p.stages) : 0;
  return p;
}

// The block's (b, h) pair and the first strip it owns.
struct ForwardBlock {
  int64_t bh, first_strip;
};
MINIVL_HOST_DEVICE constexpr ForwardBlock forward_block(const ForwardPlan& p, int64_t block) {
  return {block / p.q_tiles, (block % p.q_tiles) * p.warps};
}

// Chunks a warp (or block) must visit for its rows below row_end (exclusive, <= Tq).
MINIVL_HOST_DEVICE constexpr int64_t chunks_for_rows(const Frontier& f, int64_t row_end) {
  return ceil_div(f.key_end(row_end), kKeyChunk);
}
// 16-key steps of chunk c that hold a key below key_limit (0..4).
MINIVL_HOST_DEVICE constexpr int steps_in_chunk(int64_t c, int64_t key_limit) {
  const int64_t left = key_limit - c * kKeyChunk;
  return left <= 0 ? 0 : int(min64(ceil_div(left, kKeyStep), kKeyChunk / kKeyStep));
}
// Rows of chunk c that are loaded into its slot (zero-filled at and past Tk): up to round_up(Tk, 16).
MINIVL_HOST_DEVICE constexpr int64_t chunk_rows(int64_t c, int64_t Tk) {
  return max64(int64_t(0), min64(int64_t(kKeyChunk), round_up(Tk, kKeyStep) - c * kKeyChunk));
}
// True when some score of the strip at rows [r0, r0 + 16) and chunk c needs its mask: a padding
// mask, a step skipped or past Tk, or a causal cut. False: every (i, j) of the 16 x 64 tile is seen.
MINIVL_HOST_DEVICE constexpr bool chunk_needs_mask(const Frontier& f, bool has_pad, int64_t r0, int64_t c,
                                                   int steps) {
  const int64_t j_last = c * kKeyChunk + kKeyChunk - 1;
  return has_pad || steps < kKeyChunk / kKeyStep || j_last >= f.Tk || (f.causal && j_last > r0 + f.shift());
}

// The cp.async ring. The prologue commits `stages` groups (chunk s, or empty past the block's
// chunks); iteration c >= 1 commits one more, the refill of chunk c - 1 + stages into the slot
// chunk c - 1 used (every warp is past the barrier that ends chunk c - 1), so group g holds chunk g.
// At iteration c, waiting until at most ring_pending(c, stages) groups are in flight completes chunk c.
MINIVL_HOST_DEVICE constexpr int ring_slot(int64_t c, int stages) { return int(c % stages); }
MINIVL_HOST_DEVICE constexpr int ring_pending(int64_t c, int stages) { return c == 0 ? stages - 1 : stages - 2; }
// The chunk iteration c refills (after its barrier), or -1.
MINIVL_HOST_DEVICE constexpr int64_t ring_refill(int64_t c, int stages, int64_t chunks) {
  return c >= 1 && c - 1 + stages < chunks ? c - 1 + stages : -1;
}

// ---- backward ----
// One block per (b, h) holding Q, dO, K, V, lse, Delta and the whole dS^T in shared memory:
//   phase 1, warp w takes key strips w, w + warps, ...: S^T, dP^T, P^T, dS^T per 32-query step,
//            dV, dK in registers, dS^T stored (bf16/f16) for phase 2
//   phase 2, warp w takes query strips w, w + warps, ...: dQ = dS K from the stored dS^T.
// Shared memory, in order: Q, dO (q_rows x ld each), K, V (k_rows x ld each), dS^T (k_rows x
// (q_rows + 8) halves), lse log2 e and Delta (q_rows floats each), the key mask (k_rows bytes).
struct BackwardPlan {
  int64_t q_rows = 0;        // round_up(Tq, 32)
  int64_t k_rows = 0;        // round_up(Tk, 16)
  int64_t key_strips = 0;    // k_rows / 16
  int64_t query_strips = 0;  // ceil(Tq / 16)
  int warps = 0;
  int64_t ds_ld = 0;         // dS^T row stride in halves
  int64_t off_dout = 0, off_k = 0, off_v = 0, off_ds = 0, off_lse = 0, off_delta = 0, off_mask = 0;  // bytes
  int64_t smem_bytes = 0;
  bool fits = false;
};

MINIVL_HOST_DEVICE constexpr BackwardPlan plan_backward(int64_t Tq, int64_t Tk, int64_t D, int64_t smem_per_block) {
  BackwardPlan p;
  p.q_rows = round_up(Tq, kBwdQueryChunk);
  p.k_rows = round_up(Tk, kKeyStep);
  p.key_strips = p.k_rows / kKeyStep;
  p.query_strips = ceil_div(Tq, kStripRows);
  const int64_t work = max64(max64(p.key_strips, p.query_strips), 1);
  p.warps = int(ceil_div(work, ceil_div(work, kMaxWarpsBackward)));
  p.ds_ld = p.q_rows + kPadHalves;
  const int64_t ld = operand_ld(D);
  p.off_dout = p.q_rows * ld * 2;
  p.off_k = p.off_dout + p.q_rows * ld * 2;
  p.off_v = p.off_k + p.k_rows * ld * 2;
  p.off_ds = p.off_v + p.k_rows * ld * 2;
  p.off_lse = p.off_ds + p.k_rows * p.ds_ld * 2;
  p.off_delta = p.off_lse + p.q_rows * 4;
  p.off_mask = p.off_delta + p.q_rows * 4;
  p.smem_bytes = p.off_mask + round_up(p.k_rows, 16);
  p.fits = Tq > 0 && Tk > 0 && p.smem_bytes <= smem_per_block;
  return p;
}

// Phase 1: the first 32-query step of key strip ks (earlier queries see none of its keys).
MINIVL_HOST_DEVICE constexpr int64_t bwd_first_query_chunk(const Frontier& f, int64_t ks) {
  return f.query_begin(ks * kKeyStep) / kBwdQueryChunk;
}
// Phase 1: 16-query steps of the 32-query step at i0 that hold a row below Tq (0..2).
MINIVL_HOST_DEVICE constexpr int bwd_query_steps(int64_t i0, int64_t Tq) {
  const int64_t left = Tq - i0;
  return left <= 0 ? 0 : int(min64(ceil_div(left, kStripRows), kBwdQueryChunk / kStripRows));
}
// Phase 2: the 16-key steps of dS K for query strip qs (keys its rows can see).
MINIVL_HOST_DEVICE constexpr int64_t bwd_key_steps(const Frontier& f, int64_t qs) {
  return ceil_div(f.key_end(min64((qs + 1) * kStripRows, f.Tq)), kKeyStep);
}

}  // namespace minivl::cuda::v4
