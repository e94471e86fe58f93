// Running a parity case on a device and checking its results (tests/parity_cuda_table.h).
#include <cmath>
#include <stdexcept>

#include "tests/parity_cuda_table.h"

namespace minivl::parity_cuda {

namespace {
const Bound& pick(const std::vector<Bound>& bounds, size_t i, const std::string& label, const char* what) {
  if (bounds.empty()) throw std::runtime_error("parity case '" + label + "' has no " + what + " bound");
  return bounds[std::min(i, bounds.size() - 1)];
}
}  // namespace

const Bound& Case::output_bound(size_t i) const { return pick(output_bounds, i, label, "output"); }
const Bound& Case::grad_bound(size_t i) const { return pick(grad_bounds, i, label, "gradient"); }

Case single(std::vector<Tensor> in, std::vector<bool> grad, Apply f, std::string label) {
  Case c;
  c.inputs = std::move(in);
  c.grad = std::move(grad);
  c.apply = std::move(f);
  c.label = std::move(label);
  return c;
}

std::vector<Tensor> loss_weights(Rng& rng, const Case& c) {
  std::vector<Tensor> weights;
  for (const Tensor& o : c.apply(c.inputs)) weights.push_back(input(rng, o.shape(), DType::f32));
  return weights;
}

CaseRun run_case_with(const Case& c, const std::vector<Tensor>& inputs, Device device, const std::vector<Tensor>& weights) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i].detach().to(device);
    if (c.grad[i] && x.is_floating_point()) x.requires_grad_(true);
    in.push_back(x);
  }
  std::vector<Tensor> out = c.apply(in);
  CaseRun r;
  Tensor loss;
  for (size_t i = 0; i < out.size(); ++i) {
    r.outputs.push_back(out[i].to(Device::cpu()).detach());
    if (!out[i].requires_grad() || !out[i].is_floating_point()) continue;
    const DType acc = out[i].dtype() == DType::f64 ? DType::f64 : DType::f32;
    Tensor term = sum(mul(out[i], weights[i].to(out[i].dtype()).to(device)));
    loss = loss.defined() ? add(loss, term.to(acc)) : term.to(acc);
  }
  if (loss.defined()) loss.backward();
  for (size_t i = 0; i < in.size(); ++i) {
    Tensor g = c.grad[i] ? in[i].grad() : Tensor();
    r.grads.push_back(g.defined() ? g.to(Device::cpu()).detach() : Tensor());
  }
  return r;
}

CaseRun run_case(const Case& c, Device device, const std::vector<Tensor>& weights) {
  return run_case_with(c, c.inputs, device, weights);
}

std::vector<Verdict> check_case(const Case& c, const CaseRun& got, const CaseRun& want, const std::vector<Tensor>& weights) {
  std::vector<Verdict> verdicts;
  Allowances allow;
  if (c.allowances) {
    std::vector<Tensor> w;
    for (size_t i = 0; i < want.outputs.size(); ++i) {
      const DType dt = want.outputs[i].is_floating_point() ? want.outputs[i].dtype() : DType::f32;
      w.push_back(weights[i].to(dt));
    }
    allow = c.allowances(CaseData{c.inputs, w, want.outputs, want.grads});
  }
  auto extra = [](const std::vector<Tensor>& v, size_t i) { return i < v.size() ? v[i] : Tensor(); };
  for (size_t i = 0; i < want.outputs.size(); ++i) {
    const Tensor g = i < got.outputs.size() ? got.outputs[i] : Tensor();
    verdicts.push_back({"output " + std::to_string(i), parity::compare(g, want.outputs[i], c.output_bound(i), extra(allow.outputs, i))});
  }
  for (size_t i = 0; i < want.grads.size(); ++i) {
    const Tensor g = i < got.grads.size() ? got.grads[i] : Tensor();
    if (!g.defined() && !want.grads[i].defined()) continue;
    verdicts.push_back(
        {"gradient of input " + std::to_string(i), parity::compare(g, want.grads[i], c.grad_bound(i), extra(allow.grads, i))});
  }
  return verdicts;
}

AllowanceFn abs_terms_allowance(const Case& c, std::vector<double> output_coefs, std::vector<double> grad_coefs) {
  const Case model = c;  // apply and grad flags; the inputs come from CaseData
  return [model, output_coefs, grad_coefs](const CaseData& d) {
    std::vector<Tensor> in, w;
    for (const Tensor& x : d.inputs) in.push_back(x.is_floating_point() ? abs(x.to(DType::f64)) : x);
    for (const Tensor& x : d.weights) w.push_back(abs(x.to(DType::f64)));
    const CaseRun m = run_case_with(model, in, Device::cpu(), w);
    Allowances a;
    auto coef = [](const std::vector<double>& v, size_t i) { return v.empty() ? 0.0 : v[std::min(i, v.size() - 1)]; };
    for (size_t i = 0; i < m.outputs.size(); ++i) {
      const double k = coef(output_coefs, i);
      a.outputs.push_back(k > 0 && m.outputs[i].is_floating_point() ? mul(abs(m.outputs[i]), k) : Tensor());
    }
    for (size_t i = 0; i < m.grads.size(); ++i) {
      const double k = coef(grad_coefs, i);
      a.grads.push_back(k > 0 && m.grads[i].defined() ? mul(abs(m.grads[i]), k) : Tensor());
    }
    return a;
  };
}

}  // namespace minivl::parity_cuda
