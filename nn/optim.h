#pragma once
// Optimisers (AdamW, SGD with momentum), learning-rate schedules, clipping by
// global gradient norm, and a gradient-accumulation helper.
//
// Parameters come in groups; a group carries its own weight decay. For a
// Module, make_param_groups() splits them by ParamKind: weights decay; biases,
// norms and embeddings do not unless the policy says so.
//
// Optimiser state is f32 (f64 for f64 parameters) on the parameters' device and
// saves to/loads from a safetensors file: tensors "<param name>.<slot>" and
// metadata {"optimizer": "adamw", "step": "N"}.
#include <cstdint>
#include <map>
#include <string>
#include <functional>
#include <vector>

#include "core/tensor.h"
#include "core/tensor_io.h"
#include "nn/module.h"

namespace minivl::nn {

struct ParamGroup {
  std::string name;                // "decay", "no_decay", ...
  std::vector<std::string> names;  // one per parameter (state keys)
  std::vector<Tensor> params;
  double weight_decay = 0.0;
  double lr_scale = 1.0;  // this group's lr is the optimizer's (the schedule's) times this
};

struct DecayPolicy {
  double weight_decay = 0.0;
  bool decay_biases = false;
  bool decay_norms = false;
  bool decay_embeddings = false;
};

// Two groups, "decay" and "no_decay" (an empty one is left out), from the module's ParamKinds.
std::vector<ParamGroup> make_param_groups(const Module& module, const DecayPolicy& policy);
// Splits each group by scale_of(parameter name): parameters with scale 1 stay in the group,
// the others move to a group "<name>*<scale>" with that lr_scale (first-seen order, same decay).
std::vector<ParamGroup> split_by_lr_scale(std::vector<ParamGroup> groups,
                                          const std::function<double(const std::string&)>& scale_of);
// One group holding `params`, named param.0, param.1, ...
std::vector<ParamGroup> single_group(const std::vector<Tensor>& params, double weight_decay = 0.0);

class Optimizer {
 public:
  Optimizer(std::vector<ParamGroup> groups, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual const char* kind() const = 0;  // "adamw", "sgd"
  // One update from the parameters' .grad (parameters without a gradient are skipped).
  // grad_scale multiplies every gradient first (1 / loss scale, 1 / accumulation steps...).
  virtual void step(double grad_scale = 1.0) = 0;
  void zero_grad();  // drops every .grad

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t step_count() const {
    refresh_step();
    return step_;
  }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  std::vector<Tensor> parameters() const;

  // State as named tensors + string metadata (the step, the kind).
  virtual NamedTensors state_tensors() const = 0;
  std::map<std::string, std::string> state_metadata() const;
  void load_state(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata);
  void save(const std::string& path) const;
  void load(const std::string& path);

 protected:
  virtual void load_state_tensors(const std::map<std::string, Tensor>& tensors) = 0;
  // The state slot for parameter p (shape of p, f32 or f64, p's device), zero-initialised.
  static Tensor make_state(const Tensor& p);
  // Brings step_ up to date where the count lives on the device (AdamW's guarded steps).
  virtual void refresh_step() const {}

  std::vector<ParamGroup> groups_;
  double lr_;
  mutable int64_t step_ = 0;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
};

// PyTorch's AdamW (decoupled weight decay, bias correction). With f32
// parameters on a device whose kernel table has `adamw`, the whole step is one
// fused multi-tensor kernel call per device; otherwise it runs as public ops.
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, AdamWOptions options);
  const char* kind() const override { return "adamw"; }
  void step(double grad_scale = 1.0) override;
  NamedTensors state_tensors() const override;
  const AdamWOptions& options() const { return options_; }
  // Force the public-op path (tests compare it with the kernel).
  bool use_fused = true;

  // The guarded step, decided on the device so that nothing waits for it (kernels/adamw_kernel.h):
  // clips the global gradient norm to max_norm (0: no clipping) and skips the update, leaving the
  // weights, the moments and the step count alone, when that norm or `loss` (one element, or
  // undefined) is not finite. Returns {norm, skipped} as a (2) f64 tensor on the device, to read
  // when convenient; undefined, with nothing done, when the fused kernel cannot take every
  // parameter (not all f32 and contiguous on one device with the kernel, or use_fused off): then
  // check on the host and call step().
  Tensor step_guarded(const Tensor& loss, double max_norm);

 protected:
  void load_state_tensors(const std::map<std::string, Tensor>& tensors) override;
  void refresh_step() const override;

 private:
  AdamWOptions options_;
  std::map<std::string, Tensor> exp_avg_, exp_avg_sq_;  // by parameter name
  // The guarded steps' decision buffer (kAdamWControlSize f64); while step_on_device_, its
  // element 3 is the step count and step_ a copy read on demand.
  Tensor control_;
  bool step_on_device_ = false;
};

struct SGDOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  bool nesterov = false;
};

// PyTorch's SGD: g += wd * p (coupled L2, from the group), b = momentum * b + g
// (b = g on the first step), p -= lr * (nesterov ? g + momentum * b : b).
class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, SGDOptions options);
  const char* kind() const override { return "sgd"; }
  void step(double grad_scale = 1.0) override;
  NamedTensors state_tensors() const override;

 protected:
  void load_state_tensors(const std::map<std::string, Tensor>& tensors) override;

 private:
  SGDOptions options_;
  std::map<std::string, Tensor> momentum_;
};

// lr for the update with 0-based index `step`:
//   warm-up (step < warmup_steps): base_lr * (step + 1) / warmup_steps
//   constant: base_lr
//   cosine:   min_lr + (base_lr - min_lr) * (1 + cos(pi * t)) / 2,
//             t = (step - warmup_steps) / (total_steps - warmup_steps), clamped to [0, 1]
struct LRSchedule {
  enum class Kind { constant, cosine };
  Kind kind = Kind::constant;
  double base_lr = 1e-3;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;
  double lr_at(int64_t step) const;
  static Kind kind_from_name(const std::string& name);  // "constant", "cosine"
};

// Scales every gradient so that their global L2 norm is at most max_norm
// (by max_norm / (norm + 1e-6), as PyTorch). Returns the norm before clipping
// (computed in f64). Non-finite norms leave the gradients as they are.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);
double global_grad_norm(const std::vector<Tensor>& params);

// Gradient accumulation over `micro_steps` micro-batches: scale each
// micro-batch's loss by loss_scale(), backward, then call micro_step(); it
// returns true on the last micro-batch of a group, when the optimiser steps.
class GradAccumulator {
 public:
  explicit GradAccumulator(int64_t micro_steps = 1);
  double loss_scale() const { return 1.0 / double(micro_steps_); }
  bool micro_step();
  int64_t micro_steps() const { return micro_steps_; }
  int64_t position() const { return position_; }  // micro-batches into the current group

 private:
  int64_t micro_steps_;
  int64_t position_ = 0;
};

}  // namespace minivl::nn
