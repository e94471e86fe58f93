// Philox4x32-10: Random123 known answers, the stream layout, distributions,
// and the Generator's bookkeeping.
#include "core/generator.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

using namespace minivl;

namespace {
bool same(PhiloxCounter a, PhiloxCounter b) {
  return a.c0 == b.c0 && a.c1 == b.c1 && a.c2 == b.c2 && a.c3 == b.c3;
}
}  // namespace

TEST_CASE("philox4x32_10 matches Random123's kat_vectors") {
  // From Random123's tests/kat_vectors, the three "philox4x32 10" lines:
  // counter (4 words), key (2 words) -> output (4 words).
  struct Kat {
    PhiloxCounter ctr;
    PhiloxKey key;
    PhiloxCounter expected;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    PhiloxCounter got = philox4x32_10(k.ctr, k.key);
    CAPTURE(got.c0);
    CAPTURE(got.c1);
    CAPTURE(got.c2);
    CAPTURE(got.c3);
    CHECK(same(got, k.expected));
  }
}

TEST_CASE("philox_key splits a 64-bit seed into low and high words") {
  PhiloxKey k = philox_key(0x0123456789abcdefull);
  CHECK(k.k0 == 0x89abcdefu);
  CHECK(k.k1 == 0x01234567u);
}

TEST_CASE("philox_uint32: position offset + i is word (p % 4) of block p / 4") {
  const uint64_t seed = 0xa4093822299f31d0ull;   // key {0x299f31d0, 0xa4093822}
  PhiloxKey key = philox_key(seed);
  for (uint64_t p : {0ull, 1ull, 2ull, 3ull, 4ull, 7ull, 1001ull, (1ull << 34) + 5}) {
    uint64_t block = p / 4;
    PhiloxCounter out = philox4x32_10(
        {static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0, 0}, key);
    uint32_t words[4] = {out.c0, out.c1, out.c2, out.c3};
    CHECK(philox_uint32(seed, p, 0) == words[p % 4]);
    CHECK(philox_uint32(seed, 0, p) == words[p % 4]);
    if (p >= 3) CHECK(philox_uint32(seed, p - 3, 3) == words[p % 4]);
  }
  // Block 0 with seed 0 is the first known-answer vector.
  CHECK(philox_uint32(0, 0, 0) == 0x6627e8d5u);
  CHECK(philox_uint32(0, 0, 3) == 0x9b00dbd8u);
}

TEST_CASE("philox streams depend on seed and offset") {
  // (Fixed values for a fixed (seed, offset, i): the known answers above and below.)
  std::vector<uint32_t> a;
  for (uint64_t i = 0; i < 64; ++i) a.push_back(philox_uint32(42, 8, i));
  int same_seed_diff = 0, same_offset_diff = 0;
  for (uint64_t i = 0; i < 64; ++i) {
    same_seed_diff += philox_uint32(43, 8, i) == a[i];
    same_offset_diff += philox_uint32(42, 9, i) == a[i];
  }
  CHECK(same_seed_diff < 2);     // another seed: an unrelated stream
  CHECK(same_offset_diff < 2);   // offset 9: a shifted stream
  CHECK(philox_uint32(42, 9, 0) == a[1]);
  // The other distributions read the same positions: element 3 at offset 10 is element 5 at offset 8
  // (normal: positions 12 and 13, the sine half; f64 at element 2 / 3: positions 14 and 15).
  CHECK(philox_normal(42, 10, 3) == philox_normal(42, 8, 5));
  CHECK(philox_uniform_f64(42, 10, 2) == philox_uniform_f64(42, 8, 3));
  CHECK(philox_normal(43, 8, 5) != philox_normal(42, 8, 5));
  CHECK(philox_uniform_f64(43, 8, 5) != philox_uniform_f64(42, 8, 5));
}

TEST_CASE("the distributions at seed 0, block 0 map the first known-answer vector's words") {
  // Seed 0 and stream positions 0-3 are the counter {0, 0, 0, 0} and key {0, 0}: Random123's words.
  const uint32_t kat[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  const double two_m24 = std::ldexp(1.0, -24), two_m53 = std::ldexp(1.0, -53);
  for (uint64_t k = 0; k < 4; ++k) CHECK(double(philox_uniform(0, 0, k)) == double(kat[k] >> 8) * two_m24);
  for (uint64_t k = 0; k < 2; ++k) {
    const uint64_t bits = (uint64_t(kat[2 * k]) << 32) | kat[2 * k + 1];
    CHECK(philox_uniform_f64(0, 0, k) == double(bits >> 11) * two_m53);
  }
  for (uint64_t j = 0; j < 2; ++j) {   // Box-Muller in double on words 2j, 2j + 1
    const double u1 = ((kat[2 * j] >> 8) + 1.0) * two_m24, u2 = (kat[2 * j + 1] >> 8) * two_m24;
    const double r = std::sqrt(-2.0 * std::log(u1)), t = 6.283185307179586 * u2;
    CHECK(philox_normal(0, 0, 2 * j) == doctest::Approx(r * std::cos(t)).epsilon(1e-5));
    CHECK(philox_normal(0, 0, 2 * j + 1) == doctest::Approx(r * std::sin(t)).epsilon(1e-5));
  }
}

TEST_CASE("the mappings at their extremes: uniforms stay below 1, normals stay finite") {
  // Positions of seed 0's stream, found by scanning it: a word of 25 leading ones (as a float the
  // whole word would round to 2^32, so word * 2^-32 gives 1) and a word of 24 leading zeros. Both
  // are even, so each is a normal pair's u1 word.
  const uint64_t all_ones = 99850914, all_zeros = 59535980;
  REQUIRE(philox_uint32(0, all_ones, 0) >= 0xffffff80u);
  REQUIRE((philox_uint32(0, all_zeros, 0) >> 8) == 0u);
  const float below_one = 1.0f - std::ldexp(1.0f, -24);
  CHECK(philox_uniform(0, all_ones, 0) == below_one);   // the largest uniform, < 1
  CHECK(philox_uniform(0, all_zeros, 0) == 0.0f);
  const double f64_top = philox_uniform_f64(0, all_ones, 0);   // high word = that word
  CHECK(f64_top < 1.0);
  CHECK(f64_top >= double(below_one));
  // u1 = 1 (the top word): radius sqrt(-2 ln 1) = 0, both elements exactly 0.
  CHECK(philox_normal(0, all_ones, 0) == 0.0f);
  CHECK(philox_normal(0, all_ones, 1) == 0.0f);
  // u1 = 2^-24 (the smallest, never 0): radius^2 = 48 ln 2, finite.
  const float z0 = philox_normal(0, all_zeros, 0), z1 = philox_normal(0, all_zeros, 1);
  CHECK(std::isfinite(z0));
  CHECK(std::isfinite(z1));
  CHECK(double(z0) * z0 + double(z1) * z1 == doctest::Approx(48.0 * std::log(2.0)).epsilon(1e-5));
}

TEST_CASE("element i is the same whether drawn in one range or split") {
  const uint64_t seed = 7, offset = 13, n = 1000;
  std::vector<float> whole(n), split(n);
  std::vector<float> whole_normal(n), split_normal(n);
  for (uint64_t i = 0; i < n; ++i) {
    whole[i] = philox_uniform(seed, offset, i);
    whole_normal[i] = philox_normal(seed, offset, i);
  }
  // Four "threads" take interleaved chunks of 37 in reverse order.
  for (int t = 3; t >= 0; --t)
    for (uint64_t start = t * 37; start < n; start += 4 * 37)
      for (uint64_t i = start; i < std::min(n, start + 37); ++i) {
        split[i] = philox_uniform(seed, offset, i);
        split_normal[i] = philox_normal(seed, offset, i);
      }
  CHECK(whole == split);
  CHECK(whole_normal == split_normal);
  // A second range that starts where the first left off continues the stream.
  for (uint64_t i = 0; i < 100; ++i) CHECK(philox_uniform(seed, offset + 500, i) == whole[500 + i]);
}

TEST_CASE("philox_uniform is in [0, 1) with mean 1/2 and variance 1/12") {
  const int n = 100000;
  double sum = 0, sum_sq = 0;
  float lo = 1, hi = 0;
  int outside = 0;
  for (int i = 0; i < n; ++i) {
    float u = philox_uniform(1234, 0, i);
    outside += !(u >= 0.0f && u < 1.0f);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
    sum_sq += double(u) * u;
  }
  CHECK(outside == 0);
  double mean = sum / n, var = sum_sq / n - mean * mean;
  CHECK(mean == doctest::Approx(0.5).epsilon(0.01));     // std error ~0.0009
  CHECK(var == doctest::Approx(1.0 / 12).epsilon(0.02));
  CHECK(lo < 1e-3f);
  CHECK(hi > 0.999f);
}

TEST_CASE("philox_uniform_f64 is in [0, 1), uses two words, mean 1/2") {
  const int n = 100000;
  double sum = 0;
  int outside = 0;
  for (int i = 0; i < n; ++i) {
    double u = philox_uniform_f64(99, 0, i);
    outside += !(u >= 0.0 && u < 1.0);
    sum += u;
  }
  CHECK(outside == 0);
  CHECK(sum / n == doctest::Approx(0.5).epsilon(0.01));
  // Documented layout: hi = word(offset + 2i), lo = word(offset + 2i + 1).
  uint64_t hi = philox_uint32(99, 3, 10), lo = philox_uint32(99, 3, 11);
  CHECK(philox_uniform_f64(99, 3, 5) == double(((hi << 32) | lo) >> 11) * std::ldexp(1.0, -53));
}

TEST_CASE("philox_normal has mean 0, std 1 and pairs elements 2j, 2j+1 (Box-Muller)") {
  const int n = 100000;
  double sum = 0, sum_sq = 0, sum4 = 0;
  int within_1 = 0, not_finite = 0;
  for (int i = 0; i < n; ++i) {
    float z = philox_normal(2024, 0, i);
    not_finite += !std::isfinite(z);
    sum += z;
    sum_sq += double(z) * z;
    sum4 += double(z) * z * z * z;
    within_1 += std::fabs(z) < 1.0f;
  }
  CHECK(not_finite == 0);
  double mean = sum / n, var = sum_sq / n - mean * mean;
  CHECK(std::fabs(mean) < 0.015);                       // std error ~0.003
  CHECK(std::sqrt(var) == doctest::Approx(1.0).epsilon(0.015));
  CHECK(sum4 / n == doctest::Approx(3.0).epsilon(0.05));   // kurtosis of a normal
  CHECK(double(within_1) / n == doctest::Approx(0.6827).epsilon(0.01));

  // Elements 2j and 2j+1 share a radius: z0^2 + z1^2 = -2 ln u1.
  for (uint64_t j = 0; j < 50; ++j) {
    float z0 = philox_normal(5, 1, 2 * j), z1 = philox_normal(5, 1, 2 * j + 1);
    uint32_t a = philox_uint32(5, 1, 2 * j);
    double u1 = ((a >> 8) + 1.0) * std::ldexp(1.0, -24);
    CHECK(double(z0) * z0 + double(z1) * z1 == doctest::Approx(-2.0 * std::log(u1)).epsilon(1e-4));
  }
}

TEST_CASE("Generator::reserve hands out disjoint, consecutive ranges") {
  Generator g(123);
  CHECK(g.seed() == 123);
  CHECK(g.offset() == 0);
  CHECK(g.reserve(10) == 0);
  CHECK(g.reserve(0) == 10);
  CHECK(g.reserve(5) == 10);
  CHECK(g.offset() == 15);
  GeneratorState s = g.reserve_stream(4);
  CHECK(s == GeneratorState{123, 15});
  CHECK(g.offset() == 19);

  g.set_state({123, UINT64_MAX - 3});
  CHECK_THROWS_WITH_AS(g.reserve(4), doctest::Contains("overflow"), minivl::Error);
  CHECK(g.offset() == UINT64_MAX - 3);   // a failed reserve leaves the state alone
  CHECK(g.reserve(3) == UINT64_MAX - 3);
}

TEST_CASE("Generator state round-trips and replays the same numbers") {
  Generator g(77);
  g.reserve(1000);
  GeneratorState saved = g.state();
  uint64_t off1 = g.reserve(8);
  std::vector<float> first, second;
  for (uint64_t i = 0; i < 8; ++i) first.push_back(philox_uniform(g.seed(), off1, i));

  Generator restored(1);
  restored.set_state(saved);
  CHECK(restored.state() == saved);
  uint64_t off2 = restored.reserve(8);
  CHECK(off2 == off1);
  for (uint64_t i = 0; i < 8; ++i) second.push_back(philox_uniform(restored.seed(), off2, i));
  CHECK(first == second);

  Generator copy = g;
  CHECK(copy.state() == g.state());
  copy.reserve(1);
  CHECK(copy.offset() == g.offset() + 1);   // copies are independent

  g.manual_seed(5);
  CHECK(g.state() == GeneratorState{5, 0});
}

TEST_CASE("Generator::reserve is safe across threads") {
  Generator g(3);
  const int threads = 4, per_thread = 1000;
  std::vector<std::vector<uint64_t>> got(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (int k = 0; k < per_thread; ++k) got[t].push_back(g.reserve(3));
    });
  for (auto& th : pool) th.join();
  std::vector<uint64_t> all;
  for (auto& v : got) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  for (size_t k = 0; k < all.size(); ++k) CHECK(all[k] == 3 * k);
  CHECK(g.offset() == uint64_t(3) * threads * per_thread);
}

TEST_CASE("default_generator is one process-wide generator, seedable") {
  GeneratorState before = default_generator().state();
  default_generator().manual_seed(2024);
  CHECK(&default_generator() == &default_generator());
  CHECK(default_generator().state() == GeneratorState{2024, 0});
  default_generator().reserve(4);
  CHECK(default_generator().offset() == 4);
  default_generator().set_state(before);   // leave it as other tests found it
}
