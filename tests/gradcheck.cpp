#include "tests/gradcheck.h"

#include <cmath>
#include <set>
#include <sstream>

#include "core/generator.h"

namespace minivl::testing {
namespace {

std::map<std::string, std::vector<std::string>>& cases_by_op() {
  static std::map<std::string, std::vector<std::string>> cases;
  return cases;
}

// The case whose body is running: the ops it declares and those it has checked so far.
struct RunningCase {
  std::set<std::string> declared, checked;
};
RunningCase* g_running = nullptr;

}  // namespace

bool register_gradcheck_case(const char* title, std::initializer_list<const char*> ops) {
  for (const char* op : ops) cases_by_op()[op].push_back(title);
  return true;
}

const std::map<std::string, std::vector<std::string>>& gradcheck_cases_by_op() { return cases_by_op(); }

void run_gradcheck_case(std::initializer_list<const char*> ops, void (*body)()) {
  RunningCase running;
  running.declared.insert(ops.begin(), ops.end());
  struct Reset {
    ~Reset() { g_running = nullptr; }
  } reset;
  g_running = &running;
  body();
  for (const std::string& op : running.declared) {
    CAPTURE(op);
    CHECK_MESSAGE(running.checked.count(op) == 1, "the case declares '" << op << "' but never calls check_grad for it");
  }
}

void check_grad(const std::string& op, const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                std::vector<Tensor> inputs, GradcheckOptions options) {
  CAPTURE(op);
  REQUIRE_MESSAGE(g_running != nullptr, "check_grad(\"" << op << "\") outside a MINIVL_GRADCHECK_CASE");
  REQUIRE_MESSAGE(g_running->declared.count(op) == 1,
                  "check_grad(\"" << op << "\"): add \"" << op << "\" to this MINIVL_GRADCHECK_CASE's ops");
  g_running->checked.insert(op);
  const std::string result = gradcheck(fn, std::move(inputs), options);
  CHECK_MESSAGE(result.empty(), result);
}

Tensor random_input(const Shape& shape, uint64_t seed, bool requires_grad) {
  std::vector<double> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(philox_normal(seed, 0, i));
  Tensor t = from_vector(v, shape, DType::f64);
  if (requires_grad) t.requires_grad_();
  return t;
}

std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, std::vector<Tensor> inputs,
                      GradcheckOptions options) {
  // The numeric pass perturbs each input's storage as doubles.
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& in = inputs[k];
    if (in.defined() && in.requires_grad() && in.dtype() != DType::f64)
      return "input " + std::to_string(k) + " is " + in.desc() + ", not f64";
    for (int64_t d = 0; in.defined() && in.requires_grad() && d < in.dim(); ++d)
      if (in.stride(d) == 0 && in.size(d) > 1)
        return "input " + std::to_string(k) + " is an expanded view (stride 0): perturbing one element moves many";
  }
  Tensor out = fn(inputs);
  if (!out.requires_grad()) return "output does not require grad";
  Tensor weight = random_input(out.shape(), 12345, false);
  Tensor loss = sum(mul(out, weight));
  for (Tensor& in : inputs)
    if (in.defined() && in.requires_grad()) in.zero_grad();
  loss.backward();

  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor in = inputs[k];
    if (!in.defined() || !in.requires_grad()) continue;
    Tensor analytic = in.grad();
    if (!analytic.defined()) return "input " + std::to_string(k) + " got no gradient";
    if (analytic.shape() != in.shape())
      return "input " + std::to_string(k) + " " + in.shape_str() + " got a gradient of shape " + analytic.shape_str();
    std::vector<double> a = analytic.to_vector();
    // Perturb through a contiguous copy's storage viewed with the input's strides.
    for (int64_t i = 0; i < in.numel(); ++i) {
      double numeric;
      {
        NoGradGuard no_grad;
        // Element i in row-major order of the (possibly strided) input.
        int64_t off = in.offset(), rem = i;
        for (int64_t d = in.dim() - 1; d >= 0; --d) {
          off += (rem % in.size(d)) * in.stride(d);
          rem /= in.size(d);
        }
        double* p = static_cast<double*>(in.storage()->data()) + off;
        const double orig = *p;
        *p = orig + options.eps;
        double plus = sum(mul(fn(inputs), weight)).item();
        *p = orig - options.eps;
        double minus = sum(mul(fn(inputs), weight)).item();
        *p = orig;
        numeric = (plus - minus) / (2 * options.eps);
      }
      double diff = std::abs(numeric - a[size_t(i)]);
      if (!(diff <= options.atol + options.rtol * std::abs(numeric))) {
        std::ostringstream os;
        os << "input " << k << " element " << i << ": numeric " << numeric << " vs analytic " << a[size_t(i)];
        return os.str();
      }
    }
  }
  return "";
}

}  // namespace minivl::testing
