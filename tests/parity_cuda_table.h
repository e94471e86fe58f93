#pragma once
// The CPU <-> CUDA parity table (tests/parity_cuda_table.cpp): one row per op in
// core/ops.def, each producing cases (CPU inputs + what to apply on each device).
// tests/test_parity_cuda.cpp runs the rows on both devices and compares.
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/ops.h"

namespace minivl::parity_cuda {

enum class Domain { any, positive };

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen); }
  int64_t integer(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); }
};

// A CPU tensor of `dtype` (values drawn in f64, then converted on the CPU, so both devices see identical bits).
Tensor input(Rng& rng, const Shape& shape, DType dtype, Domain dom = Domain::any);

// One case: inputs built on the CPU (`grad` says which get gradients), then `apply` on each device.
struct Case {
  std::vector<Tensor> inputs;
  std::vector<bool> grad;
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> apply;
  std::string label;
};

struct Row {
  std::string op;  // the name in core/ops.def
  std::vector<DType> dtypes;
  std::function<std::vector<Case>(Rng&, DType)> cases;
};

// Every row, built once.
const std::vector<Row>& table();

}  // namespace minivl::parity_cuda
