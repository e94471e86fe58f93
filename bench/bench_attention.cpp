// Attention benchmarks: the fused op's tiled CPU kernels beside the naive materialised ones, and
// on CUDA every numbered kernel version, on CLIP's shapes and FlashAttention's standard sweep.
//
//   BM_AttentionCpu/B/H/T/D/causal/pass      tiled CPU kernels, f32; pass 0 forward, 1 backward.
//       Counter naive_over_tiled: the naive kernel's CPU time on the same call / the tiled one's
//       (best of 5 each, alternating). On a shared machine run with OMP_NUM_THREADS=1.
//       CPU rows keep the CLIP shapes' H, T, D but a smaller B (B / 16, at least 1; B = 2 at
//       T = 512): the full batches take minutes on a 2-core CPU. Larger T is GPU-only.
//   BM_AttentionCuda/B/H/T/D/causal/version/pass   bf16, every registered version (newest first),
//       each version checked first against the CPU on the (b = 0, h < 2) slice, output
//       poisoned with NaN first; CUDA events with the L2 flushed before each run.
// FLOPs (FlashAttention's convention): forward 4 B H Tq Tk D, halved for causal; backward 2.5x
// the forward. TFLOPS is that over the time of the pass alone. For T < 512, where attention is
// memory-bound, GBps counts q, k, v, out (+ dout, dq, dk, dv for the backward) once, and
// pct_copy compares it with the measured device-to-device copy bandwidth.
// Shapes: ViT-B/32 (256, 12, 50, 64), ViT-B/16 (64, 12, 197, 64), CLIP text (256, 8, 77, 64,
// causal), and B T = 16k, H D = 2048, T in {512, 1k, 2k, 4k}, D in {64, 128}, causal and not.
//
// Run: build/bin/bench_attention --benchmark_min_time=0.05 --benchmark_filter=Cpu
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/kernel_versions.h"
#include "core/ops.h"
#include "kernels/cpu/attention_cpu.h"

#if MINIVL_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/backend.h"
#endif

using namespace minivl;

namespace {

struct AttnShape {
  int64_t B, H, T, D;
  bool causal;
};

std::vector<AttnShape> all_shapes() {
  std::vector<AttnShape> s = {{256, 12, 50, 64, false}, {64, 12, 197, 64, false}, {256, 8, 77, 64, true}};
  for (int64_t t : {512, 1024, 2048, 4096})
    for (int64_t d : {64, 128})
      for (bool c : {false, true}) s.push_back({16384 / t, 2048 / d, t, d, c});
  return s;
}

double forward_flops(const AttnShape& s) {
  return 4.0 * double(s.B * s.H) * double(s.T) * double(s.T) * double(s.D) * (s.causal ? 0.5 : 1.0);
}

struct Problem {
  Tensor q, k, v, out, lse, dout, dq, dk, dv;
};
Problem make_problem(const AttnShape& s, DType dtype, Device device) {
  Problem p;
  const Shape shape = {s.B, s.H, s.T, s.D};
  p.q = randn(shape).to(dtype).to(device);
  p.k = randn(shape).to(dtype).to(device);
  p.v = randn(shape).to(dtype).to(device);
  p.dout = randn(shape).to(dtype).to(device);
  p.out = empty(shape, dtype, device);
  p.lse = empty({s.B, s.H, s.T}, DType::f32, device);
  p.dq = empty(shape, dtype, device);
  p.dk = empty(shape, dtype, device);
  p.dv = empty(shape, dtype, device);
  return p;
}

using ForwardFn = void (*)(const StridedView&, const StridedView&, const StridedView&, const StridedView&, bool,
                           double, const StridedView&, const StridedView&);
using BackwardFn = void (*)(const StridedView&, const StridedView&, const StridedView&, const StridedView&, bool,
                            double, const StridedView&, const StridedView&, const StridedView&, const StridedView&,
                            const StridedView&, const StridedView&);

void run_pass(const Problem& p, bool causal, int pass, ForwardFn fwd, BackwardFn bwd) {
  const double scale = 1.0 / std::sqrt(double(p.q.size(3)));
  if (pass == 0) {
    fwd(p.q.view(), p.k.view(), p.v.view(), StridedView{}, causal, scale, p.out.view(), p.lse.view());
  } else {
    bwd(p.q.view(), p.k.view(), p.v.view(), StridedView{}, causal, scale, p.out.view(), p.lse.view(), p.dout.view(),
        p.dq.view(), p.dk.view(), p.dv.view());
  }
}

void set_rates(benchmark::State& state, const AttnShape& s, int pass, int64_t elem_bytes) {
  const double flops = forward_flops(s) * (pass == 0 ? 1.0 : 2.5);
  state.counters["TFLOPS"] =
      benchmark::Counter(flops * 1e-12 * double(state.iterations()), benchmark::Counter::kIsRate);
  if (s.T < 512) {
    const double bytes = double(s.B * s.H * s.T * s.D * elem_bytes) * (pass == 0 ? 4.0 : 8.0);
    state.counters["GBps"] = benchmark::Counter(bytes * double(state.iterations()), benchmark::Counter::kIsRate);
  }
}

// ---- CPU ----

AttnShape cpu_shape(AttnShape s) {
  s.B = s.T >= 512 ? 2 : std::max<int64_t>(1, s.B / 16);
  return s;
}

void BM_AttentionCpu(benchmark::State& state) {
  const AttnShape s{state.range(0), state.range(1), state.range(2), state.range(3), state.range(4) != 0};
  const int pass = int(state.range(5));
  Problem p = make_problem(s, DType::f32, Device::cpu());
  run_pass(p, s.causal, 0, cpu::attention_forward, cpu::attention_backward);  // lse and out for the backward
  for (auto _ : state) run_pass(p, s.causal, pass, cpu::attention_forward, cpu::attention_backward);
  set_rates(state, s, pass, 4);
  // The naive peer on the same call: tiled and naive run alternately, the best of 5 each, in
  // process CPU time (std::clock: robust to other processes on a shared machine; with
  // OMP_NUM_THREADS=1 it is the single-core time).
  auto seconds = [&](ForwardFn f, BackwardFn b) {
    const std::clock_t t0 = std::clock();
    run_pass(p, s.causal, pass, f, b);
    return double(std::clock() - t0) / CLOCKS_PER_SEC;
  };
  double tiled = 1e30, naive = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    tiled = std::min(tiled, seconds(cpu::attention_forward, cpu::attention_backward));
    naive = std::min(naive, seconds(cpu::attention_forward_naive, cpu::attention_backward_naive));
  }
  state.counters["best_tiled_ms"] = tiled * 1e3;
  state.counters["best_naive_ms"] = naive * 1e3;
  state.counters["naive_over_tiled"] = naive / tiled;
}

void cpu_args(benchmark::internal::Benchmark* b) {
  for (const AttnShape& full : all_shapes()) {
    if (full.T > 512 || full.D != 64) continue;
    const AttnShape s = cpu_shape(full);
    for (int64_t pass : {0, 1}) b->Args({s.B, s.H, s.T, s.D, s.causal ? 1 : 0, pass});
  }
}
BENCHMARK(BM_AttentionCpu)->Apply(cpu_args)->Unit(benchmark::kMillisecond)->UseRealTime();

#if MINIVL_CUDA
// ---- CUDA ----

double max_rel_diff(const Tensor& got, const Tensor& want) {
  const double den = max(abs(want.to(DType::f32))).item();
  return max(abs(sub(got.to(DType::f32), want.to(DType::f32)))).item() / std::max(den, 1e-30);
}

// The (b = 0, h < 2) slice of the problem through the CPU's tiled kernels in f32.
bool matches_cpu(const Problem& p, bool causal, int pass) {
  auto slice = [](const Tensor& t) {
    return t.to(Device::cpu()).narrow(0, 0, 1).narrow(1, 0, std::min<int64_t>(2, t.size(1))).to(DType::f32).contiguous();
  };
  Problem c;
  c.q = slice(p.q), c.k = slice(p.k), c.v = slice(p.v), c.dout = slice(p.dout);
  c.out = empty(c.q.shape()), c.lse = empty({1, c.q.size(1), c.q.size(2)});
  c.dq = empty(c.q.shape()), c.dk = empty(c.q.shape()), c.dv = empty(c.q.shape());
  run_pass(c, causal, 0, cpu::attention_forward, cpu::attention_backward);
  const double tol = p.q.dtype() == DType::f32 ? 1e-4 : 3e-2;
  if (pass == 0) return max_rel_diff(slice(p.out), c.out) <= tol;
  run_pass(c, causal, 1, cpu::attention_forward, cpu::attention_backward);
  return max_rel_diff(slice(p.dq), c.dq) <= tol && max_rel_diff(slice(p.dk), c.dk) <= tol &&
         max_rel_diff(slice(p.dv), c.dv) <= tol;
}

void BM_AttentionCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return;
  }
  const AttnShape s{state.range(0), state.range(1), state.range(2), state.range(3), state.range(4) != 0};
  const int version = int(state.range(5)), pass = int(state.range(6));
  const DType dtype = DType::bf16;
  if (!cuda::attention_version_supported(version, dtype, s.D)) {
    state.SkipWithError("version does not take this dtype / head dim");
    return;
  }
  if (version == 1 && s.T > 512) {
    state.SkipWithError("v1 materialises B H T T scores (about 0.1 s a call at T = 512): skipped above T = 512");
    return;
  }
  static int current_version = 0;
  current_version = version;
  ForwardFn f = [](const StridedView& q, const StridedView& k, const StridedView& v, const StridedView& m, bool c,
                   double sc, const StridedView& o, const StridedView& l) {
    cuda::attention_forward_cuda_version(current_version, q, k, v, m, c, sc, o, l);
  };
  BackwardFn b = [](const StridedView& q, const StridedView& k, const StridedView& v, const StridedView& m, bool c,
                    double sc, const StridedView& o, const StridedView& l, const StridedView& g,
                    const StridedView& dq, const StridedView& dk, const StridedView& dv) {
    cuda::attention_backward_cuda_version(current_version, q, k, v, m, c, sc, o, l, g, dq, dk, dv);
  };
  Problem p = make_problem(s, dtype, Device::cuda(0));
  for (const Tensor& t : {p.out, p.dq, p.dk, p.dv}) Tensor(t).fill_(std::nan(""));
  run_pass(p, s.causal, 0, f, b);
  if (pass == 1) run_pass(p, s.causal, 1, f, b);
  if (!matches_cpu(p, s.causal, pass)) {
    state.SkipWithError("CUDA attention disagrees with the CPU");
    return;
  }
  // L2 flush buffer (larger than any L2) and the copy peer.
  const size_t flush_bytes = size_t(256) << 20;
  Tensor flush = empty({int64_t(flush_bytes)}, DType::u8, Device::cuda(0));
  // Everything on the backend's stream: it is non-blocking, so events on the default stream
  // would not wait for the kernels they are meant to time.
  const cudaStream_t st = static_cast<cudaStream_t>(cuda::stream_handle());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  auto time_ms = [&](auto&& fn) {
    cudaMemsetAsync(flush.data_ptr(), 0, flush_bytes, st);
    cudaEventRecord(start, st);
    fn();
    cudaEventRecord(stop, st);
    cudaEventSynchronize(stop);
    float ms = 0;
    cudaEventElapsedTime(&ms, start, stop);
    return double(ms);
  };
  std::vector<double> times;
  for (auto _ : state) {
    const double ms = time_ms([&] { run_pass(p, s.causal, pass, f, b); });
    times.push_back(ms);
    state.SetIterationTime(ms / 1e3);
  }
  std::sort(times.begin(), times.end());
  state.counters["median_ms"] = times.empty() ? 0.0 : times[times.size() / 2];
  set_rates(state, s, pass, 2);
  if (s.T < 512) {
    const size_t n = size_t(s.B * s.H * s.T * s.D) * 2 * (pass == 0 ? 2 : 4);
    Tensor src = empty({int64_t(n)}, DType::u8, Device::cuda(0)), dst = empty({int64_t(n)}, DType::u8, Device::cuda(0));
    const double copy_ms =
        time_ms([&] { cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), n, cudaMemcpyDeviceToDevice, st); });
    const double copy_gbps = 2.0 * double(n) / (copy_ms / 1e3) * 1e-9;
    const double gbps = 2.0 * double(n) / (times[times.size() / 2] / 1e3) * 1e-9;
    state.counters["copy_GBps"] = copy_gbps;
    state.counters["pct_copy"] = 100.0 * gbps / copy_gbps;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

// Every registered version (core/kernel_versions.h), newest first: v1 and v2 take 10 to 300 ms a
// call on the long rows, so a run cut short by a time limit still has every row of the newer ones.
std::vector<int> versions_newest_first() {
  std::vector<int> v = kernel_versions().family("attention").numbers();
  std::reverse(v.begin(), v.end());
  return v;
}

void cuda_args(benchmark::internal::Benchmark* b) {
  for (int64_t version : versions_newest_first())
    for (const AttnShape& s : all_shapes())
      for (int64_t pass : {0, 1}) b->Args({s.B, s.H, s.T, s.D, s.causal ? 1 : 0, version, pass});
}
BENCHMARK(BM_AttentionCuda)->Apply(cuda_args)->UseManualTime()->Unit(benchmark::kMillisecond);
#endif

}  // namespace

BENCHMARK_MAIN();
