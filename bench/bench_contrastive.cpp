// Contrastive-loss benchmarks: the fused tiled clip_loss (forward + backward) beside the
// naive materialised path (matmul -> (N, N) logits -> cross_entropy over rows and columns,
// autograd backward) and, on CUDA, beside the speed floor: the loss's four GEMMs alone.
//
//   BM_ClipFused/N/d, BM_ClipNaive/N/d   CPU, f32, forward + backward (naive up to N = 16384)
//   BM_ClipFourGemmsCuda/N/d             the floor: cuBLASLt, bf16 in, f32 accumulate, the GEMMs of
//                                        one step (logits; logits again, G text, G^T image), in
//                                        row strips of the N x N matrix where it does not fit
//                                        (kernels/cuda/contrastive_v3_gemm.cu)
//   BM_ClipFusedCuda/N/d/version         bf16 fused loss, every version of the registry's
//                                        contrastive family (core/kernel_versions.h), candidates
//                                        included: 1 SIMT, 2 mma.sync, two passes per direction,
//                                        3 the four-GEMM schedule
//   BM_ClipNaiveCuda/N/d                 bf16, the materialised path, where it fits (else skipped)
// Counters: TFLOPS counts 4 GEMM-equivalents of 2 N^2 d each (what the loss needs); peak_MiB is
// the allocator's peak during one step (inputs included); x_floor is the row's time over the
// floor's at the same (N, d) in this run (the floor rows run first).
// Before timing, each CUDA row checks its kernel: the fused versions (forced, and checked to be
// the one that ran) against the naive path at N = 600, d = 72 (loss and both feature gradients),
// the floor's GEMMs against CPU matmuls at N = 300 in strips of 128 rows.
// Without a GPU the CUDA rows print why they are empty.
//
// Run: build/bin/bench_contrastive --benchmark_min_time=0.1 --benchmark_filter=Cuda
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/kernel_versions.h"
#include "core/ops.h"

#if MINIVL_CUDA
#include "kernels/cuda/contrastive_v3.h"
#include "kernels/cuda/fused.h"
#endif

using namespace minivl;

namespace {

const std::vector<int64_t> kCudaSizes = {4096, 16384, 32768, 65536, 131072};
const std::vector<int64_t> kDims = {512, 768};

// Unit rows drawn on the device itself (no host round trip at N = 131072).
Tensor unit_rows(int64_t n, int64_t d, DType dtype, Device device) {
  NoGradGuard no_grad;
  Tensor x = randn({n, d}, DType::f32, device);
  return div(x, sqrt(sum(mul(x, x), {-1}, true))).to(dtype);
}

Tensor naive_clip(const Tensor& image, const Tensor& text, const Tensor& logit_scale) {
  // Logits in f32 (a bf16 matmul's output times the f32 scale), as the fused kernels keep them.
  Tensor logits = mul(matmul(image, text.t()).to(DType::f32), exp(logit_scale));
  Tensor target = arange(0, double(image.size(0)), 1, DType::i64).to(image.device());
  return mul(add(cross_entropy(logits, target), cross_entropy(logits.t(), target)), 0.5);
}

double max_rel(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to(DType::f64).to_vector(), w = want.to(DType::f64).to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num = std::max(num, std::isnan(g[i]) ? INFINITY : std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / std::max(den, 1e-30);
}

// "" when the fused loss and its feature gradients match the naive path (f32 math on the same
// bf16 values), else what differs. N = 600, d = 72: ragged tiles and two feature slices.
std::string fused_check(Device device, DType dtype) {
  const int64_t n = 600, d = 72;
  Tensor a = unit_rows(n, d, dtype, device).requires_grad_(), b = unit_rows(n, d, dtype, device).requires_grad_();
  Tensor af = a.detach().to(DType::f32).requires_grad_(), bf = b.detach().to(DType::f32).requires_grad_();
  Tensor s = scalar_tensor(std::log(20.0), DType::f32, device);
#if MINIVL_CUDA
  if (device.is_cuda()) {  // the row's version (the override) runs here, not a fallback
    const KernelVersionFamily& versions = kernel_versions().family("contrastive");
    const int forced = versions.override_version();
    if (cuda::contrastive_version_run(versions.choose({dtype, d}), a.view(), b.view()) != forced)
      return "version " + std::to_string(forced) + " does not apply here";
  }
#endif
  Tensor fused = clip_loss(a, b, s), naive = naive_clip(af, bf, s);
  fused.backward();
  naive.backward();
  const double tol = dtype == DType::f32 ? 1e-5 : 2e-2;  // bf16: the loss and gradients are stored in bf16
  if (max_rel(fused, naive) > tol) return "loss differs from the naive path";
  if (max_rel(a.grad(), af.grad()) > tol) return "dimage differs from the naive path";
  if (max_rel(b.grad(), bf.grad()) > tol) return "dtext differs from the naive path";
  return "";
}

// Times one forward + backward per iteration (every CUDA step ends in a host read: a sync) after
// one untimed step; returns the seconds per step.
template <typename Step>
double time_steps(benchmark::State& state, Device device, Step&& step) {
  Allocator* alloc = allocator_for(device);
  alloc->reset_peak();
  step();
  state.counters["peak_MiB"] = double(alloc->stats().peak_allocated) / (1 << 20);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) step();
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return state.iterations() ? total / double(state.iterations()) : 0.0;
}

void set_flops(benchmark::State& state, int64_t n, int64_t d) {
  state.counters["TFLOPS"] = benchmark::Counter(4.0 * 2.0 * double(n) * double(n) * double(d) * 1e-12 *
                                                    double(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

std::map<std::pair<int64_t, int64_t>, double>& floor_seconds() {
  static std::map<std::pair<int64_t, int64_t>, double> m;
  return m;
}

void set_vs_floor(benchmark::State& state, int64_t n, int64_t d, double seconds_per_step) {
  auto it = floor_seconds().find({n, d});
  if (it != floor_seconds().end()) state.counters["x_floor"] = seconds_per_step / it->second;
}

template <bool kFused>
void clip_bench(benchmark::State& state, Device device, DType dtype) {
  const int64_t n = state.range(0), d = state.range(1);
  if (device.is_cuda() && !cuda_available()) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return;
  }
  if (!kFused && device.is_cpu() && n > 16384) {
    state.SkipWithError("naive path does not fit: the (N, N) logits and their gradients");
    return;
  }
  try {
    if (kFused) {
      const std::string bad = fused_check(device, dtype);
      if (!bad.empty()) {
        state.SkipWithError(("fused clip_loss: " + bad).c_str());
        return;
      }
    }
    Tensor image = unit_rows(n, d, dtype, device).requires_grad_(), text = unit_rows(n, d, dtype, device).requires_grad_();
    Tensor scale = scalar_tensor(std::log(100.0), DType::f32, device).requires_grad_();
    auto step = [&] {
      Tensor loss = kFused ? clip_loss(image, text, scale) : naive_clip(image, text, scale);
      loss.backward();
      benchmark::DoNotOptimize(image.grad().select(0, 0).select(0, 0).item());  // also synchronises a device
      image.zero_grad();
      text.zero_grad();
      scale.zero_grad();
    };
    const double per_step = time_steps(state, device, step);
    if (device.is_cuda()) set_vs_floor(state, n, d, per_step);
  } catch (const std::exception& e) {  // the naive path's N x N buffers: out of memory at large N
    state.SkipWithError((std::string(kFused ? "fused" : "naive path") + ": " + e.what()).c_str());
    return;
  }
  set_flops(state, n, d);
}

void BM_ClipFused(benchmark::State& state) { clip_bench<true>(state, Device::cpu(), DType::f32); }
void BM_ClipNaive(benchmark::State& state) { clip_bench<false>(state, Device::cpu(), DType::f32); }

#if MINIVL_CUDA
// Strip rows of the floor's N x N buffer: the whole matrix up to 2^31 bytes of bf16 logits.
int64_t floor_rows(int64_t n) {
  const int64_t rows = (int64_t(1) << 30) / n;
  return rows >= n ? n : std::max<int64_t>(128, rows / 128 * 128);
}

// The floor's GEMMs against CPU matmuls: dimage = sum_s L_s text, dtext = sum_s L_s^T image_s.
std::string four_gemms_check() {
  const int64_t n = 300, d = 64, rows = 128;
  Tensor a = unit_rows(n, d, DType::bf16, Device::cuda(0)), b = unit_rows(n, d, DType::bf16, Device::cuda(0));
  Tensor logits = empty({rows, n}, DType::bf16, Device::cuda(0));
  Tensor da = empty({n, d}, DType::bf16, Device::cuda(0)), db = empty({n, d}, DType::bf16, Device::cuda(0));
  cuda::contrastive_four_gemms(DType::bf16, n, d, rows, a.data_ptr(), b.data_ptr(), logits.data_ptr(), da.data_ptr(),
                               db.data_ptr());
  Tensor ac = a.to(Device::cpu()).to(DType::f32), bc = b.to(Device::cpu()).to(DType::f32);
  Tensor l = matmul(ac, bc.t()).to(DType::bf16).to(DType::f32);  // the floor keeps L in bf16
  if (max_rel(da.to(Device::cpu()), matmul(l, bc)) > 2e-2) return "dimage GEMM differs from the CPU";
  if (max_rel(db.to(Device::cpu()), matmul(l.t(), ac)) > 2e-2) return "dtext GEMM differs from the CPU";
  return "";
}
#endif

void BM_ClipFourGemmsCuda(benchmark::State& state) {
#if MINIVL_CUDA
  const int64_t n = state.range(0), d = state.range(1);
  if (!cuda_available()) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return;
  }
  try {
    const std::string bad = four_gemms_check();
    if (!bad.empty()) {
      state.SkipWithError(("four GEMMs: " + bad).c_str());
      return;
    }
    const Device dev = Device::cuda(0);
    Tensor image = unit_rows(n, d, DType::bf16, dev), text = unit_rows(n, d, DType::bf16, dev);
    Tensor da = empty({n, d}, DType::bf16, dev), db = empty({n, d}, DType::bf16, dev);
    const int64_t rows = floor_rows(n);
    Tensor logits = empty({rows, n}, DType::bf16, dev);
    auto step = [&] {
      cuda::contrastive_four_gemms(DType::bf16, n, d, rows, image.data_ptr(), text.data_ptr(), logits.data_ptr(),
                                   da.data_ptr(), db.data_ptr());
      benchmark::DoNotOptimize(db.select(0, n - 1).select(0, d - 1).item());  // synchronises
    };
    floor_seconds()[{n, d}] = time_steps(state, dev, step);
  } catch (const std::exception& e) {
    state.SkipWithError((std::string("four GEMMs: ") + e.what()).c_str());
    return;
  }
  set_flops(state, n, d);
#else
  state.SkipWithError("built without CUDA");
#endif
}

// The contrastive version is a process-wide override: set for this row, back to the default after.
void BM_ClipFusedCuda(benchmark::State& state) {
#if MINIVL_CUDA
  ScopedVersionOverride row(kernel_versions().family("contrastive"), int(state.range(2)));
  clip_bench<true>(state, Device::cuda(0), DType::bf16);
#else
  state.SkipWithError("built without CUDA");
#endif
}
void BM_ClipNaiveCuda(benchmark::State& state) { clip_bench<false>(state, Device::cuda(0), DType::bf16); }

void sizes(benchmark::internal::Benchmark* b) { b->ArgsProduct({{4096, 16384, 65536}, {512, 768}}); }
void cuda_sizes(benchmark::internal::Benchmark* b) { b->ArgsProduct({kCudaSizes, kDims}); }
// Every version of the registry's contrastive family, newest first (one row set without CUDA,
// where the rows skip). Version 1 (SIMT) takes seconds at N = 65536: it runs up to 16384;
// version 2 up to 65536.
void sizes_versions(benchmark::internal::Benchmark* b) {
  const KernelVersionFamily* family = kernel_versions().find_family("contrastive");
  std::vector<int> versions = family ? family->numbers() : std::vector<int>{1};
  std::reverse(versions.begin(), versions.end());
  const std::map<int, int64_t> largest_n = {{1, 16384}, {2, 65536}};
  for (int64_t version : versions)
    for (int64_t n : kCudaSizes)
      for (int64_t d : kDims)
        if (!largest_n.count(int(version)) || n <= largest_n.at(int(version))) b->Args({n, d, version});
}
void naive_cuda_sizes(benchmark::internal::Benchmark* b) {
  for (int64_t n : {4096, 16384, 32768})  // N = 65536 needs over 100 GiB of N x N buffers
    for (int64_t d : kDims) b->Args({n, d});
}

BENCHMARK(BM_ClipFused)->Apply(sizes)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_ClipNaive)->Apply(sizes)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_ClipFourGemmsCuda)->Apply(cuda_sizes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ClipFusedCuda)->Apply(sizes_versions)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ClipNaiveCuda)->Apply(naive_cuda_sizes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
