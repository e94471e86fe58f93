#pragma once
// CudaCachingAllocator: device memory for tensors and kernel scratch, kept in
// free lists instead of going back to cudaFree (which synchronises the device
// and costs ~100 us). Every kernel runs on the backend's one stream, so a block
// freed on the host can be handed out again at once: stream order keeps the
// old kernels' reads before the new owner's writes.
//
// - Sizes are rounded to buckets: multiples of 512 B below 1 MiB ("small"),
//   multiples of 2 MiB above ("large").
// - Small requests take a block of exactly their bucket size; large requests
//   take the best fit (the smallest cached block >= the request, at most twice
//   its size, so a huge block is not burnt on a small tensor). Blocks are
//   never split, so nothing needs merging.
// - On cudaMalloc failure: synchronise, release every cached block, retry
//   once; then throw an error naming the request and what is held.
// - Stats: allocated (handed out, rounded), reserved (held from CUDA), peak.
// - Poison mode (env MINIVL_CUDA_POISON=1, or set_poison): every block handed
//   out is filled with 0xFF bytes first (NaN in every float dtype, -1 in the
//   integers), so a kernel that leaves an element unwritten fails the parity tests.
//
// No core/ types and no CUDA headers: core/register_cuda.cpp adapts it to minivl::Allocator.
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace minivl::cuda {

struct CacheStats {
  int64_t allocated = 0;
  int64_t reserved = 0;
  int64_t peak_allocated = 0;
  int64_t num_allocs = 0;      // allocate() calls
  int64_t num_cuda_mallocs = 0;  // cache misses
};

class CudaCachingAllocator {
 public:
  static constexpr size_t kSmallLimit = size_t(1) << 20;
  static constexpr size_t kSmallRound = 512;
  static constexpr size_t kLargeRound = size_t(2) << 20;

  static size_t round_size(size_t n);

  void* allocate(size_t nbytes);        // throws CudaError (no device, out of memory)
  void deallocate(void* ptr, size_t nbytes);
  void empty_cache();                   // returns every cached block to CUDA
  CacheStats stats() const;
  void reset_peak();
  void set_poison(bool on);
  bool poison() const;

 private:
  void* cuda_malloc_or_retry(size_t rounded, size_t asked);
  void release_cached_locked();

  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> small_free_;  // bucket size -> blocks
  std::multimap<size_t, void*> large_free_;          // size -> block, best fit by lower_bound
  std::map<void*, size_t> live_;                     // handed-out block -> rounded size
  CacheStats stats_;
  int poison_ = -1;  // -1: read MINIVL_CUDA_POISON on first use
};

CudaCachingAllocator& caching_allocator();

}  // namespace minivl::cuda
