// GEMM benchmarks: minivl's CPU GEMM ladder and default beside OpenBLAS on the same shapes (the
// CUDA GEMM's are BM_GemmCuda / BM_GemmCudaF32 in bench/bench_cuda.cpp, beside torch.matmul in
// compare_torch.py).
//
//   BM_FmaPeak                    f32 FMA throughput of all threads running at once (what the
//                                 machine gives a team now); pct_peak divides by the peak of
//                                 measured_fma_peak, context peak_measured_gflops
//   BM_GemmOpenBLAS/M/N/K         cblas_sgemm, same data, same thread count (peer)
//   BM_GemmCpu/M/N/K              minivl::cpu::gemm_f32 (the default, v4), C (M x N) = A (M x K) @ B (K x N), row-major
//   BM_GemmLadder/<version>/n/n/n every version of gemm_f32_versions() at square sizes (v1 to 512 only)
//   BM_GemmCpuBatched/...         attention-like batch of small GEMMs (Q @ K^T: B read transposed)
// Counters: FLOPS = 2*M*N*K per iteration as a rate; pct_peak = that rate as % of the measured
// FMA peak; pct_peak_busy = FLOPs per CPU-second of the process as % of one core's share of
// that peak (what the code achieves while it holds the cores); vs_openblas = that rate over the
// rate of the latest OpenBLAS run of the same shape (OpenBLAS rows run first; with random
// interleaving the latest peer run is the nearest in time, so each ratio is a paired A/B).
// Before timing, every CPU row is validated: v1 against an f64 dot product on sampled entries,
// every other version against v1 (all of C up to 512 rows, else the first and last 16 rows),
// C poisoned with NaN first; a row that disagrees is skipped with an error.
// Wall-clock time (UseRealTime) because the work is multithreaded.
//
// Run: build/bin/bench_gemm --benchmark_filter=/1024/1024/1024
// On a shared machine: --benchmark_repetitions=5 --benchmark_report_aggregates_only=true; the
// "_max" rows give each row's best. Random interleaving (--benchmark_enable_random_interleaving)
// puts OpenBLAS runs between ours: its worker threads keep spinning after a call, and OpenMP's
// after ours, so the two slow each other down at 512^3 and below (measured up to 8x).
// OpenBLAS picks its kernels from OPENBLAS_CORETYPE when set (context openblas_config names them).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <ctime>
#include <vector>

#include "bench/bench_main.h"
#include "kernels/cpu/gemm_cpu.h"
#include "kernels/cpu/gemm_ladder_cpu.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if MINIVL_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

using minivl::cpu::GemmF32Function;

// With --benchmark_repetitions, a "max" row beside mean / median: the best FLOPS (and
// pct_peak, vs_openblas) of the repetitions, the closest to the hardware on a shared machine.
void with_max(benchmark::internal::Benchmark* bench) {
  bench->ComputeStatistics("max", [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); });
}

// ---- the machine's peak --------------------------------------------------------
// One thread's FMA loop: kChains independent accumulator chains (more than latency x
// pipes = 4 x 2 on current x86 cores), each step one vector FMA per chain. Returns FLOPs.
constexpr int kChains = 16;
double fma_loop(int64_t steps) {
#if defined(__AVX512F__)
  using Vec = __m512;
  constexpr int kLanes = 16;
  auto fma = [](Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); };
  auto set = [](float x) { return _mm512_set1_ps(x); };
#elif defined(__AVX2__) && defined(__FMA__)
  using Vec = __m256;
  constexpr int kLanes = 8;
  auto fma = [](Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); };
  auto set = [](float x) { return _mm256_set1_ps(x); };
#else
  using Vec = float;
  constexpr int kLanes = 1;
  auto fma = [](Vec a, Vec b, Vec c) { return a * b + c; };
  auto set = [](float x) { return x; };
#endif
  auto sum = [](Vec v) {  // v's lanes, added in order
    float lanes[kLanes];
    std::memcpy(lanes, &v, sizeof(v));
    float total = 0.0f;
    for (float x : lanes) total += x;
    return total;
  };
  Vec acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = set(float(i));
  const Vec scale = set(0.999999f), shift = set(1e-7f);  // keeps every chain bounded
  for (int64_t s = 0; s < steps; ++s)
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) acc[i] = fma(acc[i], scale, shift);
  float total = 0.0f;
  for (int i = 0; i < kChains; ++i) total += sum(acc[i]);
  benchmark::DoNotOptimize(total);
  return 2.0 * double(kLanes) * kChains * double(steps);
}

// FLOP/s of every thread running fma_loop at once (one OpenMP team).
double fma_rate(int64_t steps_per_thread) {
  double flops = 0.0;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : flops)
  flops += fma_loop(steps_per_thread);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return flops / seconds;
}

// The peak: each thread's best rate over 64 short runs (~0.2 ms, timed by the thread
// itself), summed over the team. That is the hardware's FMA peak as long as every thread has
// a core of its own, even on a shared machine where the OS seldom runs them all at once.
double measured_fma_peak() {
  static const double peak = [] {
    double total = 0.0;
#pragma omp parallel reduction(+ : total)
    {
      double best = 0.0;
      for (int trial = 0; trial < 64; ++trial) {
        const auto start = std::chrono::steady_clock::now();
        const double flops = fma_loop(int64_t(1) << 16);
        best = std::max(best, flops / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
      total += best;
    }
    return total;
  }();
  return peak;
}

// The peak from /proc/cpuinfo: MHz x cores x 2 FMA pipes (assumed) x lanes x 2 FLOPs.
std::string flags_clock_peak() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  double mhz = 0.0;
  while (std::getline(cpuinfo, line)) {
    if (mhz == 0.0 && line.rfind("cpu MHz", 0) == 0) mhz = std::atof(line.substr(line.find(':') + 1).c_str());
    if (flags.empty() && line.rfind("flags", 0) == 0) {
      std::istringstream words(line.substr(line.find(':') + 1));
      for (std::string word; words >> word;) flags.insert(word);
    }
  }
  const int lanes = flags.count("avx512f") ? 16 : flags.count("avx2") && flags.count("fma") ? 8 : 4;
  const int cores = int(std::thread::hardware_concurrency());
  std::ostringstream out;
  out << mhz * 1e6 * cores * 2 * lanes * 2 / 1e9 << " GFLOP/s = " << mhz << " MHz x " << cores << " cores x 2 FMA x "
      << lanes << " lanes x 2";
  return out.str();
}

void BM_FmaPeak(benchmark::State& state) {
  double flops = 0.0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const double rate = fma_rate(int64_t(1) << 20);
    flops += rate * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
  state.counters["pct_peak"] = benchmark::Counter(flops * 100.0 / measured_fma_peak(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FmaPeak)->Apply(with_max)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- inputs and validation ------------------------------------------------------
// Square sizes, then the ViT-B/16 shapes at batch 32 with CLS (M = 32 * 260 = 8320 tokens):
// the attention head projection (K = 128 -> N = 384) and an MLP-like reduction (K = 512 -> N = 128).
void gemm_shapes(benchmark::internal::Benchmark* bench) {
  for (int64_t n : {256, 512, 1024, 2048}) bench->Args({n, n, n});
  bench->Args({8320, 384, 128});
  bench->Args({8320, 128, 512});
}

std::vector<float> random_matrix(int64_t elements, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> values(size_t(std::max<int64_t>(elements, 1)));
  for (float& v : values) v = uniform(rng);
  return values;
}

// C (M x N, row-major) = A (M x K, row-major) @ B (K x N, row-major) with one version.
void run_row_major(GemmF32Function gemm, int64_t M, int64_t N, int64_t K, const float* a, const float* b, float* c) {
  gemm(1, M, N, K, 1.0f, a, K, 1, nullptr, b, N, 1, nullptr, 0.0f, c, N, 1, nullptr);
}

// |got - expected| / (slack * 1e-5 * sqrt(K + 1) * sum_k |a b|) for C(i, j) of row-major operands.
double relative_error(int64_t N, int64_t K, const float* a, const float* b, int64_t i, int64_t j, double got,
                      double expected, double slack) {
  if (!std::isfinite(got)) return std::numeric_limits<double>::infinity();
  double magnitude = 0.0;
  for (int64_t k = 0; k < K; ++k) magnitude += std::fabs(double(a[i * K + k]) * double(b[k * N + j]));
  return std::fabs(got - expected) / (slack * 1e-5 * std::sqrt(double(K) + 1) * magnitude + 1e-30);
}

// v1 against an f64 dot product at 256 sampled entries of its result c. Empty string: passed.
std::string validate_v1(int64_t M, int64_t N, int64_t K, const float* a, const float* b, const float* c) {
  std::mt19937 rng(7);
  for (int s = 0; s < 256; ++s) {
    const int64_t i = int64_t(rng() % uint64_t(M)), j = int64_t(rng() % uint64_t(N));
    double dot = 0.0;
    for (int64_t k = 0; k < K; ++k) dot += double(a[i * K + k]) * double(b[k * N + j]);
    if (relative_error(N, K, a, b, i, j, c[i * N + j], dot, 1.0) > 1.0)
      return "v1 disagrees with an f64 dot product";
  }
  return {};
}

// Runs `gemm` into c (poisoned with NaN first) and checks it against v1: all of C when
// M <= 512, else the first and last 16 rows (v1 run on those rows alone). Empty: passed.
std::string validate_against_v1(GemmF32Function gemm, int64_t M, int64_t N, int64_t K, const float* a,
                                const float* b, float* c) {
  std::fill(c, c + M * N, std::numeric_limits<float>::quiet_NaN());
  run_row_major(gemm, M, N, K, a, b, c);
  const GemmF32Function v1 = minivl::cpu::gemm_f32_v1_naive;
  if (gemm == v1) return validate_v1(M, N, K, a, b, c);
  const int64_t band = M <= 512 ? M : 16;
  for (int64_t first_row : {int64_t(0), M - band}) {
    std::vector<float> expected(size_t(band * N));
    run_row_major(v1, band, N, K, a + first_row * K, b, expected.data());
    for (int64_t i = 0; i < band; ++i)
      for (int64_t j = 0; j < N; ++j)
        if (relative_error(N, K, a, b, first_row + i, j, c[(first_row + i) * N + j], expected[size_t(i * N + j)],
                           2.0) > 1.0)
          return "disagrees with v1 at C(" + std::to_string(first_row + i) + ", " + std::to_string(j) + ")";
    if (band == M) break;
  }
  return {};
}

// The latest OpenBLAS FLOP/s per (M, N, K) in this run, for the vs_openblas counter.
std::map<std::tuple<int64_t, int64_t, int64_t>, double>& openblas_rates() {
  static std::map<std::tuple<int64_t, int64_t, int64_t>, double> rates;
  return rates;
}

// CPU time of the whole process (every thread), in seconds.
double process_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return double(now.tv_sec) + 1e-9 * double(now.tv_nsec);
}

// Times `run` in the benchmark loop and sets FLOPS, pct_peak, pct_peak_busy and (when the
// peer has run on this shape) vs_openblas. Returns the measured FLOP/s.
template <class Run>
double time_gemm(benchmark::State& state, int64_t M, int64_t N, int64_t K, double flops_per_iteration, Run run,
                 bool is_peer = false) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = process_cpu_seconds();
  for (auto _ : state) {
    run();
    benchmark::ClobberMemory();
  }
  const double cpu_seconds = process_cpu_seconds() - cpu_start;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double flops = flops_per_iteration * double(state.iterations());
  const double peak = measured_fma_peak();
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
  state.counters["pct_peak"] = benchmark::Counter(flops * 100.0 / peak, benchmark::Counter::kIsRate);
  // % of the peak of the cores the process held: FLOPs per CPU-second (spinning counts as
  // held) against one core's share of the peak. On a shared machine this shows the code's
  // efficiency where pct_peak shows mostly the scheduler.
  state.counters["pct_peak_busy"] = flops * 100.0 / cpu_seconds / (peak / omp_get_max_threads());
  const double rate = flops / seconds;
  const auto peer = openblas_rates().find({M, N, K});
  if (!is_peer && peer != openblas_rates().end()) state.counters["vs_openblas"] = rate / peer->second;
  return rate;
}

// ---- OpenBLAS peer (registered first, so its rates are known to the rows after it) ----
#if MINIVL_HAVE_OPENBLAS
void BM_GemmOpenBLAS(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const std::vector<float> a = random_matrix(M * K, 1), b = random_matrix(K * N, 2);
  std::vector<float> c(size_t(M * N));
  const double rate = time_gemm(state, M, N, K, 2.0 * double(M) * double(N) * double(K), [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N), int(K), 1.0f, a.data(), int(K),
                b.data(), int(N), 0.0f, c.data(), int(N));
  }, true);
  openblas_rates()[{M, N, K}] = rate;
}
BENCHMARK(BM_GemmOpenBLAS)->Apply(gemm_shapes)->Apply(with_max)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_GemmOpenBLASBatched(benchmark::State& state) {  // OpenBLAS has no strided batch: a loop
  const int64_t batch = state.range(0), M = state.range(1), N = state.range(2), K = state.range(3);
  const std::vector<float> a = random_matrix(batch * M * K, 3), b = random_matrix(batch * N * K, 4);
  std::vector<float> c(size_t(batch * M * N));
  const double rate = time_gemm(state, batch * M, N, K, 2.0 * double(batch) * double(M) * double(N) * double(K), [&] {
    for (int64_t i = 0; i < batch; ++i)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f, a.data() + i * M * K,
                  int(K), b.data() + i * N * K, int(K), 0.0f, c.data() + i * M * N, int(N));
  }, true);
  openblas_rates()[{batch * M, N, K}] = rate;
}
BENCHMARK(BM_GemmOpenBLASBatched)->Args({3072, 50, 50, 64})->Apply(with_max)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

// ---- minivl CPU: the default ----------------------------------------------------
void BM_GemmCpu(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const std::vector<float> a = random_matrix(M * K, 1), b = random_matrix(K * N, 2);
  std::vector<float> c(size_t(M * N));
  if (const std::string error = validate_against_v1(minivl::cpu::gemm_f32, M, N, K, a.data(), b.data(), c.data());
      !error.empty()) {
    state.SkipWithError(("gemm_f32 " + error).c_str());
    return;
  }
  time_gemm(state, M, N, K, 2.0 * double(M) * double(N) * double(K),
            [&] { run_row_major(minivl::cpu::gemm_f32, M, N, K, a.data(), b.data(), c.data()); });
}
BENCHMARK(BM_GemmCpu)->Apply(gemm_shapes)->Apply(with_max)->Unit(benchmark::kMillisecond)->UseRealTime();

// Attention scores Q @ K^T: batch x (T x D) @ (T x D)^T, e.g. 3072 = 256 sequences x 12 heads
// of T = 50 tokens, D = 64; K is read transposed through its strides. Validated against v1
// on the first and last batch entries.
void BM_GemmCpuBatched(benchmark::State& state) {
  const int64_t batch = state.range(0), M = state.range(1), N = state.range(2), K = state.range(3);
  const std::vector<float> a = random_matrix(batch * M * K, 3), b = random_matrix(batch * N * K, 4);
  std::vector<float> c(size_t(batch * M * N), std::numeric_limits<float>::quiet_NaN());
  std::vector<int64_t> a_offsets(batch), b_offsets(batch), c_offsets(batch);
  for (int64_t i = 0; i < batch; ++i) {
    a_offsets[i] = i * M * K;
    b_offsets[i] = i * N * K;
    c_offsets[i] = i * M * N;
  }
  auto run = [&] {
    minivl::cpu::gemm_f32(batch, M, N, K, 1.0f, a.data(), K, 1, a_offsets.data(), b.data(), 1, K, b_offsets.data(),
                          0.0f, c.data(), N, 1, c_offsets.data());
  };
  run();
  for (int64_t i : {int64_t(0), batch - 1}) {
    std::vector<float> expected(size_t(M * N)), b_row_major(size_t(K * N));
    minivl::cpu::gemm_f32_v1_naive(1, M, N, K, 1.0f, a.data() + a_offsets[i], K, 1, nullptr,
                                   b.data() + b_offsets[i], 1, K, nullptr, 0.0f, expected.data(), N, 1, nullptr);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) b_row_major[size_t(k * N + j)] = b[size_t(b_offsets[i] + j * K + k)];
    for (int64_t e = 0; e < M * N; ++e)
      if (relative_error(N, K, a.data() + a_offsets[i], b_row_major.data(), e / N, e % N, c[size_t(c_offsets[i] + e)],
                         expected[size_t(e)], 2.0) > 1.0) {
        state.SkipWithError("minivl batched gemm_f32 disagrees with v1");
        return;
      }
  }
  time_gemm(state, batch * M, N, K, 2.0 * double(batch) * double(M) * double(N) * double(K), run);
}
BENCHMARK(BM_GemmCpuBatched)->Args({3072, 50, 50, 64})->Apply(with_max)->Unit(benchmark::kMillisecond)->UseRealTime();

// ---- the ladder -------------------------------------------------------------------
void gemm_ladder_row(benchmark::State& state, GemmF32Function gemm) {
  const int64_t n = state.range(0);
  const std::vector<float> a = random_matrix(n * n, 1), b = random_matrix(n * n, 2);
  std::vector<float> c(size_t(n * n));
  if (const std::string error = validate_against_v1(gemm, n, n, n, a.data(), b.data(), c.data()); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  time_gemm(state, n, n, n, 2.0 * double(n) * double(n) * double(n),
            [&] { run_row_major(gemm, n, n, n, a.data(), b.data(), c.data()); });
}

// One row family per version; v1 (a second per iteration at 512 on two cores) stops at 512.
void register_ladder() {
  for (const minivl::cpu::GemmF32Version& version : minivl::cpu::gemm_f32_versions()) {
    auto* bench = benchmark::RegisterBenchmark((std::string("BM_GemmLadder/") + version.name).c_str(),
                                               gemm_ladder_row, version.run);
    const bool naive = std::string(version.name).rfind("v1_", 0) == 0;
    for (int64_t n : {256, 512, 1024, 2048})
      if (!naive || n <= 512) bench->Args({n, n, n});
    bench->Apply(with_max)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = omp_get_max_threads();
#if MINIVL_HAVE_OPENBLAS
  openblas_set_num_threads(threads);  // same thread count as our OpenMP team
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  benchmark::AddCustomContext("openblas_coretype_env", coretype ? coretype : "(unset: OpenBLAS detects the CPU)");
#endif
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::AddCustomContext("minivl_microkernel", minivl::cpu::gemm_f32_microkernel_name());
  benchmark::AddCustomContext("peak_measured_gflops",
                              std::to_string(measured_fma_peak() / 1e9) + " (f32 FMA loop: best of 64 per thread, summed)");
  benchmark::AddCustomContext("peak_flags_clock_gflops", flags_clock_peak());
  register_ladder();
  return minivl::bench::run_benchmarks(argc, argv);
}
