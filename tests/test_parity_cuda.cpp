// CPU <-> CUDA parity: every op in core/ops.def runs forward and backward on
// both devices from the same fresh random inputs (several shapes: odd sizes,
// broadcasts, non-contiguous views made on each device), and the results must
// agree within the dtype's tolerance. One table drives it (tests/parity_cuda_table.cpp):
// a new op gets its parity test by adding a row there, and the coverage test here
// fails until it has one. This file holds the comparison and the test cases.
//
// CUDA allocations are poisoned (0xFF bytes: NaN in every float dtype) in this
// binary, so an element a kernel forgets to write fails the comparison.
// Without a GPU every case prints why it skipped (and the coverage test still runs).
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dispatch.h"
#include "core/generator.h"
#include "tests/core_test_util.h"
#include "tests/parity_cuda_table.h"

namespace minivl {
namespace {

// Poison every CUDA allocation of this process (read by the caching allocator on its first allocation).
const bool g_poison_set = [] {
  setenv("MINIVL_CUDA_POISON", "1", 0);
  return true;
}();

// Returns true (after a visible MESSAGE, and a one-time line on stdout for CI logs) when there is no GPU.
bool skip_without_cuda(const char* test) {
  (void)kernels();  // registers the backends (and the CUDA allocator) before the first CUDA allocation
  if (cuda_available()) return false;
  const std::string why = "parity_cuda: skipped: " + cuda_unavailable_reason();
  static bool printed = false;
  if (!printed) {
    std::printf("%s\n", why.c_str());
    std::fflush(stdout);
    printed = true;
  }
  const std::string message = why + " (" + test + ")";
  MESSAGE(message);
  return true;
}

using parity_cuda::Case;
using parity_cuda::input;
using parity_cuda::Rng;
using parity_cuda::Row;
using parity_cuda::table;

// ---- comparison ----

struct Tolerance {
  double rtol, atol_scale;  // |got - want| <= rtol * |want| + atol_scale * max|want|
};
Tolerance tolerance(DType dt) {
  switch (dt) {
    case DType::bf16: return {2e-2, 2e-2};
    case DType::f16: return {5e-3, 5e-3};
    case DType::f64: return {1e-10, 1e-10};
    case DType::f32: return {1e-5, 1e-5};
    default: return {0, 0};  // integers: exact
  }
}

// Compares a CUDA result with the CPU one; returns "" or a description of the first mismatch.
std::string compare(const Tensor& got_cuda, const Tensor& want_cpu, DType input_dtype) {
  if (!got_cuda.defined() || !want_cpu.defined()) {
    return got_cuda.defined() == want_cpu.defined() ? "" : "defined on one device only";
  }
  if (got_cuda.shape() != want_cpu.shape()) return "shape " + got_cuda.shape_str() + " vs " + want_cpu.shape_str();
  if (got_cuda.dtype() != want_cpu.dtype()) return "dtypes differ";
  std::vector<double> got = got_cuda.to_vector(), want = want_cpu.to_vector();
  // Integer outputs are exact; float outputs use the looser of the output's and the input's tolerance.
  Tolerance t = tolerance(want_cpu.dtype());
  Tolerance ti = tolerance(input_dtype);
  if (is_floating(want_cpu.dtype())) t = {std::max(t.rtol, ti.rtol), std::max(t.atol_scale, ti.atol_scale)};
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::isfinite(w) ? std::abs(w) : 0.0);
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok = std::isnan(w)   ? std::isnan(g)
              : std::isinf(w) ? g == w  // the same infinity (inf - inf would be NaN)
                              : std::abs(g - w) <= t.rtol * std::abs(w) + t.atol_scale * scale;
    if (!ok) {
      std::ostringstream os;
      os << "element " << i << " of " << got.size() << ": cuda " << g << ", cpu " << w
         << (std::isnan(g) ? " (NaN: an unwritten, poisoned element?)" : "");
      return os.str();
    }
  }
  return "";
}

struct RunResult {
  std::vector<Tensor> outputs;
  std::vector<Tensor> grads;
};

// Runs a case on `device`: inputs moved there as leaves, outputs on the CPU, gradients of
// sum(output * fixed random weights) with respect to the inputs that take them.
RunResult run_case(const Case& c, Device device, const std::vector<Tensor>& weights) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor x = c.inputs[i].detach().to(device);
    if (c.grad[i]) x.requires_grad_(true);
    in.push_back(x);
  }
  std::vector<Tensor> out = c.apply(in);
  RunResult r;
  Tensor loss;
  for (size_t i = 0; i < out.size(); ++i) {
    r.outputs.push_back(out[i].to(Device::cpu()).detach());
    if (!out[i].requires_grad() || !out[i].is_floating_point()) continue;
    Tensor term = sum(mul(out[i], weights[i].to(out[i].dtype()).to(device)));
    loss = loss.defined() ? add(loss, term.to(DType::f32)) : term.to(DType::f32);
  }
  if (loss.defined()) loss.backward();
  for (size_t i = 0; i < in.size(); ++i) {
    Tensor g = c.grad[i] ? in[i].grad() : Tensor();
    r.grads.push_back(g.defined() ? g.to(Device::cpu()).detach() : Tensor());
  }
  return r;
}

std::set<std::string> filter_from_env() {
  std::set<std::string> ops;
  if (const char* env = std::getenv("MINIVL_PARITY_OPS")) {
    std::stringstream ss(env);
    std::string op;
    while (std::getline(ss, op, ',')) ops.insert(op);
  }
  return ops;
}

}  // namespace

TEST_SUITE("parity_cuda") {

TEST_CASE("parity_cuda: every op in ops.def has a parity row") {
  std::set<std::string> rows;
  for (const Row& r : table()) rows.insert(r.op);
  for (int i = 0; i < kNumOps; ++i) {
    const std::string name = op_info(OpId(i)).name;
    CAPTURE(name);
    CHECK_MESSAGE(rows.count(name) == 1, "add a row for '" << name << "' to tests/parity_cuda_table.cpp");
  }
  CHECK(rows.size() == size_t(kNumOps));
}

TEST_CASE("parity_cuda: every op matches the CPU forward and backward") {
  if (skip_without_cuda("ops")) return;
  const std::set<std::string> only = filter_from_env();
  int cases = 0;
  for (const Row& row : table()) {
    if (!only.empty() && !only.count(row.op)) continue;
    for (DType dt : row.dtypes) {
      Rng rng(0x5eed0000u + std::hash<std::string>{}(row.op) % 1000 * 16 + uint64_t(dt));
      for (const Case& c : row.cases(rng, dt)) {
        const std::string where = row.op + " " + dtype_name(dt) + " " + c.label;
        CAPTURE(where);
        RunResult cpu, gpu;
        try {
          // Weights for the loss: fixed per case, drawn from the CPU forward's output shapes.
          std::vector<Tensor> out_shapes = c.apply(c.inputs);
          std::vector<Tensor> weights;
          for (const Tensor& o : out_shapes) weights.push_back(input(rng, o.shape(), DType::f32));
          cpu = run_case(c, Device::cpu(), weights);
          gpu = run_case(c, Device::cuda(0), weights);
        } catch (const std::exception& e) {
          FAIL_CHECK(where << ": threw " << e.what());
          continue;
        }
        for (size_t i = 0; i < cpu.outputs.size(); ++i) {
          std::string m = compare(gpu.outputs[i], cpu.outputs[i], dt);
          CHECK_MESSAGE(m.empty(), where << ": output " << i << ": " << m);
        }
        for (size_t i = 0; i < cpu.grads.size(); ++i) {
          std::string m = compare(gpu.grads[i], cpu.grads[i], dt);
          CHECK_MESSAGE(m.empty(), where << ": gradient of input " << i << ": " << m);
        }
        ++cases;
      }
    }
  }
  MESSAGE("parity_cuda: " << cases << " cases compared");
  std::printf("parity_cuda: %d cases compared\n", cases);
}

TEST_CASE("parity_cuda: random fills draw the CPU's Philox numbers") {
  if (skip_without_cuda("random")) return;
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    default_generator().manual_seed(77);
    Tensor a = rand({1001}, dt);
    Tensor an = randn({1001}, dt);
    default_generator().manual_seed(77);
    Tensor b = rand({1001}, dt, Device::cuda(0));
    Tensor bn = randn({1001}, dt, Device::cuda(0));
    CHECK(compare(b, a, dt) == "");
    // Uniforms are integer math and agree bit for bit; normals (every dtype) come from float
    // Box-Muller, whose logf/cosf differ by an ulp between CUDA and glibc (kernels/philox.h).
    CHECK(compare(bn, an, dt == DType::f64 ? DType::f32 : dt) == "");
  }
}

TEST_CASE("parity_cuda: dtype conversions and fills match the CPU") {
  if (skip_without_cuda("conversions")) return;
  Rng rng(3);
  const std::vector<DType> all = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::u8, DType::boolean};
  std::vector<double> v(37);
  for (double& x : v) x = std::round(rng.uniform(0, 200)) * (rng.uniform(0, 1) < 0.3 ? 0 : 1);
  for (DType from : all) {
    Tensor src = from_vector(v, {37}, from);
    Tensor src_gpu = src.to(Device::cuda(0));
    for (DType to : all) {
      CAPTURE(dtype_name(from));
      CAPTURE(dtype_name(to));
      CHECK(compare(src_gpu.to(to), src.to(to), to) == "");
    }
    CHECK(compare(full({5, 3}, 7.0, from, Device::cuda(0)), full({5, 3}, 7.0, from), from) == "");
  }
}

TEST_CASE("parity_cuda: the caching allocator reuses blocks and keeps stats") {
  if (skip_without_cuda("allocator")) return;
  Allocator* a = allocator_for(Device::cuda(0));
  a->empty_cache();
  const AllocatorStats before = a->stats();
  {
    Tensor x = empty({1000}, DType::f32, Device::cuda(0));
    CHECK(a->stats().allocated >= before.allocated + 4000);
  }
  CHECK(a->stats().allocated == before.allocated);
  CHECK(a->stats().reserved > before.reserved);  // kept in the cache
  const int64_t reserved = a->stats().reserved;
  { Tensor y = empty({1000}, DType::f32, Device::cuda(0)); }
  CHECK(a->stats().reserved == reserved);  // the same block again
  a->empty_cache();
  CHECK(a->stats().reserved == before.reserved);
  // An impossible request fails with a message naming the size, not an abort.
  testing::check_error([] { empty({int64_t(1) << 45}, DType::f32, Device::cuda(0)); }, {"out of memory", "asked for"});
}

}  // TEST_SUITE

}  // namespace minivl
