// NCCL communicators for data parallelism (see nccl_comm.h for the stream
// discipline). NCCL does the transport (NVLink, PCIe, InfiniBand, sockets) and
// the ring/tree algorithms; this file only maps minivl's dtypes onto NCCL's,
// puts each collective on the right stream, and orders the side stream against
// the compute stream with events.
#include <nccl.h>

#include <cstring>
#include <map>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/nccl_comm.h"

#define NCCL_CHECK(call)                                                                           \
  do {                                                                                             \
    ncclResult_t minivl_nccl_ = (call);                                                            \
    if (minivl_nccl_ != ncclSuccess)                                                               \
      throw ::minivl::cuda::CudaError(std::string("NCCL error ") + ncclGetErrorString(minivl_nccl_) + \
                                      " in " #call " at " __FILE__ ":" + std::to_string(__LINE__));   \
  } while (0)

namespace minivl::cuda {

static_assert(kNcclUniqueIdBytes == NCCL_UNIQUE_ID_BYTES, "nccl_comm.h: the unique id size changed");

namespace {
ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    default: throw CudaError("NCCL collectives: unsupported dtype (f32, f64, bf16, f16 only)");
  }
}
}  // namespace

NcclUniqueId nccl_unique_id() {
  ncclUniqueId id;
  NCCL_CHECK(ncclGetUniqueId(&id));
  NcclUniqueId out;
  std::memcpy(out.bytes, id.internal, sizeof(out.bytes));
  return out;
}

int nccl_version() {
  int v = 0;
  NCCL_CHECK(ncclGetVersion(&v));
  return v;
}

struct NcclComm::Impl {
  ncclComm_t comm = nullptr;
  cudaStream_t side = nullptr;                // the asynchronous all-reduces
  std::map<int64_t, cudaEvent_t> in_flight;  // handle -> "reduction done" on the side stream
  int64_t next_handle = 1;
};

NcclComm::NcclComm(const NcclUniqueId& id, int rank, int size) : impl_(new Impl) {
  try {
    cudaStream_t compute = stream();  // selects the backend's device on this thread first
    (void)compute;
    ncclUniqueId nid;
    std::memcpy(nid.internal, id.bytes, sizeof(id.bytes));
    NCCL_CHECK(ncclCommInitRank(&impl_->comm, size, nid, rank));
    CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->side, cudaStreamNonBlocking));
  } catch (...) {
    if (impl_->comm) ncclCommDestroy(impl_->comm);
    delete impl_;
    throw;
  }
}

NcclComm::~NcclComm() {
  for (auto& [h, ev] : impl_->in_flight) cudaEventDestroy(ev);
  if (impl_->side) {
    cudaStreamSynchronize(impl_->side);
    cudaStreamDestroy(impl_->side);
  }
  if (impl_->comm) ncclCommDestroy(impl_->comm);
  cudaGetLastError();
  delete impl_;
}

void NcclComm::all_reduce_sum(void* buf, int64_t n, DType dtype) {
  if (n == 0) return;
  NCCL_CHECK(ncclAllReduce(buf, buf, size_t(n), nccl_type(dtype), ncclSum, impl_->comm, stream()));
}

void NcclComm::all_gather(const void* send, void* recv, int64_t n_per_rank, DType dtype) {
  if (n_per_rank == 0) return;
  NCCL_CHECK(ncclAllGather(send, recv, size_t(n_per_rank), nccl_type(dtype), impl_->comm, stream()));
}

void NcclComm::reduce_scatter_sum(const void* send, void* recv, int64_t n_per_rank, DType dtype) {
  if (n_per_rank == 0) return;
  NCCL_CHECK(
      ncclReduceScatter(send, recv, size_t(n_per_rank), nccl_type(dtype), ncclSum, impl_->comm, stream()));
}

void NcclComm::broadcast(void* buf, int64_t nbytes, int root) {
  if (nbytes == 0) return;
  NCCL_CHECK(ncclBroadcast(buf, buf, size_t(nbytes), ncclUint8, root, impl_->comm, stream()));
}

int64_t NcclComm::all_reduce_start(void* buf, int64_t n, DType dtype) {
  cudaEvent_t written = nullptr, reduced = nullptr;
  CUDA_CHECK(cudaEventCreateWithFlags(&written, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(written, stream()));  // the bucket's gradients are written on the compute stream
  CUDA_CHECK(cudaStreamWaitEvent(impl_->side, written, 0));
  CUDA_CHECK(cudaEventDestroy(written));            // destroying a recorded event is fine: the wait holds it
  if (n > 0) NCCL_CHECK(ncclAllReduce(buf, buf, size_t(n), nccl_type(dtype), ncclSum, impl_->comm, impl_->side));
  CUDA_CHECK(cudaEventCreateWithFlags(&reduced, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventRecord(reduced, impl_->side));
  const int64_t handle = impl_->next_handle++;
  impl_->in_flight[handle] = reduced;
  return handle;
}

void NcclComm::all_reduce_finish(int64_t handle) {
  auto it = impl_->in_flight.find(handle);
  if (it == impl_->in_flight.end()) throw CudaError("NcclComm::all_reduce_finish: unknown handle");
  cudaEvent_t reduced = it->second;
  impl_->in_flight.erase(it);
  CUDA_CHECK(cudaStreamWaitEvent(stream(), reduced, 0));  // later kernels read the reduced bucket
  CUDA_CHECK(cudaEventDestroy(reduced));
}

}  // namespace minivl::cuda
