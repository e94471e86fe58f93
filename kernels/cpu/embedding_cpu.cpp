// Embedding lookup (a row gather) and its backward (a row scatter-add).
// The backward walks ids in order on each thread's slice of columns, so the
// sums are deterministic without atomics.
#include <omp.h>

#include <cstring>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/strided_loop.h"

namespace minivl::cpu {

void embedding(const StridedView& weight, const StridedView& ids, const StridedView& out) {
  const int64_t n = ids.sizes[0], dim = weight.sizes[1];
  const int64_t* ip = ids.ptr<int64_t>();
  const size_t elem = size_t(scalar_size(weight.dtype));
  const size_t row_bytes = size_t(dim) * elem;
  const char* wp = static_cast<const char*>(weight.data);
  char* op_ = static_cast<char*>(out.data);
#pragma omp parallel for schedule(static) if (n * dim >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(op_ + size_t(i * out.strides[0]) * elem, wp + size_t(ip[i] * weight.strides[0]) * elem, row_bytes);
  }
}

void embedding_backward(const StridedView& gout, const StridedView& ids, const StridedView& gweight) {
  const int64_t n = ids.sizes[0], dim = gweight.sizes[1];
  const int64_t* ip = ids.ptr<int64_t>();
  dispatch_floating(gweight.dtype, "embedding_backward", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* gp = gout.ptr<scalar_t>();
    scalar_t* wp = gweight.ptr<scalar_t>();
    // Columns are split among threads; every thread sees all ids in order.
#pragma omp parallel if (n * dim >= kParallelGrain)
    {
      int threads = omp_get_num_threads(), t = omp_get_thread_num();
      int64_t c0 = dim * t / threads, c1 = dim * (t + 1) / threads;
      for (int64_t i = 0; i < n; ++i) {
        scalar_t* dst = wp + ip[i] * gweight.strides[0];
        const scalar_t* src = gp + i * gout.strides[0];
        for (int64_t c = c0; c < c1; ++c) store(dst + c, C(load(dst + c)) + C(load(src + c)));
      }
    }
  });
}

}  // namespace minivl::cpu
