// CUDA benchmarks through minivl's public ops (so they time what a model gets:
// the op layer, the caching allocator and the kernel together).
//
//   BM_GemmCuda/M/N/K       bf16 matmul (cuBLASLt, f32 accumulation); counter TFLOPS = 2*M*N*K / s
//   BM_GemmCudaF32/M/N/K    f32 matmul, TF32 off (the exact path)
//   BM_CopyCuda/bytes       device-to-device copy of `bytes` (minivl's 128-bit copy kernel); counter
//                           GBps = 2 * bytes / s (read + write): the measured memory ceiling that other
//                           kernels report against.
// Each benchmark first checks a sample of its result against the CPU, then times 30 batches of
// launches, each ended by a device sync (a 1-element copy to the host), and reports per call.
// Without a GPU every benchmark skips with "no CUDA device: ..." (or "built without CUDA").
//
// Run: build/bin/bench_cuda --benchmark_format=json   (tools/gpu_check.sh run does)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "core/dispatch.h"
#include "core/ops.h"

namespace {

using namespace minivl;

bool skip_without_cuda(benchmark::State& state) {
  (void)kernels();  // registers the backends (and the CUDA allocator) before the first CUDA allocation
  if (cuda_available()) return false;
  state.SkipWithError(cuda_unavailable_reason().c_str());  // "no CUDA device: ..." or "built without CUDA"
  return true;
}

// Waits for the device: a one-element copy to the host synchronises the backend's stream.
void sync(const Tensor& t) { (void)t.reshape({-1}).narrow(0, 0, 1).to(Device::cpu()); }

// Times `body` in batches ended by a device sync; each iteration reports the batch's time per call.
// A batch holds enough calls for about 2 ms of work, so the sync's latency is small beside it, and
// the iteration count is fixed (kIterations): Google Benchmark's own search counts only the
// per-call time, so on a 5 us kernel it would run thousands of 100-call batches.
constexpr int kIterations = 30;

template <typename Body>
void time_batches(benchmark::State& state, const Tensor& sync_on, Body&& body) {
  for (int i = 0; i < 2; ++i) body();  // warm-up: allocator cache, cuBLASLt heuristics
  sync(sync_on);
  auto c0 = std::chrono::steady_clock::now();
  body();
  sync(sync_on);
  const double one = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
  const int reps = int(std::clamp(2e-3 / std::max(one, 1e-7), 1.0, 200.0));
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) body();
    sync(sync_on);
    auto t1 = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count() / reps);
  }
}

void gemm_bench(benchmark::State& state, DType dtype) {
  if (skip_without_cuda(state)) return;
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  try {
    Tensor a = rand({M, K}, dtype, Device::cuda(0));
    Tensor b = rand({K, N}, dtype, Device::cuda(0));
    // Validate sampled entries (a row of the output) against the CPU.
    Tensor row = matmul(a.narrow(0, 0, 1), b).to(Device::cpu()).to(DType::f64);
    Tensor want = matmul(a.narrow(0, 0, 1).to(Device::cpu()).to(DType::f64), b.to(Device::cpu()).to(DType::f64));
    double worst = max(abs(sub(row, want))).item() / (max(abs(want)).item() + 1e-30);
    if (worst > (dtype == DType::f32 ? 1e-4 : 2e-2)) {
      state.SkipWithError(("validation failed: relative error " + std::to_string(worst)).c_str());
      return;
    }
    const double flops = 2.0 * double(M) * double(N) * double(K);
    Tensor out;
    time_batches(state, a, [&] { out = matmul(a, b); });
    state.counters["TFLOPS"] = benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void BM_GemmCuda(benchmark::State& state) { gemm_bench(state, DType::bf16); }
void BM_GemmCudaF32(benchmark::State& state) { gemm_bench(state, DType::f32); }

void BM_CopyCuda(benchmark::State& state) {
  if (skip_without_cuda(state)) return;
  const int64_t bytes = state.range(0);
  try {
    Tensor src = rand({bytes / 4}, DType::f32, Device::cuda(0));
    Tensor dst = empty({bytes / 4}, DType::f32, Device::cuda(0));
    dst.copy_(src);
    if (max(abs(sub(dst, src))).item() != 0.0) {
      state.SkipWithError("validation failed: the copy differs from its source");
      return;
    }
    time_batches(state, dst, [&] { dst.copy_(src); });
    state.counters["GBps"] = benchmark::Counter(2.0 * double(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

void gemm_shapes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1024, 4096, 8192}) b->Args({n, n, n});
  b->Args({8320, 3072, 768});  // ViT-B/16 MLP up-projection at batch 32 (32 * 260 tokens)
  b->Args({8320, 768, 3072});  // and the down-projection
}

BENCHMARK(BM_GemmCuda)->Apply(gemm_shapes)->Iterations(kIterations)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GemmCudaF32)
    ->Args({4096, 4096, 4096})
    ->Args({8320, 3072, 768})
    ->Iterations(kIterations)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CopyCuda)
    ->Arg(int64_t(1) << 20)
    ->Arg(int64_t(1) << 24)
    ->Arg(int64_t(1) << 28)
    ->Arg(int64_t(1) << 30)
    ->Iterations(kIterations)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
