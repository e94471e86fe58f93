// The MPI HostComm (nn/distributed_backend.h). Compiled only when CMake finds
// MPI (-DMINIVL_MPI=AUTO|ON). MPI is initialised here the first time a group is
// made (MPI_THREAD_FUNNELED: every MPI call comes from the thread that runs the
// training loop and its backward) and finalised at exit.
//
// Two duplicates of MPI_COMM_WORLD: `main_` for the blocking collectives (the
// losses' all-gather in the forward, the reduce-scatter in the backward, the
// step's statistics) and `grads_` for the non-blocking gradient all-reduces, so
// the two streams of collectives never have to be ordered against each other.
// The C API only: Open MPI's and MPICH's mpi.h otherwise pull in the deprecated C++ bindings,
// whose library (libmpi_cxx) is not linked.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "core/error.h"
#include "nn/distributed_backend.h"

namespace minivl::nn {
namespace {

MPI_Datatype mpi_type(DType dtype) {
  if (dtype == DType::f32) return MPI_FLOAT;
  if (dtype == DType::f64) return MPI_DOUBLE;
  MINIVL_FAIL("MPI collectives: ", dtype_name(dtype), " is not supported (f32, f64 only)");
}

// MPI counts are int: longer buffers go in chunks of at most this many elements.
constexpr int64_t kMaxChunk = int64_t(1) << 30;

void finalize_at_exit() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

class MpiHostComm final : public HostComm {
 public:
  MpiHostComm() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit(finalize_at_exit);
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &main_);
    MPI_Comm_dup(MPI_COMM_WORLD, &grads_);
    MPI_Comm_rank(main_, &rank_);
    MPI_Comm_size(main_, &size_);
    MPI_Comm node;
    MPI_Comm_split_type(main_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
  }
  ~MpiHostComm() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    for (auto& [h, req] : requests_) MPI_Wait(&req, MPI_STATUS_IGNORE);
    MPI_Comm_free(&main_);
    MPI_Comm_free(&grads_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  const char* name() const override { return "mpi"; }

  void all_reduce_sum(void* buf, int64_t n, DType dtype) override {
    const size_t elem = dtype_size(dtype);
    for (int64_t at = 0; at < n; at += kMaxChunk)
      MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(buf) + size_t(at) * elem, int(std::min(kMaxChunk, n - at)),
                    mpi_type(dtype), MPI_SUM, main_);
  }
  void all_gather(const void* send, void* recv, int64_t n_per_rank, DType dtype) override {
    MINIVL_CHECK(n_per_rank <= INT_MAX, "all_gather: ", n_per_rank, " elements per rank is over MPI's int count");
    MPI_Allgather(send, int(n_per_rank), mpi_type(dtype), recv, int(n_per_rank), mpi_type(dtype), main_);
  }
  void reduce_scatter_sum(const void* send, void* recv, int64_t n_per_rank, DType dtype) override {
    MINIVL_CHECK(n_per_rank <= INT_MAX, "reduce_scatter: ", n_per_rank,
                 " elements per rank is over MPI's int count");
    MPI_Reduce_scatter_block(send, recv, int(n_per_rank), mpi_type(dtype), MPI_SUM, main_);
  }
  void broadcast(void* buf, int64_t nbytes, int root) override {
    for (int64_t at = 0; at < nbytes; at += kMaxChunk)
      MPI_Bcast(static_cast<char*>(buf) + at, int(std::min(kMaxChunk, nbytes - at)), MPI_BYTE, root, main_);
  }
  void barrier() override { MPI_Barrier(main_); }

  int64_t all_reduce_start(void* buf, int64_t n, DType dtype) override {
    MINIVL_CHECK(n <= INT_MAX, "all_reduce: a gradient bucket of ", n, " elements is over MPI's int count");
    MPI_Request req;
    MPI_Iallreduce(MPI_IN_PLACE, buf, int(n), mpi_type(dtype), MPI_SUM, grads_, &req);
    const int64_t handle = next_handle_++;
    requests_[handle] = req;
    return handle;
  }
  void all_reduce_wait(int64_t handle) override {
    auto it = requests_.find(handle);
    MINIVL_CHECK(it != requests_.end(), "all_reduce_wait: unknown handle ", handle);
    MPI_Wait(&it->second, MPI_STATUS_IGNORE);
    requests_.erase(it);
  }
  void poll() override {
    for (auto& [h, req] : requests_) {
      int done = 0;
      MPI_Test(&req, &done, MPI_STATUS_IGNORE);  // a completed request becomes MPI_REQUEST_NULL; Wait is then a no-op
    }
  }
  [[noreturn]] void abort(int exit_code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  MPI_Comm main_ = MPI_COMM_NULL, grads_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::map<int64_t, MPI_Request> requests_;
  int64_t next_handle_ = 1;
};

}  // namespace

std::unique_ptr<HostComm> make_mpi_host_comm() { return std::make_unique<MpiHostComm>(); }

}  // namespace minivl::nn
