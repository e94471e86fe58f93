// Embedding lookup (a row gather) and its deterministic backward (a row
// scatter-add) on CUDA, neither of which makes the host wait.
//
// Forward: one thread per output element, out[i, c] = weight[ids[i], c];
// memory-bound, n x D x element size bytes read and written. An id outside
// [0, V) reads as a zero row and is recorded on the device (the first one);
// take_embedding_error() reports it at the next copy to the host, which waits
// for the stream anyway (device_copy, core/register_cuda.cpp), so no step pays a sync for the check.
// Backward, no float atomics (the result is bit-for-bit the same on every run),
// everything on the device:
//   (1) keys = ids as u32 (an invalid id becomes V, a bucket that is skipped),
//       values = positions; a stable radix sort (CUB) over the bits of V
//       groups the positions of each id in position order;
//   (2) one block per (sorted position, 32-column slice); only the block at
//       the start of a run of equal ids works: its 256 threads find the run's
//       end 256 keys at a time, then 8 warps sum rows r = start + w,
//       start + w + 8, ... of gout for their 32 columns in f32 (f64 for f64),
//       the 8 partial sums are added in warp order, and the total is added to
//       gweight's row. Every other block returns at once.
// Bound: the sort (~n x 8 bytes a pass, a few passes) plus reading gout once;
// a run of k equal ids (padding) takes k / 8 dependent row loads per warp.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace minivl::cuda {

namespace {

// The first out-of-range id the forward saw: flag (0 = none), then the id and the vocabulary.
__device__ int g_embedding_bad_flag = 0;
__device__ long long g_embedding_bad_id = 0;
__device__ long long g_embedding_bad_vocab = 0;

template <typename Bits>
__global__ void embedding_kernel(const Bits* weight, int64_t ws, int64_t vocab, const int64_t* ids, Bits* out,
                                 int64_t os, int64_t n, int64_t dim) {
  const int64_t total = n * dim;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / dim, c = e % dim;
    const int64_t id = ids[i];
    if (id < 0 || id >= vocab) {
      out[i * os + c] = Bits(0);
      if (c == 0 && atomicCAS(&g_embedding_bad_flag, 0, 1) == 0) {
        g_embedding_bad_id = id;
        g_embedding_bad_vocab = vocab;
      }
      continue;
    }
    out[i * os + c] = weight[id * ws + c];
  }
}

__global__ void embedding_sort_keys_kernel(const int64_t* ids, int64_t n, int64_t vocab, uint32_t* keys,
                                           int32_t* positions) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t id = ids[i];
    keys[i] = (id >= 0 && id < vocab) ? uint32_t(id) : uint32_t(vocab);
    positions[i] = int32_t(i);
  }
}

constexpr int kRunWarps = 8;  // warps per block summing one run; blockDim = (32, kRunWarps)

template <typename T>
__global__ void embedding_backward_runs_kernel(const T* gout, int64_t gs, const uint32_t* keys,
                                               const int32_t* positions, int64_t n, uint32_t skip_key, T* gweight,
                                               int64_t ws, int64_t dim) {
  using C = compute_t<T>;
  const int64_t start = blockIdx.x;
  const uint32_t key = keys[start];
  if ((start > 0 && keys[start - 1] == key) || key == skip_key) return;  // not a run start (uniform per block)
  const int tid = threadIdx.y * 32 + threadIdx.x;
  __shared__ unsigned long long run_end;
  __shared__ C partial[kRunWarps][32];
  if (tid == 0) run_end = (unsigned long long)n;
  __syncthreads();
  for (int64_t base = start + 1;; base += 32 * kRunWarps) {
    const int64_t e = base + tid;
    const bool ends = e >= n || keys[e] != key;
    if (ends && e < n) atomicMin(&run_end, (unsigned long long)e);
    if (__syncthreads_or(ends)) break;
  }
  const int64_t end = int64_t(run_end);
  const int64_t c = int64_t(blockIdx.y) * 32 + threadIdx.x;
  C acc = C(0);
  if (c < dim)
    for (int64_t r = start + threadIdx.y; r < end; r += kRunWarps) acc += C(load(gout + int64_t(positions[r]) * gs + c));
  partial[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < dim) {
    T* dst = gweight + int64_t(key) * ws + c;
    C total = load(dst);
    for (int w = 0; w < kRunWarps; ++w) total += partial[w][threadIdx.x];
    store(dst, total);
  }
}

int key_bits(int64_t max_key) {
  int bits = 1;
  while (bits < 32 && (int64_t(1) << bits) <= max_key) ++bits;
  return bits;
}

size_t align_up(size_t n) { return (n + 255) / 256 * 256; }

}  // namespace

void embedding(const StridedView& weight, const StridedView& ids, const StridedView& out) {
  const int64_t n = ids.sizes[0], dim = weight.sizes[1];
  if (n * dim == 0) return;
  dispatch_bytes(scalar_size(weight.dtype), "embedding", [&](auto tag) {
    using Bits = typename decltype(tag)::type;
    embedding_kernel<Bits><<<grid_for(n * dim), kThreads, 0, stream()>>>(weight.ptr<Bits>(), weight.strides[0],
                                                                          weight.sizes[0], ids.ptr<int64_t>(),
                                                                          out.ptr<Bits>(), out.strides[0], n, dim);
    CUDA_CHECK_LAUNCH();
  });
}

bool take_embedding_error(int64_t& id, int64_t& vocab) {
  int flag = 0;
  CUDA_CHECK(cudaMemcpyFromSymbol(&flag, g_embedding_bad_flag, sizeof(flag)));
  if (flag == 0) return false;
  long long bad = 0, v = 0;
  CUDA_CHECK(cudaMemcpyFromSymbol(&bad, g_embedding_bad_id, sizeof(bad)));
  CUDA_CHECK(cudaMemcpyFromSymbol(&v, g_embedding_bad_vocab, sizeof(v)));
  const int zero = 0;
  CUDA_CHECK(cudaMemcpyToSymbol(g_embedding_bad_flag, &zero, sizeof(zero)));
  id = bad;
  vocab = v;
  return true;
}

void embedding_backward(const StridedView& gout, const StridedView& ids, const StridedView& gweight) {
  const int64_t n = ids.sizes[0], dim = gweight.sizes[1], vocab = gweight.sizes[0];
  if (n == 0 || dim == 0) return;
  if (n > int64_t(INT32_MAX) || vocab >= int64_t(UINT32_MAX))
    throw CudaError("embedding_backward: more than 2^31 ids or 2^32 rows");
  const int bits = key_bits(vocab);  // keys 0..vocab (vocab: an invalid id)
  size_t sort_bytes = 0;
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const uint32_t*>(nullptr),
                                             static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                             static_cast<int32_t*>(nullptr), n, 0, bits, stream()));
  const size_t key_bytes = align_up(size_t(n) * 4);
  DeviceBuffer scratch(4 * key_bytes + align_up(sort_bytes));  // keys in/out, positions in/out, CUB's
  char* base = scratch.as<char>();
  uint32_t* keys_in = reinterpret_cast<uint32_t*>(base);
  uint32_t* keys = reinterpret_cast<uint32_t*>(base + key_bytes);
  int32_t* pos_in = reinterpret_cast<int32_t*>(base + 2 * key_bytes);
  int32_t* positions = reinterpret_cast<int32_t*>(base + 3 * key_bytes);
  void* sort_temp = base + 4 * key_bytes;
  embedding_sort_keys_kernel<<<grid_for(n), kThreads, 0, stream()>>>(ids.ptr<int64_t>(), n, vocab, keys_in, pos_in);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cub::DeviceRadixSort::SortPairs(sort_temp, sort_bytes, keys_in, keys, pos_in, positions, n, 0, bits,
                                             stream()));
  dispatch_cuda_floating(gweight.dtype, "embedding_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dim3 grid(unsigned(n), unsigned((dim + 31) / 32));
    embedding_backward_runs_kernel<T><<<grid, dim3(32, kRunWarps), 0, stream()>>>(
        gout.ptr<T>(), gout.strides[0], keys, positions, n, uint32_t(vocab), gweight.ptr<T>(), gweight.strides[0], dim);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace minivl::cuda
