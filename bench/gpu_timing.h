#pragma once
// Shared by the CUDA benchmarks (bench_attention, bench_layernorm): the memory ceiling measured in
// the same run, L2 flushing, and CUDA-event timing on minivl's stream (cuda::stream_handle(): it
// is non-blocking, so events on the default stream would not wait for the kernels).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <string>

namespace minivl::bench {

struct MemoryCeiling {
  std::string device;       // cudaDeviceProp::name
  int64_t l2_bytes = 0;     // cudaDevAttrL2CacheSize
  int64_t copy_bytes = 0;   // the buffer copied: max(4 x L2, 64 MiB), so the copy streams from HBM
  double copy_gbps = 0;     // (bytes read + bytes written) / median time of the device-to-device copy
  double spec_gbps = 0;     // the card's peak: memory clock x bus width x 2 (double data rate)
  std::string spec_source;  // how spec_gbps was found ("memory clock ... x ...-bit bus x 2" or a table)
  std::string describe() const;
};
// Measured on the first call (needs a GPU; throws std::runtime_error naming the failing CUDA call).
const MemoryCeiling& memory_ceiling();

// Times one call of fn between two CUDA events. With flush_l2, a memset of a buffer of
// max(4 x L2, 256 MiB) runs first, outside the events, so inputs start in HBM as they do in a model.
class GpuTimer {
 public:
  explicit GpuTimer(bool flush_l2 = true);
  ~GpuTimer();
  GpuTimer(const GpuTimer&) = delete;
  GpuTimer& operator=(const GpuTimer&) = delete;

  double time_ms(const std::function<void()>& fn);
  // The benchmark loop, for rows registered with Iterations(1) and UseManualTime(): one warm-up
  // call, then about 30 ms of timed calls (5 to 101); the median is the iteration's manual time
  // and the return value (ms). Counter `calls` says how many were timed.
  double run(benchmark::State& state, const std::function<void()>& fn);

 private:
  bool flush_;
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

// The counters every CUDA row shares: median_ms, GBps (bytes / median time), ceiling_GBps,
// pct_ceiling (GBps / the measured copy), pct_spec (GBps / the card's peak).
void set_memory_counters(benchmark::State& state, double bytes, double median_ms);

// Throws std::runtime_error("what: CUDA error string") unless err is cudaSuccess (an int here so
// that this header needs no CUDA header).
void check_cuda(int err, const char* what);

}  // namespace minivl::bench
