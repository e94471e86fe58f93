// Pointwise CUDA kernels: copy (with dtype conversion), fill, Philox random
// fill, unary and its derivative, binary, where, dropout.
//
// Algorithm: one grid-stride loop over the output's row-major index; each
// operand's offset comes from OffsetCalc (dims merged where every operand is
// contiguous, so the usual case is offset == index and loads coalesce).
// Same-dtype contiguous copies use 128-bit loads/stores. Bound: memory
// bandwidth, (inputs + 1) x numel x element size bytes (H100 SXM: ~3.35 TB/s
// peak, ~2.9-3.0 TB/s measured by BM_CopyCuda); no reuse, so no tiling.
// The math is kernels/elementwise_ops.h, shared with the CPU; random numbers
// are kernels/philox.h, so element i draws philox_uniform(seed, offset, i) on
// both devices.
//
// Instantiations are kept few for compile time: copies and fills and where
// dispatch on element size (1/2/4/8 bytes), conversions switch on the dtype
// inside one kernel, the float kernels on f32/f64/bf16/f16.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/philox.h"

namespace minivl::cuda {

namespace {

#define GRID_STRIDE_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// ---- copies ----

template <typename T>
__global__ void copy_same_kernel(const T* __restrict__ src, T* __restrict__ dst, OffsetCalc<2> calc, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    calc.offsets(i, off);
    dst[off[1]] = src[off[0]];
  }
}

// Both contiguous, both 16-byte aligned: 128-bit packets, then the tail.
template <typename T>
__global__ void copy_vec_kernel(const T* __restrict__ src, T* __restrict__ dst, int64_t n) {
  constexpr int P = kPack<T>;
  const int64_t packets = n / P;
  GRID_STRIDE_LOOP(i, packets) store128(dst + i * P, load128(src + i * P));
  for (int64_t i = packets * P + int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

// One element of any dtype, widened: integers (and bool) exactly as i64, floats as their compute value.
struct Wide {
  bool is_int;
  int64_t i;
  double d;
};

__device__ __forceinline__ Wide load_wide(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::f32: return {false, 0, double(static_cast<const float*>(base)[off])};
    case DType::f64: return {false, 0, static_cast<const double*>(base)[off]};
    case DType::bf16: return {false, 0, double(load(static_cast<const bf16*>(base) + off))};
    case DType::f16: return {false, 0, double(load(static_cast<const f16*>(base) + off))};
    case DType::i32: return {true, static_cast<const int32_t*>(base)[off], 0.0};
    case DType::i64: return {true, static_cast<const int64_t*>(base)[off], 0.0};
    case DType::u8: return {true, static_cast<const uint8_t*>(base)[off], 0.0};
    case DType::boolean: return {true, static_cast<const bool*>(base)[off] ? 1 : 0, 0.0};
  }
  return {true, 0, 0.0};
}

template <typename D>
__device__ __forceinline__ void store_wide_as(D* p, const Wide& w) {
  if (w.is_int) store(p, w.i);
  else if constexpr (std::is_same_v<D, float> || std::is_same_v<D, double>) *p = static_cast<D>(w.d);
  else if constexpr (std::is_same_v<D, bf16> || std::is_same_v<D, f16>) store(p, float(w.d));
  else *p = static_cast<D>(w.d);
}

// Matches kernels/cpu/elementwise_cpu.cpp's convert(): to bool is float(value) != 0.
__device__ __forceinline__ void store_wide(void* base, DType t, int64_t off, const Wide& w) {
  switch (t) {
    case DType::f32: return store_wide_as(static_cast<float*>(base) + off, w);
    case DType::f64: return store_wide_as(static_cast<double*>(base) + off, w);
    case DType::bf16: return store_wide_as(static_cast<bf16*>(base) + off, w);
    case DType::f16: return store_wide_as(static_cast<f16*>(base) + off, w);
    case DType::i32: return store_wide_as(static_cast<int32_t*>(base) + off, w);
    case DType::i64: return store_wide_as(static_cast<int64_t*>(base) + off, w);
    case DType::u8: return store_wide_as(static_cast<uint8_t*>(base) + off, w);
    case DType::boolean:
      static_cast<bool*>(base)[off] = w.is_int ? w.i != 0 : float(w.d) != 0.0f;
      return;
  }
}

__global__ void convert_kernel(const void* src, DType st, void* dst, DType dt, OffsetCalc<2> calc, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    calc.offsets(i, off);
    store_wide(dst, dt, off[1], load_wide(src, st, off[0]));
  }
}

// ---- fill, random ----

template <typename Bits>
__global__ void fill_kernel(Bits* dst, Bits value, OffsetCalc<1> calc, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[1];
    calc.offsets(i, off);
    dst[off[0]] = value;
  }
}

template <typename T>
__global__ void random_kernel(T* dst, int kind, uint64_t seed, uint64_t offset, OffsetCalc<1> calc, int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    double v;
    if constexpr (std::is_same_v<T, double>) {
      v = kind == 0 ? philox_uniform_f64(seed, offset, uint64_t(i)) : double(philox_normal(seed, offset, uint64_t(i)));
    } else {
      v = kind == 0 ? philox_uniform(seed, offset, uint64_t(i)) : philox_normal(seed, offset, uint64_t(i));
    }
    int64_t off[1];
    calc.offsets(i, off);
    store(dst + off[0], static_cast<compute_t<T>>(v));
  }
}

// ---- unary, binary, where, dropout ----

template <typename T>
__global__ void unary_kernel(UnaryOp op, UnaryParams p, const T* x, T* y, OffsetCalc<2> calc, int64_t n) {
  using C = compute_t<T>;
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    calc.offsets(i, off);
    store(y + off[1], unary_forward<C>(op, p, load(x + off[0])));
  }
}

template <typename T>
__global__ void unary_backward_kernel(UnaryOp op, UnaryParams p, const T* x, const T* gy, T* gx, OffsetCalc<3> calc,
                                      int64_t n) {
  using C = compute_t<T>;
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[3];
    calc.offsets(i, off);
    C d = unary_derivative<C>(op, p, load(x + off[0]));
    store(gx + off[2], d * C(load(gy + off[1])));
  }
}

template <typename T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, OffsetCalc<3> calc, int64_t n) {
  using C = compute_t<T>;
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[3];
    calc.offsets(i, off);
    store(out + off[2], binary_forward<C>(op, load(a + off[0]), load(b + off[1])));
  }
}

template <typename Bits>
__global__ void where_kernel(const uint8_t* cond, const Bits* a, const Bits* b, Bits* out, OffsetCalc<4> calc,
                             int64_t n) {
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[4];
    calc.offsets(i, off);
    out[off[3]] = cond[off[0]] != 0 ? a[off[1]] : b[off[2]];
  }
}

template <typename T>
__global__ void dropout_kernel(const T* x, T* out, float threshold, compute_t<T> scale, uint64_t seed,
                               uint64_t offset, OffsetCalc<2> calc, int64_t n) {
  using C = compute_t<T>;
  GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    calc.offsets(i, off);
    bool keep = philox_uniform(seed, offset, uint64_t(i)) >= threshold;
    store(out + off[1], keep ? C(load(x + off[0])) * scale : C(0));
  }
}

}  // namespace

void copy(const StridedView& src, const StridedView& dst) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  OffsetCalc<2> calc = make_offset_calc<2>({&src, &dst});
  if (src.dtype != dst.dtype) {
    convert_kernel<<<grid_for(n), kThreads, 0, stream()>>>(src.data, src.dtype, dst.data, dst.dtype, calc, n);
    CUDA_CHECK_LAUNCH();
    return;
  }
  dispatch_bytes(scalar_size(dst.dtype), "copy", [&](auto tag) {
    using Bits = typename decltype(tag)::type;
    const Bits* s = static_cast<const Bits*>(src.data);
    Bits* d = static_cast<Bits*>(dst.data);
    if (calc.contiguous && aligned16(s) && aligned16(d)) {
      copy_vec_kernel<Bits><<<grid_for(n / kPack<Bits> + 1), kThreads, 0, stream()>>>(s, d, n);
    } else {
      copy_same_kernel<Bits><<<grid_for(n), kThreads, 0, stream()>>>(s, d, calc, n);
    }
    CUDA_CHECK_LAUNCH();
  });
}

void fill(const StridedView& dst, double value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  // The bit pattern, computed on the host exactly as kernels/cpu/elementwise_cpu.cpp's fill().
  uint64_t bits = 0;
  dispatch_all(dst.dtype, "fill", [&](auto tag) {
    using scalar_t = typename decltype(tag)::type;
    scalar_t v;
    if constexpr (std::is_same_v<scalar_t, bool>) v = value != 0.0;
    else store(&v, static_cast<compute_t<scalar_t>>(value));
    std::memcpy(&bits, &v, sizeof(v));
  });
  OffsetCalc<1> calc = make_offset_calc<1>({&dst});
  dispatch_bytes(scalar_size(dst.dtype), "fill", [&](auto tag) {
    using Bits = typename decltype(tag)::type;
    fill_kernel<Bits><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<Bits*>(dst.data), Bits(bits), calc, n);
    CUDA_CHECK_LAUNCH();
  });
}

void random_fill(const StridedView& dst, RandomKind kind, uint64_t seed, uint64_t offset) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  OffsetCalc<1> calc = make_offset_calc<1>({&dst});
  dispatch_cuda_floating(dst.dtype, "random", [&](auto tag) {
    using T = typename decltype(tag)::type;
    random_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(dst.ptr<T>(), kind == RandomKind::uniform ? 0 : 1, seed,
                                                              offset, calc, n);
    CUDA_CHECK_LAUNCH();
  });
}

void unary(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  OffsetCalc<2> calc = make_offset_calc<2>({&x, &out});
  dispatch_cuda_floating(x.dtype, "unary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unary_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(op, p, x.ptr<T>(), out.ptr<T>(), calc, n);
    CUDA_CHECK_LAUNCH();
  });
}

void unary_backward(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& gy, const StridedView& gx) {
  const int64_t n = gx.numel();
  if (n == 0) return;
  OffsetCalc<3> calc = make_offset_calc<3>({&x, &gy, &gx});
  dispatch_cuda_floating(x.dtype, "unary_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    unary_backward_kernel<T>
        <<<grid_for(n), kThreads, 0, stream()>>>(op, p, x.ptr<T>(), gy.ptr<T>(), gx.ptr<T>(), calc, n);
    CUDA_CHECK_LAUNCH();
  });
}

void binary(BinaryOp op, const StridedView& a, const StridedView& b, const StridedView& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  OffsetCalc<3> calc = make_offset_calc<3>({&a, &b, &out});
  dispatch_cuda_all(out.dtype, "binary", [&](auto tag) {
    using T = typename decltype(tag)::type;
    binary_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(op, a.ptr<T>(), b.ptr<T>(), out.ptr<T>(), calc, n);
    CUDA_CHECK_LAUNCH();
  });
}

void where(const StridedView& cond, const StridedView& a, const StridedView& b, const StridedView& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  OffsetCalc<4> calc = make_offset_calc<4>({&cond, &a, &b, &out});
  dispatch_bytes(scalar_size(out.dtype), "where", [&](auto tag) {
    using Bits = typename decltype(tag)::type;
    where_kernel<Bits><<<grid_for(n), kThreads, 0, stream()>>>(
        static_cast<const uint8_t*>(cond.data), a.ptr<Bits>(), b.ptr<Bits>(), out.ptr<Bits>(), calc, n);
    CUDA_CHECK_LAUNCH();
  });
}

void dropout(const StridedView& x, const StridedView& out, double p, uint64_t seed, uint64_t offset) {
  const int64_t n = out.numel();
  if (n == 0) return;
  OffsetCalc<2> calc = make_offset_calc<2>({&x, &out});
  dispatch_cuda_floating(x.dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    const C scale = p < 1.0 ? C(1.0 / (1.0 - p)) : C(0);
    dropout_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(x.ptr<T>(), out.ptr<T>(), float(p), scale, seed,
                                                              offset, calc, n);
    CUDA_CHECK_LAUNCH();
  });
}

void memcpy_bytes(const void* src, void* dst, size_t nbytes, CopyKind kind) {
  if (nbytes == 0) return;
  cudaMemcpyKind k = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                     : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, k, stream()));
  if (kind != CopyKind::device_to_device) CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void synchronize() { CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace minivl::cuda
