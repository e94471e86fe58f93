#pragma once
// NCCL collectives on raw device pointers, for data parallelism across GPUs
// (nn/distributed.cpp adapts them to tensors; docs/distributed.md). Compiled
// only when CMake finds NCCL (nccl.h and libnccl, from the CUDA toolkit or
// MINIVL_NCCL_ROOT). No CUDA or NCCL headers here, so host C++ can include it.
//
// One NcclComm is one NCCL communicator over `size` processes, one GPU each (the
// CUDA backend's selected device). Its collectives are enqueued on one of two
// streams:
//   - the backend's compute stream (blocking kind: all_gather, reduce_scatter,
//     broadcast, all_reduce): stream order makes them look synchronous to the
//     kernels before and after, as every other op;
//   - its own side stream (all_reduce_start / all_reduce_finish): the gradient
//     buckets' all-reduce, started during the backward. The side stream first
//     waits for an event recorded on the compute stream (the bucket's gradients
//     are written), and finish makes the compute stream wait for the reduction.
// A communicator's collectives must be issued in the same order on every rank.
#include <cstdint>

#include "kernels/scalar_types.h"

namespace minivl::cuda {

inline constexpr int kNcclUniqueIdBytes = 128;  // NCCL_UNIQUE_ID_BYTES
struct NcclUniqueId {
  char bytes[kNcclUniqueIdBytes] = {};
};

// A fresh id (rank 0 makes it, every rank gets a copy: over MPI, or nothing to send for one rank).
NcclUniqueId nccl_unique_id();
int nccl_version();  // e.g. 22703 for 2.27.3

class NcclComm {
 public:
  NcclComm(const NcclUniqueId& id, int rank, int size);  // collective: every rank calls it
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  // dtype: f32, f64, bf16 or f16. Counts in elements.
  void all_reduce_sum(void* buf, int64_t n, DType dtype);                                  // in place
  void all_gather(const void* send, void* recv, int64_t n_per_rank, DType dtype);          // recv: size * n
  void reduce_scatter_sum(const void* send, void* recv, int64_t n_per_rank, DType dtype);  // send: size * n
  void broadcast(void* buf, int64_t nbytes, int root);

  // The asynchronous all-reduce (in place) on the side stream; returns a handle for finish.
  int64_t all_reduce_start(void* buf, int64_t n, DType dtype);
  // Orders the compute stream after that all-reduce (no host wait) and frees the handle.
  void all_reduce_finish(int64_t handle);

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace minivl::cuda
