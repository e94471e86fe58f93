#pragma once
// Philox4x32-10 counter-based RNG (Salmon et al., "Parallel Random Numbers:
// As Easy as 1, 2, 3", SC'11), bit-identical to Random123's philox4x32_R(10, ...)
// and cuRAND's Philox4_32_10 block function. Header-only; the stream functions
// compile for host C++ and CUDA device code alike (no std:: containers, no
// exceptions), so the CPU and CUDA kernels draw the same numbers.
//
// The stream (seed, offset). Key = {low 32 bits of seed, high 32 bits}.
// Stream position p = offset + i (mod 2^64) lives in Philox block p / 4
// (counter c0 = low 32 bits of the block number, c1 = high 32 bits, c2 = c3 = 0),
// word p % 4 of that block's output. So element i is a pure function of
// (seed, offset, i): however the work is split across threads or devices,
// element i is the same number.
//
// Positions consumed per element (what a caller passes to Generator::reserve):
//   philox_uint32, philox_uniform: 1 position, p = offset + i.
//   philox_uniform_f64:            2 positions, offset + 2i (high word) and offset + 2i + 1 (low).
//   philox_normal:                 1 position; Box-Muller pairs element 2j with 2j + 1:
//     u1 = ((word(offset + 2j) >> 8) + 1) * 2^-24   in (0, 1]
//     u2 =  (word(offset + 2j + 1) >> 8)  * 2^-24   in [0, 1)
//     r = sqrt(-2 ln u1), t = 2 pi u2;  element 2j = r cos t, element 2j + 1 = r sin t.
//     n normals starting at element 0 consume n rounded up to even positions.
//
// Exactness across devices: philox4x32_10, philox_uint32, philox_uniform and
// philox_uniform_f64 are integer math (plus one exact scaling) and agree bit for
// bit. philox_normal calls logf/sqrtf/cosf/sinf, whose CUDA and glibc versions
// may differ by an ulp or two (and by more under --use_fast_math): compare
// normals with a tolerance, not bit for bit.
#include <cstdint>

#ifndef MINIVL_HOST_DEVICE
#if defined(__CUDACC__)
#define MINIVL_HOST_DEVICE __host__ __device__
#else
#define MINIVL_HOST_DEVICE
#endif
#endif

#include <math.h>   // sqrtf, logf, cosf, sinf: the global names exist on host and device



namespace minivl {

struct PhiloxKey {
  uint32_t k0, k1;
};
struct PhiloxCounter {
  uint32_t c0, c1, c2, c3;
};

// Key from a 64-bit seed: k0 = low 32 bits, k1 = high 32 bits.
MINIVL_HOST_DEVICE inline PhiloxKey philox_key(uint64_t seed) {
  return {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
}

namespace philox_detail {
constexpr uint32_t kM0 = 0xD2511F53u;   // multipliers
constexpr uint32_t kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u;   // Weyl key increments (golden ratio, sqrt(3) - 1)
constexpr uint32_t kW1 = 0xBB67AE85u;

MINIVL_HOST_DEVICE inline uint32_t mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

MINIVL_HOST_DEVICE inline PhiloxCounter philox_round(PhiloxCounter c, PhiloxKey k) {
  uint32_t hi0 = mulhi(kM0, c.c0), lo0 = kM0 * c.c0;
  uint32_t hi1 = mulhi(kM1, c.c2), lo1 = kM1 * c.c2;
  return {hi1 ^ c.c1 ^ k.k0, lo1, hi0 ^ c.c3 ^ k.k1, lo0};
}

MINIVL_HOST_DEVICE inline uint32_t word(PhiloxCounter c, uint32_t w) {
  return w == 0 ? c.c0 : w == 1 ? c.c1 : w == 2 ? c.c2 : c.c3;
}
}  // namespace philox_detail

// One Philox4x32-10 block: 10 rounds, the key bumped by the Weyl constants
// between rounds.
MINIVL_HOST_DEVICE inline PhiloxCounter philox4x32_10(PhiloxCounter ctr, PhiloxKey key) {
  using namespace philox_detail;
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      key.k0 += kW0;
      key.k1 += kW1;
    }
    ctr = philox_round(ctr, key);
  }
  return ctr;
}

// Word at stream position p = offset + i.
MINIVL_HOST_DEVICE inline uint32_t philox_uint32(uint64_t seed, uint64_t offset, uint64_t i) {
  uint64_t p = offset + i;
  uint64_t block = p >> 2;
  PhiloxCounter ctr{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32), 0u, 0u};
  return philox_detail::word(philox4x32_10(ctr, philox_key(seed)), static_cast<uint32_t>(p & 3));
}

// Uniform float in [0, 1): the top 24 bits of the word times 2^-24.
MINIVL_HOST_DEVICE inline float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  return static_cast<float>(philox_uint32(seed, offset, i) >> 8) * 5.9604644775390625e-08f;  // 2^-24
}

// Uniform double in [0, 1) with 53 random bits: hi = word(offset + 2i),
// lo = word(offset + 2i + 1), value = (((hi << 32) | lo) >> 11) * 2^-53.
MINIVL_HOST_DEVICE inline double philox_uniform_f64(uint64_t seed, uint64_t offset, uint64_t i) {
  uint64_t hi = philox_uint32(seed, offset, 2 * i);
  uint64_t lo = philox_uint32(seed, offset, 2 * i + 1);
  return static_cast<double>(((hi << 32) | lo) >> 11) * 1.1102230246251565e-16;  // 2^-53
}

// Standard normal float, Box-Muller with the pairing documented at the top.
MINIVL_HOST_DEVICE inline float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  uint64_t j2 = i & ~uint64_t{1};   // 2j
  uint32_t a = philox_uint32(seed, offset, j2);
  uint32_t b = philox_uint32(seed, offset, j2 + 1);
  float u1 = static_cast<float>((a >> 8) + 1u) * 5.9604644775390625e-08f;   // (0, 1]
  float u2 = static_cast<float>(b >> 8) * 5.9604644775390625e-08f;          // [0, 1)
  float r = sqrtf(-2.0f * logf(u1));
  float t = 6.2831853071795865f * u2;
  return (i & 1) ? r * sinf(t) : r * cosf(t);
}

}  // namespace minivl
