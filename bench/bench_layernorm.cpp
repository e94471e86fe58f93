// LayerNorm benchmarks: the fused op (forward, backward) beside the naive composed-op path
// (mean, sub, mul, mean, rsqrt, mul, add through public ops) on the same shapes, and on CUDA
// every numbered kernel version beside the measured device-to-device copy bandwidth.
//
//   BM_LayerNormFused/R/C        fused forward, f32, CPU
//   BM_LayerNormComposed/R/C     the composed forward (the naive peer)
//   BM_LayerNormFusedBackward/R/C, BM_LayerNormComposedBackward/R/C   forward + backward
//   BM_LayerNormCuda/R/C/version bf16 forward of every registered version (skips without a GPU)
// Bytes: forward = read x + write y + weights (2 C); backward = read dy, x + write dx (+ the
// forward's bytes for the fused-backward rows, which time forward + backward). Counter GBps
// is a rate; `pct_copy` is GBps / measured copy bandwidth of the same bytes.
// Every benchmark checks its result against the composed reference first.
//
// Run: build/bin/bench_layernorm --benchmark_min_time=0.1
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>

#include "core/kernel_versions.h"
#include "core/ops.h"

#if MINIVL_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/fused.h"
#endif

using namespace minivl;

namespace {

void shapes(benchmark::internal::Benchmark* b) {
  for (auto [r, c] : {std::pair<int64_t, int64_t>{8192, 768}, {16384, 1024}, {65536, 512}, {4096, 4096}})
    b->Args({r, c});
}

Tensor composed(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor mu = mean(x, {-1}, true);
  Tensor centered = sub(x, mu);
  Tensor y = mul(centered, rsqrt(add(mean(mul(centered, centered), {-1}, true), 1e-5)));
  return add(mul(y, w), b);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return max(abs(sub(a.to(DType::f32), b.to(DType::f32)))).item();
}

void set_bytes(benchmark::State& state, double bytes) {
  state.counters["GBps"] = benchmark::Counter(bytes * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["bytes"] = bytes;
}

struct Inputs {
  Tensor x, w, b, gy;
};
Inputs make_inputs(int64_t r, int64_t c) {
  return {randn({r, c}), randn({c}), randn({c}), randn({r, c})};
}

void BM_LayerNormFused(benchmark::State& state) {
  const int64_t r = state.range(0), c = state.range(1);
  Inputs in = make_inputs(r, c);
  if (max_abs_diff(layernorm(in.x, in.w, in.b), composed(in.x, in.w, in.b)) > 1e-3) {
    state.SkipWithError("fused layernorm disagrees with the composed reference");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(layernorm(in.x, in.w, in.b).data_ptr());
  set_bytes(state, double(2 * r * c + 2 * c) * 4);
}
BENCHMARK(BM_LayerNormFused)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LayerNormComposed(benchmark::State& state) {
  const int64_t r = state.range(0), c = state.range(1);
  Inputs in = make_inputs(r, c);
  for (auto _ : state) benchmark::DoNotOptimize(composed(in.x, in.w, in.b).data_ptr());
  set_bytes(state, double(2 * r * c + 2 * c) * 4);
}
BENCHMARK(BM_LayerNormComposed)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

template <bool kFused>
void layernorm_backward_bench(benchmark::State& state) {
  const int64_t r = state.range(0), c = state.range(1);
  Inputs in = make_inputs(r, c);
  in.x.requires_grad_();
  in.w.requires_grad_();
  in.b.requires_grad_();
  for (auto _ : state) {
    Tensor y = kFused ? layernorm(in.x, in.w, in.b) : composed(in.x, in.w, in.b);
    y.backward(in.gy);
    benchmark::DoNotOptimize(in.x.grad().data_ptr());
    in.x.zero_grad();
    in.w.zero_grad();
    in.b.zero_grad();
  }
  set_bytes(state, double(2 * r * c + 2 * c) * 4 + double(3 * r * c + 3 * c) * 4);
}
void BM_LayerNormFusedBackward(benchmark::State& state) { layernorm_backward_bench<true>(state); }
void BM_LayerNormComposedBackward(benchmark::State& state) { layernorm_backward_bench<false>(state); }
BENCHMARK(BM_LayerNormFusedBackward)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LayerNormComposedBackward)->Apply(shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

#if MINIVL_CUDA
// Median-free but event-timed: one warm-up, then the benchmark's iterations, each timed with
// CUDA events. The copy peer moves the same bytes with cudaMemcpyAsync (device to device).
void BM_LayerNormCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return;
  }
  const int64_t r = state.range(0), c = state.range(1);
  const int version = int(state.range(2));
  Inputs host = make_inputs(r, c);
  const Device dev = Device::cuda(0);
  Tensor x = host.x.to(DType::bf16).to(dev), w = host.w.to(DType::bf16).to(dev), b = host.b.to(DType::bf16).to(dev);
  Tensor y = empty({r, c}, DType::bf16, dev), mu = empty({r}, DType::f32, dev), rs = empty({r}, DType::f32, dev);
  y.fill_(std::nan(""));
  auto run = [&] {
    cuda::layernorm_forward_cuda_version(version, x.view(), StridedView{}, w.view(), b.view(), 1e-5, StridedView{},
                                         y.view(), mu.view(), rs.view());
  };
  run();
  Tensor want = layernorm(host.x.to(DType::bf16), host.w.to(DType::bf16), host.b.to(DType::bf16));
  // bf16 output, rounded once on each device: allow 2.5 ulps of the largest value (a bf16 ulp is
  // 2^-8 of its binade, 0.0625 at |y| in [8, 16), past the absolute 5e-2 this check once used).
  if (max_abs_diff(y.to(Device::cpu()), want) > 1e-2 * max(abs(want.to(DType::f32))).item()) {
    state.SkipWithError("CUDA layernorm disagrees with the CPU");
    return;
  }
  const double bytes = double(2 * r * c + 2 * c) * 2;
  Tensor src = empty({r * c}, DType::bf16, dev), dst = empty({r * c}, DType::bf16, dev);
  // Events and copies on the backend's stream (non-blocking: the default stream would not wait for it).
  const cudaStream_t st = static_cast<cudaStream_t>(cuda::stream_handle());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  auto time_ms = [&](auto&& fn) {
    cudaEventRecord(start, st);
    fn();
    cudaEventRecord(stop, st);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    return double(ms);
  };
  const double copy_ms = time_ms([&] {
    for (int i = 0; i < 20; ++i)
      cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), size_t(r * c) * 2, cudaMemcpyDeviceToDevice, st);
  }) / 20.0;
  for (auto _ : state) state.SetIterationTime(time_ms(run) / 1e3);
  set_bytes(state, bytes);
  const double copy_gbps = 2.0 * double(r * c) * 2 / (copy_ms / 1e3);
  state.counters["copy_GBps"] = copy_gbps;
  state.counters["pct_copy"] =
      benchmark::Counter(bytes * double(state.iterations()) / copy_gbps * 100.0, benchmark::Counter::kIsRate);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}
// Every registered layernorm version (core/kernel_versions.h) at every shape.
void cuda_shapes(benchmark::internal::Benchmark* b) {
  for (auto [r, c] : {std::pair<int64_t, int64_t>{8192, 768}, {16384, 1024}, {65536, 512}, {4096, 4096}})
    for (int64_t version : kernel_versions().family("layernorm").numbers()) b->Args({r, c, version});
}
BENCHMARK(BM_LayerNormCuda)
    ->Apply(cuda_shapes)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
#endif

}  // namespace

BENCHMARK_MAIN();
