// CUDA backend registration: device discovery, the caching allocator behind
// core's Allocator interface, host <-> device copies, and the kernel table's
// CUDA slots. The one file under kernels/cuda that sees core/ types: errors
// thrown by the kernels (cuda::CudaError) become minivl::Error here.
#include <cuda_runtime.h>

#include "core/allocator.h"
#include "core/dispatch.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/caching_allocator.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/gemm_cublaslt.h"

namespace minivl::cuda {

namespace {
struct Discovery {
  int count = 0;
  std::string reason;
};
const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery r;
    cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      r.count = 0;
      r.reason = std::string("no CUDA device: ") + cudaGetErrorString(err);
      cudaGetLastError();  // clear the sticky error
    } else if (r.count == 0) {
      r.reason = "no CUDA device: none visible";
    }
    return r;
  }();
  return d;
}

// Wraps a kernel entry point so that CUDA-side exceptions reach the op layer as minivl::Error.
template <auto Fn>
struct Guard;
template <typename... A, void (*Fn)(A...)>
struct Guard<Fn> {
  static void call(A... args) {
    try {
      Fn(args...);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(e.what());
    }
  }
};

class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (device_count() == 0) throw Error("cannot allocate on cuda:0: " + unavailable_reason());
    try {
      return caching_allocator().allocate(nbytes);
    } catch (const std::exception& e) {
      throw Error(std::string("cannot allocate ") + std::to_string(nbytes) + " bytes on cuda:0: " + e.what());
    }
  }
  void deallocate(void* ptr, size_t nbytes) override { caching_allocator().deallocate(ptr, nbytes); }
  AllocatorStats stats() const override {
    CacheStats c = caching_allocator().stats();
    AllocatorStats s;
    s.allocated = c.allocated;
    s.reserved = c.reserved;
    s.peak_allocated = c.peak_allocated;
    s.num_allocs = c.num_allocs;
    s.num_device_allocs = c.num_cuda_mallocs;
    return s;
  }
  void reset_peak() override { caching_allocator().reset_peak(); }
  void empty_cache() override { caching_allocator().empty_cache(); }
};

void device_copy(const void* src, Device src_device, void* dst, Device dst_device, size_t nbytes) {
  CopyKind kind = src_device.is_cpu()   ? CopyKind::host_to_device
                  : dst_device.is_cpu() ? CopyKind::device_to_host
                                        : CopyKind::device_to_device;
  MINIVL_CHECK(!(src_device.is_cpu() && dst_device.is_cpu()), "device_copy: both sides on the host");
  memcpy_bytes(src, dst, nbytes, kind);
  int64_t bad_id = 0, vocab = 0;  // the embedding forward's deferred id check (index.cu)
  if (kind == CopyKind::device_to_host && take_embedding_error(bad_id, vocab))
    MINIVL_FAIL("embedding: id ", bad_id, " out of range for a vocabulary of ", vocab,
                " (found on the GPU by an earlier embedding call; reported at this copy to the host)");
}

void gemm_cuda(const GemmProblem& p) {
  GemmArgs g;
  g.dtype = p.dtype;
  g.batch = p.batch, g.M = p.M, g.N = p.N, g.K = p.K;
  g.alpha = p.alpha, g.beta = p.beta;
  g.a = p.a, g.a_row_stride = p.a_row_stride, g.a_col_stride = p.a_col_stride, g.a_offsets = p.a_offsets;
  g.b = p.b, g.b_row_stride = p.b_row_stride, g.b_col_stride = p.b_col_stride, g.b_offsets = p.b_offsets;
  g.c = p.c, g.c_row_stride = p.c_row_stride, g.c_col_stride = p.c_col_stride, g.c_offsets = p.c_offsets;
  gemm(g);
}

void random_cuda(const StridedView& dst, RandomKind kind, uint64_t seed, uint64_t offset) {
  random_fill(dst, kind == RandomKind::uniform ? 0 : 1, seed, offset);
}

}  // namespace

int device_count() { return discovery().count; }
std::string unavailable_reason() { return discovery().reason; }

void register_kernels(KernelTable& t) {
  static CudaAllocator allocator;
  set_cuda_allocator(&allocator);
  const int d = int(DeviceType::CUDA);
  t.copy[d] = Guard<copy>::call;
  t.fill[d] = Guard<fill>::call;
  t.random[d] = Guard<random_cuda>::call;
  t.unary[d] = Guard<unary>::call;
  t.unary_backward[d] = Guard<unary_backward>::call;
  t.binary[d] = Guard<binary>::call;
  t.where[d] = Guard<where>::call;
  t.reduce[d] = Guard<reduce>::call;
  t.argmax[d] = Guard<argmax>::call;
  t.topk[d] = Guard<topk>::call;
  t.gemm[d] = Guard<gemm_cuda>::call;
  t.softmax[d] = Guard<softmax>::call;
  t.softmax_backward[d] = Guard<softmax_backward>::call;
  t.cross_entropy[d] = Guard<cross_entropy>::call;
  t.cross_entropy_backward[d] = Guard<cross_entropy_backward>::call;
  t.embedding[d] = Guard<embedding>::call;
  t.embedding_backward[d] = Guard<embedding_backward>::call;
  t.dropout[d] = Guard<dropout>::call;
  t.device_copy = Guard<device_copy>::call;
}

}  // namespace minivl::cuda
