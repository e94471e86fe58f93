#include "core/allocator.h"

#include <atomic>
#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <new>
#include <string>

#include "core/dispatch.h"
#include "core/error.h"

namespace minivl {
namespace {

// The stats part of the out-of-memory message (docs/hardening.md), which also names the bytes
// asked for and the config knobs to turn.
std::string out_of_memory_stats(const AllocatorStats& s) {
  return detail::concat("minivl holds ", s.allocated, " bytes (reserved ", s.reserved, ", peak ", s.peak_allocated,
                        ", ", s.num_allocs, " allocations so far)");
}

class CpuAllocator final : public Allocator {
 public:
  CpuAllocator() {
#if defined(__GLIBC__)
    // A training step frees and reallocates the same activation sizes every step. glibc serves
    // blocks above its mmap threshold (128 KiB at first) with fresh mmaps, so every step would pay
    // a page fault per 4 KiB of activations (docs/clip.md has the profile). Serve blocks up to
    // glibc's largest threshold (32 MiB on 64-bit) from the heap and keep freed heap memory for reuse.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  }
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    MINIVL_CHECK(p != nullptr, "out of host memory: asked for ", nbytes, " bytes; ", out_of_memory_stats(stats()),
                 ". Lower data.batch_size in the config (raise optim.grad_accum to keep the effective batch), "
                 "or set precision = \"bf16\"");
    int64_t now = allocated_.fetch_add(int64_t(nbytes)) + int64_t(nbytes);
    int64_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
    ++num_allocs_;
    return p;
  }
  void deallocate(void* ptr, size_t nbytes) override {
    if (!ptr) return;
    allocated_.fetch_sub(int64_t(nbytes));
    std::free(ptr);
  }
  AllocatorStats stats() const override {
    AllocatorStats s;
    s.allocated = allocated_.load();
    s.reserved = s.allocated;
    s.peak_allocated = peak_.load();
    s.num_allocs = num_allocs_.load();
    s.num_device_allocs = s.num_allocs;  // no cache: every allocation is aligned_alloc's
    return s;
  }
  void reset_peak() override { peak_.store(allocated_.load()); }

 private:
  std::atomic<int64_t> allocated_{0}, peak_{0}, num_allocs_{0};
};

Allocator* g_cuda_allocator = nullptr;

}  // namespace

Allocator* cpu_allocator() {
  // Never destroyed: tensors held by other statics (nn/amp.cpp's low-precision copies, a test's
  // fixtures) are freed during exit, in an order across files that C++ does not fix.
  static CpuAllocator* allocator = new CpuAllocator();
  return allocator;
}

void set_cuda_allocator(Allocator* allocator) { g_cuda_allocator = allocator; }

Allocator* allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  kernels();  // the CUDA backend registers its allocator with the kernel table
  MINIVL_CHECK(g_cuda_allocator != nullptr, "cannot allocate on ", device.str(), ": ",
               cuda_unavailable_reason());
  return g_cuda_allocator;
}

}  // namespace minivl
