#pragma once
// Finite-difference gradient checks in f64 (central differences), shared by
// every op's test. A check perturbs each element of each floating input,
// compares d(sum(out * w))/d(input) against autograd, w a fixed random weight
// so that every output element matters.
#include <functional>
#include <vector>

#include "core/ops.h"

namespace minivl::testing {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
};

// fn maps the inputs to one output tensor. Inputs must be f64 and require grad
// where a gradient is wanted (non-contiguous views are fine; expanded ones, whose
// elements share memory, are refused).
// Returns an empty string on success, or a description of the first mismatch.
std::string gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, std::vector<Tensor> inputs,
                      GradcheckOptions options = {});

// A random f64 tensor (normal), seeded, requiring grad.
Tensor random_input(const Shape& shape, uint64_t seed, bool requires_grad = true);

}  // namespace minivl::testing
