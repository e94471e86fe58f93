// Embedding lookup (a row gather) and its deterministic backward (a row
// scatter-add) on CUDA.
//
// Forward: one thread per output element, out[i, c] = weight[ids[i], c];
// memory-bound, n x D x element size bytes read and written.
// Backward, two passes, no float atomics (so the result is bit-for-bit the
// same on every run): (1) the ids (n x 8 bytes) come to the host, which does a
// stable counting sort: the distinct ids and, for each, the positions that
// hold it, in order; (2) one block per (distinct id, 256-column slice) sums
// its rows of gout in position order in f32 (f64 for f64) and adds the sum to
// gweight's row. Bound: reading gout once (n x D) plus the host round trip
// (a sync and ~16 bytes per id), which dominates for small n.
#include <algorithm>
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_kernels.h"

namespace minivl::cuda {

namespace {

template <typename Bits>
__global__ void embedding_kernel(const Bits* weight, int64_t ws, const int64_t* ids, Bits* out, int64_t os, int64_t n,
                                 int64_t dim) {
  const int64_t total = n * dim;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e / dim, c = e % dim;
    out[i * os + c] = weight[ids[i] * ws + c];
  }
}

// plan: [positions (n) | seg_start (U + 1) | unique ids (U)]
template <typename T>
__global__ void embedding_backward_kernel(const T* gout, int64_t gs, const int64_t* plan, int64_t n, int64_t unique,
                                          T* gweight, int64_t ws, int64_t dim) {
  using C = compute_t<T>;
  const int64_t* positions = plan;
  const int64_t* seg_start = plan + n;
  const int64_t* ids = plan + n + unique + 1;
  const int64_t u = blockIdx.x;
  const int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  T* dst = gweight + ids[u] * ws + c;
  C acc = load(dst);
  for (int64_t j = seg_start[u]; j < seg_start[u + 1]; ++j) acc += C(load(gout + positions[j] * gs + c));
  store(dst, acc);
}

}  // namespace

void embedding(const StridedView& weight, const StridedView& ids, const StridedView& out) {
  const int64_t n = ids.sizes[0], dim = weight.sizes[1];
  if (n * dim == 0) return;
  dispatch_bytes(scalar_size(weight.dtype), "embedding", [&](auto tag) {
    using Bits = typename decltype(tag)::type;
    embedding_kernel<Bits><<<grid_for(n * dim), kThreads, 0, stream()>>>(
        weight.ptr<Bits>(), weight.strides[0], ids.ptr<int64_t>(), out.ptr<Bits>(), out.strides[0], n, dim);
    CUDA_CHECK_LAUNCH();
  });
}

void embedding_backward(const StridedView& gout, const StridedView& ids, const StridedView& gweight) {
  const int64_t n = ids.sizes[0], dim = gweight.sizes[1];
  if (n == 0 || dim == 0) return;
  // Pass 1, on the host: stable counting sort of the ids (ids are contiguous i64).
  std::vector<int64_t> host_ids(static_cast<size_t>(n));
  memcpy_bytes(ids.data, host_ids.data(), size_t(n) * sizeof(int64_t), CopyKind::device_to_host);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return host_ids[size_t(a)] < host_ids[size_t(b)]; });
  std::vector<int64_t> seg_start, unique;
  for (int64_t j = 0; j < n; ++j) {
    int64_t id = host_ids[size_t(order[size_t(j)])];
    if (unique.empty() || unique.back() != id) {
      unique.push_back(id);
      seg_start.push_back(j);
    }
  }
  seg_start.push_back(n);
  const int64_t u = int64_t(unique.size());
  std::vector<int64_t> plan;
  plan.reserve(size_t(n + 2 * u + 1));
  plan.insert(plan.end(), order.begin(), order.end());
  plan.insert(plan.end(), seg_start.begin(), seg_start.end());
  plan.insert(plan.end(), unique.begin(), unique.end());
  DeviceBuffer dplan(plan.size() * sizeof(int64_t));
  memcpy_bytes(plan.data(), dplan.ptr, dplan.bytes, CopyKind::host_to_device);
  // Pass 2: one block per (distinct id, column slice), rows summed in position order.
  dispatch_cuda_floating(gweight.dtype, "embedding_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dim3 grid(unsigned(u), unsigned((dim + kThreads - 1) / kThreads));
    embedding_backward_kernel<T><<<grid, kThreads, 0, stream()>>>(gout.ptr<T>(), gout.strides[0],
                                                                  dplan.as<int64_t>(), n, u, gweight.ptr<T>(),
                                                                  gweight.strides[0], dim);
    CUDA_CHECK_LAUNCH();
  });
}

}  // namespace minivl::cuda
