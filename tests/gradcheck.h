#pragma once
// Finite-difference gradient checks in f64 (central differences), shared by
// every op's test. A check perturbs each element of each floating input,
// compares d(sum(out * w))/d(input) against autograd, w a fixed random weight
// so that every output element matters.
//
// Which ops of core/ops.def are gradchecked is read off the test cases, not kept in a
// list: a case says which ops it checks,
//
//   MINIVL_GRADCHECK_CASE("softmax along non-last dims", "softmax", "log_softmax") {
//     check_grad("softmax", [](const Inputs& in) { return softmax(in[0], 0); }, {random_input({3, 4}, 1)});
//     ...
//   }
//
// and the declarations are collected before main(), so the coverage test
// ("every differentiable op of ops.def has a gradcheck case", tests/test_gradcheck.cpp) sees
// every case under any doctest filter. Inside a case, check_grad() fails for an op the case
// does not declare, and the case fails when it declares an op it never checks, so a
// declaration cannot drift from what the body does.
#include <doctest/doctest.h>

#include <functional>
#include <initializer_list>
#include <map>
#include <string>
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

// gradcheck() as a doctest check of the op named `op` (its ops.def name), inside a
// MINIVL_GRADCHECK_CASE that declares it.
void check_grad(const std::string& op, const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                std::vector<Tensor> inputs, GradcheckOptions options = {});

// Every MINIVL_GRADCHECK_CASE of the binary: op name -> the titles of the cases that declare it.
const std::map<std::string, std::vector<std::string>>& gradcheck_cases_by_op();

// What MINIVL_GRADCHECK_CASE expands to (not called directly).
bool register_gradcheck_case(const char* title, std::initializer_list<const char*> ops);
void run_gradcheck_case(std::initializer_list<const char*> ops, void (*body)());

}  // namespace minivl::testing

#define MINIVL_GRADCHECK_CAT_(a, b) a##b
#define MINIVL_GRADCHECK_CAT(a, b) MINIVL_GRADCHECK_CAT_(a, b)
#define MINIVL_GRADCHECK_CASE_(title, body, ...)                                                        \
  static void body();                                                                                  \
  [[maybe_unused]] static const bool MINIVL_GRADCHECK_CAT(body, _registered) =                          \
      ::minivl::testing::register_gradcheck_case(title, {__VA_ARGS__});                                 \
  TEST_CASE(title) { ::minivl::testing::run_gradcheck_case({__VA_ARGS__}, body); }                      \
  static void body()
// A doctest TEST_CASE titled `title` that gradchecks the ops named after it (ops.def names).
#define MINIVL_GRADCHECK_CASE(title, ...) \
  MINIVL_GRADCHECK_CASE_(title, MINIVL_GRADCHECK_CAT(minivl_gradcheck_body_, __LINE__), __VA_ARGS__)
