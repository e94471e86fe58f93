#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "core/autograd.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/safetensors.h"
#include "nn/amp.h"

namespace minivl::nn {

// ---- groups ----
std::vector<ParamGroup> make_param_groups(const Module& module, const DecayPolicy& policy) {
  ParamGroup decay{"decay", {}, {}, policy.weight_decay}, no_decay{"no_decay", {}, {}, 0.0};
  for (const NamedParameter& p : module.named_parameters()) {
    bool decays = p.kind == ParamKind::weight || (p.kind == ParamKind::bias && policy.decay_biases) ||
                  (p.kind == ParamKind::norm && policy.decay_norms) ||
                  (p.kind == ParamKind::embedding && policy.decay_embeddings);
    ParamGroup& g = decays ? decay : no_decay;
    g.names.push_back(p.name);
    g.params.push_back(p.tensor);
  }
  std::vector<ParamGroup> out;
  if (!decay.params.empty()) out.push_back(std::move(decay));
  if (!no_decay.params.empty()) out.push_back(std::move(no_decay));
  return out;
}

std::vector<ParamGroup> split_by_lr_scale(std::vector<ParamGroup> groups,
                                          const std::function<double(const std::string&)>& scale_of) {
  std::vector<ParamGroup> out;
  for (ParamGroup& g : groups) {
    ParamGroup kept{g.name, {}, {}, g.weight_decay, g.lr_scale};
    std::vector<ParamGroup> scaled;
    for (size_t i = 0; i < g.params.size(); ++i) {
      const double scale = scale_of(g.names[i]);
      MINIVL_CHECK(std::isfinite(scale) && scale >= 0, "optimizer: lr scale ", scale, " for parameter '", g.names[i],
                   "' must be finite and >= 0");
      ParamGroup* target = &kept;
      if (scale != 1.0) {
        auto it = std::find_if(scaled.begin(), scaled.end(),
                               [&](const ParamGroup& s) { return s.lr_scale == g.lr_scale * scale; });
        if (it == scaled.end()) {
          std::ostringstream name;
          name << g.name << "*" << scale;
          scaled.push_back({name.str(), {}, {}, g.weight_decay, g.lr_scale * scale});
          it = scaled.end() - 1;
        }
        target = &*it;
      }
      target->names.push_back(g.names[i]);
      target->params.push_back(g.params[i]);
    }
    if (!kept.params.empty()) out.push_back(std::move(kept));
    for (ParamGroup& s : scaled) out.push_back(std::move(s));
  }
  return out;
}

std::vector<ParamGroup> single_group(const std::vector<Tensor>& params, double weight_decay) {
  ParamGroup g{"params", {}, params, weight_decay};
  for (size_t i = 0; i < params.size(); ++i) g.names.push_back("param." + std::to_string(i));
  return {g};
}

// ---- Optimizer ----
Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr) : groups_(std::move(groups)), lr_(lr) {
  std::set<std::string> names;
  std::set<TensorImpl*> seen;
  for (const ParamGroup& g : groups_) {
    MINIVL_CHECK(g.names.size() == g.params.size(), "optimizer: group '", g.name, "' has ", g.params.size(),
                 " parameters but ", g.names.size(), " names");
    for (size_t i = 0; i < g.params.size(); ++i) {
      MINIVL_CHECK(g.params[i].defined() && g.params[i].is_floating_point() && g.params[i].is_leaf(),
                   "optimizer: parameter '", g.names[i], "' must be a defined floating leaf tensor");
      MINIVL_CHECK(names.insert(g.names[i]).second, "optimizer: parameter name '", g.names[i], "' appears twice");
      MINIVL_CHECK(seen.insert(g.params[i].impl()).second, "optimizer: parameter '", g.names[i],
                   "' is in more than one group");
    }
  }
}

void Optimizer::zero_grad() {
  for (const ParamGroup& g : groups_)
    for (Tensor p : g.params) p.zero_grad();
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> out;
  for (const ParamGroup& g : groups_) out.insert(out.end(), g.params.begin(), g.params.end());
  return out;
}

Tensor Optimizer::make_state(const Tensor& p) {
  return zeros(p.shape(), p.dtype() == DType::f64 ? DType::f64 : DType::f32, p.device());
}

std::map<std::string, std::string> Optimizer::state_metadata() const {
  return {{"optimizer", kind()}, {"step", std::to_string(step_count())}};
}

void Optimizer::load_state(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  auto kind_it = metadata.find("optimizer");
  MINIVL_CHECK(kind_it != metadata.end() && kind_it->second == kind(), "optimizer state: expected '", kind(),
               "' state, got '", kind_it == metadata.end() ? std::string("(none)") : kind_it->second, "'");
  auto step_it = metadata.find("step");
  MINIVL_CHECK(step_it != metadata.end(), "optimizer state: no 'step' in the metadata");
  std::map<std::string, Tensor> by_name(tensors.begin(), tensors.end());
  load_state_tensors(by_name);
  step_ = std::stoll(step_it->second);
}

void Optimizer::save(const std::string& path) const {
  save_safetensors(path, state_tensors(), state_metadata());
}

void Optimizer::load(const std::string& path) {
  std::map<std::string, std::string> metadata = SafetensorsFile::open(path).metadata();
  try {
    load_state(load_safetensors(path), metadata);
  } catch (const Error& e) {
    MINIVL_FAIL(path, ": ", e.what());
  }
}

namespace {
// Points t at the low-precision copy autocast keeps of p, if it asked for one (nn/amp.h).
bool attach_autocast_copy(AdamWTensor& t, const Tensor& p) {
  const Tensor low = autocast_copy_for(p);
  if (!low.defined()) return false;
  t.param_low = low.data_ptr();
  t.low_dtype = low.dtype() == DType::f16 ? AdamWTensor::Low::f16 : AdamWTensor::Low::bf16;
  return true;
}

// Loads "<param>.<slot>" tensors for `slots` into `states` (slot -> name -> tensor), checking every name.
void load_slots(const std::vector<ParamGroup>& groups, const std::map<std::string, Tensor>& tensors,
                const std::vector<std::pair<std::string, std::map<std::string, Tensor>*>>& slots,
                Tensor (*make)(const Tensor&)) {
  std::map<std::string, const Tensor*> params;
  for (const ParamGroup& g : groups)
    for (size_t i = 0; i < g.params.size(); ++i) params[g.names[i]] = &g.params[i];
  std::vector<std::pair<Tensor, Tensor>> copies;
  std::vector<std::tuple<std::map<std::string, Tensor>*, std::string, Tensor>> installs;
  for (const auto& [key, t] : tensors) {
    bool matched = false;
    for (const auto& [slot, states] : slots) {
      const std::string suffix = "." + slot;
      if (key.size() <= suffix.size() || key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      std::string name = key.substr(0, key.size() - suffix.size());
      auto it = params.find(name);
      MINIVL_CHECK(it != params.end(), "optimizer state: '", key, "' names no parameter of this optimizer");
      MINIVL_CHECK(t.shape() == it->second->shape(), "optimizer state: '", key, "' has shape ", t.shape_str(),
                   " but the parameter has ", it->second->shape_str());
      Tensor dst = make(*it->second);
      copies.emplace_back(dst, t);
      installs.emplace_back(states, name, dst);
      matched = true;
      break;
    }
    MINIVL_CHECK(matched, "optimizer state: unexpected tensor '", key, "'");
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  for (const auto& [slot, states] : slots) states->clear();
  for (auto& [states, name, t] : installs) (*states)[name] = t;
}
}  // namespace

// ---- AdamW ----
AdamW::AdamW(std::vector<ParamGroup> groups, AdamWOptions options)
    : Optimizer(std::move(groups), options.lr), options_(options) {
  MINIVL_CHECK(options.lr >= 0 && options.eps >= 0 && options.beta1 >= 0 && options.beta1 < 1 &&
                   options.beta2 >= 0 && options.beta2 < 1,
               "AdamW: need lr >= 0, eps >= 0 and betas in [0, 1), got lr=", options.lr, " betas=(", options.beta1,
               ", ", options.beta2, ") eps=", options.eps);
}

void AdamW::refresh_step() const {
  if (step_on_device_) step_ = int64_t(control_.select(0, 3).item());
}

Tensor AdamW::step_guarded(const Tensor& loss, double max_norm) {
  MINIVL_CHECK(max_norm >= 0, "AdamW::step_guarded: max_norm must be >= 0, got ", max_norm);
  NoGradGuard no_grad;
  struct Entry {
    const ParamGroup* group;
    size_t index;
    Tensor grad;
  };
  std::vector<Entry> entries;
  std::optional<Device> device;
  for (const ParamGroup& group : groups_)
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& p = group.params[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (!use_fused || p.dtype() != DType::f32 || !p.is_contiguous() || !kernels().adamw[int(p.device().type)] ||
          (device && *device != p.device()) || g.device() != p.device())
        return Tensor();
      device = p.device();
      entries.push_back({&group, i, g.to(DType::f32).contiguous()});
    }
  const Device dev = device.value_or(groups_.empty() || groups_[0].params.empty() ? Device::cpu()
                                                                                  : groups_[0].params[0].device());
  if (!kernels().adamw[int(dev.type)] || !use_fused) return Tensor();
  if (!step_on_device_ || !control_.defined() || control_.device() != dev) {
    std::vector<double> c(kAdamWControlSize, 0.0);
    c[3] = double(step_);
    control_ = from_vector(c, {kAdamWControlSize}, DType::f64, dev);  // once: later steps keep it there
    step_on_device_ = true;
  }
  Tensor loss_value;
  if (loss.defined()) {
    MINIVL_CHECK(loss.numel() == 1, "AdamW::step_guarded: the loss must have one element, got ", loss.shape_str());
    loss_value = loss.detach().to(dev).to(DType::f32).contiguous();
  }
  AdamWHyper hyper;
  hyper.beta1 = float(options_.beta1);
  hyper.beta2 = float(options_.beta2);
  hyper.eps = float(options_.eps);
  hyper.beta1_exact = options_.beta1;
  hyper.beta2_exact = options_.beta2;
  hyper.control = control_.data<double>();
  hyper.loss = loss_value.defined() ? loss_value.data<float>() : nullptr;
  hyper.max_norm = max_norm;
  using FusedKey = double;  // lr scale -> tensors: one update call each, after one measure call over all
  std::map<FusedKey, std::vector<AdamWTensor>> fused;
  std::vector<AdamWTensor> all;
  std::vector<Tensor> with_copies;  // parameters whose autocast copy the update writes
  for (const Entry& e : entries) {
    const Tensor& p = e.group->params[e.index];
    const std::string& name = e.group->names[e.index];
    Tensor& m = exp_avg_[name];
    Tensor& v = exp_avg_sq_[name];
    if (!m.defined()) m = make_state(p);
    if (!v.defined()) v = make_state(p);
    AdamWTensor t{p.data<float>(), e.grad.data<float>(), m.data<float>(), v.data<float>(), p.numel(),
                  float(e.group->weight_decay)};
    if (attach_autocast_copy(t, p)) with_copies.push_back(p);
    fused[e.group->lr_scale].push_back(t);
    all.push_back(t);
  }
  const auto adamw = kernel_for(kernels().adamw, dev, "adamw");
  hyper.mode = AdamWHyper::Mode::measure;
  adamw(all.data(), int64_t(all.size()), hyper);
  hyper.mode = AdamWHyper::Mode::update;
  for (auto& [scale, tensors] : fused) {
    hyper.lr = float(lr_ * scale);
    kernel_for(kernels().adamw, dev, "adamw")(tensors.data(), int64_t(tensors.size()), hyper);
  }
  for (const Entry& e : entries) e.group->params[e.index].bump_version();
  for (const Tensor& p : with_copies) autocast_copy_written(p);
  return control_.narrow(0, 1, 2).clone();  // {norm, skipped}: the buffer is rewritten next step
}

void AdamW::step(double grad_scale) {
  NoGradGuard no_grad;
  refresh_step();
  step_on_device_ = false;  // the count is the host's again (a later guarded step uploads it)
  ++step_;
  const double bc1 = 1.0 - std::pow(options_.beta1, double(step_));
  const double bc2 = 1.0 - std::pow(options_.beta2, double(step_));
  AdamWHyper hyper;  // hyper.lr: per fused call, lr_ times the group's lr_scale
  hyper.beta1 = float(options_.beta1);
  hyper.beta2 = float(options_.beta2);
  hyper.eps = float(options_.eps);
  hyper.bias_correction1 = float(bc1);
  hyper.bias_correction2 = float(bc2);
  hyper.grad_scale = float(grad_scale);

  // (device type, device index, lr scale) -> tensors: one fused call each
  using FusedKey = std::tuple<int, int, double>;
  std::map<FusedKey, std::vector<AdamWTensor>> fused;
  std::map<FusedKey, std::vector<Tensor>> touched;  // parameters written through raw pointers
  std::vector<Tensor> keep;                         // gradients converted for the kernel
  std::vector<Tensor> with_copies;                  // parameters whose autocast copy the update writes
  for (const ParamGroup& group : groups_) {
    const double lr = lr_ * group.lr_scale;
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& p = group.params[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      const std::string& name = group.names[i];
      Tensor& m = exp_avg_[name];
      Tensor& v = exp_avg_sq_[name];
      if (!m.defined()) m = make_state(p);
      if (!v.defined()) v = make_state(p);
      const Device dev = p.device();
      if (use_fused && p.dtype() == DType::f32 && p.is_contiguous() && kernels().adamw[int(dev.type)]) {
        Tensor gc = g.to(DType::f32).contiguous();
        if (gc.device() != dev) gc = gc.to(dev);
        keep.push_back(gc);
        const FusedKey key{int(dev.type), dev.index, group.lr_scale};
        AdamWTensor t{p.data<float>(), gc.data<float>(), m.data<float>(), v.data<float>(), p.numel(),
                      float(group.weight_decay)};
        if (attach_autocast_copy(t, p)) with_copies.push_back(p);
        fused[key].push_back(t);
        touched[key].push_back(p);
        continue;
      }
      // Public ops, in the state dtype.
      const DType sd = m.dtype();
      Tensor gs = g.to(sd);
      if (grad_scale != 1.0) gs = mul(gs, grad_scale);
      Tensor m_new = add(mul(m, options_.beta1), mul(gs, 1.0 - options_.beta1));
      Tensor v_new = add(mul(v, options_.beta2), mul(mul(gs, gs), 1.0 - options_.beta2));
      m.copy_(m_new);
      v.copy_(v_new);
      Tensor denom = add(mul(sqrt(v_new), 1.0 / std::sqrt(bc2)), options_.eps);
      Tensor update = mul(div(m_new, denom), lr / bc1);
      Tensor pd = p.detach();
      pd.copy_(sub(mul(pd.to(sd), 1.0 - lr * group.weight_decay), update));
    }
  }
  for (auto& [key, tensors] : fused) {
    hyper.lr = float(lr_ * std::get<2>(key));
    kernel_for(kernels().adamw, Device{DeviceType(std::get<0>(key)), std::get<1>(key)}, "adamw")(
        tensors.data(), int64_t(tensors.size()), hyper);
    for (const Tensor& p : touched[key]) p.bump_version();
  }
  for (const Tensor& p : with_copies) autocast_copy_written(p);
}

NamedTensors AdamW::state_tensors() const {
  NamedTensors out;
  for (const ParamGroup& g : groups_)
    for (const std::string& name : g.names) {
      auto m = exp_avg_.find(name);
      if (m == exp_avg_.end()) continue;
      out.emplace_back(name + ".exp_avg", m->second);
      out.emplace_back(name + ".exp_avg_sq", exp_avg_sq_.at(name));
    }
  return out;
}

void AdamW::load_state_tensors(const std::map<std::string, Tensor>& tensors) {
  step_on_device_ = false;  // load_state sets step_ next
  load_slots(groups_, tensors, {{"exp_avg", &exp_avg_}, {"exp_avg_sq", &exp_avg_sq_}}, &Optimizer::make_state);
  for (const auto& [name, t] : exp_avg_)
    MINIVL_CHECK(exp_avg_sq_.count(name), "optimizer state: '", name, ".exp_avg' without '", name, ".exp_avg_sq'");
  MINIVL_CHECK(exp_avg_.size() == exp_avg_sq_.size(), "optimizer state: exp_avg_sq without exp_avg");
}

// ---- SGD ----
SGD::SGD(std::vector<ParamGroup> groups, SGDOptions options)
    : Optimizer(std::move(groups), options.lr), options_(options) {
  MINIVL_CHECK(options.lr >= 0 && options.momentum >= 0, "SGD: need lr >= 0 and momentum >= 0");
  MINIVL_CHECK(!options.nesterov || options.momentum > 0, "SGD: nesterov needs momentum > 0");
}

void SGD::step(double grad_scale) {
  NoGradGuard no_grad;
  ++step_;
  for (const ParamGroup& group : groups_) {
    for (size_t i = 0; i < group.params.size(); ++i) {
      const Tensor& p = group.params[i];
      Tensor g = p.grad();
      if (!g.defined()) continue;
      const DType sd = p.dtype() == DType::f64 ? DType::f64 : DType::f32;
      Tensor pd = p.detach();
      Tensor d = g.to(sd);
      if (grad_scale != 1.0) d = mul(d, grad_scale);
      if (group.weight_decay != 0.0) d = add(d, mul(pd.to(sd), group.weight_decay));
      if (options_.momentum != 0.0) {
        Tensor& buf = momentum_[group.names[i]];
        if (!buf.defined()) {
          buf = make_state(p);
          buf.copy_(d);
        } else {
          buf.copy_(add(mul(buf, options_.momentum), d));
        }
        d = options_.nesterov ? add(d, mul(buf, options_.momentum)) : buf;
      }
      pd.copy_(sub(pd.to(sd), mul(d, lr_ * group.lr_scale)));
    }
  }
}

NamedTensors SGD::state_tensors() const {
  NamedTensors out;
  for (const ParamGroup& g : groups_)
    for (const std::string& name : g.names) {
      auto it = momentum_.find(name);
      if (it != momentum_.end()) out.emplace_back(name + ".momentum_buffer", it->second);
    }
  return out;
}

void SGD::load_state_tensors(const std::map<std::string, Tensor>& tensors) {
  load_slots(groups_, tensors, {{"momentum_buffer", &momentum_}}, &Optimizer::make_state);
}

// ---- schedules ----
double LRSchedule::lr_at(int64_t step) const {
  MINIVL_CHECK(step >= 0, "LRSchedule: step must be >= 0, got ", step);
  if (step < warmup_steps) return base_lr * double(step + 1) / double(warmup_steps);
  if (kind == Kind::constant) return base_lr;
  const int64_t span = total_steps - warmup_steps;
  double t = span > 0 ? double(step - warmup_steps) / double(span) : 1.0;
  t = std::min(std::max(t, 0.0), 1.0);
  return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
}

LRSchedule::Kind LRSchedule::kind_from_name(const std::string& name) {
  if (name == "constant") return Kind::constant;
  if (name == "cosine") return Kind::cosine;
  MINIVL_FAIL("unknown schedule '", name, "' (expected constant or cosine)");
}

// ---- clipping ----
double global_grad_norm(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  double total = 0.0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor g64 = g.to(DType::f64);
    total += sum(mul(g64, g64)).item();
  }
  return std::sqrt(total);
}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  MINIVL_CHECK(max_norm > 0, "clip_grad_norm_: max_norm must be positive, got ", max_norm);
  const double norm = global_grad_norm(params);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double coef = max_norm / (norm + 1e-6);
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (g.defined()) Tensor(p).set_grad(mul(g, coef));
  }
  return norm;
}

// ---- accumulation ----
GradAccumulator::GradAccumulator(int64_t micro_steps) : micro_steps_(micro_steps) {
  MINIVL_CHECK(micro_steps >= 1, "GradAccumulator: micro_steps must be >= 1, got ", micro_steps);
}

bool GradAccumulator::micro_step() {
  if (++position_ < micro_steps_) return false;
  position_ = 0;
  return true;
}

}  // namespace minivl::nn
