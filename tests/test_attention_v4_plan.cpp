// Attention v4's tile, ring and mask arithmetic (kernels/cuda/attention_v4_plan.h), checked on the
// CPU against brute force at the vision-language shapes (T = 50, 77, 197, 257, 577; Tq = 20 with
// Tk = 197) and at the awkward edges (Tq > Tk under causal, one row, long sequences): every row owned
// once, every visible score computed, no step without a visible key, no key read past Tk, the ring
// never overwrites a slot still in use, and shared memory within the sm_80 and sm_90 limits.
#include <doctest/doctest.h>

#include <set>
#include <utility>
#include <vector>

#include "kernels/cuda/attention_v4_plan.h"

namespace minivl::cuda::v4 {
namespace {

struct Seq {
  int64_t Tq, Tk;
};
// The vision-language shapes, then the edges.
const std::vector<Seq> kShapes = {{50, 50},  {77, 77},  {197, 197}, {257, 257}, {577, 577}, {20, 197},
                                  {77, 50},  {1, 1},    {16, 16},   {17, 33},   {33, 17},   {1024, 1024},
                                  {4096, 4096}, {1, 300}, {300, 1}};
const int64_t kHeadDims[] = {32, 64, 128};

struct Arch {
  const char* name;
  int64_t per_block, per_sm;
};
const Arch kArchs[] = {{"sm_80", kSmemPerBlockSm80, kSmemPerSmSm80}, {"sm_90", kSmemPerBlockSm90, kSmemPerSmSm90}};

// Calls check(a, D, s, plan) for every architecture, head dim and shape, with those captured for
// the failure report and the plan required to fit.
template <typename Check>
void for_every_forward_plan(Check&& check) {
  for (const Arch& a : kArchs)
    for (int64_t D : kHeadDims)
      for (const Seq& s : kShapes) {
        CAPTURE(a.name);
        CAPTURE(D);
        CAPTURE(s.Tq);
        CAPTURE(s.Tk);
        const ForwardPlan p = plan_forward(s.Tq, s.Tk, D, a.per_block, a.per_sm);
        REQUIRE(p.fits);
        check(a, D, s, p);
      }
}

TEST_SUITE("attention_v4_plan") {
  TEST_CASE("the causal frontier matches the rule j <= i + Tk - Tq by brute force") {
    for (const Seq& s : kShapes) {
      if (s.Tq > 600 || s.Tk > 600) continue;
      for (bool causal : {false, true}) {
        const Frontier f{s.Tq, s.Tk, causal};
        CAPTURE(s.Tq);
        CAPTURE(s.Tk);
        CAPTURE(causal);
        for (int64_t i1 = 1; i1 <= s.Tq; ++i1) {  // the kernels ask for i1 >= 1
          int64_t want = 0;  // one past the largest key some row below i1 sees
          for (int64_t i = 0; i < i1; ++i)
            for (int64_t j = 0; j < s.Tk; ++j)
              if (!causal || j <= i + s.Tk - s.Tq) want = std::max(want, j + 1);
          CHECK(f.key_end(i1) == want);
        }
        for (int64_t j0 = 0; j0 <= s.Tk; ++j0) {
          int64_t want = s.Tq;  // the first row that sees some key >= j0
          for (int64_t i = s.Tq - 1; i >= 0; --i)
            for (int64_t j = j0; j < s.Tk; ++j)
              if (!causal || j <= i + s.Tk - s.Tq) want = i;
          if (!causal) want = 0;
          CHECK(f.query_begin(j0) == want);
        }
      }
    }
  }

  TEST_CASE("forward: every query row is owned by exactly one warp strip of one block") {
    for_every_forward_plan([](const Arch& a, int64_t D, const Seq& s, const ForwardPlan& p) {
      CHECK(p.warps >= 1);
      CHECK(p.warps <= kMaxWarpsForward);
      const int64_t bh_count = 3;  // three (b, h) pairs: blocks of different pairs must not mix
      std::vector<int> owner_count(size_t(bh_count * s.Tq), 0);
      for (int64_t block = 0; block < bh_count * p.q_tiles; ++block) {
        const ForwardBlock fb = forward_block(p, block);
        REQUIRE(fb.bh < bh_count);
        int active = 0;
        for (int w = 0; w < p.warps; ++w) {
          const int64_t strip = fb.first_strip + w;
          if (strip >= p.strips) continue;
          ++active;
          for (int64_t i = strip * kStripRows; i < std::min(s.Tq, (strip + 1) * kStripRows); ++i)
            ++owner_count[size_t(fb.bh * s.Tq + i)];
        }
        CHECK(active >= 1);  // no block of idle warps
      }
      for (int c : owner_count) CHECK(c == 1);
      // Balanced tiles: the idle warps of the last tile are fewer than one tile's worth.
      CHECK(p.q_tiles * p.warps - p.strips < p.q_tiles);
    });
  }

  TEST_CASE("forward: a warp visits every step with a visible key, only those, and reads no key past Tk") {
    for (const Arch& a : kArchs)
      for (int64_t D : {int64_t(64), int64_t(128)})
        for (const Seq& s : kShapes)
          for (bool causal : {false, true}) {
            if (s.Tq > 600 || s.Tk > 600) continue;
            CAPTURE(a.name);
            CAPTURE(D);
            CAPTURE(s.Tq);
            CAPTURE(s.Tk);
            CAPTURE(causal);
            const Frontier f{s.Tq, s.Tk, causal};
            const ForwardPlan p = plan_forward(s.Tq, s.Tk, D, a.per_block, a.per_sm);
            REQUIRE(p.fits);
            for (int64_t tile = 0; tile < p.q_tiles; ++tile) {
              const ForwardBlock fb = forward_block(p, tile);
              const int64_t block_rows_end = std::min(s.Tq, (fb.first_strip + p.warps) * kStripRows);
              const int64_t block_chunks = chunks_for_rows(f, block_rows_end);
              CHECK(block_chunks <= p.chunks);
              for (int w = 0; w < p.warps; ++w) {
                const int64_t strip = fb.first_strip + w;
                if (strip >= p.strips) continue;
                const int64_t r0 = strip * kStripRows, r1 = std::min(s.Tq, r0 + kStripRows);
                const int64_t key_limit = f.key_end(r1);
                const int64_t chunks = chunks_for_rows(f, r1);
                CHECK(chunks <= block_chunks);  // the block loads every chunk its warps use
                std::set<int64_t> computed;     // keys inside a computed step
                for (int64_t c = 0; c < chunks; ++c) {
                  const int steps = steps_in_chunk(c, key_limit);
                  CHECK(steps >= 1);
                  // The computed steps lie in the rows the slot was given (zero-filled past Tk).
                  CHECK(int64_t(steps) * kKeyStep <= chunk_rows(c, s.Tk));
                  if (p.resident()) CHECK(c * kKeyChunk + chunk_rows(c, s.Tk) <= p.kv_rows);
                  for (int st = 0; st < steps; ++st) {
                    bool any_visible = false;
                    for (int64_t j = c * kKeyChunk + st * kKeyStep; j < c * kKeyChunk + (st + 1) * kKeyStep; ++j) {
                      computed.insert(j);
                      for (int64_t i = r0; i < r1; ++i) any_visible |= j < s.Tk && f.sees(i, j);
                    }
                    CHECK(any_visible);  // no step computed for nothing
                  }
                  // Loaded rows: a key index past round_up(Tk, 16) is never addressed.
                  CHECK(c * kKeyChunk + chunk_rows(c, s.Tk) <= round_up(s.Tk, kKeyStep));
                }
                int64_t missed = 0;  // visible scores outside every computed step
                for (int64_t i = r0; i < r1; ++i)
                  for (int64_t j = 0; j < s.Tk; ++j) missed += f.sees(i, j) && computed.count(j) == 0;
                CHECK(missed == 0);
              }
            }
          }
  }

  TEST_CASE("forward: the unmasked fast path is taken only where every score of the tile is visible") {
    for (const Seq& s : kShapes)
      for (bool causal : {false, true})
        for (bool pad : {false, true}) {
          if (s.Tq > 600 || s.Tk > 600) continue;
          const Frontier f{s.Tq, s.Tk, causal};
          int fast = 0;
          for (int64_t r0 = 0; r0 < s.Tq; r0 += kStripRows) {
            const int64_t r1 = std::min(s.Tq, r0 + kStripRows);
            const int64_t key_limit = f.key_end(r1);
            for (int64_t c = 0; c < chunks_for_rows(f, r1); ++c) {
              const int steps = steps_in_chunk(c, key_limit);
              if (chunk_needs_mask(f, pad, r0, c, steps)) continue;
              ++fast;
              CHECK(!pad);
              CHECK(steps == kKeyChunk / kKeyStep);
              int64_t hidden = 0;  // scores of the tile that should have been masked
              for (int64_t i = r0; i < r0 + kStripRows; ++i)  // padding rows too: they are computed
                for (int64_t j = c * kKeyChunk; j < (c + 1) * kKeyChunk; ++j) hidden += j >= s.Tk || !f.sees(i, j);
              CHECK(hidden == 0);
            }
          }
          // The fast path exists where it should: an unmasked 197 x 197 has three full chunks per strip.
          if (s.Tq == 197 && s.Tk == 197 && !causal && !pad) CHECK(fast == 13 * 3);
          if (pad) CHECK(fast == 0);
        }
  }

  TEST_CASE("forward: the cp.async ring completes each chunk before use and never overwrites a live slot") {
    // Every plan of the shapes, and small rings forced on long keys.
    struct Ring {
      int stages;
      int64_t chunks;
    };
    std::vector<Ring> rings;
    for (const Arch& a : kArchs)
      for (int64_t D : kHeadDims)
        for (const Seq& s : kShapes) {
          const ForwardPlan p = plan_forward(s.Tq, s.Tk, D, a.per_block, a.per_sm);
          rings.push_back({p.stages, p.chunks});
          for (int64_t used = 0; used < p.chunks; ++used) rings.push_back({p.stages, used});  // causal blocks
        }
    for (int stages = 2; stages <= 6; ++stages)
      for (int64_t chunks = 0; chunks <= 12; ++chunks) rings.push_back({stages, chunks});
    for (const Ring& r : rings) {
      CAPTURE(r.stages);
      CAPTURE(r.chunks);
      if (r.chunks == 0) continue;
      REQUIRE(r.stages >= 1);
      // A ring that refills must have two slots (a refill never targets the slot being read).
      if (r.stages < r.chunks) REQUIRE(r.stages >= 2);
      std::vector<int64_t> group_chunk;                // group g -> the chunk it loads (-1: empty)
      std::vector<int64_t> slot(size_t(r.stages), -1);  // slot -> chunk it holds (loads land at commit)
      std::vector<int64_t> slot_last_read(size_t(r.stages), -1);
      for (int s = 0; s < r.stages; ++s) {
        group_chunk.push_back(s < r.chunks ? s : -1);
        if (s < r.chunks) slot[size_t(ring_slot(s, r.stages))] = s;
      }
      for (int64_t c = 0; c < r.chunks; ++c) {
        const int64_t committed = int64_t(group_chunk.size());
        const int pending = ring_pending(c, r.stages);
        REQUIRE(pending >= 0);
        const int64_t complete = committed - pending;  // groups [0, complete) are done after the wait
        bool found = false;
        for (int64_t g = 0; g < complete; ++g) found |= group_chunk[size_t(g)] == c;
        CHECK(found);
        CHECK(slot[size_t(ring_slot(c, r.stages))] == c);
        if (c >= 1) {  // after the barrier: the refill, one group (maybe empty)
          const int64_t refill = ring_refill(c, r.stages, r.chunks);
          group_chunk.push_back(refill);
          if (refill >= 0) {
            const int target = ring_slot(refill, r.stages);
            CHECK(target == ring_slot(c - 1, r.stages));
            CHECK(target != ring_slot(c, r.stages));
            CHECK(slot_last_read[size_t(target)] <= c - 1);  // its chunk was consumed before this barrier
            CHECK(slot[size_t(target)] == c - 1);
            slot[size_t(target)] = refill;
          }
        }
        slot_last_read[size_t(ring_slot(c, r.stages))] = c;
      }
      // Every chunk was loaded exactly once, in group order.
      std::vector<int64_t> loaded;
      for (int64_t g : group_chunk)
        if (g >= 0) loaded.push_back(g);
      REQUIRE(int64_t(loaded.size()) == r.chunks);
      for (int64_t c = 0; c < r.chunks; ++c) CHECK(loaded[size_t(c)] == c);
    }
  }

  TEST_CASE("forward: shared memory per block at the vision-language shapes, by hand") {
    // (warps * 16 + 2 * kv_rows) rows of D + 8 halves, plus one mask byte per slot key.
    const ForwardPlan b32 = plan_forward(50, 50, 64, kSmemPerBlockSm90, kSmemPerSmSm90);
    CHECK(b32.warps == 4);
    CHECK(b32.resident());
    CHECK(b32.smem_bytes == (4 * 16 + 2 * 64) * 72 * 2 + 64);  // 27 712
    const ForwardPlan b16 = plan_forward(197, 197, 64, kSmemPerBlockSm90, kSmemPerSmSm90);
    CHECK(b16.q_tiles == 2);
    CHECK(b16.warps == 7);
    CHECK(b16.resident());
    CHECK(b16.smem_bytes == (7 * 16 + 2 * 208) * 144 + 4 * 64);  // 76 288
    const ForwardPlan l14 = plan_forward(257, 257, 64, kSmemPerBlockSm90, kSmemPerSmSm90);
    CHECK(l14.q_tiles == 3);
    CHECK(l14.warps == 6);
    CHECK(l14.resident());
    CHECK(l14.smem_bytes == (6 * 16 + 2 * 272) * 144 + 5 * 64);  // 92 480
    // 577 keys resident would need 185 KiB, one block per SM: a 5-slot ring keeps two per SM on sm_90.
    const ForwardPlan l336 = plan_forward(577, 577, 64, kSmemPerBlockSm90, kSmemPerSmSm90);
    CHECK(l336.q_tiles == 5);
    CHECK(l336.warps == 8);
    CHECK(!l336.resident());
    CHECK(l336.stages == 5);
    CHECK(l336.smem_bytes == (8 * 16 + 2 * 5 * 64) * 144 + 5 * 64);  // 110 912
    const ForwardPlan cross = plan_forward(20, 197, 64, kSmemPerBlockSm90, kSmemPerSmSm90);
    CHECK(cross.warps == 2);
    CHECK(cross.q_tiles == 1);
    CHECK(cross.smem_bytes == (2 * 16 + 2 * 208) * 144 + 4 * 64);
    for_every_forward_plan([](const Arch& a, int64_t D, const Seq& s, const ForwardPlan& p) {
      CHECK(p.smem_bytes <= a.per_block);
      CHECK(p.smem_bytes == forward_smem_bytes(D, p.warps, p.kv_rows, p.stages));
      // Resident K/V covers the ragged edge; a ring has two slots or more.
      if (p.resident()) CHECK(p.kv_rows == round_up(s.Tk, kKeyStep));
      else CHECK((p.stages >= 2 && p.kv_rows == int64_t(p.stages) * kKeyChunk));
      // At D = 64 every shape leaves room for two blocks per SM.
      if (D == 64) CHECK(2 * (p.smem_bytes + kSmemReservedPerBlock) <= a.per_sm);
    });
  }

  TEST_CASE("row strides put the 8 rows of an ldmatrix on distinct banks") {
    for (int64_t D : kHeadDims) CHECK(operand_ld(D) / 2 % 8 == 4);  // words per row, mod 8
    for (const Seq& s : kShapes) {
      const BackwardPlan p = plan_backward(s.Tq, s.Tk, 64, kSmemPerBlockSm90);
      CHECK(p.ds_ld / 2 % 8 == 4);
      // The 8 rows at that stride start on 8 distinct 4-bank groups.
      std::set<int64_t> groups;
      for (int64_t r = 0; r < 8; ++r) groups.insert((r * p.ds_ld / 2) % 32 / 4);
      CHECK(groups.size() == 8);
    }
  }

  TEST_CASE("backward: which shapes run the one-block fused kernel, and its shared memory by hand") {
    struct Expect {
      Seq s;
      int64_t D;
      bool sm80, sm90;
    };
    const Expect expects[] = {
        {{50, 50}, 64, true, true},     {{77, 77}, 64, true, true},     {{20, 197}, 64, true, true},
        {{197, 197}, 64, false, true},  {{257, 257}, 64, false, false}, {{577, 577}, 64, false, false},
        {{50, 50}, 128, true, true},    {{77, 77}, 128, true, true},    {{20, 197}, 128, true, true},
        {{197, 197}, 128, false, false}, {{50, 50}, 32, true, true},    {{197, 197}, 32, false, true},
    };
    for (const Expect& e : expects) {
      CAPTURE(e.s.Tq);
      CAPTURE(e.s.Tk);
      CAPTURE(e.D);
      CHECK(plan_backward(e.s.Tq, e.s.Tk, e.D, kSmemPerBlockSm80).fits == e.sm80);
      CHECK(plan_backward(e.s.Tq, e.s.Tk, e.D, kSmemPerBlockSm90).fits == e.sm90);
    }
    // ViT-B/32: Q, dO (64 rows) and K, V (64 rows) of 72 halves, dS^T 64 x 72 halves, lse and Delta
    // 64 floats each, 64 mask bytes.
    const BackwardPlan b32 = plan_backward(50, 50, 64, kSmemPerBlockSm90);
    CHECK(b32.warps == 4);
    CHECK(b32.smem_bytes == 4 * 64 * 144 + 64 * 72 * 2 + 2 * 64 * 4 + 64);  // 46 656
    const BackwardPlan b16 = plan_backward(197, 197, 64, kSmemPerBlockSm90);
    CHECK(b16.warps == 7);
    CHECK(b16.smem_bytes == 2 * 224 * 144 + 2 * 208 * 144 + 208 * 232 * 2 + 2 * 224 * 4 + 208);  // 222 928
    for (const Seq& s : kShapes)
      for (int64_t D : kHeadDims) {
        const BackwardPlan p = plan_backward(s.Tq, s.Tk, D, kSmemPerBlockSm90);
        CAPTURE(s.Tq);
        CAPTURE(s.Tk);
        CAPTURE(D);
        const int64_t offsets[] = {p.off_dout, p.off_k, p.off_v, p.off_ds, p.off_lse, p.off_delta, p.off_mask};
        for (int64_t o : offsets) CHECK(o % 16 == 0);  // cp.async and ldmatrix need 16-byte rows
        CHECK(p.off_mask + p.k_rows <= p.smem_bytes);
        if (p.fits) CHECK(p.smem_bytes <= kSmemPerBlockSm90);
        CHECK(p.warps <= kMaxWarpsBackward);
      }
  }

  TEST_CASE("backward: strips owned once; phase 2 reads only dS^T that phase 1 wrote; skipped work sees nothing") {
    for (const Seq& s : kShapes)
      for (bool causal : {false, true}) {
        if (s.Tq > 600 || s.Tk > 600) continue;
        CAPTURE(s.Tq);
        CAPTURE(s.Tk);
        CAPTURE(causal);
        const Frontier f{s.Tq, s.Tk, causal};
        const BackwardPlan p = plan_backward(s.Tq, s.Tk, 64, int64_t(1) << 40);  // layout only
        std::vector<int> key_owner(size_t(p.key_strips), 0), query_owner(size_t(p.query_strips), 0);
        for (int w = 0; w < p.warps; ++w) {
          for (int64_t ks = w; ks < p.key_strips; ks += p.warps) ++key_owner[size_t(ks)];
          for (int64_t qs = w; qs < p.query_strips; qs += p.warps) ++query_owner[size_t(qs)];
        }
        for (int c : key_owner) CHECK(c == 1);
        for (int c : query_owner) CHECK(c == 1);
        CHECK(p.key_strips * kKeyStep >= s.Tk);
        CHECK(p.query_strips * kStripRows >= s.Tq);
        // Phase 1 writes dS^T[key][query] for its steps; every visible (i, j) is inside one.
        std::set<std::pair<int64_t, int64_t>> written;
        for (int64_t ks = 0; ks < p.key_strips; ++ks) {
          const int64_t first = bwd_first_query_chunk(f, ks);
          int64_t skipped_visible = 0;
          for (int64_t i = 0; i < first * kBwdQueryChunk; ++i)
            for (int64_t j = ks * kKeyStep; j < std::min(s.Tk, (ks + 1) * kKeyStep); ++j) skipped_visible += f.sees(i, j);
          CHECK(skipped_visible == 0);
          for (int64_t qc = first; qc < p.q_rows / kBwdQueryChunk; ++qc) {
            const int64_t i0 = qc * kBwdQueryChunk;
            const int qsteps = bwd_query_steps(i0, s.Tq);
            CHECK(i0 + int64_t(qsteps) * kStripRows >= std::min(s.Tq, i0 + kBwdQueryChunk));  // no row dropped
            CHECK(i0 + kBwdQueryChunk <= p.q_rows);  // inside the Q, dO and dS^T rows
            for (int64_t i = i0; i < i0 + int64_t(qsteps) * kStripRows; ++i)
              for (int64_t j = ks * kKeyStep; j < (ks + 1) * kKeyStep; ++j) written.insert({j, i});
          }
        }
        int64_t unwritten = 0;  // visible scores whose dS^T phase 1 never computed
        for (int64_t i = 0; i < s.Tq; ++i)
          for (int64_t j = 0; j < s.Tk; ++j) unwritten += f.sees(i, j) && written.count({j, i}) == 0;
        CHECK(unwritten == 0);
        // Phase 2 reads dS^T for its steps: all written, and the skipped keys are seen by no row of the strip.
        for (int64_t qs = 0; qs < p.query_strips; ++qs) {
          const int64_t steps = bwd_key_steps(f, qs);
          CHECK(steps * kKeyStep <= p.k_rows);
          int64_t stale = 0, dropped = 0;
          for (int64_t j = 0; j < steps * kKeyStep; ++j)
            for (int64_t i = qs * kStripRows; i < (qs + 1) * kStripRows; ++i) stale += written.count({j, i}) == 0;
          for (int64_t i = qs * kStripRows; i < std::min(s.Tq, (qs + 1) * kStripRows); ++i)
            for (int64_t j = steps * kKeyStep; j < s.Tk; ++j) dropped += f.sees(i, j);
          CHECK(stale == 0);
          CHECK(dropped == 0);
        }
      }
  }
}

}  // namespace
}  // namespace minivl::cuda::v4
