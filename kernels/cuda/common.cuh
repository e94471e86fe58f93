#pragma once
// Shared pieces of the CUDA kernels: error checks (CUDA_CHECK, CUBLAS_CHECK),
// the backend's one stream, device properties read once, launch helpers,
// 128-bit packed loads, dtype dispatch for device code, and OffsetCalc, the
// strided-operand index math every pointwise kernel runs.
//
// No core/ headers here: errors are thrown as cuda::CudaError (a
// std::runtime_error); core/register_cuda.cpp turns them into minivl::Error at the table
// boundary.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels/elementwise_ops.h"
#include "kernels/scalar_types.h"
#include "kernels/strided_view.h"

namespace minivl::cuda {

class CudaError : public std::runtime_error {
 public:
  explicit CudaError(const std::string& m) : std::runtime_error(m) {}
};

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line);

}  // namespace minivl::cuda

#define CUDA_CHECK(call)                                                                          \
  do {                                                                                            \
    cudaError_t minivl_err_ = (call);                                                             \
    if (minivl_err_ != cudaSuccess) ::minivl::cuda::throw_cuda_error(minivl_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define CUBLAS_CHECK(call)                                                                        \
  do {                                                                                            \
    cublasStatus_t minivl_st_ = (call);                                                           \
    if (minivl_st_ != CUBLAS_STATUS_SUCCESS)                                                      \
      ::minivl::cuda::throw_cublas_error(minivl_st_, #call, __FILE__, __LINE__);                  \
  } while (0)

// After a kernel launch: surfaces launch-configuration errors at the call site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

namespace minivl::cuda {

// ---- device, stream, properties ----

struct DeviceProps {
  int device = 0;
  int sm_count = 0;
  int l2_bytes = 0;
  int max_smem_per_block = 0;         // default (48 KiB)
  int max_smem_per_block_optin = 0;   // with cudaFuncAttributeMaxDynamicSharedMemorySize
  int max_threads_per_sm = 0;
  int cc_major = 0, cc_minor = 0;
  char name[256] = {};
};

const DeviceProps& device_props();  // device 0, read once
cudaStream_t stream();              // the backend's one stream (device 0), created once

// ---- launch helpers ----

inline constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items: enough to fill the GPU several times over, no more.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t cap = int64_t(device_props().sm_count > 0 ? device_props().sm_count : 80) * 32;
  if (blocks > cap) blocks = cap;
  return unsigned(blocks < 1 ? 1 : blocks);
}

// ---- 128-bit packed loads ----

template <typename T, int N>
struct alignas(sizeof(T) * N) Packed {
  T v[N];
};
template <typename T>
inline constexpr int kPack = 16 / int(sizeof(T));  // elements per 128-bit access

template <typename T>
__device__ __forceinline__ Packed<T, kPack<T>> load128(const T* p) {
  return *reinterpret_cast<const Packed<T, kPack<T>>*>(p);
}
template <typename T>
__device__ __forceinline__ void store128(T* p, const Packed<T, kPack<T>>& v) {
  *reinterpret_cast<Packed<T, kPack<T>>*>(p) = v;
}
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- device math shared by the kernels ----

template <typename C>
__device__ __forceinline__ C neg_inf() {
  return -C(INFINITY);
}

// e^x: the SFU's ex2-based __expf for f32 (a few ulp for the x <= 0 the losses and softmaxes see;
// the accurate expf's longer sequence made ptxas spill on sm_80), exp for f64.
template <typename C>
__device__ __forceinline__ C exp_c(C x) {
  if constexpr (sizeof(C) == 4) {
    return __expf(x);
  } else {
    return exp(x);
  }
}

// ---- warp / block reductions ----

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = w > v ? w : v;
  }
  return v;
}

// Block-wide sum/max (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
// `scratch` holds 32 values; the call ends with a barrier so scratch may be reused.
template <typename T, bool Max>
__device__ T block_reduce(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = Max ? warp_max(v) : warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    T w = lane < warps ? scratch[lane] : (Max ? scratch[0] : T(0));  // the identity: a copy would be summed again
    w = Max ? warp_max(w) : warp_sum(w);
    if (lane == 0) scratch[0] = w;
  }
  __syncthreads();
  T r = scratch[0];
  __syncthreads();
  return r;
}

// ---- strided operands ----

// N operands of one shape, each with its own strides; dims contiguous for all
// operands are merged and size-1 dims dropped (so most calls end up 1-d).
// Passed to kernels by value.
template <int N>
struct OffsetCalc {
  int ndim = 0;
  int64_t sizes[kMaxDims];
  int64_t strides[N][kMaxDims];
  bool contiguous = false;  // one dim, stride 1 for every operand: offset == index

  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
    if (contiguous) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i;
      return;
    }
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t idx = i % sizes[d];
      i /= sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

// The shape is the last view's (the output's); every operand has that shape.
template <int N>
OffsetCalc<N> make_offset_calc(const StridedView* const (&views)[N]) {
  OffsetCalc<N> c;
  const StridedView& shape = *views[N - 1];
  for (int d = 0; d < shape.ndim; ++d) {
    if (shape.sizes[d] == 1) continue;
    if (c.ndim > 0) {
      int last = c.ndim - 1;
      bool merge = true;
      for (int k = 0; k < N; ++k) merge &= c.strides[k][last] == views[k]->strides[d] * shape.sizes[d];
      if (merge) {
        c.sizes[last] *= shape.sizes[d];
        for (int k = 0; k < N; ++k) c.strides[k][last] = views[k]->strides[d];
        continue;
      }
    }
    c.sizes[c.ndim] = shape.sizes[d];
    for (int k = 0; k < N; ++k) c.strides[k][c.ndim] = views[k]->strides[d];
    ++c.ndim;
  }
  if (c.ndim == 0) {
    c.ndim = 1;
    c.sizes[0] = 1;
    for (int k = 0; k < N; ++k) c.strides[k][0] = 1;
  }
  c.contiguous = c.ndim == 1;
  for (int k = 0; k < N; ++k) c.contiguous &= c.strides[k][0] == 1;
  return c;
}

// ---- dtype dispatch for CUDA kernels ----
// f32, bf16, f16 always; f64 too (cheap for pointwise kernels). Integer types only where the CPU takes them.
template <typename F>
void dispatch_cuda_floating(DType dtype, const char* name, F&& f) {
  switch (dtype) {
    case DType::f32: return f(TypeTag<float>{});
    case DType::f64: return f(TypeTag<double>{});
    case DType::bf16: return f(TypeTag<bf16>{});
    case DType::f16: return f(TypeTag<f16>{});
    default: throw CudaError(std::string(name) + ": expected a floating dtype on CUDA");
  }
}

// Every dtype: the integer/bool ones here, the floating ones through dispatch_cuda_floating.
template <typename F>
void dispatch_cuda_all(DType dtype, const char* name, F&& f) {
  switch (dtype) {
    case DType::i32: return f(TypeTag<int32_t>{});
    case DType::i64: return f(TypeTag<int64_t>{});
    case DType::u8: return f(TypeTag<uint8_t>{});
    case DType::boolean: return f(TypeTag<bool>{});
    default: return dispatch_cuda_floating(dtype, name, f);
  }
}

// Unsigned integer type of a given byte size: kernels that only move bits dispatch on this.
template <int Bytes> struct BitsOf;
template <> struct BitsOf<1> { using type = uint8_t; };
template <> struct BitsOf<2> { using type = uint16_t; };
template <> struct BitsOf<4> { using type = uint32_t; };
template <> struct BitsOf<8> { using type = uint64_t; };

template <typename F>
void dispatch_bytes(int bytes, const char* name, F&& f) {
  switch (bytes) {
    case 1: return f(TypeTag<uint8_t>{});
    case 2: return f(TypeTag<uint16_t>{});
    case 4: return f(TypeTag<uint32_t>{});
    case 8: return f(TypeTag<uint64_t>{});
    default: throw CudaError(std::string(name) + ": unsupported element size");
  }
}

// ---- scratch memory from the caching allocator (RAII) ----

void* cache_alloc(size_t nbytes);
void cache_free(void* p, size_t nbytes);

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : ptr(n ? cache_alloc(n) : nullptr), bytes(n) {}
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (ptr) cache_free(ptr, bytes);
      ptr = o.ptr, bytes = o.bytes;
      o.ptr = nullptr, o.bytes = 0;
    }
    return *this;
  }
  ~DeviceBuffer() {
    if (ptr) cache_free(ptr, bytes);
  }
  template <typename T> T* as() const { return static_cast<T*>(ptr); }
};

}  // namespace minivl::cuda
