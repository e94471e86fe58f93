// The tile arithmetic of the contrastive losses v3 (kernels/cuda/contrastive_v3_plan.h), on the
// CPU: every logits tile visited once at awkward N, the mma accumulator layout covering a tile
// once, slice copies inside (n, d), each partial slot written by one warp and read by its merge,
// dense block indices, the G chunk layout, scratch that grows as N d; and the whole v3 schedule
// emulated in scalar code from these functions (partials, merges, G chunks, the two GEMMs, the
// -2 I term applied at the end) against the CPU kernels, CLIP and SigLIP, all gradients.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "core/ops.h"
#include "kernels/cuda/contrastive_v3_plan.h"

using namespace minivl;
namespace v3 = minivl::cuda::v3;

namespace {

const int64_t kSizes[] = {1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1000, 4096 + 17, 16384};

std::vector<v3::Plan> plans_for(int64_t n) {
  // The default chunk, and the smallest one (so that small N also spans several chunks).
  return {v3::Plan{n, v3::kChunk}, v3::Plan{n, v3::kTileN * v3::kRunTiles}};
}

// Calls f(chunk, run, row_tile) for every block of every chunk launch, in launch order.
template <typename F>
void for_each_block(const v3::Plan& p, F&& f) {
  const int64_t sides = v3::chunks_per_side(p);
  for (int64_t ci = 0; ci < sides; ++ci)
    for (int64_t cj = 0; cj < sides; ++cj) {
      const v3::Chunk c = v3::chunk_at(p, ci, cj);
      for (int64_t rt = 0; rt < v3::row_tiles(c); ++rt)
        for (int64_t run = 0; run < v3::runs(c); ++run) f(c, run, rt);
    }
}

// For each chunk of `writes` (chunk origin -> the partial slots its blocks wrote): the slots are
// exactly what merge_chunk reads, q * cap + e for q < slots_of(chunk) and e < extent_of(chunk)
// (its rows or columns), each written once, and all under `capacity`.
template <typename SlotsOf, typename ExtentOf>
void check_partial_slots(const v3::Plan& p, const std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>>& writes,
                         SlotsOf slots_of, ExtentOf extent_of, int64_t capacity) {
  const int64_t cap = v3::chunk_capacity(p);
  for (const auto& [key, slots] : writes) {
    const v3::Chunk c = v3::chunk_at(p, key.first / p.chunk, key.second / p.chunk);
    std::map<int64_t, int> count;
    for (int64_t s : slots) ++count[s];
    std::map<int64_t, int> expected;
    for (int64_t q = 0; q < slots_of(c); ++q)
      for (int64_t e = 0; e < extent_of(c); ++e) expected[q * cap + e] = 1;
    CHECK(count == expected);
    CHECK(count.rbegin()->first < capacity);
  }
}

}  // namespace

TEST_SUITE("contrastive_v3_plan") {

TEST_CASE("every logits tile is visited exactly once, and no tile starts at or past N") {
  for (int64_t n : kSizes)
    for (const v3::Plan& p : plans_for(n)) {
      CAPTURE(n);
      CAPTURE(p.chunk);
      REQUIRE(v3::plan_valid(p));
      const int64_t nt = v3::ceil_div(n, v3::kTileM);
      std::vector<int> visits(size_t(nt * nt), 0);
      bool inside = true, aligned = true, in_chunk = true;
      for_each_block(p, [&](const v3::Chunk& c, int64_t run, int64_t rt) {
        const v3::BlockWork w = v3::block_work(c, run, rt);
        inside &= w.tiles >= 1 && w.tiles <= v3::kRunTiles && w.row0 < n;
        aligned &= w.row0 % v3::kTileM == 0 && w.col0 % v3::kTileN == 0;
        for (int t = 0; t < w.tiles; ++t) {
          const int64_t col0 = w.col0 + t * v3::kTileN;
          inside &= col0 < n;
          in_chunk &= w.row0 >= c.r0 && w.row0 < c.r0 + c.rows && col0 >= c.c0 && col0 < c.c0 + c.cols;
          if (col0 < n && w.row0 < n) ++visits[size_t((w.row0 / v3::kTileM) * nt + col0 / v3::kTileN)];
        }
      });
      CHECK(inside);
      CHECK(aligned);
      CHECK(in_chunk);
      int bad = 0;
      for (int v : visits) bad += v != 1;
      CHECK(bad == 0);
    }
}

TEST_CASE("chunks tile the logits: rows and columns covered once, edges clipped to N") {
  for (int64_t n : kSizes)
    for (const v3::Plan& p : plans_for(n)) {
      CAPTURE(n);
      int64_t rows = 0;
      for (int64_t ci = 0; ci < v3::chunks_per_side(p); ++ci) {
        const v3::Chunk c = v3::chunk_at(p, ci, 0);
        CHECK(c.r0 == rows);
        CHECK(c.rows >= 1);
        CHECK(c.rows <= v3::chunk_capacity(p));
        rows += c.rows;
      }
      CHECK(rows == n);
    }
}

TEST_CASE("the mma accumulator layout holds every element of a tile exactly once") {
  std::vector<int> held(size_t(v3::kTileM * v3::kTileN), 0);
  for (int warp = 0; warp < v3::kWarps; ++warp)
    for (int lane = 0; lane < 32; ++lane)
      for (int mt = 0; mt < v3::kMTiles; ++mt)
        for (int nt = 0; nt < v3::kNTiles; ++nt)
          for (int e = 0; e < 4; ++e) {
            const int r = v3::acc_row(warp, lane, mt, e), c = v3::acc_col(warp, lane, nt, e);
            REQUIRE(r >= 0);
            REQUIRE(r < v3::kTileM);
            REQUIRE(c >= 0);
            REQUIRE(c < v3::kTileN);
            ++held[size_t(r * v3::kTileN + c)];
            // The kernels rely on: a quad (lanes 4k..4k+3) shares a row; lanes with equal
            // lane % 4 share a column; a warp stays inside its warp row and warp column.
            CHECK(r / v3::kWarpM == v3::warp_row(warp));
            CHECK(c / v3::kWarpN == v3::warp_col(warp));
            CHECK(v3::acc_row(warp, (lane & ~3) | ((lane + 1) & 3), mt, e) == r);
            CHECK(v3::acc_col(warp, (lane + 4) & 31, nt, e) == c);
          }
  int bad = 0;
  for (int h : held) bad += h != 1;
  CHECK(bad == 0);
}

TEST_CASE("slice copies fill every (row, 16-byte piece) of a stage once and read only inside (n, d)") {
  std::vector<int> filled(size_t(v3::kTileM * v3::kChunksPerRow16B), 0);
  for (int t = 0; t < v3::kThreads; ++t)
    for (int i = 0; i < v3::kSliceCopies; ++i) {
      const v3::SliceCopy c = v3::slice_copy(t, i);
      REQUIRE(c.row < v3::kTileM);
      REQUIRE(c.piece < v3::kChunksPerRow16B);
      ++filled[size_t(c.row * v3::kChunksPerRow16B + c.piece)];
      CHECK(c.row == v3::slice_copy(t, 0).row + i * v3::kCopyRowStep);  // the kernel's form
      CHECK(c.piece == v3::slice_copy(t, 0).piece);
    }
  int bad = 0;
  for (int f : filled) bad += f != 1;
  CHECK(bad == 0);

  for (int64_t d : {8, 64, 72, 256, 264, 512, 768, 1000, 1024}) {
    CAPTURE(d);
    for (int64_t rows_left : {1, 63, 64, 65, 127, 128}) {
      std::vector<int> read(size_t(v3::kTileM * d), 0);
      bool outside = false;
      for (int s = 0; s < v3::slices(d); ++s)
        for (int t = 0; t < v3::kThreads; ++t)
          for (int i = 0; i < v3::kSliceCopies; ++i) {
            const v3::SliceCopy c = v3::slice_copy(t, i);
            const int k0 = s * v3::kSliceK;
            if (!v3::copy_in_bounds(c.row, rows_left, k0, c.piece, d)) continue;
            for (int k = 0; k < 8; ++k) {
              const int64_t f = k0 + 8 * c.piece + k;
              outside |= c.row >= rows_left || f >= d;
              if (!outside) ++read[size_t(c.row * d + f)];
            }
          }
      CHECK_FALSE(outside);
      int wrong = 0;
      for (int64_t r = 0; r < v3::kTileM; ++r)
        for (int64_t f = 0; f < d; ++f) wrong += read[size_t(r * d + f)] != (r < rows_left ? 1 : 0);
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("each row and column partial slot of a chunk has one writer, inside the buffers, and the merge reads them all") {
  for (int64_t n : {int64_t(1), int64_t(65), int64_t(1000), int64_t(4096 + 17)})
    for (const v3::Plan& p : plans_for(n)) {
      CAPTURE(n);
      CAPTURE(p.chunk);
      std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> row_writes, col_writes;  // chunk -> slots
      for_each_block(p, [&](const v3::Chunk& c, int64_t run, int64_t rt) {
        const v3::BlockWork w = v3::block_work(c, run, rt);
        auto& rw = row_writes[{c.r0, c.c0}];
        auto& cw = col_writes[{c.r0, c.c0}];
        for (int warp = 0; warp < v3::kWarps; ++warp) {
          for (int r = v3::warp_row(warp) * v3::kWarpM; r < (v3::warp_row(warp) + 1) * v3::kWarpM; ++r)
            if (w.row0 + r < n) rw.push_back(v3::row_part_index(p, run, v3::warp_col(warp), w.row0 + r - c.r0));
          for (int t = 0; t < w.tiles; ++t)
            for (int col = v3::warp_col(warp) * v3::kWarpN; col < (v3::warp_col(warp) + 1) * v3::kWarpN; ++col) {
              const int64_t g = w.col0 + t * v3::kTileN + col;
              if (g < n) cw.push_back(v3::col_part_index(p, rt, v3::warp_row(warp), g - c.c0));
            }
        }
      });
      check_partial_slots(p, row_writes, [](const v3::Chunk& c) { return v3::row_part_slots(c); },
                          [](const v3::Chunk& c) { return c.rows; }, v3::row_part_capacity(p));
      check_partial_slots(p, col_writes, [](const v3::Chunk& c) { return v3::col_part_slots(c); },
                          [](const v3::Chunk& c) { return c.cols; }, v3::col_part_capacity(p));
    }
}

TEST_CASE("block scalar partials are dense: one index per block of all chunk launches") {
  for (int64_t n : kSizes)
    for (const v3::Plan& p : plans_for(n)) {
      CAPTURE(n);
      std::vector<int> used(size_t(v3::scalar_part_count(p)), 0);
      bool in_range = true;
      for_each_block(p, [&](const v3::Chunk& c, int64_t run, int64_t rt) {
        const int64_t i = v3::scalar_part_index(p, c, run, rt);
        in_range &= i >= 0 && i < v3::scalar_part_count(p);
        if (in_range) ++used[size_t(i)];
      });
      REQUIRE(in_range);
      int bad = 0;
      for (int u : used) bad += u != 1;
      CHECK(bad == 0);
    }
}

TEST_CASE("the G chunk buffer holds each valid logit of a chunk once; 2-element stores stay in their row") {
  for (int64_t n : {int64_t(1), int64_t(63), int64_t(65), int64_t(1000), int64_t(4096 + 17)})
    for (const v3::Plan& p : plans_for(n)) {
      CAPTURE(n);
      CAPTURE(p.chunk);
      const int64_t ld = v3::g_ld(p);
      CHECK(ld % v3::kTileN == 0);
      CHECK(ld >= v3::chunk_capacity(p));
      for (int64_t ci = 0; ci < v3::chunks_per_side(p); ++ci)
        for (int64_t cj = 0; cj < v3::chunks_per_side(p); ++cj) {
          const v3::Chunk c = v3::chunk_at(p, ci, cj);
          std::vector<int> seen(size_t(v3::g_elems(p)), 0);
          bool ok = true;
          for (int64_t r = c.r0; r < c.r0 + c.rows; ++r)
            for (int64_t col = c.c0; col < c.c0 + c.cols; ++col) {
              const int64_t i = v3::g_index(p, c, r, col);
              ok &= i >= 0 && i < v3::g_elems(p);
              if ((col - c.c0) % 2 == 0) ok &= (col - c.c0) + 1 < ld;  // the pair's second element
              if (ok) ++seen[size_t(i)];
            }
          REQUIRE(ok);
          int dup = 0;
          for (int s : seen) dup += s > 1;
          CHECK(dup == 0);
        }
    }
}

TEST_CASE("merge of (max, sum) pairs is the log-sum-exp of the union, empty sets included") {
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 30.0f);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<float> x(size_t(1 + trial % 9));
    for (float& v : x) v = nd(gen);
    v3::MaxSum acc;  // empty
    double ref_max = -INFINITY;
    for (float v : x) ref_max = std::max(ref_max, double(v));
    double ref = 0;
    for (float v : x) ref += std::exp(double(v) - ref_max);
    for (float v : x) acc = v3::merge(acc, v3::MaxSum{v, 1.0f});
    acc = v3::merge(acc, v3::MaxSum{});
    CHECK(v3::lse(acc) == doctest::Approx(ref_max + std::log(ref)).epsilon(1e-5));
  }
  const v3::MaxSum empty = v3::merge(v3::MaxSum{}, v3::MaxSum{});
  CHECK(empty.m == -INFINITY);
  CHECK(empty.s == 0.0f);
}

TEST_CASE("scratch grows as N d: forward O(N), backward 2 N d f32 plus one chunk") {
  for (int64_t d : {256, 512, 768, 1024})
    for (int64_t n : {int64_t(16384), int64_t(65536), int64_t(131072)}) {
      CAPTURE(n);
      CAPTURE(d);
      const v3::Plan p{n, v3::kChunk};
      const v3::Scratch s = v3::scratch_bytes(p, d, true);
      const int64_t chunk_bytes = v3::kChunk * v3::kChunk * 2;
      CHECK(s.forward_bytes <= (int64_t(16) << 20) + 32 * n);  // fixed 12 MiB of partials + O(N)
      CHECK(s.backward_bytes <= 8 * n * d + chunk_bytes + 16 * n);
      CHECK(s.backward_bytes >= 8 * n * d);
      CHECK(s.forward_bytes < n * n / 8);  // far below the N^2 logits
    }
}

}  // TEST_SUITE
