#pragma once
// Data parallelism across processes (docs/distributed.md): a ProcessGroup is
// the ranks of one run and the collectives between them. CPU tensors go
// through MPI, CUDA tensors through NCCL (one process per GPU; the NCCL unique
// id travels over MPI). Without MPI, or outside mpirun, there is one rank and
// every collective is the identity, except that CUDA tensors still pass through
// NCCL's single-rank communicator when NCCL is built in (so one GPU exercises
// the whole path).
//
//   auto group = nn::launched_process_group();   // MPI's world under mpirun, else null
//   Tensor all = nn::all_gather(local, *group);  // (n, d) per rank -> (R n, d); backward: reduce-scatter
//
// Every rank must call the same collectives in the same order. Supported dtypes:
// f32 and f64 (NCCL also bf16 and f16).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace minivl::nn {

class HostComm;    // nn/distributed_backend.h: MPI, or the single-process stand-in
class DeviceComm;  // NCCL, for CUDA tensors

class ProcessGroup : public std::enable_shared_from_this<ProcessGroup> {
 public:
  explicit ProcessGroup(std::unique_ptr<HostComm> host);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  // One rank, no MPI (tests, and the one-GPU NCCL check).
  static std::shared_ptr<ProcessGroup> single();

  int rank() const;
  int size() const;
  int local_rank() const;  // among this machine's ranks (picks the GPU)
  bool is_root() const { return rank() == 0; }
  std::string backend() const;  // "mpi", "single"; with "+nccl" once a CUDA collective made one

  // Tensor collectives (contiguous or not; results are fresh contiguous tensors unless in place).
  void all_reduce_sum_(const Tensor& t);                 // in place: t = sum over ranks
  Tensor all_gather(const Tensor& t);                    // (n, ...) -> (size n, ...), rank order
  Tensor reduce_scatter_sum(const Tensor& t);            // (size n, ...) -> this rank's block of the sum
  void broadcast_(const Tensor& t, int root = 0);        // in place, from root
  std::vector<double> all_reduce_sum(std::vector<double> values);  // host numbers, summed in f64
  void barrier();
  // Ends every rank of the run (MPI_Abort); a one-rank group just exits.
  [[noreturn]] void abort(int exit_code);

  // The asynchronous all-reduce (sum, in place) of the gradient buckets: on MPI a non-blocking
  // MPI_Iallreduce on a communicator of its own; on NCCL a side stream. `t` must be contiguous
  // and stay alive, untouched, until finish_all_reduce(handle).
  int64_t start_all_reduce(const Tensor& t);
  void finish_all_reduce(int64_t handle);
  // Lets MPI move the started all-reduces along (MPI progresses inside MPI calls only).
  void poll();
  // Frees the NCCL communicators. Call it before exit when CUDA collectives ran: at exit the CUDA
  // runtime may be torn down before a static group's destructor would run. The group can go on
  // (a later CUDA collective makes new communicators, collectively).
  void close();

 private:
  DeviceComm& device_comm();
  std::unique_ptr<HostComm> host_;
  std::unique_ptr<DeviceComm> cuda_;
  struct Pending {
    bool on_device = false;
    int64_t handle = 0;
  };
  std::vector<std::pair<int64_t, Pending>> pending_;
  int64_t next_handle_ = 1;
};

// True when this process was started by an MPI launcher (mpirun, mpiexec, srun with PMI/PMIx).
bool launched_by_mpi();
// MPI's world (MPI initialised on first call, finalised at exit) when launched by MPI and built
// with MPI; null otherwise (a plain single-process run). Fails when launched by MPI into a build
// without MPI with more than one rank, rather than run N copies of the same single-process job.
std::shared_ptr<ProcessGroup> launched_process_group();

struct DistributedSupport {
  bool mpi = false;   // built with MPI (-DMINIVL_MPI)
  bool nccl = false;  // built with NCCL (CUDA tensors)
};
DistributedSupport distributed_support();

// ---- differentiable collectives and the losses built on them ----
// (n, ...) per rank -> (R n, ...) in rank order; the backward is the reduce-scatter (sum) of the
// gradient: each rank's block gets the sum of every rank's gradient for it.
Tensor all_gather(const Tensor& x, ProcessGroup& group);

// The CLIP loss (clip_loss in core/ops.h) of the global batch, each rank holding n rows of it:
// image, text (n, d) L2-normalised, the rows of global items [rank n, (rank + 1) n); logit_scale
// 0-d (log scale), the same on every rank. Returns R x (this rank's share): the rows of its items
// against every column plus its columns against every row, over 2 N (N = R n). The mean over
// ranks is clip_loss over the global batch, and so is the mean of the gradients, which is what
// data parallelism all-reduces (docs/distributed.md has the derivation).
Tensor sharded_clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale, ProcessGroup& group);
// The same for siglip_loss: this rank's rows against every column; R x (their sum) / N.
Tensor sharded_siglip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale,
                           const Tensor& logit_bias, ProcessGroup& group);

}  // namespace minivl::nn
