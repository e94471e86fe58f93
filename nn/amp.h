#pragma once
// Mixed precision.
//
// Autocast: a thread-local switch that nn::Linear, nn::PatchEmbed and
// attention consult. While it is active for a tensor's device, those layers
// cast their f32 inputs and (f32 master) weights to the autocast dtype
// (bf16 by default) for the GEMM/attention, and cast the result back to the
// input's dtype, so everything around them (residual adds, norms, losses)
// stays f32 and the optimiser sees f32 gradients on f32 weights (the casts
// are differentiable). Norms and losses never autocast.
//
// It is active on CUDA tensors when enabled; on the CPU only when `cpu` is
// set too (for tests: the CPU bf16 GEMM widens to f32, so it is slow and
// exists to check the plumbing).
//
//   { nn::AutocastGuard amp(DType::bf16); loss = model.forward(x); }
//
// f16 adds dynamic loss scaling: GradScaler multiplies the loss by `scale`,
// unscale_() divides the gradients back and checks them, and update() halves
// the scale after an overflow (skipping that step) and doubles it after
// growth_interval clean steps.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include <nlohmann/json.hpp>

namespace minivl::nn {

struct AutocastState {
  bool enabled = false;
  DType dtype = DType::bf16;
  bool cpu = false;  // also autocast CPU tensors (tests)
};

AutocastState autocast_state();
// True when `device`'s tensors are autocast now.
bool autocast_active(Device device);
// x cast to the autocast dtype when autocast is active for it and x is f32; x otherwise.
// For a parameter (an f32 leaf that requires grad) the optimizer can keep the cast copy: the
// first cast marks the parameter, nn::AdamW then writes its low-precision copy in the same pass
// as each update, and autocast hands that copy out (no cast kernel) for as long as the
// parameter's storage version is the one the copy was written at. The gradient goes back to
// f32 as through a cast.
Tensor autocast(const Tensor& x);

// For the optimizer: the low-precision copy autocast asked for for `param` (made on the first
// call; undefined when none was asked for), and, once a kernel has written it from param's
// current values, autocast_copy_written(param) to hand it out.
Tensor autocast_copy_for(const Tensor& param);
void autocast_copy_written(const Tensor& param);

class AutocastGuard {
 public:
  explicit AutocastGuard(DType dtype = DType::bf16, bool enabled = true, bool cpu = false);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  AutocastState previous_;
};

struct GradScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {}, bool enabled = true);

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  // loss * scale (loss unchanged when disabled).
  Tensor scale_loss(const Tensor& loss) const;
  // Divides every gradient by the scale in place and returns true when all are finite.
  bool unscale_(const std::vector<Tensor>& params);
  // After the step (or the skipped step): backs off on overflow, grows after a clean run.
  void update(bool found_inf);

  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

 private:
  GradScalerOptions options_;
  bool enabled_;
  double scale_;
  int64_t growth_tracker_ = 0;
};

// True when every element of every defined gradient is finite (no inf, no NaN).
bool grads_finite(const std::vector<Tensor>& params);

}  // namespace minivl::nn
