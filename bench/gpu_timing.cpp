// bench/gpu_timing.h: the measured memory ceiling, the L2 flush and the event timer.
#include "bench/gpu_timing.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "kernels/cuda/backend.h"

namespace minivl::bench {
namespace {

cudaStream_t stream() { return static_cast<cudaStream_t>(cuda::stream_handle()); }

int current_device() {
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  return dev;
}

int64_t l2_size() {
  int bytes = 0;
  check_cuda(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, current_device()), "cudaDeviceGetAttribute(L2)");
  return bytes;
}

// Peak DRAM bandwidth from the memory clock and bus width (both DDR edges), or, when the driver
// reports no clock, the datasheet figure of the cards this project runs on.
void spec_bandwidth(MemoryCeiling& c) {
  int khz = 0, bits = 0;
  const int dev = current_device();
  cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev);
  cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev);
  if (khz > 0 && bits > 0) {
    c.spec_gbps = double(khz) * 1e3 * double(bits) / 8.0 * 2.0 * 1e-9;
    std::ostringstream s;
    s << "memory clock " << khz / 1000 << " MHz x " << bits << "-bit bus x 2";
    c.spec_source = s.str();
    return;
  }
  const std::pair<const char*, double> table[] = {{"H200", 4800}, {"H100 NVL", 3900}, {"H100 PCIe", 2000},
                                                  {"H100", 3350}, {"A100-SXM4-80GB", 2039}, {"A100", 1555}};
  for (const auto& [name, gbps] : table)
    if (c.device.find(name) != std::string::npos) {
      c.spec_gbps = gbps;
      c.spec_source = std::string("datasheet value for ") + name + " (the driver reported no memory clock)";
      return;
    }
  c.spec_source = "unknown (no memory clock reported and no datasheet entry for this card)";
}

MemoryCeiling measure() {
  MemoryCeiling c;
  cudaDeviceProp prop{};
  check_cuda(cudaGetDeviceProperties(&prop, current_device()), "cudaGetDeviceProperties");
  c.device = prop.name;
  c.l2_bytes = l2_size();
  c.copy_bytes = std::max<int64_t>(4 * c.l2_bytes, int64_t(64) << 20);
  spec_bandwidth(c);
  void *src = nullptr, *dst = nullptr;
  check_cuda(cudaMalloc(&src, size_t(c.copy_bytes)), "cudaMalloc (ceiling copy source)");
  check_cuda(cudaMalloc(&dst, size_t(c.copy_bytes)), "cudaMalloc (ceiling copy destination)");
  check_cuda(cudaMemsetAsync(src, 0x5a, size_t(c.copy_bytes), stream()), "cudaMemsetAsync (ceiling)");
  std::vector<double> times;
  {
    GpuTimer timer(false);  // the buffers are 4x L2: nothing to flush
    auto copy = [&] {
      check_cuda(cudaMemcpyAsync(dst, src, size_t(c.copy_bytes), cudaMemcpyDeviceToDevice, stream()),
                 "cudaMemcpyAsync (ceiling)");
    };
    for (int i = 0; i < 3; ++i) copy();
    for (int i = 0; i < 21; ++i) times.push_back(timer.time_ms(copy));
  }
  cudaFree(src);
  cudaFree(dst);
  std::sort(times.begin(), times.end());
  c.copy_gbps = 2.0 * double(c.copy_bytes) / (times[times.size() / 2] * 1e-3) * 1e-9;
  return c;
}

void* flush_buffer(size_t& bytes) {
  static size_t size = 0;
  static void* buffer = [] {
    size = size_t(std::max<int64_t>(4 * l2_size(), int64_t(256) << 20));
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, size), "cudaMalloc (L2 flush buffer)");
    return p;
  }();
  bytes = size;
  return buffer;
}

}  // namespace

void check_cuda(int err, const char* what) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(static_cast<cudaError_t>(err)));
}

std::string MemoryCeiling::describe() const {
  std::ostringstream s;
  s << device << ": L2 " << l2_bytes / (1 << 20) << " MiB; copy of " << copy_bytes / (1 << 20) << " MiB moves "
    << copy_gbps << " GB/s (read + write); peak " << spec_gbps << " GB/s (" << spec_source << ")";
  return s.str();
}

const MemoryCeiling& memory_ceiling() {
  static const MemoryCeiling c = measure();
  return c;
}

GpuTimer::GpuTimer(bool flush_l2) : flush_(flush_l2) {
  cudaEvent_t a = nullptr, b = nullptr;
  check_cuda(cudaEventCreate(&a), "cudaEventCreate");
  check_cuda(cudaEventCreate(&b), "cudaEventCreate");
  start_ = a;
  stop_ = b;
}

GpuTimer::~GpuTimer() {
  cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}

double GpuTimer::time_ms(const std::function<void()>& fn) {
  if (flush_) {
    size_t bytes = 0;
    void* buffer = flush_buffer(bytes);
    check_cuda(cudaMemsetAsync(buffer, 0, bytes, stream()), "cudaMemsetAsync (L2 flush)");
  }
  const auto start = static_cast<cudaEvent_t>(start_), stop = static_cast<cudaEvent_t>(stop_);
  check_cuda(cudaEventRecord(start, stream()), "cudaEventRecord");
  fn();
  check_cuda(cudaEventRecord(stop, stream()), "cudaEventRecord");
  check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize (a kernel failed?)");
  check_cuda(cudaGetLastError(), "kernel launch");
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  return double(ms);
}

double GpuTimer::run(benchmark::State& state, const std::function<void()>& fn) {
  const double first = time_ms(fn);  // also the warm-up: module load, allocator, cuDNN's first launch
  // About 30 ms of timed calls, 5 to 101 of them (an odd count: the median is one of them).
  int calls = int(std::clamp(30.0 / std::max(first, 1e-3), 5.0, 101.0));
  calls |= 1;
  std::vector<double> times;
  for (auto _ : state) {
    times.clear();
    for (int i = 0; i < calls; ++i) times.push_back(time_ms(fn));
    std::sort(times.begin(), times.end());
    state.SetIterationTime(times[times.size() / 2] * 1e-3);
  }
  state.counters["calls"] = double(calls);
  return times.empty() ? 0.0 : times[times.size() / 2];
}

void set_memory_counters(benchmark::State& state, double bytes, double median_ms) {
  const MemoryCeiling& c = memory_ceiling();
  const double gbps = median_ms > 0 ? bytes / (median_ms * 1e-3) * 1e-9 : 0.0;
  state.counters["median_ms"] = median_ms;
  state.counters["GBps"] = gbps;
  state.counters["ceiling_GBps"] = c.copy_gbps;
  state.counters["pct_ceiling"] = c.copy_gbps > 0 ? 100.0 * gbps / c.copy_gbps : 0.0;
  state.counters["pct_spec"] = c.spec_gbps > 0 ? 100.0 * gbps / c.spec_gbps : 0.0;
}

}  // namespace minivl::bench
