#pragma once
// What the main() of every benchmark binary with rows registered at run time shares (the others
// use BENCHMARK_MAIN): parse the flags, refuse unknown ones, add the context lines, run the rows.
#include <benchmark/benchmark.h>

#include <exception>
#include <functional>
#include <initializer_list>
#include <string>

#include "core/device.h"

#if MINIVL_CUDA
#include "bench/cudnn_peer.h"
#include "bench/gpu_timing.h"
#endif

namespace minivl::bench {

// Runs the registered rows. add_context, when given, runs once the flags are parsed (so that
// --help or an unknown flag exits before it measures anything). Returns main()'s exit code.
inline int run_benchmarks(int argc, char** argv, const std::function<void()>& add_context = nullptr) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (add_context) add_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// The context of the benchmarks that time CUDA kernels beside cuDNN: the cuDNN library found and,
// with a GPU, the memory ceiling (or why it was not measured). Nothing in a build without CUDA.
inline void add_gpu_context() {
#if MINIVL_CUDA
  benchmark::AddCustomContext("cudnn", cudnn_library().describe());
  if (!cuda_available()) return;
  try {
    benchmark::AddCustomContext("memory_ceiling", memory_ceiling().describe());
  } catch (const std::exception& e) {
    benchmark::AddCustomContext("memory_ceiling", std::string("not measured: ") + e.what());
  }
#endif
}

// In a build without CUDA, one row per name that skips with "built without CUDA", so that the
// rows a GPU run would list are still there and say why they are empty.
inline void register_rows_built_without_cuda(std::initializer_list<const char*> names) {
  for (const char* name : names)
    benchmark::RegisterBenchmark(name, [](benchmark::State& st) { st.SkipWithError("built without CUDA"); });
}

}  // namespace minivl::bench
