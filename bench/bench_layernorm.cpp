// LayerNorm benchmarks: the fused op (forward, backward) beside the naive composed-op path on the
// CPU, and on CUDA every numbered kernel version beside cuDNN's layernorm (loaded at run time,
// bench/cudnn_peer.h), against the memory ceiling measured in the same run.
//
//   BM_LayerNormFused/R/C, BM_LayerNormComposed/R/C            forward, f32, CPU
//   BM_LayerNormFusedBackward/R/C, BM_LayerNormComposedBackward/R/C   forward + backward, CPU
//   BM_LayerNormCuda/dtype/R/C/plain|residual/version/pass      dtype bf16 or f32; residual: the
//       fused pre-LN step (sum = x + r written, then normalised; the backward adds dsum);
//       pass 0 forward, pass 1 backward: dx, dweight, dbias; every version of the registry's
//       layernorm family (core/kernel_versions.h) that takes the dtype and C, newest first (for the
//       backward, those with a backward of their own: v3 runs v2's)
//   BM_LayerNormCudnn/dtype/R/C/pass                            cuDNN's norm operation (plain rows;
//       scale, bias and their gradients in f32, as cuDNN's samples); the label names the engine.
// Every CUDA and cuDNN row first runs on fresh random inputs (shared by the columns of one case)
// with its outputs poisoned with NaN, and must match the CPU reference in f32 (y, mean, rstd, sum;
// dx, dweight, dbias): a kernel that fails is reported, never timed. Timing: CUDA events around
// one call with the L2 flushed first (bench/gpu_timing.h), the median of 5 to 101 calls.
// Bytes, the fewest a pass must move: forward x (+ r) read, y (+ sum) written, weights 2 C, mean
// and rstd 8 R; backward dy, h (+ dsum) read, dx written, weight C, dweight and dbias 2 C, 8 R.
// Counters: GBps; pct_ceiling (of a device-to-device copy of >= 4x L2, measured in the same run,
// so that no row is compared with a copy that fits in L2); pct_spec (of the card's peak).
// GPU shapes (rows = B T): ViT-B/32 at B = 256 (12 800 x 768), ViT-B/16 at B = 256 (50 432 x 768),
// 65 536 x 768, ViT-L/14 at B = 64 (16 448 x 1024), ViT-L/14@336 at B = 64 (36 928 x 1024),
// 65 536 x 1024, and a large square (8192 x 8192).
//
// Run: build/bin/bench_layernorm --benchmark_min_time=0.1
//      (tools/gpu_check.sh runs --benchmark_filter='Cuda|Cudnn' and bench/peer_tables.py)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "core/dispatch.h"
#include "core/kernel_versions.h"
#include "core/ops.h"

#if MINIVL_CUDA
#include "bench/cudnn_peer.h"
#include "bench/cudnn_rows.h"
#include "bench/gpu_timing.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/fused.h"
#endif

using namespace minivl;

namespace {

// ---- CPU ----

void cpu_shapes(benchmark::internal::Benchmark* b) {
  for (auto [r, c] : {std::pair<int64_t, int64_t>{12800, 768}, {16448, 1024}, {4096, 4096}}) b->Args({r, c});
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
Inputs make_inputs(int64_t r, int64_t c) { return {randn({r, c}), randn({c}), randn({c}), randn({r, c})}; }

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
BENCHMARK(BM_LayerNormFused)->Apply(cpu_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LayerNormComposed(benchmark::State& state) {
  const int64_t r = state.range(0), c = state.range(1);
  Inputs in = make_inputs(r, c);
  for (auto _ : state) benchmark::DoNotOptimize(composed(in.x, in.w, in.b).data_ptr());
  set_bytes(state, double(2 * r * c + 2 * c) * 4);
}
BENCHMARK(BM_LayerNormComposed)->Apply(cpu_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

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
BENCHMARK(BM_LayerNormFusedBackward)->Apply(cpu_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_LayerNormComposedBackward)->Apply(cpu_shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

#if MINIVL_CUDA
// ---- CUDA and cuDNN ----

struct LnCase {
  bool bf16;
  int64_t R, C;
  bool residual;
};

std::vector<LnCase> gpu_cases() {
  const std::pair<int64_t, int64_t> shapes[] = {{12800, 768},  {50432, 768},  {65536, 768}, {16448, 1024},
                                                {36928, 1024}, {65536, 1024}, {8192, 8192}};
  std::vector<LnCase> out;
  for (bool bf16 : {true, false})
    for (const auto& [r, c] : shapes)
      for (bool residual : {false, true}) out.push_back({bf16, r, c, residual});
  return out;
}

std::string case_args(const LnCase& c, bool with_kind) {
  std::string s = std::string(c.bf16 ? "bf16" : "f32") + "/" + std::to_string(c.R) + "/" + std::to_string(c.C);
  if (with_kind) s += c.residual ? "/residual" : "/plain";
  return s;
}

constexpr double kEps = 1e-5;

// The bytes a pass must move; act and param are the element sizes of activations and weights.
double pass_bytes(const LnCase& c, int pass, double act, double param) {
  const double rc = double(c.R) * double(c.C), stats = 8.0 * double(c.R);
  if (pass == 0) return rc * act * (c.residual ? 4 : 2) + 2.0 * double(c.C) * param + stats;
  return rc * act * (c.residual ? 4 : 3) + 3.0 * double(c.C) * param + stats;
}

// One case's GPU tensors and the f32 CPU references, shared by its columns.
struct LnData {
  LnCase c;
  Tensor x, r, w, b, dy, dsum, w32, b32;           // inputs on the GPU (w32, b32: cuDNN's f32 weights)
  Tensor y, sum, mean, rstd, dh, dw, db, dw32, db32;  // outputs on the GPU
  Tensor h_ref;  // x (+ r) on the CPU in f32, for the backward reference
  Tensor h_gpu, y_ref, mean_ref, rstd_ref, dh_ref, dw_ref, db_ref;  // computed on the CPU in f32, kept on the GPU
  bool have_backward_ref = false;
};

Tensor cpu32(const Tensor& t) { return t.to(Device::cpu()).to(DType::f32); }

LnData& case_data(const LnCase& c) {
  static std::unique_ptr<LnData> current;
  if (current && case_args(current->c, true) == case_args(c, true)) return *current;
  current.reset();
  auto d = std::make_unique<LnData>();
  const Device dev = Device::cuda(0);
  const DType dt = c.bf16 ? DType::bf16 : DType::f32;
  d->c = c;
  d->x = randn({c.R, c.C}, dt, dev), d->r = randn({c.R, c.C}, dt, dev);
  d->w = randn({c.C}, dt, dev), d->b = randn({c.C}, dt, dev);
  d->dy = randn({c.R, c.C}, dt, dev), d->dsum = randn({c.R, c.C}, dt, dev);
  d->w32 = d->w.to(DType::f32), d->b32 = d->b.to(DType::f32);
  for (Tensor* t : {&d->y, &d->sum, &d->dh}) *t = empty({c.R, c.C}, dt, dev);
  for (Tensor* t : {&d->mean, &d->rstd}) *t = empty({c.R}, DType::f32, dev);
  for (Tensor* t : {&d->dw, &d->db}) *t = empty({c.C}, dt, dev);
  for (Tensor* t : {&d->dw32, &d->db32}) *t = empty({c.C}, DType::f32, dev);
  // h = x (+ r, rounded to the storage type as the kernels store it), then the f32 statistics.
  const Tensor x_cpu = d->x.to(Device::cpu());
  d->h_ref = c.residual ? add(x_cpu, d->r.to(Device::cpu())).to(DType::f32) : x_cpu.to(DType::f32);
  d->y_ref = layernorm(d->h_ref, cpu32(d->w), cpu32(d->b), kEps);
  d->mean_ref = mean(d->h_ref, {-1});
  const Tensor centred = sub(d->h_ref, mean(d->h_ref, {-1}, true));
  d->rstd_ref = rsqrt(add(mean(mul(centred, centred), {-1}), kEps));
  for (Tensor* t : {&d->y_ref, &d->mean_ref, &d->rstd_ref}) *t = t->to(dev);
  d->h_gpu = d->h_ref.to(dev);
  current = std::move(d);
  return *current;
}

void backward_reference(LnData& d) {
  if (d.have_backward_ref) return;
  Tensor h = d.h_ref.clone().requires_grad_(), w = cpu32(d.w).requires_grad_(), b = cpu32(d.b).requires_grad_();
  layernorm(h, w, b, kEps).backward(cpu32(d.dy));
  const Device dev = Device::cuda(0);
  d.dh_ref = (d.c.residual ? add(h.grad(), cpu32(d.dsum)) : h.grad()).to(dev);
  d.dw_ref = w.grad().to(dev), d.db_ref = b.grad().to(dev);
  d.have_backward_ref = true;
}

void poison(const LnData& d) {
  for (const Tensor& t : {d.y, d.sum, d.mean, d.rstd, d.dh, d.dw, d.db, d.dw32, d.db32}) Tensor(t).fill_(std::nan(""));
}

// Appends "name ..." to `bad` unless got matches want (the f32 reference) within limit x max |want|;
// both on the GPU, so that only scalars come back.
void compare(std::string& bad, const char* name, const Tensor& got, const Tensor& want, double limit) {
  const Tensor g = got.to(DType::f32);
  if (!std::isfinite(sum(g).item())) {
    bad += std::string(bad.empty() ? "" : "; ") + name + " has NaN/inf (unwritten?)";
    return;
  }
  const double e = max(abs(sub(g, want))).item() / std::max(max(abs(want)).item(), 1e-30);
  if (!(e <= limit)) bad += std::string(bad.empty() ? "" : "; ") + name + " max rel diff " + std::to_string(e);
}

// Checks the outputs a pass wrote: the forward's y, mean, rstd (sum), or the backward's dx and
// the weight gradients (in f32 for cuDNN). "" when all match.
std::string validate(LnData& d, int pass, bool cudnn) {
  const double tol = d.c.bf16 ? 1e-2 : 1e-4, grad_tol = d.c.bf16 ? 2e-2 : 1e-3;
  std::string bad;
  if (pass == 0) {
    compare(bad, "y", d.y, d.y_ref, tol);
    compare(bad, "mean", d.mean, d.mean_ref, 1e-3);
    compare(bad, "rstd", d.rstd, d.rstd_ref, 1e-3);
    if (d.c.residual) compare(bad, "sum", d.sum, d.h_gpu, d.c.bf16 ? 1e-2 : 1e-6);
    return bad;
  }
  backward_reference(d);
  compare(bad, "dx", d.dh, d.dh_ref, grad_tol);
  compare(bad, "dweight", cudnn ? d.dw32 : d.dw, d.dw_ref, grad_tol);
  compare(bad, "dbias", cudnn ? d.db32 : d.db, d.db_ref, grad_tol);
  return bad;
}

void minivl_row(benchmark::State& state, const LnCase& c, int version, int pass) {
  if (!cuda_available()) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return;
  }
  try {
    LnData& d = case_data(c);
    const StridedView none{};
    auto forward = [&] {
      cuda::layernorm_forward_cuda_version(version, d.x.view(), c.residual ? d.r.view() : none, d.w.view(),
                                           d.b.view(), kEps, c.residual ? d.sum.view() : none, d.y.view(),
                                           d.mean.view(), d.rstd.view());
    };
    auto backward = [&] {
      cuda::layernorm_backward_cuda_version(version, d.dy.view(), c.residual ? d.sum.view() : d.x.view(), d.w.view(),
                                            d.mean.view(), d.rstd.view(), c.residual ? d.dsum.view() : none,
                                            d.dh.view(), d.dw.view(), d.db.view());
    };
    poison(d);
    forward();
    if (pass == 1) backward();
    const std::string bad = validate(d, pass, false);
    if (!bad.empty()) {
      state.SkipWithError(("minivl disagrees with the CPU: " + bad).c_str());
      return;
    }
    bench::GpuTimer timer;
    const double median = pass == 0 ? timer.run(state, forward) : timer.run(state, backward);
    const double eb = c.bf16 ? 2 : 4;
    bench::set_memory_counters(state, pass_bytes(c, pass, eb, eb), median);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

// One case's cuDNN plans (bench/cudnn_rows.h), for both passes' rows.
bench::CudnnLayerNorm& cudnn_plans(const bench::LayerNormProblem& lp, int pass) {
  static bench::CudnnPlans<bench::CudnnLayerNorm> plans;
  const std::string key = std::to_string(lp.rows) + "/" + std::to_string(lp.cols) + (lp.bf16 ? "/bf16" : "/f32");
  return plans.get(key, pass, [&](bool with_backward) {
    return std::make_unique<bench::CudnnLayerNorm>(lp, with_backward, cuda::stream_handle());
  });
}

void cudnn_row(benchmark::State& state, const LnCase& c, int pass) {
  const bench::LayerNormProblem lp{c.R, c.C, c.bf16, kEps};
  if (!bench::cudnn_row_can_run(state, [&] { return bench::CudnnLayerNorm(lp, pass == 1, nullptr); })) return;
  try {
    LnData& d = case_data(c);
    bench::CudnnLayerNorm& ln = cudnn_plans(lp, pass);
    ln.bind_forward(d.x.data_ptr(), d.w32.data_ptr(), d.b32.data_ptr(), d.y.data_ptr(), d.mean.data_ptr(),
                    d.rstd.data_ptr());
    if (pass == 1)
      ln.bind_backward(d.x.data_ptr(), d.dy.data_ptr(), d.w32.data_ptr(), d.mean.data_ptr(), d.rstd.data_ptr(),
                       d.dh.data_ptr(), d.dw32.data_ptr(), d.db32.data_ptr());
    poison(d);
    ln.forward();
    if (pass == 1) ln.backward();
    const std::string bad = validate(d, pass, true);
    if (!bad.empty()) {
      state.SkipWithError(("cuDNN disagrees with the CPU: " + bad + " (" + ln.note() + ")").c_str());
      return;
    }
    bench::GpuTimer timer;
    const double median = pass == 0 ? timer.run(state, [&] { ln.forward(); }) : timer.run(state, [&] { ln.backward(); });
    bench::set_memory_counters(state, pass_bytes(c, pass, c.bf16 ? 2 : 4, 4), median);
    state.SetLabel(ln.note().c_str());
  } catch (const std::exception& e) {
    state.SkipWithError((std::string("cuDNN: ") + e.what()).c_str());
  }
}

void register_gpu_rows() {
  const KernelVersionFamily& versions = kernel_versions().family("layernorm");
  std::vector<int> newest_first = versions.numbers();
  std::reverse(newest_first.begin(), newest_first.end());
  auto finish = [](benchmark::internal::Benchmark* b) {
    b->Iterations(1)->UseManualTime()->Unit(benchmark::kMicrosecond);
  };
  for (const LnCase& c : gpu_cases())
    for (int pass : {0, 1}) {
      if (!c.residual)
        finish(benchmark::RegisterBenchmark(
            ("BM_LayerNormCudnn/" + case_args(c, false) + "/" + std::to_string(pass)).c_str(),
            [c, pass](benchmark::State& st) { cudnn_row(st, c, pass); }));
      for (int version : newest_first) {
        if (!versions.takes(version, {c.bf16 ? DType::bf16 : DType::f32, c.C})) continue;
        if (pass == 1 && cuda::layernorm_backward_version(version) != version) continue;
        finish(benchmark::RegisterBenchmark(
            ("BM_LayerNormCuda/" + case_args(c, true) + "/" + std::to_string(version) + "/" + std::to_string(pass))
                .c_str(),
            [c, version, pass](benchmark::State& st) { minivl_row(st, c, version, pass); }));
      }
    }
}
#else
void register_gpu_rows() { bench::register_rows_built_without_cuda({"BM_LayerNormCuda", "BM_LayerNormCudnn"}); }
#endif

}  // namespace

int main(int argc, char** argv) {
  (void)kernels();  // registers the backends (and the CUDA allocator) before the first tensor
  register_gpu_rows();
  return bench::run_benchmarks(argc, argv, bench::add_gpu_context);
}
