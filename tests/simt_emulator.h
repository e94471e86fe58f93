#pragma once
// A CPU emulation of the CUDA execution model, enough to run device code written for the GPU
// (the attention v4 kernels, kernels/cuda/attention_v4_*.cuh) unmodified on the host, so that their
// index arithmetic, fragment layouts, masks and barrier / cp.async schedule are tested without a GPU.
//
// Every thread of a block is a fiber (ucontext) with its own stack, scheduled in a seeded random
// order, switching at every barrier and warp collective; blocks run one after another over one
// shared-memory buffer. __syncthreads and __syncwarp are barriers (a barrier some thread never
// reaches is reported as a deadlock, not hung on); shuffles, ldmatrix and mma.sync are warp
// collectives computed from what each lane contributes, with the operand and result layouts of the
// PTX ISA written here independently of the kernels. cp.async copies are checked (16-byte aligned,
// destination inside the block's shared memory, source inside a registered global buffer) and land
// either at the issuing thread's cp.async.wait_group (CopyMode::deferred: the latest the hardware
// may deliver them, exposing a missing wait or barrier) or at once (CopyMode::immediate: the
// earliest, exposing a slot refilled while another warp still reads it). Shared memory starts as
// 0xFF bytes (NaN in bf16, f16 and f32), so a read of something never written shows.
//
// Include this before the device code, and define MINIVL_V4_MMA_HEADER as "tests/simt_mma_sm80.h".
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

#include "kernels/scalar_types.h"

namespace minivl::simt {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};

// The running emulated thread's indices.
struct ThreadIndices {
  Dim3 thread_idx, block_idx, block_dim;
};
const ThreadIndices& current();
int lane_id();

void block_barrier();  // __syncthreads
void warp_barrier();   // __syncwarp

// Words each lane of the current warp deposits for a collective; valid between two warp barriers.
struct WarpScratch {
  uint32_t word[32];
  const void* ptr[32];
  uint32_t a[32][4], b[32][2];
};
WarpScratch& warp_scratch();

enum class CopyMode { deferred, immediate };
struct Launch {
  unsigned blocks = 1, threads = 32;
  size_t smem_bytes = 0;  // the dynamic shared memory the kernel may touch
  CopyMode copies = CopyMode::deferred;
  uint64_t seed = 1;
};
// Runs `body` once per thread of each block; throws std::runtime_error naming the first failure
// (a memory check, a deadlock, copies left pending at exit).
void launch(const Launch& config, unsigned char* smem, size_t smem_capacity, const std::function<void()>& body);

// Global buffers cp.async may read; cleared by clear_globals().
void register_global(const void* p, size_t bytes);
void clear_globals();

void check_smem(const void* p, size_t bytes, const char* what);  // inside the block's shared memory
void cp_async(void* dst, const void* src, bool valid);             // 16 bytes, zero-filled when !valid
void cp_async_commit();
void cp_async_wait(int pending);

}  // namespace minivl::simt

// ---- the CUDA C++ surface the kernels use ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
#define __align__(n) __attribute__((aligned(n)))
#define threadIdx (::minivl::simt::current().thread_idx)
#define blockIdx (::minivl::simt::current().block_idx)
#define blockDim (::minivl::simt::current().block_dim)
#define __syncthreads() ::minivl::simt::block_barrier()
#define __syncwarp(...) ::minivl::simt::warp_barrier()
#define __logf logf

struct uint4 {
  uint32_t x, y, z, w;
};
struct float2 {
  float x, y;
};
struct __nv_bfloat162 {
  uint16_t lo, hi;
};
struct __half2 {
  uint16_t lo, hi;
};
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) {
  return {::minivl::to_bf16(lo).bits, ::minivl::to_bf16(hi).bits};
}
inline __half2 __floats2half2_rn(float lo, float hi) { return {::minivl::to_f16(lo).bits, ::minivl::to_f16(hi).bits}; }
inline float2 __bfloat1622float2(__nv_bfloat162 v) {
  return {::minivl::to_float(::minivl::bf16{v.lo}), ::minivl::to_float(::minivl::bf16{v.hi})};
}
inline float2 __half22float2(__half2 v) {
  return {::minivl::to_float(::minivl::f16{v.lo}), ::minivl::to_float(::minivl::f16{v.hi})};
}

// A warp shuffle: every lane of the warp must take part (the kernels pass the full mask).
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask) {
  static_assert(sizeof(T) == 4, "the emulation shuffles 32-bit values");
  (void)mask;
  ::minivl::simt::WarpScratch& w = ::minivl::simt::warp_scratch();
  const int lane = ::minivl::simt::lane_id();
  std::memcpy(&w.word[lane], &v, 4);
  ::minivl::simt::warp_barrier();
  T r;
  std::memcpy(&r, &w.word[lane ^ lane_mask], 4);
  ::minivl::simt::warp_barrier();
  return r;
}
