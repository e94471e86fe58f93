// Contrastive-loss benchmarks: the fused tiled clip_loss (forward + backward) beside the
// naive materialised path (matmul -> (N, N) logits -> cross_entropy over rows and columns,
// autograd backward) in the same run where the naive path fits (N^2 f32 logits plus their
// softmax gradients: skipped above N = 16384 on the CPU).
//
//   BM_ClipFused/N/d, BM_ClipNaive/N/d   CPU, f32, forward + backward
//   BM_ClipFusedCuda/N/d/version         bf16 on CUDA (skips without a GPU): every registered
//                                        version (core/kernel_versions.h): 1 SIMT, 2 tensor cores, ...
//   BM_ClipNaiveCuda/N/d                 bf16 on CUDA, the materialised path
// Counters: TFLOPS counts 4 GEMM-equivalents of 2 N^2 d each (forward 1, backward 3);
// peak_MiB is the allocator's peak during one forward + backward (inputs included).
// Each benchmark first checks the fused loss against the naive loss at N = 512.
//
// Run: build/bin/bench_contrastive --benchmark_min_time=0.1 --benchmark_filter=/4096/
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "core/allocator.h"
#include "core/kernel_versions.h"
#include "core/ops.h"


using namespace minivl;

namespace {

Tensor unit_rows(int64_t n, int64_t d, DType dtype, Device device) {
  Tensor x = randn({n, d});
  return div(x, sqrt(sum(mul(x, x), {-1}, true))).to(dtype).to(device);
}

Tensor naive_clip(const Tensor& image, const Tensor& text, const Tensor& logit_scale) {
  // Logits in f32 (a bf16 matmul's output times the f32 scale), as the fused kernels keep them.
  Tensor logits = mul(matmul(image, text.t()).to(DType::f32), exp(logit_scale));
  Tensor target = arange(0, double(image.size(0)), 1, DType::i64).to(image.device());
  return mul(add(cross_entropy(logits, target), cross_entropy(logits.t(), target)), 0.5);
}

bool fused_matches_naive(Device device, DType dtype) {
  Tensor a = unit_rows(512, 64, dtype, device), b = unit_rows(512, 64, dtype, device);
  Tensor s = scalar_tensor(std::log(20.0), DType::f32, device);
  const double fused = clip_loss(a, b, s).item(), naive = naive_clip(a.to(DType::f32), b.to(DType::f32), s).item();
  return std::abs(fused - naive) <= (dtype == DType::f32 ? 1e-5 : 2e-2) * std::abs(naive);
}

template <bool kFused>
void clip_bench(benchmark::State& state, Device device, DType dtype) {
  const int64_t n = state.range(0), d = state.range(1);
  if (device.is_cuda() && !cuda_available()) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return;
  }
  if (!kFused && n > 16384) {
    state.SkipWithError("naive path does not fit: the (N, N) logits and their gradients");
    return;
  }
  if (!fused_matches_naive(device, dtype)) {
    state.SkipWithError("fused clip_loss disagrees with the naive path");
    return;
  }
  Tensor image = unit_rows(n, d, dtype, device).requires_grad_(), text = unit_rows(n, d, dtype, device).requires_grad_();
  Tensor scale = scalar_tensor(std::log(100.0), DType::f32, device).requires_grad_();
  Allocator* alloc = allocator_for(device);
  alloc->reset_peak();
  auto step = [&] {
    Tensor loss = kFused ? clip_loss(image, text, scale) : naive_clip(image, text, scale);
    loss.backward();
    benchmark::DoNotOptimize(image.grad().select(0, 0).select(0, 0).item());  // also synchronises a device
    image.zero_grad();
    text.zero_grad();
    scale.zero_grad();
  };
  step();
  state.counters["peak_MiB"] = double(alloc->stats().peak_allocated) / (1 << 20);
  for (auto _ : state) step();
  state.counters["TFLOPS"] = benchmark::Counter(4.0 * 2.0 * double(n) * double(n) * double(d) * 1e-12 *
                                                    double(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

void BM_ClipFused(benchmark::State& state) { clip_bench<true>(state, Device::cpu(), DType::f32); }
void BM_ClipNaive(benchmark::State& state) { clip_bench<false>(state, Device::cpu(), DType::f32); }
// The contrastive version is a process-wide override: set for this row, back to the default after.
void BM_ClipFusedCuda(benchmark::State& state) {
#if MINIVL_CUDA
  KernelVersionFamily& versions = kernel_versions().family("contrastive");
  versions.set_override(int(state.range(2)));
  clip_bench<true>(state, Device::cuda(0), DType::bf16);
  versions.set_override(0);
#else
  state.SkipWithError("built without CUDA");
#endif
}
void BM_ClipNaiveCuda(benchmark::State& state) { clip_bench<false>(state, Device::cuda(0), DType::bf16); }

void sizes(benchmark::internal::Benchmark* b) { b->ArgsProduct({{4096, 16384, 65536}, {512, 768}}); }
// Every registered version (one row set without CUDA, where the rows skip); version 1 (SIMT)
// takes seconds at N = 65536: it runs up to 16384.
void sizes_versions(benchmark::internal::Benchmark* b) {
  const KernelVersionFamily* versions = kernel_versions().find_family("contrastive");
  for (int64_t version : versions ? versions->numbers() : std::vector<int>{1})
    for (int64_t n : {4096, 16384, 65536})
      for (int64_t d : {512, 768})
        if (version > 1 || n <= 16384) b->Args({n, d, version});
}

BENCHMARK(BM_ClipFused)->Apply(sizes)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_ClipNaive)->Apply(sizes)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_ClipFusedCuda)->Apply(sizes_versions)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ClipNaiveCuda)->Apply(sizes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
