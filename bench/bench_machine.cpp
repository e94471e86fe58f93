// The CPU's own ceilings, measured: the compute and memory roofs that tools/bench_report.py draws
// every CPU kernel against (the CUDA ones come from bench_cuda: the bf16/f32 GEMM and BM_CopyCuda).
//
//   BM_CpuFmaPeak/width     f32 fused multiply-adds on independent register accumulators, every
//                           OpenMP thread at once; width 512 (AVX-512) and 256 (AVX2 + FMA), the
//                           widths this build's ISA has, or 32 (std::fma) when it has neither. Counter GFLOPS counts
//                           2 FLOPs per lane per FMA. No memory traffic: the compute roof.
//   BM_CpuCopy/bytes        memcpy of a `bytes` buffer into another, split into one contiguous chunk
//                           per thread. Counter GBps = 2 * bytes / s (read + write, as BM_CopyCuda);
//                           the largest buffer (>= 8x a typical L3) is the memory roof.
// Wall-clock time (UseRealTime): the threads run in parallel. On a shared machine other processes
// hold the cores for part of the wall time, so each row also reports the rate the hardware gives
// while it runs: the sum over threads of (work / that thread's CPU time), counters GFLOPS_cpu and
// GBps_cpu. tools/bench_report.py draws those as the roofs (the machine's ceilings) and states the
// load average of the run.
//
// Run: build/bin/bench_machine --benchmark_min_time=0.1
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "bench/bench_main.h"

namespace {

// Accumulator chains per thread: more than FMA latency x FMA pipes (4 x 2 on current x86 cores), so
// the loop is bound by FMA throughput, not latency, and few enough to stay in registers (16 of the
// 32 zmm / 16 ymm; the multiplier and addend take two more).
constexpr int kChains = 12;
constexpr int64_t kStepsPerCall = 1 << 20;

template <typename Vec, typename Fma>
double fma_chains(Vec seed, Vec mul, Vec add, Fma fma, int64_t steps) {
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = seed;
  for (int64_t s = 0; s < steps; ++s)
    for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], mul, add);
  Vec total = acc[0];
  for (int c = 1; c < kChains; ++c) total = fma(total, mul, acc[c]);
  float lanes[16] = {};
  std::memcpy(lanes, &total, std::min(sizeof(total), sizeof(lanes)));
  return double(lanes[0]);
}

// One call of kStepsPerCall steps on one thread; returns a value the caller keeps (so the chains stay).
double fma_call(int width) {
  // x -> x * 0.999999 + 1e-6 converges to 1: no overflow, no denormals, however many steps run.
  const float m = 0.999999f, a = 1e-6f;
#if defined(__AVX512F__)
  if (width == 512)
    return fma_chains(_mm512_set1_ps(1.0f), _mm512_set1_ps(m), _mm512_set1_ps(a),
                      [](__m512 x, __m512 y, __m512 z) { return _mm512_fmadd_ps(x, y, z); }, kStepsPerCall);
#endif
#if defined(__AVX2__) && defined(__FMA__)
  if (width == 256)
    return fma_chains(_mm256_set1_ps(1.0f), _mm256_set1_ps(m), _mm256_set1_ps(a),
                      [](__m256 x, __m256 y, __m256 z) { return _mm256_fmadd_ps(x, y, z); }, kStepsPerCall);
#endif
  return fma_chains(1.0f, m, a, [](float x, float y, float z) { return std::fma(x, y, z); }, kStepsPerCall);
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Per-thread CPU seconds, summed over the iterations; the "while it runs" rate is
// sum_t (work per thread / cpu_seconds[t]).
struct ThreadCpuTimes {
  std::vector<double> seconds = std::vector<double>(size_t(omp_get_max_threads()), 0.0);
  double rate(double work_per_thread) const {
    double r = 0;
    for (double s : seconds) r += s > 0 ? work_per_thread / s : 0.0;
    return r;
  }
};

void BM_CpuFmaPeak(benchmark::State& state) {
  const int width = int(state.range(0)), threads = omp_get_max_threads();
  ThreadCpuTimes cpu;
  double sink = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const double t0 = thread_cpu_seconds();
      sink += fma_call(width);
      cpu.seconds[size_t(omp_get_thread_num())] += thread_cpu_seconds() - t0;
    }
    benchmark::DoNotOptimize(sink);
  }
  if (!std::isfinite(sink)) state.SkipWithError("the FMA chains overflowed (a bug in the benchmark)");
  const double flops_per_thread = 2.0 * kChains * double(kStepsPerCall) * (width / 32);
  state.counters["GFLOPS"] =
      benchmark::Counter(flops_per_thread * threads * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOPS_cpu"] = cpu.rate(flops_per_thread * double(state.iterations()) * 1e-9);
  state.counters["omp_threads"] = threads;
  state.counters["lanes"] = width / 32;
}

void fma_widths(benchmark::internal::Benchmark* b) {
#if defined(__AVX512F__)
  b->Arg(512);
#endif
#if defined(__AVX2__) && defined(__FMA__)
  b->Arg(256);
#else
  b->Arg(32);
#endif
}
BENCHMARK(BM_CpuFmaPeak)->Apply(fma_widths)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_CpuCopy(benchmark::State& state) {
  const int64_t bytes = state.range(0);
  std::vector<char> src(static_cast<size_t>(bytes)), dst(static_cast<size_t>(bytes));
  const int threads = omp_get_max_threads();
  // First touch by the threads that copy, so each chunk's pages sit where that thread runs.
  auto each_chunk = [&](auto&& body) {
#pragma omp parallel num_threads(threads)
    {
      const int64_t t = omp_get_thread_num(), n = omp_get_num_threads();
      const int64_t begin = bytes * t / n, end = bytes * (t + 1) / n;
      body(begin, end - begin);
    }
  };
  each_chunk([&](int64_t at, int64_t n) {
    for (int64_t i = 0; i < n; ++i) src[size_t(at + i)] = char((at + i) * 131 + 7);
    std::memset(dst.data() + at, 0, size_t(n));
  });
  each_chunk([&](int64_t at, int64_t n) { std::memcpy(dst.data() + at, src.data() + at, size_t(n)); });
  if (std::memcmp(dst.data(), src.data(), size_t(bytes)) != 0) {
    state.SkipWithError("the copy differs from its source");
    return;
  }
  ThreadCpuTimes cpu;
  for (auto _ : state) {
    each_chunk([&](int64_t at, int64_t n) {
      const double t0 = thread_cpu_seconds();
      std::memcpy(dst.data() + at, src.data() + at, size_t(n));
      cpu.seconds[size_t(omp_get_thread_num())] += thread_cpu_seconds() - t0;
    });
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  const double gb = 2.0 * double(bytes) * 1e-9;
  state.counters["GBps"] = benchmark::Counter(gb, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GBps_cpu"] = cpu.rate(gb / threads * double(state.iterations()));
  state.counters["omp_threads"] = threads;
}
BENCHMARK(BM_CpuCopy)
    ->Arg(int64_t(1) << 20)
    ->Arg(int64_t(1) << 24)
    ->Arg(int64_t(1) << 28)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("threads", std::to_string(omp_get_max_threads()));
#if defined(__AVX512F__)
  benchmark::AddCustomContext("isa", "avx512f");
#elif defined(__AVX2__) && defined(__FMA__)
  benchmark::AddCustomContext("isa", "avx2+fma");
#else
  benchmark::AddCustomContext("isa", "scalar");
#endif
  return minivl::bench::run_benchmarks(argc, argv);
}
