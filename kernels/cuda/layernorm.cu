// Fused layernorm on CUDA: numbered versions, bf16/f16/f32 (and f64) in and out, f32
// statistics (f64 for f64). Rows are contiguous (R, C); residual optional (h = x + r is
// written to `sum` and normalised, rounded to the storage type first, like the CPU).
//
//   v1  one thread per row, three passes over global memory. Uncoalesced: the reference.
//   v2  one warp per row, lanes stride the row, shuffles for the two moments; x is read
//       three times (the second and third from L1/L2).
//   v3  128-bit loads, the row kept in registers (up to 4 packs of 8 bf16/f16 or 8 packs
//       of 4 f32 per thread; one warp per row for C <= 1024 bf16, several warps with a
//       shared-memory step above): one read of x for both moments and the normalisation,
//       exact two-pass variance from registers. Needs C % (16 / sizeof(T)) == 0 and
//       16-byte aligned pointers; otherwise v2 runs.
// Bytes (forward): read x (+ residual) and write y (+ sum), plus 2 C weights and 8 R stats.
// At bf16 8192 x 768 that is 25.2 MB, 7.5 us at 3.35 TB/s (H100 SXM). Bound: bandwidth.
//
// Backward: dh = rstd (g - mean(g) - xhat mean(g xhat)) (+ dsum), g = dy w.
//   v1  one thread per row for dh; one thread per column over all rows for dweight/dbias.
//   v2  one warp per row for dh; dweight/dbias in two deterministic stages: blocks of
//       (32 columns x 8 row lanes) sum fixed 256-row chunks (tree in shared memory, fixed
//       order) into partials (chunks, C); a second kernel sums each column's partials in
//       chunk order. No float atomics: bitwise reproducible.
// Bytes (backward): read dy, h (twice: dh kernel and params kernel; the second mostly from
// L2 for small R*C), write dh.
#include <algorithm>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/fused.h"

namespace minivl::cuda {
namespace {

template <typename T> using C_t = compute_t<T>;

template <typename T>
struct LnForward {
  const T* x;
  const T* residual;  // nullable
  const T* weight;    // nullable
  const T* bias;      // nullable
  T* sum;             // written when residual != nullptr
  T* y;
  C_t<T>* mean;
  C_t<T>* rstd;
  int64_t rows, cols;
  C_t<T> eps;
};

// h = x + residual rounded through the storage type (so the backward sees what `sum` holds).
template <typename T>
__device__ __forceinline__ C_t<T> load_h(const LnForward<T>& a, int64_t idx, bool write_sum) {
  if (!a.residual) return load(a.x + idx);
  T h;
  store(&h, C_t<T>(load(a.x + idx)) + C_t<T>(load(a.residual + idx)));
  if (write_sum) a.sum[idx] = h;
  return load(&h);
}

template <typename T>
__device__ __forceinline__ void store_y(const LnForward<T>& a, int64_t idx, int64_t col, C_t<T> n) {
  using C = C_t<T>;
  C w = a.weight ? C(load(a.weight + col)) : C(1);
  C b = a.bias ? C(load(a.bias + col)) : C(0);
  store(a.y + idx, n * w + b);
}

// ---- v1: one thread per row ----
template <typename T>
__global__ void layernorm_forward_v1(LnForward<T> a) {
  using C = C_t<T>;
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= a.rows) return;
  const int64_t base = r * a.cols;
  C s = 0;
  for (int64_t i = 0; i < a.cols; ++i) s += load_h(a, base + i, true);
  const C mu = s / C(a.cols);
  C v = 0;
  for (int64_t i = 0; i < a.cols; ++i) {
    C d = load_h(a, base + i, false) - mu;
    v += d * d;
  }
  const C inv = C(1) / sqrt(v / C(a.cols) + a.eps);
  for (int64_t i = 0; i < a.cols; ++i) store_y(a, base + i, i, (load_h(a, base + i, false) - mu) * inv);
  a.mean[r] = mu;
  a.rstd[r] = inv;
}

// ---- v2: one warp per row ----
template <typename T>
__global__ void layernorm_forward_v2(LnForward<T> a) {
  using C = C_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= a.rows) return;  // whole warps exit together
  const int64_t base = r * a.cols;
  C s = 0;
  for (int64_t i = lane; i < a.cols; i += 32) s += load_h(a, base + i, true);
  const C mu = warp_sum(s) / C(a.cols);
  C v = 0;
  for (int64_t i = lane; i < a.cols; i += 32) {
    C d = load_h(a, base + i, false) - mu;
    v += d * d;
  }
  const C inv = C(1) / sqrt(warp_sum(v) / C(a.cols) + a.eps);
  for (int64_t i = lane; i < a.cols; i += 32) store_y(a, base + i, i, (load_h(a, base + i, false) - mu) * inv);
  if (lane == 0) {
    a.mean[r] = mu;
    a.rstd[r] = inv;
  }
}

// Sum across the blockDim.x threads of one row (blockDim.x a multiple of 32, uniform).
// `smem` holds blockDim.y * 32 floats.
__device__ __forceinline__ float row_reduce(float v, float* smem) {
  v = warp_sum(v);
  if (blockDim.x == 32) return v;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  float* mine = smem + threadIdx.y * 32;
  if (lane == 0) mine[warp] = v;
  __syncthreads();
  float t = lane < warps ? mine[lane] : 0.0f;
  t = warp_sum(t);
  __syncthreads();
  return t;
}

// ---- v3: 128-bit loads, the row in registers ----
template <typename T, int kPacks>
__global__ void layernorm_forward_v3(LnForward<T> a) {
  constexpr int P = kPack<T>;
  __shared__ float smem[32 * 32];
  const int64_t r = int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool valid = r < a.rows;  // no early return: row_reduce has barriers
  const int64_t packs = a.cols / P;
  const int64_t base = r * a.cols;
  float v[kPacks][P];
  float s = 0.0f;
#pragma unroll
  for (int j = 0; j < kPacks; ++j) {
    const int64_t k = threadIdx.x + int64_t(j) * blockDim.x;
    if (valid && k < packs) {
      Packed<T, P> xp = load128(a.x + base + k * P);
      if (a.residual) {
        Packed<T, P> rp = load128(a.residual + base + k * P);
#pragma unroll
        for (int e = 0; e < P; ++e) store(&xp.v[e], float(load(&xp.v[e])) + float(load(&rp.v[e])));
        store128(a.sum + base + k * P, xp);
      }
#pragma unroll
      for (int e = 0; e < P; ++e) {
        v[j][e] = float(load(&xp.v[e]));
        s += v[j][e];
      }
    } else {
#pragma unroll
      for (int e = 0; e < P; ++e) v[j][e] = 0.0f;
    }
  }
  const float mu = row_reduce(s, smem) / float(a.cols);
  float q = 0.0f;
#pragma unroll
  for (int j = 0; j < kPacks; ++j) {
    const int64_t k = threadIdx.x + int64_t(j) * blockDim.x;
    if (valid && k < packs) {
#pragma unroll
      for (int e = 0; e < P; ++e) q += (v[j][e] - mu) * (v[j][e] - mu);
    }
  }
  const float inv = rsqrtf(row_reduce(q, smem) / float(a.cols) + float(a.eps));
#pragma unroll
  for (int j = 0; j < kPacks; ++j) {
    const int64_t k = threadIdx.x + int64_t(j) * blockDim.x;
    if (!(valid && k < packs)) continue;
    Packed<T, P> out;
    if (a.weight && a.bias) {
      Packed<T, P> wp = load128(a.weight + k * P), bp = load128(a.bias + k * P);
#pragma unroll
      for (int e = 0; e < P; ++e)
        store(&out.v[e], (v[j][e] - mu) * inv * float(load(&wp.v[e])) + float(load(&bp.v[e])));
    } else {
#pragma unroll
      for (int e = 0; e < P; ++e) {
        const int64_t col = k * P + e;
        float w = a.weight ? float(load(a.weight + col)) : 1.0f;
        float b = a.bias ? float(load(a.bias + col)) : 0.0f;
        store(&out.v[e], (v[j][e] - mu) * inv * w + b);
      }
    }
    store128(a.y + base + k * P, out);
  }
  if (valid && threadIdx.x == 0) {
    a.mean[r] = mu;
    a.rstd[r] = inv;
  }
}

template <typename T>
LnForward<T> forward_args(const StridedView& x, const StridedView& residual, const StridedView& weight,
                          const StridedView& bias, double eps, const StridedView& sum, const StridedView& y,
                          const StridedView& mean, const StridedView& rstd) {
  LnForward<T> a;
  a.x = x.ptr<const T>();
  a.residual = residual.data ? residual.ptr<const T>() : nullptr;
  a.weight = weight.data ? weight.ptr<const T>() : nullptr;
  a.bias = bias.data ? bias.ptr<const T>() : nullptr;
  a.sum = residual.data ? sum.ptr<T>() : nullptr;
  a.y = y.ptr<T>();
  a.mean = mean.ptr<C_t<T>>();
  a.rstd = rstd.ptr<C_t<T>>();
  a.cols = x.sizes[x.ndim - 1];
  a.rows = a.cols ? x.numel() / a.cols : 0;
  a.eps = C_t<T>(eps);
  return a;
}

// v3's row shape: 16-byte packs (8 bf16/f16 or 4 f32), at most 1024 threads x 4 (bf16/f16) or
// 8 (f32) packs, which is C <= 32768 either way; f64 has no v3.
bool v3_takes(DType dtype, int64_t cols) {
  if (dtype != DType::f32 && dtype != DType::bf16 && dtype != DType::f16) return false;
  const int64_t pack = 16 / scalar_size(dtype), max_packs = dtype == DType::f32 ? 8 : 4;
  return cols % pack == 0 && cols / pack <= int64_t(1024) * max_packs;
}

template <typename T>
bool v3_applies(const LnForward<T>& a, DType dtype) {
  if (!v3_takes(dtype, a.cols)) return false;
  for (const void* p : {(const void*)a.x, (const void*)a.residual, (const void*)a.weight, (const void*)a.bias,
                        (const void*)a.sum, (const void*)a.y})
    if (p && !aligned16(p)) return false;
  return true;
}

template <typename T, int kPacks>
void launch_v3_with(const LnForward<T>& a, int threads_per_row) {
  const int rows_per_block = std::max(1, 256 / threads_per_row);
  dim3 block(threads_per_row, rows_per_block);
  dim3 grid(unsigned((a.rows + rows_per_block - 1) / rows_per_block));
  layernorm_forward_v3<T, kPacks><<<grid, block, 0, stream()>>>(a);
}

template <typename T>
void launch_v3(const LnForward<T>& a) {
  if constexpr (sizeof(T) != 8) {
    constexpr int P = kPack<T>;
    constexpr int max_packs = sizeof(T) == 2 ? 4 : 8;
    const int64_t packs = a.cols / P;
    int64_t threads = (packs + max_packs - 1) / max_packs;
    threads = std::max<int64_t>(32, (threads + 31) / 32 * 32);
    const int64_t per_thread = (packs + threads - 1) / threads;
    if (per_thread <= 1) return launch_v3_with<T, 1>(a, int(threads));
    if (per_thread <= 2) return launch_v3_with<T, 2>(a, int(threads));
    if (per_thread <= 4) return launch_v3_with<T, 4>(a, int(threads));
    if constexpr (max_packs == 8) return launch_v3_with<T, 8>(a, int(threads));
  }
}

template <typename T>
void forward_version(int version, const LnForward<T>& a, DType dtype) {
  if (a.rows == 0) return;
  if (version >= 3 && v3_applies(a, dtype)) {
    launch_v3(a);
  } else if (version >= 2) {
    const int warps = 8;
    layernorm_forward_v2<T><<<unsigned((a.rows + warps - 1) / warps), warps * 32, 0, stream()>>>(a);
  } else {
    layernorm_forward_v1<T><<<unsigned((a.rows + 127) / 128), 128, 0, stream()>>>(a);
  }
  CUDA_CHECK_LAUNCH();
}

// ---- backward ----
template <typename T>
struct LnBackward {
  const T* dy;
  const T* h;
  const T* weight;  // nullable
  const C_t<T>* mean;
  const C_t<T>* rstd;
  const T* dsum;  // nullable
  T* dh;
  int64_t rows, cols;
};

template <typename T>
__global__ void layernorm_backward_dx_v1(LnBackward<T> a) {
  using C = C_t<T>;
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= a.rows) return;
  const int64_t base = r * a.cols;
  const C mu = a.mean[r], inv = a.rstd[r];
  C sg = 0, sgx = 0;
  for (int64_t i = 0; i < a.cols; ++i) {
    C g = C(load(a.dy + base + i)) * (a.weight ? C(load(a.weight + i)) : C(1));
    sg += g;
    sgx += g * (C(load(a.h + base + i)) - mu) * inv;
  }
  const C ma = sg / C(a.cols), mb = sgx / C(a.cols);
  for (int64_t i = 0; i < a.cols; ++i) {
    C g = C(load(a.dy + base + i)) * (a.weight ? C(load(a.weight + i)) : C(1));
    C xh = (C(load(a.h + base + i)) - mu) * inv;
    C d = inv * (g - ma - xh * mb) + (a.dsum ? C(load(a.dsum + base + i)) : C(0));
    store(a.dh + base + i, d);
  }
}

template <typename T>
__global__ void layernorm_backward_dx_v2(LnBackward<T> a) {
  using C = C_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t r = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= a.rows) return;
  const int64_t base = r * a.cols;
  const C mu = a.mean[r], inv = a.rstd[r];
  C sg = 0, sgx = 0;
  for (int64_t i = lane; i < a.cols; i += 32) {
    C g = C(load(a.dy + base + i)) * (a.weight ? C(load(a.weight + i)) : C(1));
    sg += g;
    sgx += g * (C(load(a.h + base + i)) - mu) * inv;
  }
  const C ma = warp_sum(sg) / C(a.cols), mb = warp_sum(sgx) / C(a.cols);
  for (int64_t i = lane; i < a.cols; i += 32) {
    C g = C(load(a.dy + base + i)) * (a.weight ? C(load(a.weight + i)) : C(1));
    C xh = (C(load(a.h + base + i)) - mu) * inv;
    C d = inv * (g - ma - xh * mb) + (a.dsum ? C(load(a.dsum + base + i)) : C(0));
    store(a.dh + base + i, d);
  }
}

// v1 parameters: one thread per column, all rows in order.
template <typename T>
__global__ void layernorm_params_v1(LnBackward<T> a, T* dweight, T* dbias) {
  using C = C_t<T>;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.cols) return;
  C sw = 0, sb = 0;
  for (int64_t r = 0; r < a.rows; ++r) {
    C d = load(a.dy + r * a.cols + i);
    sw += d * (C(load(a.h + r * a.cols + i)) - a.mean[r]) * a.rstd[r];
    sb += d;
  }
  if (dweight) store(dweight + i, sw);
  if (dbias) store(dbias + i, sb);
}

constexpr int kParamChunk = 256;  // rows per partial
constexpr int kParamLanes = 8;    // row lanes per block (blockDim.y)

// v2 stage 1: block (32 columns, 8 row lanes) sums one 256-row chunk; partials (chunks, 2, C).
template <typename T>
__global__ void layernorm_params_partial_v2(LnBackward<T> a, C_t<T>* partial) {
  using C = C_t<T>;
  __shared__ C red[2][kParamLanes][33];
  const int64_t i = int64_t(blockIdx.x) * 32 + threadIdx.x;
  const int64_t chunk = blockIdx.y;
  C sw = 0, sb = 0;
  if (i < a.cols) {
    const int64_t end = min(a.rows, (chunk + 1) * kParamChunk);
    for (int64_t r = chunk * kParamChunk + threadIdx.y; r < end; r += kParamLanes) {
      C d = load(a.dy + r * a.cols + i);
      sw += d * (C(load(a.h + r * a.cols + i)) - a.mean[r]) * a.rstd[r];
      sb += d;
    }
  }
  red[0][threadIdx.y][threadIdx.x] = sw;
  red[1][threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && i < a.cols) {
    for (int l = 1; l < kParamLanes; ++l) {
      sw += red[0][l][threadIdx.x];
      sb += red[1][l][threadIdx.x];
    }
    partial[(chunk * 2) * a.cols + i] = sw;
    partial[(chunk * 2 + 1) * a.cols + i] = sb;
  }
}

// v2 stage 2: each column's partials summed in chunk order.
template <typename T>
__global__ void layernorm_params_final_v2(const C_t<T>* partial, int64_t chunks, int64_t cols, T* dweight,
                                          T* dbias) {
  using C = C_t<T>;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= cols) return;
  C sw = 0, sb = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    sw += partial[(c * 2) * cols + i];
    sb += partial[(c * 2 + 1) * cols + i];
  }
  if (dweight) store(dweight + i, sw);
  if (dbias) store(dbias + i, sb);
}

template <typename T>
void backward_version(int version, const StridedView& dy, const StridedView& h, const StridedView& weight,
                      const StridedView& mean, const StridedView& rstd, const StridedView& dsum,
                      const StridedView& dh, const StridedView& dweight, const StridedView& dbias) {
  using C = C_t<T>;
  LnBackward<T> a;
  a.dy = dy.ptr<const T>();
  a.h = h.ptr<const T>();
  a.weight = weight.data ? weight.ptr<const T>() : nullptr;
  a.mean = mean.ptr<const C>();
  a.rstd = rstd.ptr<const C>();
  a.dsum = dsum.data ? dsum.ptr<const T>() : nullptr;
  a.dh = dh.ptr<T>();
  a.cols = h.sizes[h.ndim - 1];
  a.rows = a.cols ? h.numel() / a.cols : 0;
  T* dw = dweight.data ? dweight.ptr<T>() : nullptr;
  T* db = dbias.data ? dbias.ptr<T>() : nullptr;
  if (a.rows == 0) return;
  const int run = layernorm_backward_version(version);
  if (run == 2) {
    layernorm_backward_dx_v2<T><<<unsigned((a.rows + 7) / 8), 256, 0, stream()>>>(a);
  } else {
    layernorm_backward_dx_v1<T><<<unsigned((a.rows + 127) / 128), 128, 0, stream()>>>(a);
  }
  CUDA_CHECK_LAUNCH();
  if (!dw && !db) return;
  if (run == 2) {
    const int64_t chunks = (a.rows + kParamChunk - 1) / kParamChunk;
    DeviceBuffer partial(size_t(chunks * 2 * a.cols) * sizeof(C));
    dim3 grid(unsigned((a.cols + 31) / 32), unsigned(chunks));
    layernorm_params_partial_v2<T><<<grid, dim3(32, kParamLanes), 0, stream()>>>(a, partial.as<C>());
    CUDA_CHECK_LAUNCH();
    layernorm_params_final_v2<T><<<unsigned((a.cols + 255) / 256), 256, 0, stream()>>>(partial.as<C>(), chunks,
                                                                                       a.cols, dw, db);
  } else {
    layernorm_params_v1<T><<<unsigned((a.cols + 255) / 256), 256, 0, stream()>>>(a, dw, db);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

int layernorm_backward_version(int version) { return version >= 2 ? 2 : 1; }

bool layernorm_version_supported(int version, DType dtype, int64_t cols) {
  const bool floating = dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16 || dtype == DType::f16;
  switch (version) {
    case 1:
    case 2: return floating;
    case 3: return v3_takes(dtype, cols);
    default: return false;
  }
}

void layernorm_forward_cuda_version(int version, const StridedView& x, const StridedView& residual,
                                    const StridedView& weight, const StridedView& bias, double eps,
                                    const StridedView& sum, const StridedView& y, const StridedView& mean,
                                    const StridedView& rstd) {
  dispatch_cuda_floating(x.dtype, "layernorm", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    forward_version<scalar_t>(version, forward_args<scalar_t>(x, residual, weight, bias, eps, sum, y, mean, rstd),
                              x.dtype);
  });
}

void layernorm_backward_cuda_version(int version, const StridedView& dy, const StridedView& h,
                                     const StridedView& weight, const StridedView& mean, const StridedView& rstd,
                                     const StridedView& dsum, const StridedView& dh, const StridedView& dweight,
                                     const StridedView& dbias) {
  dispatch_cuda_floating(h.dtype, "layernorm_backward", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    backward_version<scalar_t>(version, dy, h, weight, mean, rstd, dsum, dh, dweight, dbias);
  });
}

}  // namespace minivl::cuda
