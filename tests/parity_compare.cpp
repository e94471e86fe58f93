// The per-element parity comparison (tests/parity_compare.h).
#include "tests/parity_compare.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

namespace minivl::parity {
namespace {

struct Format {
  int precision;  // significand bits, the implicit one included
  int emin;       // exponent of the smallest normal
};
Format format_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return {24, -126};
    case DType::f64: return {53, -1022};
    case DType::bf16: return {8, -126};
    case DType::f16: return {11, -14};
    default: return {1, 0};  // integers: spacing 1
  }
}

// "[2, 5]" for flat index i of `shape`.
std::string index_str(int64_t i, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
  std::ostringstream os;
  os << "[";
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << "]";
  return os.str();
}

std::string value_str(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string hex_bytes(const unsigned char* p, size_t n) {
  std::string s = "0x";
  char buf[4];
  for (size_t b = n; b-- > 0;) {  // little-endian: most significant byte last in memory
    std::snprintf(buf, sizeof buf, "%02x", p[b]);
    s += buf;
  }
  return s;
}

}  // namespace

double unit_roundoff(DType dtype) { return std::ldexp(1.0, -format_of(dtype).precision); }

double smallest_normal(DType dtype) { return std::ldexp(1.0, format_of(dtype).emin); }

double accumulator_roundoff(DType dtype) { return unit_roundoff(dtype == DType::f64 ? DType::f64 : DType::f32); }

double ulp(double x, DType dtype) {
  const Format f = format_of(dtype);
  const double a = std::abs(x);
  if (std::isinf(a)) return std::numeric_limits<double>::infinity();
  if (std::isnan(a)) return std::numeric_limits<double>::quiet_NaN();
  if (a < std::ldexp(1.0, f.emin)) return std::ldexp(1.0, f.emin - f.precision + 1);
  int e;
  std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1): the binade's exponent is e - 1
  return std::ldexp(1.0, e - f.precision);
}

CompareResult compare_bitwise(const Tensor& got_any, const Tensor& want_any) {
  CompareResult r;
  if (got_any.dtype() != want_any.dtype() || got_any.shape() != want_any.shape()) {
    r.ok = false;
    r.message = std::string("bitwise: ") + dtype_name(got_any.dtype()) + " " + got_any.shape_str() + " vs " +
                dtype_name(want_any.dtype()) + " " + want_any.shape_str();
    return r;
  }
  const Tensor got = got_any.to(Device::cpu()).contiguous(), want = want_any.to(Device::cpu()).contiguous();
  const size_t es = dtype_size(want.dtype());
  const auto* g = static_cast<const unsigned char*>(got.data_ptr());
  const auto* w = static_cast<const unsigned char*>(want.data_ptr());
  const std::vector<double> gv = got.to_vector(), wv = want.to_vector();
  int64_t first = -1;
  for (int64_t i = 0; i < want.numel(); ++i) {
    if (std::memcmp(g + size_t(i) * es, w + size_t(i) * es, es) == 0) continue;
    if (first < 0) first = i;
    ++r.mismatches;
  }
  if (first >= 0) {
    r.ok = false;
    r.worst = std::numeric_limits<double>::infinity();
    const size_t i = size_t(first);
    std::ostringstream os;
    os << r.mismatches << " of " << want.numel() << " elements differ bitwise; first " << index_str(first, want.shape())
       << ": cuda " << value_str(gv[i]) << " (" << hex_bytes(g + i * es, es) << "), cpu " << value_str(wv[i]) << " ("
       << hex_bytes(w + i * es, es) << ")" << (std::isnan(gv[i]) && !std::isnan(wv[i]) ? " (NaN: an unwritten, poisoned element?)" : "");
    r.message = os.str();
  }
  return r;
}

CompareResult compare(const Tensor& got, const Tensor& want, const Bound& bound, const Tensor& extra) {
  CompareResult r;
  if (!got.defined() || !want.defined()) {
    r.ok = got.defined() == want.defined();
    if (!r.ok) r.message = "defined on one device only";
    return r;
  }
  if (got.shape() != want.shape()) {
    r.ok = false;
    r.message = "shape " + got.shape_str() + " vs " + want.shape_str();
    return r;
  }
  if (got.dtype() != want.dtype()) {
    r.ok = false;
    r.message = std::string("dtype ") + dtype_name(got.dtype()) + " vs " + dtype_name(want.dtype());
    return r;
  }
  if (bound.bitwise || !is_floating(want.dtype())) {  // integer results are exact whatever the bound says
    r = compare_bitwise(got, want);
    if (!r.ok) r.message += " [" + (bound.family.empty() ? std::string("exact") : bound.family) + "]";
    return r;
  }
  const DType dt = want.dtype();
  const std::vector<double> g = got.to(Device::cpu()).to_vector(), w = want.to_vector();
  std::vector<double> x;
  if (extra.defined()) {
    if (extra.shape() != want.shape()) {
      r.ok = false;
      r.message = "the allowance has shape " + extra.shape_str() + ", the result " + want.shape_str();
      return r;
    }
    x = extra.to_vector();
  }
  double scale = 0;
  for (double v : w) scale = std::max(scale, std::isfinite(v) ? std::abs(v) : 0.0);
  const double floor = 2 * ulp(smallest_normal(dt), dt);
  int64_t worst_i = -1;
  double worst_allow = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double gi = g[i], wi = w[i];
    double ratio;
    double allow = 0;
    if (std::isnan(wi)) {
      ratio = std::isnan(gi) ? 0 : std::numeric_limits<double>::infinity();
    } else if (std::isinf(wi) || std::isnan(gi) || std::isinf(gi)) {
      ratio = gi == wi ? 0 : std::numeric_limits<double>::infinity();
    } else if (wi == 0 && bound.exact_zeros) {
      ratio = gi == 0 ? 0 : std::numeric_limits<double>::infinity();
    } else {
      allow = bound.ulps * ulp(wi, dt) + bound.rel * std::abs(wi) + bound.max_rel * scale + (x.empty() ? 0 : x[i]) + floor;
      ratio = std::abs(gi - wi) / allow;
    }
    if (ratio > 1) ++r.mismatches;
    if (worst_i < 0 || ratio > r.worst) {
      r.worst = ratio;
      worst_i = int64_t(i);
      worst_allow = allow;
    }
  }
  if (r.mismatches > 0) {
    r.ok = false;
    const size_t i = size_t(worst_i);
    const double gi = g[i], wi = w[i];
    std::ostringstream os;
    os << r.mismatches << " of " << w.size() << " elements outside the bound; worst " << index_str(worst_i, want.shape())
       << ": cuda " << value_str(gi) << ", cpu " << value_str(wi);
    if (std::isnan(gi) && !std::isnan(wi)) {
      os << " (NaN: an unwritten, poisoned element?)";
    } else if (wi == 0 && bound.exact_zeros && std::isfinite(gi)) {
      os << " (must be exactly 0: masked, ignored, dropped or clamped)";
    } else if (std::isfinite(gi) && std::isfinite(wi)) {
      os << ", |diff| " << value_str(std::abs(gi - wi)) << " = " << value_str(std::abs(gi - wi) / ulp(wi, dt)) << " ulps of "
         << dtype_name(dt) << ", allowed " << value_str(worst_allow) << " (" << value_str(worst_allow / ulp(wi, dt))
         << " ulps)";
    }
    os << " [" << bound.family << "]";
    r.message = os.str();
  }
  return r;
}

}  // namespace minivl::parity
