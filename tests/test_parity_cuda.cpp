// CPU <-> CUDA parity: every op in core/ops.def runs forward and backward on both devices from
// the same fresh random inputs (several shapes: odd sizes, broadcasts, non-contiguous views
// made on each device, the op's variants), and each result must match the CPU's element by
// element within its bound (tests/parity_compare.h: bitwise for ops that move or select
// values, otherwise a few ulps plus an allowance from the op's error model). One table drives
// it (tests/parity_cuda_table.h): a new op gets its parity test by adding a row, and the
// coverage test here fails until it has one. The comparison itself is tested on the CPU in
// tests/test_parity_compare.cpp.
//
// CUDA allocations are poisoned (0xFF bytes: NaN in every float dtype) in this binary, so an
// element a kernel forgets to write fails the comparison. Without a GPU every case prints why it
// skipped (and the coverage test still runs). After the run, one line per (op, dtype) gives the
// largest fraction of its bound any element used (headroom; > 1 failed).
//
// Environment: MINIVL_PARITY_OPS=op,op runs only those rows; MINIVL_PARITY_GPU_ONLY=1 runs every
// case on the GPU and compares nothing (for compute-sanitizer, which checks memory accesses).
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dispatch.h"
#include "core/generator.h"
#include "tests/core_test_util.h"
#include "tests/cuda_test_util.h"
#include "tests/parity_cuda_table.h"

namespace minivl {
namespace {

const bool g_poison_set = minivl::testing::poison_cuda_allocations();

using parity::Bound;
using parity::compare;
using parity::compare_bitwise;
using parity_cuda::Case;
using parity_cuda::CaseRun;
using parity_cuda::Rng;
using parity_cuda::Row;
using parity_cuda::table;

std::set<std::string> filter_from_env() {
  std::set<std::string> ops;
  if (const char* env = std::getenv("MINIVL_PARITY_OPS")) {
    std::stringstream ss(env);
    std::string op;
    while (std::getline(ss, op, ',')) ops.insert(op);
  }
  return ops;
}

struct RowStats {
  int cases = 0, failed = 0;
  double worst = 0;
  std::string worst_where;
};

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
  CHECK(table().size() == size_t(kNumOps));  // one row per op, no duplicates
}

TEST_CASE("parity_cuda: every op matches the CPU forward and backward") {
  if (minivl::testing::skip_without_cuda("parity_cuda", "ops")) return;
  const std::set<std::string> only = filter_from_env();
  const bool gpu_only = std::getenv("MINIVL_PARITY_GPU_ONLY") != nullptr;
  int cases = 0;
  std::map<std::string, RowStats> stats;  // "op dtype"
  std::vector<std::string> order;
  for (const Row& row : table()) {
    if (!only.empty() && !only.count(row.op)) continue;
    for (DType dt : row.dtypes) {
      const std::string key = row.op + " " + dtype_name(dt);
      order.push_back(key);
      RowStats& st = stats[key];
      Rng rng(0x5eed0000u + std::hash<std::string>{}(row.op) % 1000 * 16 + uint64_t(dt));
      for (const Case& c : row.cases(rng, dt)) {
        const std::string where = key + " " + c.label;
        CAPTURE(where);
        ++st.cases;
        std::vector<parity_cuda::Verdict> verdicts;
        try {
          const std::vector<Tensor> weights = parity_cuda::loss_weights(rng, c);
          const CaseRun gpu = parity_cuda::run_case(c, Device::cuda(0), weights);
          if (gpu_only) {  // under compute-sanitizer: the kernels' memory accesses, not their values
            ++cases;
            continue;
          }
          const CaseRun cpu = parity_cuda::run_case(c, Device::cpu(), weights);
          verdicts = parity_cuda::check_case(c, gpu, cpu, weights);
        } catch (const std::exception& e) {
          ++st.failed;
          FAIL_CHECK(where << ": threw " << e.what());
          continue;
        }
        bool ok = true;
        for (const parity_cuda::Verdict& v : verdicts) {
          CHECK_MESSAGE(v.result.ok, where << ": " << v.what << ": " << v.result.message);
          ok = ok && v.result.ok;
          if (v.result.worst >= st.worst) {
            st.worst = v.result.worst;
            st.worst_where = c.label + ", " + v.what;
          }
        }
        if (!ok) ++st.failed;
        ++cases;
      }
    }
  }
  for (const std::string& key : order) {
    const RowStats& st = stats[key];
    std::printf("parity_cuda: row %-26s %3d cases, %s, worst %.3g of the bound (%s)\n", key.c_str(), st.cases,
                st.failed ? "FAILED" : "ok", st.worst, st.worst_where.c_str());
  }
  MESSAGE("parity_cuda: " << cases << " cases compared");
  std::printf("parity_cuda: %d cases compared\n", cases);
  std::fflush(stdout);
}

TEST_CASE("parity_cuda: random fills draw the CPU's Philox numbers") {
  if (minivl::testing::skip_without_cuda("parity_cuda", "random")) return;
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    const std::string dt_name = dtype_name(dt);
      CAPTURE(dt_name);
    default_generator().manual_seed(77);
    Tensor a = rand({1001}, dt);
    Tensor an = randn({1001}, dt);
    default_generator().manual_seed(77);
    Tensor b = rand({1001}, dt, Device::cuda(0));
    Tensor bn = randn({1001}, dt, Device::cuda(0));
    // Uniforms are integer math and one exact scaling (kernels/philox.h), then the same rounding: bit for bit.
    const parity::CompareResult u = compare_bitwise(b, a);
    CHECK_MESSAGE(u.ok, "uniforms: " << u.message);
    // Normals come from float Box-Muller: CUDA's logf/cosf/sinf are within 1-2 ulps, glibc's
    // within 1, so f32 normals are a few ulps apart (16-bit ones round to 1 ulp; f64 ones
    // widen the f32 value: 8 f32 ulps relative).
    const Bound nb = dt == DType::f32   ? Bound::within(8, "Box-Muller: logf, sqrtf, cosf/sinf")
                     : dt == DType::f64 ? Bound::within(0, "Box-Muller in f32, widened").plus_rel(0x1p-20)
                                        : Bound::within(1, "Box-Muller in f32, rounded");
    const parity::CompareResult n = compare(bn, an, nb);
    CHECK_MESSAGE(n.ok, "normals: " << n.message);
  }
}

TEST_CASE("parity_cuda: dtype conversions and fills match the CPU bit for bit") {
  if (minivl::testing::skip_without_cuda("parity_cuda", "conversions")) return;
  int pairs = 0;
  for (DType from : parity_cuda::all_dtypes()) {
    for (DType to : parity_cuda::all_dtypes()) {
      const std::string from_name = dtype_name(from);
      CAPTURE(from_name);
      const std::string to_name = dtype_name(to);
      CAPTURE(to_name);
      const Tensor src = parity_cuda::conversion_input(from, to);
      const Tensor src_gpu = src.to(Device::cuda(0));
      const parity::CompareResult r = compare_bitwise(src_gpu.to(to), src.to(to));
      CHECK_MESSAGE(r.ok, dtype_name(from) << " -> " << dtype_name(to) << ": " << r.message);
      // The same through a strided (transposed) source.
      auto strided = [&](const Tensor& x) { return x.reshape({-1, 1}).expand({src.numel(), 2}).transpose(0, 1); };
      const parity::CompareResult rs = compare_bitwise(strided(src_gpu).to(to), strided(src).to(to));
      CHECK_MESSAGE(rs.ok, dtype_name(from) << " -> " << dtype_name(to) << " (strided): " << rs.message);
      ++pairs;
    }
    // Values the dtype cannot hold exactly; a negative one only where C++ defines the conversion.
    const std::vector<double> fills = from == DType::u8 ? std::vector<double>{7.0, 0.1, 1e-6, 200.7, 255.9}
                                                        : std::vector<double>{7.0, 0.1, 1e-6, 1e5 + 0.5, -1e5};
    for (double v : fills) {
      const parity::CompareResult f = compare_bitwise(full({5, 3}, v, from, Device::cuda(0)), full({5, 3}, v, from));
      CHECK_MESSAGE(f.ok, "fill " << v << " " << dtype_name(from) << ": " << f.message);
    }
  }
  MESSAGE("parity_cuda: " << pairs << " conversion pairs compared");
}

TEST_CASE("parity_cuda: the caching allocator reuses blocks and keeps stats") {
  if (minivl::testing::skip_without_cuda("parity_cuda", "allocator")) return;
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
