#include "nn/init.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl::nn::init {
namespace {

void check(const Tensor& t, const char* fn) {
  MINIVL_CHECK(t.defined() && t.is_floating_point(), "init::", fn, ": expected a floating tensor, got ",
               t.defined() ? t.desc() : "undefined");
}

// Writes `values` (any device/dtype; f32 on the CPU here) into t.
Tensor assign(const Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  Tensor dst = t.detach();
  dst.copy_(values);
  return t;
}

}  // namespace

Tensor zeros_(const Tensor& t) { return constant_(t, 0.0); }
Tensor ones_(const Tensor& t) { return constant_(t, 1.0); }

Tensor constant_(const Tensor& t, double value) {
  check(t, "constant_");
  NoGradGuard no_grad;
  t.detach().fill_(value);
  return t;
}

Tensor uniform_(const Tensor& t, double low, double high) {
  check(t, "uniform_");
  MINIVL_CHECK(low <= high, "init::uniform_: low ", low, " > high ", high);
  NoGradGuard no_grad;
  Tensor u = rand(t.shape(), DType::f64);
  return assign(t, add(mul(u, high - low), low));
}

Tensor normal_(const Tensor& t, double mean, double std) {
  check(t, "normal_");
  MINIVL_CHECK(std >= 0, "init::normal_: std must be >= 0, got ", std);
  NoGradGuard no_grad;
  Tensor z = randn(t.shape(), DType::f64);
  return assign(t, add(mul(z, std), mean));
}

// Acklam's rational approximation, then one Halley step on erfc: ~1e-15 relative.
double normal_quantile(double p) {
  MINIVL_CHECK(p > 0.0 && p < 1.0, "normal_quantile: p must be in (0, 1), got ", p);
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

Tensor trunc_normal_(const Tensor& t, double mean, double std, double a, double b) {
  check(t, "trunc_normal_");
  MINIVL_CHECK(a < b && std > 0, "init::trunc_normal_: need a < b and std > 0, got a=", a, " b=", b,
               " std=", std);
  NoGradGuard no_grad;
  auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  const double lo = cdf((a - mean) / std), hi = cdf((b - mean) / std);
  Tensor u = rand(t.shape(), DType::f64).contiguous();
  double* p = u.data<double>();
  for (int64_t i = 0; i < u.numel(); ++i) {
    double q = lo + (hi - lo) * p[i];
    q = std::min(std::max(q, 1e-300), 1.0 - 1e-16);
    double x = mean + std * normal_quantile(q);
    p[i] = std::min(std::max(x, a), b);
  }
  return assign(t, u);
}

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t) {
  MINIVL_CHECK(t.dim() >= 2, "init: fan in/out needs a tensor with at least 2 dims, got ", t.shape_str());
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

Tensor xavier_uniform_(const Tensor& t, double gain) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  double bound = gain * std::sqrt(6.0 / double(fan_in + fan_out));
  return uniform_(t, -bound, bound);
}

Tensor xavier_normal_(const Tensor& t, double gain) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / double(fan_in + fan_out)));
}

namespace {
double kaiming_std(const Tensor& t, double a, FanMode mode) {
  auto [fan_in, fan_out] = fan_in_and_fan_out(t);
  double fan = double(mode == FanMode::fan_in ? fan_in : fan_out);
  return std::sqrt(2.0 / (1.0 + a * a)) / std::sqrt(fan);
}
}  // namespace

Tensor kaiming_uniform_(const Tensor& t, double a, FanMode mode) {
  double bound = std::sqrt(3.0) * kaiming_std(t, a, mode);
  return uniform_(t, -bound, bound);
}

Tensor kaiming_normal_(const Tensor& t, double a, FanMode mode) { return normal_(t, 0.0, kaiming_std(t, a, mode)); }

}  // namespace minivl::nn::init
