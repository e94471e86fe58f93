// Attention benchmarks: the fused op's tiled CPU kernels beside the naive materialised ones, and
// on CUDA every numbered kernel version beside cuDNN (loaded at run time, bench/cudnn_peer.h) on
// the vision-language shapes and FlashAttention's standard long sweep.
//
//   BM_AttentionCpu/B/H/Tq/Tk/D/causal/pass          tiled CPU kernels, f32; pass 0 forward, 1 backward.
//       Counter naive_over_tiled: the naive kernel's CPU time on the same call / the tiled one's
//       (best of 5 each, alternating). On a shared machine run with OMP_NUM_THREADS=1. CPU rows keep
//       the shapes' H, Tq, Tk, D with a smaller B (B / 16, at least 1; B = 2 at T >= 512; D = 64
//       and T <= 577 only): the full batches take minutes on a 2-core CPU.
//   BM_AttentionCuda/B/H/Tq/Tk/D/causal/version/pass   bf16, every version of the registry's
//       attention family (core/kernel_versions.h) that takes bf16 at the shape's D, candidates
//       included. v1 is skipped above T = 512 and v2 above T = 1024 (seconds a call;
//       MINIVL_BENCH_ALL_VERSIONS=1 runs them).
//   BM_AttentionCudnn/B/H/Tq/Tk/D/causal/pass         cuDNN's SDPA graph (bf16, f32 statistics);
//       the label names the engine cuDNN chose. Without a GPU the operation graphs are still
//       built and finalised, and the row says so.
// Every timed kernel (minivl and cuDNN) first runs on fresh random inputs (shared by the columns
// of one shape) with every output poisoned with NaN; all outputs must be finite and the (b = 0,
// h < 2) slice must match the CPU's tiled kernels in f32 (out, lse; dq, dk, dv for the backward).
// A kernel that fails is reported (the row's error), never timed. Timing: CUDA events around one
// call, the L2 flushed before each (bench/gpu_timing.h); the row's time is the median of 5 to 101
// calls (about 30 ms of them; counter `calls`), so --benchmark_min_time applies to the CPU rows only.
// Counters: median_ms, TFLOPS, GBps, pct_ceiling (of a device-to-device copy of >= 4x L2, measured
// in the same run), pct_spec (of the card's peak bandwidth).
// FLOPs (FlashAttention's convention): forward 4 B H Tq Tk D, halved for causal; backward 2.5x the
// forward. Bytes, the fewest a pass must move: forward q, k, v, out (+ lse); backward q, k, v, out,
// dout, lse read and dq, dk, dv written.
// Shapes (B, H, Tq, Tk, D): ViT-B/32 (256, 12, 50, 50, 64), ViT-B/16 (64, 12, 197, 197, 64),
// ViT-L/14 (32, 16, 257, 257, 64), ViT-L/14@336 (16, 16, 577, 577, 64), CLIP text (256, 8, 77, 77,
// 64, causal), captioner cross-attention (128, 8, 20, 197, 64); then B T = 16k, H D = 2048,
// T in {512, 1k, 2k, 4k}, D in {64, 128}, causal and not.
//
// Run: build/bin/bench_attention --benchmark_min_time=0.05 --benchmark_filter=Cpu
//      (tools/gpu_check.sh runs --benchmark_filter='Cuda|Cudnn' and bench/peer_tables.py)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_main.h"
#include "core/dispatch.h"
#include "core/kernel_versions.h"
#include "core/ops.h"
#include "kernels/cpu/attention_cpu.h"

#if MINIVL_CUDA
#include "bench/cudnn_peer.h"
#include "bench/cudnn_rows.h"
#include "bench/gpu_timing.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/backend.h"
#endif

using namespace minivl;

namespace {

struct AttnShape {
  int64_t B, H, Tq, Tk, D;
  bool causal;
};

std::vector<AttnShape> all_shapes() {
  std::vector<AttnShape> s = {{256, 12, 50, 50, 64, false},  {64, 12, 197, 197, 64, false},
                              {32, 16, 257, 257, 64, false}, {16, 16, 577, 577, 64, false},
                              {256, 8, 77, 77, 64, true},    {128, 8, 20, 197, 64, false}};
  for (int64_t t : {512, 1024, 2048, 4096})
    for (int64_t d : {64, 128})
      for (bool c : {false, true}) s.push_back({16384 / t, 2048 / d, t, t, d, c});
  return s;
}

std::string shape_args(const AttnShape& s) {
  return std::to_string(s.B) + "/" + std::to_string(s.H) + "/" + std::to_string(s.Tq) + "/" + std::to_string(s.Tk) +
         "/" + std::to_string(s.D) + "/" + (s.causal ? "1" : "0");
}

double pass_flops(const AttnShape& s, int pass) {
  const double fwd = 4.0 * double(s.B * s.H) * double(s.Tq) * double(s.Tk) * double(s.D) * (s.causal ? 0.5 : 1.0);
  return pass == 0 ? fwd : 2.5 * fwd;
}

struct Problem {
  Tensor q, k, v, out, lse, dout, dq, dk, dv;
};

Problem make_problem(const AttnShape& s, DType dtype, Device device) {
  Problem p;
  const Shape qs = {s.B, s.H, s.Tq, s.D}, ks = {s.B, s.H, s.Tk, s.D};
  p.q = randn(qs, dtype, device);
  p.k = randn(ks, dtype, device);
  p.v = randn(ks, dtype, device);
  p.dout = randn(qs, dtype, device);
  p.out = empty(qs, dtype, device);
  p.lse = empty({s.B, s.H, s.Tq}, DType::f32, device);
  p.dq = empty(qs, dtype, device);
  p.dk = empty(ks, dtype, device);
  p.dv = empty(ks, dtype, device);
  return p;
}

using ForwardFn = void (*)(const StridedView&, const StridedView&, const StridedView&, const StridedView&, bool,
                           double, const StridedView&, const StridedView&);
using BackwardFn = void (*)(const StridedView&, const StridedView&, const StridedView&, const StridedView&, bool,
                            double, const StridedView&, const StridedView&, const StridedView&, const StridedView&,
                            const StridedView&, const StridedView&);

double attention_scale(const Problem& p) { return 1.0 / std::sqrt(double(p.q.size(3))); }

void run_pass(const Problem& p, bool causal, int pass, ForwardFn fwd, BackwardFn bwd) {
  const double scale = attention_scale(p);
  if (pass == 0) {
    fwd(p.q.view(), p.k.view(), p.v.view(), StridedView{}, causal, scale, p.out.view(), p.lse.view());
  } else {
    bwd(p.q.view(), p.k.view(), p.v.view(), StridedView{}, causal, scale, p.out.view(), p.lse.view(), p.dout.view(),
        p.dq.view(), p.dk.view(), p.dv.view());
  }
}

// ---- CPU ----

AttnShape cpu_shape(AttnShape s) {
  s.B = std::max(s.Tq, s.Tk) >= 512 ? 2 : std::max<int64_t>(1, s.B / 16);
  return s;
}

void cpu_row(benchmark::State& state, const AttnShape& s, int pass) {
  Problem p = make_problem(s, DType::f32, Device::cpu());
  run_pass(p, s.causal, 0, cpu::attention_forward, cpu::attention_backward);  // lse and out for the backward
  for (auto _ : state) run_pass(p, s.causal, pass, cpu::attention_forward, cpu::attention_backward);
  state.counters["TFLOPS"] =
      benchmark::Counter(pass_flops(s, pass) * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
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

void register_cpu_rows() {
  for (const AttnShape& full : all_shapes()) {
    if (std::max(full.Tq, full.Tk) > 577 || full.D != 64) continue;
    const AttnShape s = cpu_shape(full);
    for (int pass : {0, 1})
      benchmark::RegisterBenchmark(("BM_AttentionCpu/" + shape_args(s) + "/" + std::to_string(pass)).c_str(),
                                   [s, pass](benchmark::State& st) { cpu_row(st, s, pass); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
  }
}

#if MINIVL_CUDA
// ---- CUDA and cuDNN ----

// The (b = 0, h < 2) slice of a tensor on the CPU in f32 (cut on its device: only the slice moves).
Tensor head_slice(const Tensor& t) {
  return t.narrow(0, 0, 1).narrow(1, 0, std::min<int64_t>(2, t.size(1))).contiguous().to(Device::cpu()).to(DType::f32);
}

double max_rel_diff(const Tensor& got, const Tensor& want) {
  const double den = max(abs(want)).item();
  return max(abs(sub(got, want))).item() / std::max(den, 1e-30);
}

bool all_finite(const Tensor& t) { return std::isfinite(sum(t.to(DType::f32)).item()); }

// Inputs of one shape on the GPU and the CPU reference of their head slice, shared by the columns
// (cuDNN and each version, both passes) so that the f32 CPU reference runs once per shape.
struct ShapeData {
  AttnShape shape;
  Problem gpu;
  Problem ref;  // the head slice through the CPU's tiled kernels, in f32
  bool have_backward_ref = false;
};

ShapeData& shape_data(const AttnShape& s) {
  static std::unique_ptr<ShapeData> current;
  if (!current || shape_args(current->shape) != shape_args(s)) {
    current.reset();  // free the previous shape's GPU buffers first
    auto d = std::make_unique<ShapeData>();
    d->shape = s;
    d->gpu = make_problem(s, DType::bf16, Device::cuda(0));
    Problem& r = d->ref;
    r.q = head_slice(d->gpu.q), r.k = head_slice(d->gpu.k), r.v = head_slice(d->gpu.v);
    r.dout = head_slice(d->gpu.dout);
    r.out = empty(r.q.shape()), r.lse = empty({1, r.q.size(1), r.q.size(2)});
    r.dq = empty(r.q.shape()), r.dk = empty(r.k.shape()), r.dv = empty(r.k.shape());
    run_pass(r, s.causal, 0, cpu::attention_forward, cpu::attention_backward);
    current = std::move(d);
  }
  return *current;
}

void poison(const Problem& p) {
  for (const Tensor& t : {p.out, p.lse, p.dq, p.dk, p.dv}) Tensor(t).fill_(std::nan(""));
}

// "" when the GPU's outputs match the CPU reference; otherwise what failed.
std::string validate(ShapeData& d, int pass) {
  const Problem& g = d.gpu;
  Problem& r = d.ref;
  const double tol = 3e-2;  // bf16 operands
  std::string bad;
  auto check = [&](const char* name, const Tensor& got, const Tensor& want, double limit) {
    if (!all_finite(got)) {
      bad += std::string(bad.empty() ? "" : "; ") + name + " has NaN/inf (unwritten or overflowed)";
      return;
    }
    const double e = max_rel_diff(head_slice(got), want);
    if (!(e <= limit)) bad += std::string(bad.empty() ? "" : "; ") + name + " max rel diff " + std::to_string(e);
  };
  check("out", g.out, r.out, tol);
  check("lse", g.lse, r.lse, 1e-2);
  if (pass == 1) {
    if (!d.have_backward_ref) {
      run_pass(r, d.shape.causal, 1, cpu::attention_forward, cpu::attention_backward);
      d.have_backward_ref = true;
    }
    check("dq", g.dq, r.dq, tol);
    check("dk", g.dk, r.dk, tol);
    check("dv", g.dv, r.dv, tol);
  }
  return bad;
}

double pass_bytes(const AttnShape& s, int pass, int64_t elem_bytes) {
  const double bh = double(s.B * s.H), q = double(s.Tq * s.D), kv = double(s.Tk * s.D);
  const double lse = bh * double(s.Tq) * 4.0;
  if (pass == 0) return bh * (2 * q + 2 * kv) * double(elem_bytes) + lse;  // q, k, v, out; lse
  return bh * (4 * q + 4 * kv) * double(elem_bytes) + lse;  // q, k, v, out, dout, dq, dk, dv; lse
}

void set_gpu_counters(benchmark::State& state, const AttnShape& s, int pass, double median_ms) {
  bench::set_memory_counters(state, pass_bytes(s, pass, 2), median_ms);
  state.counters["TFLOPS"] = median_ms > 0 ? pass_flops(s, pass) / (median_ms * 1e-3) * 1e-12 : 0.0;
}

bool all_versions() {
  const char* v = std::getenv("MINIVL_BENCH_ALL_VERSIONS");
  return v && std::string(v) == "1";
}

std::string version_tag(int version) {
  std::string tag = "v";  // built by append: GCC 12 warns falsely (-Wrestrict) on "v" + std::string
  tag += std::to_string(version);
  return tag;
}

void cuda_row(benchmark::State& state, const AttnShape& s, int version, int pass) {
  if (!cuda_available()) {
    state.SkipWithError(("no GPU: " + cuda_unavailable_reason()).c_str());
    return;
  }
  const int64_t t = std::max(s.Tq, s.Tk);
  if (!all_versions() && ((version == 1 && t > 512) || (version == 2 && t > 1024))) {
    state.SkipWithError(version == 1 ? "v1 materialises B H Tq Tk scores (0.1 s a call at T = 512): skipped above "
                                       "T = 512 (MINIVL_BENCH_ALL_VERSIONS=1 runs it)"
                                     : "v2 (SIMT) takes seconds a call here: skipped above T = 1024 "
                                       "(MINIVL_BENCH_ALL_VERSIONS=1 runs it)");
    return;
  }
  try {
    ShapeData& d = shape_data(s);
    const Problem& p = d.gpu;
    const double scale = attention_scale(p);
    auto forward = [&] {
      cuda::attention_forward_cuda_version(version, p.q.view(), p.k.view(), p.v.view(), StridedView{}, s.causal, scale,
                                           p.out.view(), p.lse.view());
    };
    auto backward = [&] {
      cuda::attention_backward_cuda_version(version, p.q.view(), p.k.view(), p.v.view(), StridedView{}, s.causal,
                                            scale, p.out.view(), p.lse.view(), p.dout.view(), p.dq.view(),
                                            p.dk.view(), p.dv.view());
    };
    poison(p);
    forward();
    if (pass == 1) backward();
    const std::string bad = validate(d, pass);
    if (!bad.empty()) {
      state.SkipWithError((version_tag(version) + " disagrees with the CPU: " + bad).c_str());
      return;
    }
    bench::GpuTimer timer;
    const double median = pass == 0 ? timer.run(state, forward) : timer.run(state, backward);
    set_gpu_counters(state, s, pass, median);
  } catch (const std::exception& e) {
    state.SkipWithError((version_tag(version) + ": " + e.what()).c_str());
  }
}

// One shape's cuDNN plans (bench/cudnn_rows.h), for both passes' rows.
bench::CudnnSdpa& cudnn_plans(const AttnShape& s, int pass, double scale) {
  static bench::CudnnPlans<bench::CudnnSdpa> plans;
  const bench::SdpaProblem sp{s.B, s.H, s.Tq, s.Tk, s.D, s.causal};
  return plans.get(shape_args(s), pass, [&](bool with_backward) {
    return std::make_unique<bench::CudnnSdpa>(sp, with_backward, scale, cuda::stream_handle());
  });
}

void cudnn_row(benchmark::State& state, const AttnShape& s, int pass) {
  const bench::SdpaProblem sp{s.B, s.H, s.Tq, s.Tk, s.D, s.causal};
  const double scale = 1.0 / std::sqrt(double(s.D));
  if (!bench::cudnn_row_can_run(state, [&] { return bench::CudnnSdpa(sp, pass == 1, scale, nullptr); })) return;
  try {
    ShapeData& d = shape_data(s);
    const Problem& p = d.gpu;
    bench::CudnnSdpa& sdpa = cudnn_plans(s, pass, scale);
    sdpa.bind_forward(p.q.data_ptr(), p.k.data_ptr(), p.v.data_ptr(), p.out.data_ptr(), p.lse.data_ptr());
    if (pass == 1)
      sdpa.bind_backward(p.q.data_ptr(), p.k.data_ptr(), p.v.data_ptr(), p.out.data_ptr(), p.lse.data_ptr(),
                         p.dout.data_ptr(), p.dq.data_ptr(), p.dk.data_ptr(), p.dv.data_ptr());
    poison(p);
    sdpa.forward();
    if (pass == 1) sdpa.backward();
    const std::string bad = validate(d, pass);
    if (!bad.empty()) {
      state.SkipWithError(("cuDNN disagrees with the CPU: " + bad + " (" + sdpa.note() + ")").c_str());
      return;
    }
    bench::GpuTimer timer;
    const double median =
        pass == 0 ? timer.run(state, [&] { sdpa.forward(); }) : timer.run(state, [&] { sdpa.backward(); });
    set_gpu_counters(state, s, pass, median);
    state.SetLabel(sdpa.note().c_str());
  } catch (const std::exception& e) {
    state.SkipWithError((std::string("cuDNN: ") + e.what()).c_str());
  }
}

// cuDNN, the default version and the newer ones (candidates) shape by shape, newest first, so that
// a run cut short by a time limit still has the comparisons of the shapes it reached; the older,
// slower versions after.
void register_gpu_rows() {
  const std::vector<AttnShape> shapes = all_shapes();
  const KernelVersionFamily& versions = kernel_versions().family("attention");
  std::vector<int> newest_first = versions.numbers();
  std::reverse(newest_first.begin(), newest_first.end());
  auto takes = [&](int version, const AttnShape& s) { return versions.takes(version, {DType::bf16, s.D}); };
  auto recent = [&](int version, const AttnShape& s) {
    return version >= versions.default_version({DType::bf16, s.D});
  };
  auto add_cuda = [](const AttnShape& s, int version, int pass) {
    benchmark::RegisterBenchmark(("BM_AttentionCuda/" + shape_args(s) + "/" + std::to_string(version) + "/" +
                                  std::to_string(pass))
                                     .c_str(),
                                 [s, version, pass](benchmark::State& st) { cuda_row(st, s, version, pass); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  };
  for (const AttnShape& s : shapes)
    for (int pass : {0, 1}) {
      benchmark::RegisterBenchmark(("BM_AttentionCudnn/" + shape_args(s) + "/" + std::to_string(pass)).c_str(),
                                   [s, pass](benchmark::State& st) { cudnn_row(st, s, pass); })
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
      for (int version : newest_first)
        if (takes(version, s) && recent(version, s)) add_cuda(s, version, pass);
    }
  for (int version : newest_first)
    for (const AttnShape& s : shapes)
      for (int pass : {0, 1})
        if (takes(version, s) && !recent(version, s)) add_cuda(s, version, pass);
}
#else
void register_gpu_rows() { bench::register_rows_built_without_cuda({"BM_AttentionCuda", "BM_AttentionCudnn"}); }
#endif

}  // namespace

int main(int argc, char** argv) {
  (void)kernels();  // registers the backends (and the CUDA allocator) before the first tensor
  register_cpu_rows();
  register_gpu_rows();
  return bench::run_benchmarks(argc, argv, bench::add_gpu_context);
}
