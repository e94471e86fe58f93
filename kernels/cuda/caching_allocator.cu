// The CUDA caching allocator (see caching_allocator.h for the design).
#include <cstdlib>

#include "kernels/cuda/caching_allocator.h"
#include "kernels/cuda/common.cuh"

namespace minivl::cuda {

namespace {
std::string mib(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", double(bytes) / double(1 << 20));
  return buf;
}
}  // namespace

size_t CudaCachingAllocator::round_size(size_t n) {
  if (n <= kSmallLimit) return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}

void* CudaCachingAllocator::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  const size_t rounded = round_size(nbytes);
  void* p = nullptr;
  bool do_poison;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (poison_ < 0) {
      const char* env = std::getenv("MINIVL_CUDA_POISON");
      poison_ = env && env[0] == '1' ? 1 : 0;
    }
    do_poison = poison_ == 1;
    if (rounded <= kSmallLimit) {
      auto it = small_free_.find(rounded);
      if (it != small_free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
      }
    } else {
      auto it = large_free_.lower_bound(rounded);
      if (it != large_free_.end() && it->first <= 2 * rounded) {
        p = it->second;
        live_[p] = it->first;
        stats_.allocated += int64_t(it->first);
        large_free_.erase(it);
      }
    }
    if (p && rounded <= kSmallLimit) {
      live_[p] = rounded;
      stats_.allocated += int64_t(rounded);
    }
    if (!p) {
      p = cuda_malloc_or_retry(rounded, nbytes);
      live_[p] = rounded;
      stats_.allocated += int64_t(rounded);
      stats_.reserved += int64_t(rounded);
      ++stats_.num_cuda_mallocs;
    }
    ++stats_.num_allocs;
    if (stats_.allocated > stats_.peak_allocated) stats_.peak_allocated = stats_.allocated;
  }
  if (do_poison) CUDA_CHECK(cudaMemsetAsync(p, 0xFF, nbytes, stream()));
  return p;
}

// Called with mu_ held.
void* CudaCachingAllocator::cuda_malloc_or_retry(size_t rounded, size_t asked) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, rounded);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    cudaStreamSynchronize(stream());
    release_cached_locked();
    err = cudaMalloc(&p, rounded);
  }
  if (err == cudaSuccess) return p;
  cudaGetLastError();
  if (err != cudaErrorMemoryAllocation) {
    throw CudaError(std::string("no CUDA device: ") + cudaGetErrorString(err));
  }
  size_t free_b = 0, total_b = 0;
  cudaMemGetInfo(&free_b, &total_b);
  cudaGetLastError();
  throw CudaError("CUDA out of memory: asked for " + std::to_string(asked) + " bytes (" + mib(int64_t(rounded)) +
                  " rounded); minivl holds " + mib(stats_.allocated) + " in tensors and " + mib(stats_.reserved) +
                  " reserved in all (peak " + mib(stats_.peak_allocated) + "); the device has " +
                  mib(int64_t(free_b)) + " free of " + mib(int64_t(total_b)) +
                  ". Reduce the batch size, use bf16, or free tensors you keep alive");
}

void CudaCachingAllocator::release_cached_locked() {
  for (auto& [size, blocks] : small_free_) {
    for (void* b : blocks) {
      cudaFree(b);
      stats_.reserved -= int64_t(size);
    }
  }
  small_free_.clear();
  for (auto& [size, b] : large_free_) {
    cudaFree(b);
    stats_.reserved -= int64_t(size);
  }
  large_free_.clear();
  cudaGetLastError();
}

void CudaCachingAllocator::deallocate(void* ptr, size_t) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(ptr);
  if (it == live_.end()) return;  // not ours (never happens); leave it alone
  size_t size = it->second;
  live_.erase(it);
  stats_.allocated -= int64_t(size);
  if (size <= kSmallLimit) small_free_[size].push_back(ptr);
  else large_free_.emplace(size, ptr);
}

void CudaCachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  cudaStreamSynchronize(stream());
  release_cached_locked();
}

CacheStats CudaCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CudaCachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated = stats_.allocated;
}

void CudaCachingAllocator::set_poison(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  poison_ = on ? 1 : 0;
}

bool CudaCachingAllocator::poison() const {
  std::lock_guard<std::mutex> lock(mu_);
  return poison_ == 1;
}

CudaCachingAllocator& caching_allocator() {
  static CudaCachingAllocator* a = new CudaCachingAllocator();  // never destroyed: tensors may outlive statics
  return *a;
}

void* cache_alloc(size_t nbytes) { return caching_allocator().allocate(nbytes); }
void cache_free(void* p, size_t nbytes) { caching_allocator().deallocate(p, nbytes); }

}  // namespace minivl::cuda
