#include "core/counters.h"

#include <atomic>

#include "core/allocator.h"
#include "core/device.h"

namespace minivl {
namespace {
// Relaxed atomics: counts only, no ordering; a step is measured from one thread.
std::atomic<int64_t> g_launches{0}, g_syncs{0}, g_bytes{0};
}  // namespace

void count_launch() { g_launches.fetch_add(1, std::memory_order_relaxed); }

void count_sync(int64_t bytes_read) {
  g_syncs.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(bytes_read, std::memory_order_relaxed);
}

void count_host_device_bytes(int64_t bytes) { g_bytes.fetch_add(bytes, std::memory_order_relaxed); }

EngineCounters engine_counters() {
  EngineCounters c;
  c.launches = g_launches.load(std::memory_order_relaxed);
  c.syncs = g_syncs.load(std::memory_order_relaxed);
  c.host_device_bytes = g_bytes.load(std::memory_order_relaxed);
  c.device_allocs = cpu_allocator()->stats().num_device_allocs;
  if (cuda_available()) c.device_allocs += allocator_for(Device::cuda())->stats().num_device_allocs;
  return c;
}

EngineCounters operator-(const EngineCounters& a, const EngineCounters& b) {
  return {a.launches - b.launches, a.syncs - b.syncs, a.device_allocs - b.device_allocs,
          a.host_device_bytes - b.host_device_bytes};
}

}  // namespace minivl
