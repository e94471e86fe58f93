#pragma once
// How a CUDA result must match the CPU's, element by element. tests/test_parity_cuda.cpp
// compares with it; tests/test_parity_compare.cpp tests it on the CPU (no GPU needed).
//
// Two kinds of check:
//  - bitwise: the same bytes. For ops that only move or select values (views, copies, cat,
//    stack, where, masked_fill, embedding's gather, dtype conversions, dropout's mask) and for
//    integer results.
//  - an allowance per element i, in the compared dtype T:
//      |got_i - want_i| <= ulps * ulp_T(want_i) + rel * |want_i| + max_rel * max_j |want_j|
//                          + extra_i + 2 ulp_T(smallest normal of T)
//    ulp_T(x) is the spacing of T's values at |x| (below the smallest normal, the subnormal
//    spacing). `ulps` counts the roundings and the library-function error between the two
//    devices; `rel` is a relative error at the arithmetic's precision (an f32 accumulation
//    behind a bf16 result, say); `extra_i` comes from the case (tests/parity_allowances.h):
//    an absolute allowance built from the magnitudes of the terms behind element i (sum_k
//    |a_k b_k| for a dot product), because where a sum cancels, its error is set by its terms,
//    not by its small result. `max_rel` (a floor scaled by the tensor's largest value) is for
//    composed ops only, at the arithmetic's precision, never the storage type's.
//  Where want_i is exactly 0 (a masked key, an ignored row, a dropped or clamped element),
//  got_i must be exactly 0 (either sign) unless the bound says a zero can be accidental.
//  NaN must meet NaN and an infinity the same infinity.
#include <cstdint>
#include <string>

#include "core/ops.h"

namespace minivl::parity {

// Unit roundoff of `dtype`: half its ulp at 1 (f32 2^-24, bf16 2^-8, f16 2^-11, f64 2^-53).
double unit_roundoff(DType dtype);
// The spacing of `dtype`'s values at |x| (the ulp of x); the subnormal spacing below the smallest normal.
double ulp(double x, DType dtype);
double smallest_normal(DType dtype);
// The accumulator's unit roundoff for arithmetic on `dtype`: f64 for f64, f32 for every other float type.
double accumulator_roundoff(DType dtype);

struct Bound {
  bool bitwise = false;
  double ulps = 0;      // of the compared dtype at |want|
  double rel = 0;       // times |want|
  double max_rel = 0;   // times max |want| (composed ops)
  bool exact_zeros = true;
  std::string family;   // named in failure messages: which model the numbers come from

  static Bound exact(std::string family) { return {true, 0, 0, 0, true, std::move(family)}; }
  static Bound within(double ulps, std::string family) { return {false, ulps, 0, 0, true, std::move(family)}; }
  Bound& plus_rel(double r) { rel += r; return *this; }
  Bound& plus_max_rel(double r) { max_rel += r; return *this; }
  Bound& accidental_zeros() { exact_zeros = false; return *this; }
};

struct CompareResult {
  bool ok = true;
  std::string message;   // the first offending element, and how many there were
  double worst = 0;      // max over elements of |got - want| / allowance (<= 1 when ok)
  int64_t mismatches = 0;
};

// Compares `got` (any device) with `want` (the CPU's). `extra`: undefined, or want's shape
// (f64 or any float dtype), the per-element absolute allowance of the case's model.
CompareResult compare(const Tensor& got, const Tensor& want, const Bound& bound, const Tensor& extra = Tensor());

// Bit-for-bit comparison of two tensors of the same dtype and shape (any devices, any strides).
CompareResult compare_bitwise(const Tensor& got, const Tensor& want);

}  // namespace minivl::parity
