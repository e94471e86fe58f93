// Source values for the dtype-conversion parity test (tests/parity_cuda_table.h): values the
// target cannot represent, so a conversion that truncates, flushes subnormals, saturates or
// drops NaN gives different bits from the CPU's round-to-nearest-even.
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "tests/parity_cuda_table.h"

namespace minivl::parity_cuda {
namespace {

double p2(int e) { return std::ldexp(1.0, e); }

// Float values around every float format's edges (each is converted to the source dtype first).
std::vector<double> float_values() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> v = {
      0.0, -0.0, 1.0, -1.0, 0.1, 1.0 / 3, -2.0 / 3, 3.14159265358979, 1e-3, 123.456, -7.75,
      // bf16 (8 significant bits) halfway cases: ties to even round down and up, and just past a tie
      1 + p2(-8), 1 + 3 * p2(-8), -(1 + 3 * p2(-8)), 1 + p2(-8) + p2(-20), 1 - p2(-9), 255.5, 257.0,
      // f16 (11 bits) halfway cases
      1 + p2(-11), 1 + 3 * p2(-11), -(1 + 5 * p2(-11)), 1 + p2(-11) + p2(-22), 2049.0, 2051.0,
      // f32 (24 bits) halfway cases, from f64
      1 + p2(-24), 1 + 3 * p2(-24), 1 + p2(-24) + p2(-50), 16777217.0, 16777219.0,
      // f64 -> f32 -> bf16 double rounding: just above a bf16 tie, below f32's resolution
      1 + p2(-8) + p2(-30),
      // f16 subnormals and underflow: 2^-24 is the smallest; 2^-25 ties to 0; 1.5 2^-24 ties to 2^-23
      p2(-24), p2(-25), 1.5 * p2(-24), 3 * p2(-26), 2.5 * p2(-24), 3e-6, -4.1e-5, 6.0e-5, 2e-8, 5e-8,
      // f16 overflow: 65504 is the largest; 65519 rounds down to it, 65520 up to inf
      65504.0, 65519.0, 65520.0, -65520.0, 1e5, 1e30,
      // f32 / bf16 subnormals, the smallest normal, underflow to 0
      1e-40, -3e-42, p2(-149), p2(-150), 3 * p2(-150), p2(-126), 1.1754942e-38, p2(-133), p2(-134), 1e-310,
      // bf16 overflow (its largest is (2 - 2^-7) 2^127; above the midpoint to 2^128 it is inf), f32 overflow
      3.3895313892515355e38, 3.3961e38, 3.4e38, 3.4028234663852886e38, 1e39, -1e39,
      inf, -inf, std::numeric_limits<double>::quiet_NaN(), -std::numeric_limits<double>::quiet_NaN()};
  std::mt19937_64 gen(20261127);
  std::uniform_real_distribution<double> u(-4, 4);
  for (int i = 0; i < 24; ++i) v.push_back(u(gen));  // full-precision values: nearly all need rounding
  return v;
}

// Float values a conversion to an integer type is defined for once truncated (C++: the
// truncated value must fit), with fractions of both signs.
std::vector<double> float_to_int_values() {
  return {0.0, -0.0, 0.5, 0.99, 1.0, 1.5, 2.5, 7.9, 100.25, 127.5, 128.75, 200.75, 255.5, -0.7, -1.5, -2.5, -100.9,
          -128.5, 1000.5, 65504.0, 123456.7, -70000.25, 2147483520.0, -2147483648.0, 1e12 + 0.5, -3e15 - 0.25};
}

std::vector<int64_t> int_values() {
  return {0, 1, -1, 2, 127, 128, 255, 256, 257, -128, -129, 2049, 65504, 65519, 65520, 70000, 16777217, -16777219,
          (int64_t(1) << 31) - 1, int64_t(1) << 31, -(int64_t(1) << 31) - 1, (int64_t(1) << 53) + 1, -((int64_t(1) << 53) + 3),
          int64_t(1) << 40, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
}

bool fits(double v, DType to) {
  const double t = std::trunc(v);
  switch (to) {
    case DType::u8: return t >= 0 && t <= 255;
    case DType::i32: return t >= -2147483648.0 && t <= 2147483647.0;
    case DType::i64: return t >= -9223372036854775808.0 && t < 9223372036854775808.0;
    default: return true;
  }
}

bool int_fits(int64_t v, DType from) {
  switch (from) {
    case DType::u8: return v >= 0 && v <= 255;
    case DType::boolean: return v == 0 || v == 1;
    case DType::i32: return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
    default: return true;
  }
}

}  // namespace

const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> all = {DType::f32, DType::f64, DType::bf16, DType::f16,
                                         DType::i32, DType::i64, DType::u8,   DType::boolean};
  return all;
}

Tensor conversion_input(DType from, DType to) {
  if (is_floating(from)) {
    const bool int_target = !is_floating(to) && to != DType::boolean;
    const std::vector<double> candidates = int_target ? float_to_int_values() : float_values();
    // The values as the source dtype holds them; for an integer target only those it can take.
    const std::vector<double> held = from_vector(candidates, {int64_t(candidates.size())}, from).to_vector();
    std::vector<double> keep;
    for (double v : held) {
      if (!int_target || (std::isfinite(v) && fits(v, to))) keep.push_back(v);
    }
    return from_vector(keep, {int64_t(keep.size())}, from);
  }
  std::vector<int64_t> keep;
  for (int64_t v : int_values()) {
    if (int_fits(v, from)) keep.push_back(v);
  }
  return from_vector_i64(keep, {int64_t(keep.size())}, from);
}

}  // namespace minivl::parity_cuda
