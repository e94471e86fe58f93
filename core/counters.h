#pragma once
// Engine counters: what a training step costs beyond its arithmetic, counted where it happens so
// that the CPU path counts the same points the CUDA path pays for (bench-step reports them per
// step; tests/test_step_counters.cpp pins them for clip_tiny).
//
//   launches           kernel dispatches: one per kernel the op layer calls (kernel_for). A CUDA
//                      kernel function may issue more than one device launch (a GEMM's split-K
//                      reduction, attention's backward pre-pass); it counts once, on every device.
//   syncs              points where the host waits for a tensor's values: item(), item_int(),
//                      to_vector() and a copy from a device to the host. A CPU tensor's read
//                      counts too (on CUDA the same read would wait for the stream). Reading a
//                      CPU tensor's data<T>() directly is invisible: host code reads through these.
//   device_allocs      allocations that reached the device allocator itself, not a cache: on the
//                      CPU every allocation (aligned_alloc), on CUDA the caching allocator's misses
//                      (cudaMalloc calls); a steady-state CUDA step should make none.
//   host_device_bytes  bytes moved between host and device: real copies, plus, for the CPU path's
//                      sync points, the bytes the device would have sent back.
#include <cstdint>

namespace minivl {

struct EngineCounters {
  int64_t launches = 0;
  int64_t syncs = 0;
  int64_t device_allocs = 0;
  int64_t host_device_bytes = 0;
};

// Totals since the process started (device_allocs read from the allocators' statistics).
EngineCounters engine_counters();
EngineCounters operator-(const EngineCounters& a, const EngineCounters& b);

void count_launch();
void count_sync(int64_t bytes_read);
void count_host_device_bytes(int64_t bytes);

}  // namespace minivl
