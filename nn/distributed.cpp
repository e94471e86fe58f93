// ProcessGroup (nn/distributed.h): tensor collectives over a HostComm (MPI or
// one rank) and, for CUDA tensors, a DeviceComm (NCCL). The one file that
// knows which of MPI and NCCL were built (MINIVL_MPI, MINIVL_NCCL are defined
// for this file alone, by CMake).
#include "nn/distributed.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "nn/distributed_backend.h"

#if MINIVL_NCCL
#include "kernels/cuda/nccl_comm.h"
#endif

namespace minivl::nn {
namespace {

class SingleHostComm final : public HostComm {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  const char* name() const override { return "single"; }
  void all_reduce_sum(void*, int64_t, DType) override {}
  void all_gather(const void* send, void* recv, int64_t n, DType dtype) override {
    if (send != recv) std::memmove(recv, send, size_t(n) * dtype_size(dtype));
  }
  void reduce_scatter_sum(const void* send, void* recv, int64_t n, DType dtype) override {
    if (send != recv) std::memmove(recv, send, size_t(n) * dtype_size(dtype));
  }
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
  int64_t all_reduce_start(void*, int64_t, DType) override { return 0; }
  void all_reduce_wait(int64_t) override {}
  void poll() override {}
  [[noreturn]] void abort(int exit_code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(exit_code);
  }
};

#if MINIVL_NCCL
// Two NCCL communicators, like the two MPI ones: the blocking collectives on the compute stream,
// the gradient all-reduces on a side stream. Rank 0 makes each unique id; MPI carries it.
class NcclDeviceComm final : public DeviceComm {
 public:
  explicit NcclDeviceComm(HostComm& host) {
    cuda::NcclUniqueId ids[2];
    if (host.rank() == 0) {
      ids[0] = cuda::nccl_unique_id();
      ids[1] = cuda::nccl_unique_id();
    }
    host.broadcast(ids, int64_t(sizeof(ids)), 0);
    main_ = std::make_unique<cuda::NcclComm>(ids[0], host.rank(), host.size());
    grads_ = std::make_unique<cuda::NcclComm>(ids[1], host.rank(), host.size());
  }
  void all_reduce_sum(void* buf, int64_t n, DType dtype) override { main_->all_reduce_sum(buf, n, dtype); }
  void all_gather(const void* send, void* recv, int64_t n, DType dtype) override {
    main_->all_gather(send, recv, n, dtype);
  }
  void reduce_scatter_sum(const void* send, void* recv, int64_t n, DType dtype) override {
    main_->reduce_scatter_sum(send, recv, n, dtype);
  }
  void broadcast(void* buf, int64_t nbytes, int root) override { main_->broadcast(buf, nbytes, root); }
  int64_t all_reduce_start(void* buf, int64_t n, DType dtype) override {
    return grads_->all_reduce_start(buf, n, dtype);
  }
  void all_reduce_finish(int64_t handle) override { grads_->all_reduce_finish(handle); }

 private:
  std::unique_ptr<cuda::NcclComm> main_, grads_;
};
#endif

// NCCL errors arrive as std::runtime_error from kernels/cuda: make them minivl::Error.
template <typename F>
auto rethrow_as_error(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    MINIVL_FAIL(what, ": ", e.what());
  }
}

void check_dtype(const Tensor& t, const char* op) {
  MINIVL_CHECK(t.defined(), op, ": undefined tensor");
  const DType d = t.dtype();
  const bool ok = d == DType::f32 || d == DType::f64 || (t.device().is_cuda() && (d == DType::bf16 || d == DType::f16));
  MINIVL_CHECK(ok, op, ": ", t.desc(), " is not supported (f32 or f64; bf16 and f16 on CUDA)");
}

}  // namespace

std::unique_ptr<HostComm> make_single_host_comm() { return std::make_unique<SingleHostComm>(); }

// ---- ProcessGroup ----
ProcessGroup::ProcessGroup(std::unique_ptr<HostComm> host) : host_(std::move(host)) {
  MINIVL_CHECK(host_ != nullptr, "ProcessGroup: no host communicator");
}
ProcessGroup::~ProcessGroup() = default;

std::shared_ptr<ProcessGroup> ProcessGroup::single() { return std::make_shared<ProcessGroup>(make_single_host_comm()); }

int ProcessGroup::rank() const { return host_->rank(); }
int ProcessGroup::size() const { return host_->size(); }
int ProcessGroup::local_rank() const { return host_->local_rank(); }
std::string ProcessGroup::backend() const { return std::string(host_->name()) + (cuda_ ? "+nccl" : ""); }

DeviceComm& ProcessGroup::device_comm() {
  if (!cuda_) {
#if MINIVL_NCCL
    cuda_ = rethrow_as_error("NCCL communicator", [&] { return std::make_unique<NcclDeviceComm>(*host_); });
#else
    MINIVL_FAIL("collectives on CUDA tensors need NCCL, and this build has none (CMake found no nccl.h / libnccl; "
                "set MINIVL_NCCL_ROOT, or train with device = \"cpu\")");
#endif
  }
  return *cuda_;
}

void ProcessGroup::all_reduce_sum_(const Tensor& t) {
  check_dtype(t, "all_reduce");
  NoGradGuard no_grad;
  Tensor c = t.is_contiguous() ? t.detach() : t.contiguous();
  if (t.device().is_cuda()) {
    rethrow_as_error("all_reduce", [&] { device_comm().all_reduce_sum(c.data_ptr(), c.numel(), c.dtype()); });
  } else {
    host_->all_reduce_sum(c.data_ptr(), c.numel(), c.dtype());
  }
  if (c.same(t) || c.storage() == t.storage()) {
    t.bump_version();
  } else {
    Tensor(t).copy_(c);
  }
}

Tensor ProcessGroup::all_gather(const Tensor& t) {
  check_dtype(t, "all_gather");
  MINIVL_CHECK(t.dim() >= 1, "all_gather: needs at least one dimension, got ", t.desc());
  NoGradGuard no_grad;
  Tensor c = t.contiguous();
  Shape shape = t.shape();
  shape[0] *= size();
  Tensor out = empty(shape, t.dtype(), t.device());
  if (t.device().is_cuda()) {
    rethrow_as_error("all_gather", [&] { device_comm().all_gather(c.data_ptr(), out.data_ptr(), c.numel(), c.dtype()); });
  } else {
    host_->all_gather(c.data_ptr(), out.data_ptr(), c.numel(), c.dtype());
  }
  return out;
}

Tensor ProcessGroup::reduce_scatter_sum(const Tensor& t) {
  check_dtype(t, "reduce_scatter");
  MINIVL_CHECK(t.dim() >= 1 && t.size(0) % size() == 0, "reduce_scatter: dim 0 of ", t.desc(),
               " is not a multiple of the ", size(), " ranks");
  NoGradGuard no_grad;
  Tensor c = t.contiguous();
  Shape shape = t.shape();
  shape[0] /= size();
  Tensor out = empty(shape, t.dtype(), t.device());
  if (t.device().is_cuda()) {
    rethrow_as_error("reduce_scatter",
                     [&] { device_comm().reduce_scatter_sum(c.data_ptr(), out.data_ptr(), out.numel(), c.dtype()); });
  } else {
    host_->reduce_scatter_sum(c.data_ptr(), out.data_ptr(), out.numel(), c.dtype());
  }
  return out;
}

void ProcessGroup::broadcast_(const Tensor& t, int root) {
  MINIVL_CHECK(t.defined(), "broadcast: undefined tensor");
  MINIVL_CHECK(root >= 0 && root < size(), "broadcast: root ", root, " is not a rank of ", size());
  NoGradGuard no_grad;
  Tensor c = t.is_contiguous() ? t.detach() : t.contiguous();
  if (t.device().is_cuda()) {
    rethrow_as_error("broadcast", [&] { device_comm().broadcast(c.data_ptr(), int64_t(c.nbytes()), root); });
  } else {
    host_->broadcast(c.data_ptr(), int64_t(c.nbytes()), root);
  }
  if (c.storage() == t.storage()) {
    t.bump_version();
  } else {
    Tensor(t).copy_(c);
  }
}

std::vector<double> ProcessGroup::all_reduce_sum(std::vector<double> values) {
  host_->all_reduce_sum(values.data(), int64_t(values.size()), DType::f64);
  return values;
}

void ProcessGroup::barrier() { host_->barrier(); }

void ProcessGroup::abort(int exit_code) {
  host_->abort(exit_code);
  std::_Exit(exit_code);  // not reached; GCC does not carry [[noreturn]] through the virtual call
}

int64_t ProcessGroup::start_all_reduce(const Tensor& t) {
  check_dtype(t, "all_reduce");
  MINIVL_CHECK(t.is_contiguous(), "start_all_reduce: the bucket must be contiguous, got ", t.desc());
  Pending p;
  p.on_device = t.device().is_cuda();
  p.handle = p.on_device
                 ? rethrow_as_error("all_reduce", [&] { return device_comm().all_reduce_start(t.data_ptr(), t.numel(), t.dtype()); })
                 : host_->all_reduce_start(t.data_ptr(), t.numel(), t.dtype());
  const int64_t handle = next_handle_++;
  pending_.emplace_back(handle, p);
  return handle;
}

void ProcessGroup::finish_all_reduce(int64_t handle) {
  for (size_t i = 0; i < pending_.size(); ++i) {
    if (pending_[i].first != handle) continue;
    const Pending p = pending_[i].second;
    pending_.erase(pending_.begin() + ptrdiff_t(i));
    if (p.on_device) {
      rethrow_as_error("all_reduce", [&] { device_comm().all_reduce_finish(p.handle); });
    } else {
      host_->all_reduce_wait(p.handle);
    }
    return;
  }
  MINIVL_FAIL("finish_all_reduce: unknown handle ", handle);
}

void ProcessGroup::poll() { host_->poll(); }

void ProcessGroup::close() {
  MINIVL_CHECK(pending_.empty(), "ProcessGroup::close: ", pending_.size(), " all-reduce(s) still in flight");
  cuda_.reset();
}

// ---- the launched group ----
namespace {
const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}
// The world size a launcher announced (Open MPI, MPICH/Hydra and Intel MPI, MVAPICH, PMIx), or 0.
int launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE"})
    if (const char* v = env(name)) return std::atoi(v);
  return env("PMIX_RANK") ? -1 : 0;  // PMIx without a size variable: launched, size unknown here
}
}  // namespace

bool launched_by_mpi() { return launcher_world_size() != 0; }

std::shared_ptr<ProcessGroup> launched_process_group() {
  static std::shared_ptr<ProcessGroup> group = []() -> std::shared_ptr<ProcessGroup> {
    const int announced = launcher_world_size();
    if (announced == 0) return nullptr;
#if MINIVL_MPI
    return std::make_shared<ProcessGroup>(make_mpi_host_comm());
#else
    MINIVL_CHECK(announced <= 1, "launched by MPI with ", announced,
                 " ranks, but this minivl was built without MPI: every rank would run the whole job alone. "
                 "Install MPI (tools/bootstrap.sh: libopenmpi-dev openmpi-bin) and rebuild with -DMINIVL_MPI=AUTO");
    return nullptr;  // one rank (or a size the launcher did not say): a plain single-process run
#endif
  }();
  return group;
}

DistributedSupport distributed_support() {
  DistributedSupport s;
#if MINIVL_MPI
  s.mpi = true;
#endif
#if MINIVL_NCCL
  s.nccl = true;
#endif
  return s;
}

}  // namespace minivl::nn
