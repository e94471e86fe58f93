#pragma once
// The CPU <-> CUDA parity table: one row per op in core/ops.def, each producing cases (CPU
// inputs, what to apply on each device, and how each result must match). The rows live in
// tests/parity_cuda_table.cpp (elementwise, views, reductions, matmul, indexing) and
// tests/parity_cuda_table_fused.cpp (softmax, cross-entropy, layernorm, contrastive, attention);
// tests/parity_cuda_runner.cpp runs a case on a device and checks it; tests/test_parity_cuda.cpp
// drives the table on a GPU.
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/ops.h"
#include "tests/parity_compare.h"

namespace minivl::parity_cuda {

using parity::Bound;
using parity::CompareResult;

enum class Domain { any, positive };

struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen); }
  int64_t integer(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); }
};

// A CPU tensor of `dtype` (values drawn in f64, then converted on the CPU, so both devices see identical bits).
Tensor input(Rng& rng, const Shape& shape, DType dtype, Domain dom = Domain::any);
// Integer ids in [lo, hi] (i64, or i32).
Tensor ids_input(Rng& rng, const Shape& shape, int64_t lo, int64_t hi, DType dtype = DType::i64);
// Half the entries true (bool, or u8 0/1).
Tensor mask_input(Rng& rng, const Shape& shape, DType dtype = DType::boolean);

// What a case's allowance model reads, all on the CPU: the inputs, the loss weights (one per
// output, in that output's dtype: the gradient each output receives), the CPU results.
struct CaseData {
  const std::vector<Tensor>& inputs;
  const std::vector<Tensor>& weights;
  const std::vector<Tensor>& outputs;
  const std::vector<Tensor>& grads;  // per input; undefined where none
};
// Per-element absolute allowances (any float dtype, the result's shape; undefined: none),
// for each output, then for each input's gradient.
struct Allowances {
  std::vector<Tensor> outputs, grads;
};
using AllowanceFn = std::function<Allowances(const CaseData&)>;
using Apply = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

// One case: inputs built on the CPU (`grad` says which get gradients), `apply` on each device,
// and the bound of each output and each input gradient (the last entry of a list repeats).
struct Case {
  std::vector<Tensor> inputs;
  std::vector<bool> grad;
  Apply apply;
  std::string label;
  std::vector<Bound> output_bounds;
  std::vector<Bound> grad_bounds;
  AllowanceFn allowances;  // null: no per-element allowance

  Case& bounds(std::vector<Bound> outputs, std::vector<Bound> grads) {
    output_bounds = std::move(outputs);
    grad_bounds = std::move(grads);
    return *this;
  }
  Case& allow(AllowanceFn f) {
    allowances = std::move(f);
    return *this;
  }
  const Bound& output_bound(size_t i) const;
  const Bound& grad_bound(size_t i) const;
};

struct Row {
  std::string op;  // the name in core/ops.def
  std::vector<DType> dtypes;
  std::function<std::vector<Case>(Rng&, DType)> cases;
};

// Every row, built once.
const std::vector<Row>& table();
// The row of `op` (throws when there is none).
const Row& row(const std::string& op);

// ---- attention cases (for new kernel versions' rows too) ----
struct AttentionShape {
  int64_t B = 1, H = 2, Tq = 17, Tk = 17, D = 32;
  bool causal = false;
  bool padded = false;                 // a (B, Tk) key padding mask, about half the keys
  DType mask_dtype = DType::boolean;   // bool or u8
  bool bthd_views = false;             // q, k, v given as (B, T, H, D) tensors, transposed on use
};
// A case with fresh inputs for `shape`, its bound and its per-element allowance model
// (tests/parity_allowances.h); the label says the shape.
Case attention_case(Rng& rng, DType dtype, const AttentionShape& shape);

// ---- dtype conversions (tests/parity_conversion_inputs.cpp) ----
// Every dtype, floats first.
const std::vector<DType>& all_dtypes();
// Source values of `from` for a conversion to `to`: for a float target, values the target
// cannot hold (round-to-nearest-even ties, subnormals, overflow to inf, NaN, -0, full-precision
// randoms), so a truncating or flushing conversion differs; for an integer target from a float
// source, values with fractions and of both signs, only where C++ defines the conversion (the
// truncated value fits); for integer sources, wrap-arounds and values past f32's and f64's
// integers.
Tensor conversion_input(DType from, DType to);

// ---- running and checking a case (tests/parity_cuda_runner.cpp) ----
struct CaseRun {
  std::vector<Tensor> outputs;  // on the CPU
  std::vector<Tensor> grads;    // per input, on the CPU; undefined where none
};
// Loss weights, fixed per case: uniform [-2, 2] in f32, one per output of the CPU forward.
std::vector<Tensor> loss_weights(Rng& rng, const Case& c);
// Runs `c` on `device`: inputs moved there as leaves, gradients of sum(output_i * weight_i).
CaseRun run_case(const Case& c, Device device, const std::vector<Tensor>& weights);
// The same with other inputs (an f64 or absolute-value copy of the case's own).
CaseRun run_case_with(const Case& c, const std::vector<Tensor>& inputs, Device device, const std::vector<Tensor>& weights);

struct Verdict {
  std::string what;  // "output 0", "gradient of input 2"
  CompareResult result;
};
// Compares `got` with `want` (the CPU run) under the case's bounds and allowances.
std::vector<Verdict> check_case(const Case& c, const CaseRun& got, const CaseRun& want, const std::vector<Tensor>& weights);

// An allowance model for ops that are sums of products of their inputs (matmul, sums, broadcast
// gradients, scatter-adds): the case rerun on |inputs| and |weights| in f64 gives, per element,
// M = sum_k |terms_k|; the allowance is coef * M (coef: one per output, then one per input
// gradient; the last repeats; 0: none).
AllowanceFn abs_terms_allowance(const Case& c, std::vector<double> output_coefs, std::vector<double> grad_coefs);

// ---- the two halves of the table ----
void add_basic_rows(std::vector<Row>& t);
void add_fused_rows(std::vector<Row>& t);
Case single(std::vector<Tensor> in, std::vector<bool> grad, Apply f, std::string label);

}  // namespace minivl::parity_cuda
