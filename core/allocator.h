#pragma once
// Allocators hand out raw device memory for Storage. The CPU allocator is
// 64-byte aligned (a cache line, one AVX-512 register); the CUDA caching
// allocator lives in kernels/cuda and registers itself when CUDA is built.
#include <cstddef>
#include <cstdint>

#include "core/device.h"

namespace minivl {

struct AllocatorStats {
  int64_t allocated = 0;       // bytes currently handed out
  int64_t reserved = 0;        // bytes held from the system (>= allocated with caching)
  int64_t peak_allocated = 0;  // high-water mark of `allocated` since the last reset
  int64_t num_allocs = 0;
  int64_t num_device_allocs = 0;  // allocations the device itself served (not a cache): CPU all, CUDA the misses
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  virtual void empty_cache() {}
};

Allocator* cpu_allocator();
// The allocator for `device`; throws "built without CUDA" when there is none.
Allocator* allocator_for(Device device);
void set_cuda_allocator(Allocator* allocator);  // called by register_cuda_kernels()

}  // namespace minivl
