#pragma once
// Data-parallel training (docs/distributed.md): every rank holds the whole
// model, computes the gradient of its share of the global batch, and the ranks
// average their gradients before the optimiser step, so every rank applies the
// same update to the same weights.
//
// GradReducer overlaps that averaging with the backward, as PyTorch's DDP does:
//   - the parameters are cut into buckets of about `bucket_bytes`, in reverse
//     registration order (roughly the order the backward finishes them), one
//     dtype and device per bucket;
//   - a hook on AccumulateGrad (core/autograd.h) counts each bucket's gradients;
//     once all of a bucket's are final, the bucket is copied into one flat
//     buffer and its all-reduce starts (MPI_Iallreduce; on CUDA ncclAllReduce on
//     a side stream) while the backward goes on. Buckets start strictly in
//     index order, so every rank issues the same collectives in the same order
//     even when their backwards finish parameters in different orders;
//   - arm(loss) walks loss's graph first: parameters the backward will not
//     reach are final already, so a bucket of unused parameters does not hold
//     back the buckets after it (DDP's find_unused_parameters);
//   - finish() starts whatever the backward did not reach, waits for every
//     bucket, and writes sum / R back into each .grad. A parameter that got no
//     gradient on any rank keeps none (as in a single process); one that got a
//     gradient on some ranks only gets theirs, averaged over all R.
// With gradient accumulation only the last micro-batch's backward is armed:
// the earlier ones accumulate locally (DDP's no_sync).
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "nn/distributed.h"
#include "nn/module.h"

namespace minivl::nn {

class GradReducer {
 public:
  GradReducer(std::vector<Tensor> params, std::shared_ptr<ProcessGroup> group, int64_t bucket_bytes);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  // The next backward (from `loss`) is the last before a step: start buckets as their gradients
  // become final. Parameters `loss` does not depend on count as final at once.
  void arm(const Tensor& loss);
  // After that backward: start the rest, wait for all, and leave the averaged gradients in .grad.
  void finish();

  int64_t num_buckets() const { return int64_t(buckets_.size()); }
  // Buckets the last armed backward started from the hook, before finish() (the overlapped ones).
  int64_t started_during_backward() const { return started_during_backward_; }
  // The parameter indices of each bucket, in bucket order (tests).
  std::vector<std::vector<size_t>> bucket_layout() const;

 private:
  struct Bucket {
    std::vector<size_t> params;    // indices into params_
    std::vector<int64_t> offsets;  // element offset of each in flat
    int64_t numel = 0;
    DType dtype = DType::f32;
    Device device;
    Tensor flat;                   // (numel), allocated on first use and kept
    size_t waiting = 0;            // gradients not yet final in this backward
    bool started = false;
    int64_t handle = 0;
  };
  void on_grad_accumulated(const Tensor& leaf);
  void start_ready_buckets();  // in index order, as far as they are ready
  void start(Bucket& b);

  std::vector<Tensor> params_;
  std::shared_ptr<ProcessGroup> group_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, size_t> index_of_;  // parameter -> index in params_
  std::vector<size_t> bucket_of_;                           // parameter index -> bucket
  std::vector<bool> final_;                                  // this backward: gradient final
  size_t next_to_start_ = 0;
  bool armed_ = false;
  int64_t started_during_backward_ = 0;
  int64_t hook_id_ = 0;
};

// Copies rank `root`'s parameters and buffers into every rank's `model` (the same weights everywhere
// before the first step, whatever each rank's initialisation did).
void broadcast_module(Module& model, ProcessGroup& group, int root = 0);

}  // namespace minivl::nn
