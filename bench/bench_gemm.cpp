// GEMM benchmarks: minivl's CPU GEMM beside OpenBLAS (and, later, CUDA) on the same shapes.
//
//   BM_GemmCpu/M/N/K        minivl::cpu::gemm_f32, C (M x N) = A (M x K) @ B (K x N), row-major
//   BM_GemmOpenBLAS/M/N/K   cblas_sgemm on the same data, same thread count (peer)
//   BM_GemmCpuBatched/...   attention-like batch of small GEMMs (Q @ K^T: B read transposed)
// Every CPU benchmark first validates against a naive triple loop (a small problem
// with the same strides, plus sampled entries of the timed problem, C poisoned with
// NaN first) and skips with an error if they disagree. Counter FLOPS = 2*M*N*K per
// iteration, as a rate. Wall-clock time (UseRealTime) because the work is multithreaded.
//
// Run: build/bin/bench_gemm --benchmark_filter=/1024/1024/1024
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm_cpu.h"

#if MINIVL_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

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

// Strides of one operand: element (i, j) at i * row + j * col.
struct Strides {
  int64_t row, col;
};

// A (M x K) row-major or column-major ("transposed"), B likewise, C row-major.
struct GemmLayout {
  bool a_transposed = false, b_transposed = false;
  Strides a(int64_t M, int64_t K) const { return a_transposed ? Strides{1, M} : Strides{K, 1}; }
  Strides b(int64_t K, int64_t N) const { return b_transposed ? Strides{1, K} : Strides{N, 1}; }
};

// max over entries of |ours - naive| / (1e-5 * sqrt(K) * sum |a*b| + tiny); <= 1 passes.
double worst_error(int64_t M, int64_t N, int64_t K, const float* a, Strides sa, const float* b, Strides sb,
                   const float* c, int64_t c_row_stride, int64_t samples, uint32_t seed) {
  std::mt19937 rng(seed);
  double worst = 0.0;
  const bool exhaustive = samples <= 0;
  const int64_t count = exhaustive ? M * N : samples;
  for (int64_t s = 0; s < count; ++s) {
    const int64_t i = exhaustive ? s / N : int64_t(rng() % uint64_t(M));
    const int64_t j = exhaustive ? s % N : int64_t(rng() % uint64_t(N));
    double dot = 0.0, magnitude = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const double product = double(a[i * sa.row + k * sa.col]) * double(b[k * sb.row + j * sb.col]);
      dot += product;
      magnitude += std::fabs(product);
    }
    const double got = c[i * c_row_stride + j];
    if (!std::isfinite(got)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::fabs(got - dot) / (1e-5 * std::sqrt(double(K) + 1) * magnitude + 1e-30));
  }
  return worst;
}

void run_minivl_gemm(int64_t M, int64_t N, int64_t K, const float* a, Strides sa, const float* b, Strides sb,
                     float* c) {
  minivl::cpu::gemm_f32(1, M, N, K, 1.0f, a, sa.row, sa.col, nullptr, b, sb.row, sb.col, nullptr, 0.0f, c, N, 1,
                        nullptr);
}

// Validates minivl on a small problem with this layout (every entry) and on the
// timed problem (sampled entries, C poisoned with NaN first). Empty string: passed.
std::string validate_cpu_gemm(int64_t M, int64_t N, int64_t K, GemmLayout layout, const float* a, const float* b,
                              float* c) {
  {
    const int64_t m = std::min<int64_t>(M, 61), n = std::min<int64_t>(N, 83), k = std::min<int64_t>(K, 131);
    const std::vector<float> small_a = random_matrix(m * k, 11), small_b = random_matrix(k * n, 12);
    std::vector<float> small_c(size_t(m * n), std::numeric_limits<float>::quiet_NaN());
    run_minivl_gemm(m, n, k, small_a.data(), layout.a(m, k), small_b.data(), layout.b(k, n), small_c.data());
    if (worst_error(m, n, k, small_a.data(), layout.a(m, k), small_b.data(), layout.b(k, n), small_c.data(), n, 0,
                    0) > 1.0)
      return "minivl gemm_f32 disagrees with the naive loop on a small problem";
  }
  std::fill(c, c + M * N, std::numeric_limits<float>::quiet_NaN());
  run_minivl_gemm(M, N, K, a, layout.a(M, K), b, layout.b(K, N), c);
  if (worst_error(M, N, K, a, layout.a(M, K), b, layout.b(K, N), c, N, 256, 7) > 1.0)
    return "minivl gemm_f32 disagrees with the naive loop on the timed problem";
  return {};
}

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOPS"] =
      benchmark::Counter(flops_per_iteration * double(state.iterations()), benchmark::Counter::kIsRate);
}

// ---- minivl CPU ------------------------------------------------------------
void BM_GemmCpu(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const GemmLayout layout;  // row-major A, B, C
  const std::vector<float> a = random_matrix(M * K, 1), b = random_matrix(K * N, 2);
  std::vector<float> c(size_t(M * N));
  if (const std::string error = validate_cpu_gemm(M, N, K, layout, a.data(), b.data(), c.data()); !error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  for (auto _ : state) {
    run_minivl_gemm(M, N, K, a.data(), layout.a(M, K), b.data(), layout.b(K, N), c.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * double(M) * double(N) * double(K));
}
BENCHMARK(BM_GemmCpu)->Apply(gemm_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

// Attention scores Q @ K^T: batch x (T x D) @ (T x D)^T, e.g. 3072 = 256 sequences x 12 heads
// of T = 50 tokens, D = 64; K is read transposed through its strides.
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
  for (int64_t i : {int64_t(0), batch - 1}) {  // first and last batch entries, every element
    if (worst_error(M, N, K, a.data() + a_offsets[i], {K, 1}, b.data() + b_offsets[i], {1, K},
                    c.data() + c_offsets[i], N, 0, 0) > 1.0) {
      state.SkipWithError("minivl batched gemm_f32 disagrees with the naive loop");
      return;
    }
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * double(batch) * double(M) * double(N) * double(K));
}
BENCHMARK(BM_GemmCpuBatched)
    ->Args({3072, 50, 50, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- OpenBLAS peer -----------------------------------------------------------
#if MINIVL_HAVE_OPENBLAS
void BM_GemmOpenBLAS(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const std::vector<float> a = random_matrix(M * K, 1), b = random_matrix(K * N, 2);
  std::vector<float> c(size_t(M * N));
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(N), int(K), 1.0f, a.data(), int(K),
                b.data(), int(N), 0.0f, c.data(), int(N));
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * double(M) * double(N) * double(K));
}
BENCHMARK(BM_GemmOpenBLAS)->Apply(gemm_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_GemmOpenBLASBatched(benchmark::State& state) {  // OpenBLAS has no strided batch: a loop
  const int64_t batch = state.range(0), M = state.range(1), N = state.range(2), K = state.range(3);
  const std::vector<float> a = random_matrix(batch * M * K, 3), b = random_matrix(batch * N * K, 4);
  std::vector<float> c(size_t(batch * M * N));
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; ++i)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(N), int(K), 1.0f, a.data() + i * M * K,
                  int(K), b.data() + i * N * K, int(K), 0.0f, c.data() + i * M * N, int(N));
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * double(batch) * double(M) * double(N) * double(K));
}
BENCHMARK(BM_GemmOpenBLASBatched)
    ->Args({3072, 50, 50, 64})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
#endif

// ---- CUDA (BM_GemmCuda) ------------------------------------------------------
// The CUDA GEMM benchmark goes here, guarded by `#if MINIVL_CUDA`, registered with
// ->Apply(gemm_shapes) so its rows line up with BM_GemmCpu and BM_GemmOpenBLAS.

}  // namespace

int main(int argc, char** argv) {
  const int threads = omp_get_max_threads();
#if MINIVL_HAVE_OPENBLAS
  openblas_set_num_threads(threads);  // same thread count as our OpenMP team
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
#endif
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::AddCustomContext("minivl_microkernel", minivl::cpu::gemm_f32_microkernel_name());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
