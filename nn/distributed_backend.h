#pragma once
// What a ProcessGroup (nn/distributed.h) is built on: collectives on raw
// buffers of one kind of memory. HostComm: MPI (nn/distributed_mpi.cpp,
// compiled only with MPI) or the one-rank stand-in; DeviceComm: NCCL
// (kernels/cuda/nccl_comm.cu, compiled only with NCCL). Internal to nn/.
#include <cstdint>
#include <memory>

#include "core/dtype.h"

namespace minivl::nn {

class HostComm {
 public:
  virtual ~HostComm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  virtual const char* name() const = 0;
  // Blocking collectives on host memory; dtype f32 or f64; counts in elements.
  virtual void all_reduce_sum(void* buf, int64_t n, DType dtype) = 0;
  virtual void all_gather(const void* send, void* recv, int64_t n_per_rank, DType dtype) = 0;
  virtual void reduce_scatter_sum(const void* send, void* recv, int64_t n_per_rank, DType dtype) = 0;
  virtual void broadcast(void* buf, int64_t nbytes, int root) = 0;
  virtual void barrier() = 0;
  // Non-blocking all-reduce (sum, in place) on a communicator of its own.
  virtual int64_t all_reduce_start(void* buf, int64_t n, DType dtype) = 0;
  virtual void all_reduce_wait(int64_t handle) = 0;
  virtual void poll() = 0;
  [[noreturn]] virtual void abort(int exit_code) = 0;
};

class DeviceComm {
 public:
  virtual ~DeviceComm() = default;
  virtual void all_reduce_sum(void* buf, int64_t n, DType dtype) = 0;
  virtual void all_gather(const void* send, void* recv, int64_t n_per_rank, DType dtype) = 0;
  virtual void reduce_scatter_sum(const void* send, void* recv, int64_t n_per_rank, DType dtype) = 0;
  virtual void broadcast(void* buf, int64_t nbytes, int root) = 0;
  virtual int64_t all_reduce_start(void* buf, int64_t n, DType dtype) = 0;
  virtual void all_reduce_finish(int64_t handle) = 0;
};

// The one-rank stand-in: collectives copy or do nothing.
std::unique_ptr<HostComm> make_single_host_comm();
// MPI's world (initialising MPI, and finalising it at exit). Defined in distributed_mpi.cpp.
std::unique_ptr<HostComm> make_mpi_host_comm();

}  // namespace minivl::nn
