#include "nn/module.h"

#include <map>
#include <sstream>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl::nn {

const char* param_kind_name(ParamKind kind) {
  switch (kind) {
    case ParamKind::weight: return "weight";
    case ParamKind::bias: return "bias";
    case ParamKind::norm: return "norm";
    case ParamKind::embedding: return "embedding";
  }
  return "?";
}

void set_data(const Tensor& dst, const Tensor& src) {
  TensorImpl* d = dst.impl();
  TensorImpl* s = src.impl();
  d->storage = s->storage;
  d->sizes = s->sizes;
  d->strides = s->strides;
  d->offset = s->offset;
  d->dtype = s->dtype;
  d->grad.reset();
}

void Module::check_new_name(const std::string& name) const {
  MINIVL_CHECK(!name.empty() && name.find('.') == std::string::npos,
               "Module: a parameter, buffer or child name must be non-empty and without '.', got '", name, "'");
  for (const auto& p : params_) MINIVL_CHECK(p.name != name, "Module: name '", name, "' is already a parameter");
  for (const auto& b : buffers_) MINIVL_CHECK(b.first != name, "Module: name '", name, "' is already a buffer");
  for (const auto& c : children_) MINIVL_CHECK(c.first != name, "Module: name '", name, "' is already a child module");
}

Tensor Module::register_parameter(const std::string& name, Tensor tensor, ParamKind kind) {
  check_new_name(name);
  MINIVL_CHECK(tensor.defined(), "Module: parameter '", name, "' is undefined");
  MINIVL_CHECK(tensor.is_floating_point(), "Module: parameter '", name, "' must be floating, got ", tensor.desc());
  if (!tensor.is_leaf()) tensor = tensor.detach();
  tensor.requires_grad_(true);
  params_.push_back({name, tensor, kind});
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, Tensor tensor) {
  check_new_name(name);
  MINIVL_CHECK(tensor.defined(), "Module: buffer '", name, "' is undefined");
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  MINIVL_CHECK(module != nullptr, "Module: child '", name, "' is null");
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

std::vector<NamedParameter> Module::named_parameters() const {
  std::vector<NamedParameter> out = params_;
  for (const auto& [cname, child] : children_)
    for (NamedParameter p : child->named_parameters()) {
      p.name = cname + "." + p.name;
      out.push_back(std::move(p));
    }
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (const auto& p : named_parameters()) out.push_back(p.tensor);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out = buffers_;
  for (const auto& [cname, child] : children_)
    for (auto& [n, t] : child->named_buffers()) out.emplace_back(cname + "." + n, t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : named_parameters()) n += p.tensor.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (const auto& p : named_parameters()) set_data(p.tensor, p.tensor.detach().to(device));
  for (const auto& [n, b] : named_buffers()) set_data(b, b.detach().to(device));
}

void Module::to(DType dtype) {
  MINIVL_CHECK(is_floating(dtype), "Module::to: expected a floating dtype, got ", dtype_name(dtype));
  NoGradGuard no_grad;
  for (const auto& p : named_parameters()) set_data(p.tensor, p.tensor.detach().to(dtype));
  for (const auto& [n, b] : named_buffers())
    if (b.is_floating_point()) set_data(b, b.detach().to(dtype));
}

void Module::zero_grad() {
  for (const auto& p : named_parameters()) Tensor(p.tensor).zero_grad();
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  for (const auto& p : params_) out.emplace_back(p.name, p.tensor);
  for (const auto& b : buffers_) out.push_back(b);
  for (const auto& [cname, child] : children_)
    for (auto& [n, t] : child->state_dict()) out.emplace_back(cname + "." + n, t);
  return out;
}

namespace {
std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s;
}
}  // namespace

Module::LoadReport Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::map<std::string, Tensor> given;
  LoadReport report;
  for (const auto& [name, t] : state) {
    MINIVL_CHECK(given.emplace(name, t).second, "load_state_dict: name '", name, "' appears twice");
  }
  NamedTensors mine = state_dict();
  std::vector<std::pair<Tensor, Tensor>> copies;  // (destination, source)
  std::map<std::string, bool> known;
  for (const auto& [name, dst] : mine) {
    known[name] = true;
    auto it = given.find(name);
    if (it == given.end()) {
      report.missing.push_back(name);
      continue;
    }
    const Tensor& src = it->second;
    if (src.shape() != dst.shape()) {
      report.mismatched.push_back(name + " (expected " + dst.shape_str() + ", got " + src.shape_str() + ")");
      continue;
    }
    if (src.is_floating_point() != dst.is_floating_point()) {
      report.mismatched.push_back(name + " (expected " + dtype_name(dst.dtype()) + ", got " +
                                  dtype_name(src.dtype()) + ")");
      continue;
    }
    copies.emplace_back(dst, src);
  }
  for (const auto& [name, t] : state)
    if (!known.count(name)) report.unexpected.push_back(name);
  if (strict && !report.ok()) {
    std::ostringstream msg;
    msg << "load_state_dict: the state does not match the module";
    if (!report.missing.empty()) msg << "; missing " << report.missing.size() << ": " << join_names(report.missing);
    if (!report.unexpected.empty())
      msg << "; unexpected " << report.unexpected.size() << ": " << join_names(report.unexpected);
    if (!report.mismatched.empty())
      msg << "; wrong shape or dtype " << report.mismatched.size() << ": " << join_names(report.mismatched);
    MINIVL_FAIL(msg.str());
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  return report;
}

}  // namespace minivl::nn
