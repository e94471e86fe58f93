#pragma once
// Parameter initialisers. Each fills `t` in place (any device, any floating
// dtype) under no-grad, drawing from the default generator's Philox stream,
// and returns it. Fan in/out follow PyTorch: for a (out, in, ...) weight,
// fan_in = in * receptive field, fan_out = out * receptive field.
#include <utility>

#include "core/tensor.h"

namespace minivl::nn::init {

Tensor zeros_(const Tensor& t);
Tensor ones_(const Tensor& t);
Tensor constant_(const Tensor& t, double value);
Tensor uniform_(const Tensor& t, double low, double high);
Tensor normal_(const Tensor& t, double mean = 0.0, double std = 1.0);
// Normal(mean, std) restricted to [a, b] (absolute bounds, as PyTorch's trunc_normal_),
// drawn by inverting the CDF, so exactly one uniform per element.
Tensor trunc_normal_(const Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0);
Tensor xavier_uniform_(const Tensor& t, double gain = 1.0);
Tensor xavier_normal_(const Tensor& t, double gain = 1.0);
enum class FanMode { fan_in, fan_out };
// gain = sqrt(2 / (1 + a^2)) (leaky ReLU slope a; a = 0 is ReLU).
Tensor kaiming_uniform_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in);
Tensor kaiming_normal_(const Tensor& t, double a = 0.0, FanMode mode = FanMode::fan_in);

std::pair<int64_t, int64_t> fan_in_and_fan_out(const Tensor& t);
// The standard normal's inverse CDF (exposed for its test).
double normal_quantile(double p);

}  // namespace minivl::nn::init
