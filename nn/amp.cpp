#include "nn/amp.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl::nn {
namespace {
thread_local AutocastState t_autocast;
}

AutocastState autocast_state() { return t_autocast; }

bool autocast_active(Device device) {
  return t_autocast.enabled && (device.is_cuda() || t_autocast.cpu);
}

Tensor autocast(const Tensor& x) {
  if (!x.defined() || x.dtype() != DType::f32 || !autocast_active(x.device())) return x;
  return x.to(t_autocast.dtype);
}

AutocastGuard::AutocastGuard(DType dtype, bool enabled, bool cpu) : previous_(t_autocast) {
  MINIVL_CHECK(dtype == DType::bf16 || dtype == DType::f16, "autocast: dtype must be bf16 or f16, got ",
               dtype_name(dtype));
  t_autocast = {enabled, dtype, cpu};
}

AutocastGuard::~AutocastGuard() { t_autocast = previous_; }

GradScaler::GradScaler(GradScalerOptions options, bool enabled)
    : options_(options), enabled_(enabled), scale_(options.init_scale) {
  MINIVL_CHECK(options.init_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
                   options.backoff_factor < 1 && options.growth_interval > 0,
               "GradScaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, growth_interval > 0");
}

Tensor GradScaler::scale_loss(const Tensor& loss) const { return enabled_ ? mul(loss, scale_) : loss; }

// x * 0 is 0 for every finite x and NaN for inf or NaN, so the sum of g * 0 is
// exactly 0 when g is finite; one reduction per tensor, no overflow from the sum itself.
bool grads_finite(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!std::isfinite(sum(mul(g, 0.0)).item())) return false;
  }
  return true;
}

bool GradScaler::unscale_(const std::vector<Tensor>& params) {
  if (!enabled_) return true;
  NoGradGuard no_grad;
  const double inv = 1.0 / scale_;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (g.defined()) Tensor(p).set_grad(mul(g, inv));
  }
  return grads_finite(params);
}

void GradScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ >= options_.growth_interval) {
    scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
}

nlohmann::json GradScaler::state() const {
  return {{"enabled", enabled_}, {"scale", scale_}, {"growth_tracker", growth_tracker_}};
}

void GradScaler::load_state(const nlohmann::json& s) {
  enabled_ = s.at("enabled").get<bool>();
  scale_ = s.at("scale").get<double>();
  growth_tracker_ = s.at("growth_tracker").get<int64_t>();
}

}  // namespace minivl::nn
