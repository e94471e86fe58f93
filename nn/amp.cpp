#include "nn/amp.h"

#include <cmath>
#include <iterator>
#include <mutex>
#include <unordered_map>
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/error.h"
#include "core/storage.h"
#include "core/ops.h"

namespace minivl::nn {
namespace {
thread_local AutocastState t_autocast;
}

AutocastState autocast_state() { return t_autocast; }

bool autocast_active(Device device) {
  return t_autocast.enabled && (device.is_cuda() || t_autocast.cpu);
}

namespace {
// The optimizer-kept low-precision copies of parameters, by parameter.
struct LowCopy {
  std::weak_ptr<TensorImpl> owner;  // the key's tensor, so a reused address is not mistaken for it
  DType dtype = DType::bf16;
  Tensor low;                       // undefined until the optimizer makes it
  uint64_t version = 0;             // the parameter's storage version the copy was written at
  bool valid = false;
};
std::mutex g_low_mu;
std::unordered_map<const TensorImpl*, LowCopy> g_low;

struct CachedCastBackward final : Node {
  DType input_dtype = DType::f32;
  const char* name() const override { return "ToDTypeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {g[0].to(input_dtype)}; }
};

bool is_parameter(const Tensor& x) {
  return x.is_leaf() && x.requires_grad() && x.is_contiguous() && x.offset() == 0 &&
         x.nbytes() == x.storage()->nbytes();
}
}  // namespace

Tensor autocast(const Tensor& x) {
  if (!x.defined() || x.dtype() != DType::f32 || !autocast_active(x.device())) return x;
  const DType dtype = t_autocast.dtype;
  if (is_parameter(x)) {
    std::lock_guard<std::mutex> lock(g_low_mu);
    LowCopy& c = g_low[x.impl()];
    if (c.owner.lock() == x.impl_ptr() && c.dtype == dtype && c.valid && c.low.defined() &&
        c.version == x.storage()->version()) {
      Tensor out = c.low.detach();  // a handle on the copy, with a cast's history
      if (needs_grad({&x})) set_history(std::make_shared<CachedCastBackward>(), {x}, {out});
      return out;
    }
    if (c.owner.lock() != x.impl_ptr() || c.dtype != dtype) c = LowCopy{x.impl_ptr(), dtype, Tensor(), 0, false};
    if (g_low.size() > 4096)  // leaves that died (temporary ones autocast met): forget them
      for (auto it = g_low.begin(); it != g_low.end();) it = it->second.owner.expired() ? g_low.erase(it) : std::next(it);
  }
  return x.to(dtype);
}

Tensor autocast_copy_for(const Tensor& param) {
  std::lock_guard<std::mutex> lock(g_low_mu);
  auto it = g_low.find(param.impl());
  if (it == g_low.end()) return Tensor();
  LowCopy& c = it->second;
  if (c.owner.lock() != param.impl_ptr()) {
    g_low.erase(it);
    return Tensor();
  }
  if (!c.low.defined() || c.low.shape() != param.shape() || c.low.device() != param.device())
    c.low = empty(param.shape(), c.dtype, param.device());
  c.valid = false;  // until the kernel has written it
  return c.low;
}

void autocast_copy_written(const Tensor& param) {
  std::lock_guard<std::mutex> lock(g_low_mu);
  auto it = g_low.find(param.impl());
  if (it == g_low.end() || !it->second.low.defined()) return;
  it->second.low.bump_version();  // a graph still holding the old copy fails its version check
  it->second.version = param.storage()->version();
  it->second.valid = true;
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
