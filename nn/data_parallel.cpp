// GradReducer: bucketed gradient averaging overlapped with the backward (see
// nn/data_parallel.h for the design).
#include "nn/data_parallel.h"

#include <map>
#include <utility>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl::nn {

GradReducer::GradReducer(std::vector<Tensor> params, std::shared_ptr<ProcessGroup> group, int64_t bucket_bytes)
    : params_(std::move(params)), group_(std::move(group)) {
  MINIVL_CHECK(group_ != nullptr, "GradReducer: no process group");
  MINIVL_CHECK(bucket_bytes > 0, "GradReducer: bucket_bytes must be positive, got ", bucket_bytes);
  bucket_of_.assign(params_.size(), 0);
  final_.assign(params_.size(), false);
  // Reverse registration order: the backward reaches the last layers' parameters first.
  std::map<std::pair<int, int>, size_t> open;  // (device type, dtype) -> the bucket being filled
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    MINIVL_CHECK(p.defined() && p.is_leaf(), "GradReducer: parameter ", k, " is not a defined leaf tensor");
    MINIVL_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64 ||
                     (p.device().is_cuda() && (p.dtype() == DType::bf16 || p.dtype() == DType::f16)),
                 "GradReducer: parameter ", k, " is ", p.desc(), "; data parallelism averages f32 or f64 gradients");
    MINIVL_CHECK(index_of_.emplace(p.impl(), k).second, "GradReducer: parameter ", k, " appears twice");
    const std::pair<int, int> key{int(p.device().type), int(p.dtype())};
    auto it = open.find(key);
    // A new bucket when none is open for this kind or this parameter would overflow the open one
    // (a parameter bigger than the cap gets a bucket of its own).
    if (it == open.end() || int64_t(dtype_size(p.dtype())) * (buckets_[it->second].numel + p.numel()) > bucket_bytes) {
      Bucket b;
      b.dtype = p.dtype();
      b.device = p.device();
      buckets_.push_back(std::move(b));
      it = open.insert_or_assign(key, buckets_.size() - 1).first;
    }
    Bucket& b = buckets_[it->second];
    bucket_of_[k] = it->second;
    b.params.push_back(k);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
  }
  hook_id_ = add_grad_accumulated_hook([this](const Tensor& leaf) { on_grad_accumulated(leaf); });
}

GradReducer::~GradReducer() {
  remove_grad_accumulated_hook(hook_id_);
  for (Bucket& b : buckets_)
    if (b.started) {
      try {
        group_->finish_all_reduce(b.handle);  // never leave MPI writing into a freed buffer
      } catch (...) {
      }
    }
}

std::vector<std::vector<size_t>> GradReducer::bucket_layout() const {
  std::vector<std::vector<size_t>> out;
  for (const Bucket& b : buckets_) out.push_back(b.params);
  return out;
}

void GradReducer::arm(const Tensor& loss) {
  MINIVL_CHECK(!armed_, "GradReducer::arm: the previous armed backward was not finished");
  for (Bucket& b : buckets_) {
    MINIVL_CHECK(!b.started, "GradReducer::arm: a bucket is still in flight");
    b.waiting = b.params.size();
  }
  // What the backward will not reach is final now (no gradient, or earlier micro-batches').
  std::vector<bool> reached(params_.size(), false);
  for (const Tensor& leaf : reachable_leaves(loss)) {
    auto it = index_of_.find(leaf.impl());
    if (it != index_of_.end()) reached[it->second] = true;
  }
  next_to_start_ = 0;
  started_during_backward_ = 0;
  armed_ = true;
  for (size_t k = 0; k < params_.size(); ++k) {
    final_[k] = !reached[k];
    if (final_[k]) --buckets_[bucket_of_[k]].waiting;
  }
  start_ready_buckets();  // buckets of unused parameters only
}

void GradReducer::on_grad_accumulated(const Tensor& leaf) {
  if (!armed_) return;
  auto it = index_of_.find(leaf.impl());
  if (it == index_of_.end()) return;  // not one of ours (an input that requires grad, say)
  const size_t k = it->second;
  if (final_[k]) return;
  final_[k] = true;
  Bucket& b = buckets_[bucket_of_[k]];
  if (--b.waiting == 0) {
    const size_t before = next_to_start_;
    start_ready_buckets();
    started_during_backward_ += int64_t(next_to_start_ - before);
  }
  group_->poll();  // MPI moves the started all-reduces along only inside MPI calls
}

void GradReducer::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0) start(buckets_[next_to_start_++]);
}

void GradReducer::start(Bucket& b) {
  NoGradGuard no_grad;
  if (!b.flat.defined()) b.flat = empty({b.numel}, b.dtype, b.device);
  for (size_t s = 0; s < b.params.size(); ++s) {
    const Tensor& p = params_[b.params[s]];
    Tensor slot = b.flat.narrow(0, b.offsets[s], p.numel());
    Tensor g = p.grad();
    if (g.defined()) {
      slot.copy_(g.reshape({p.numel()}));
    } else {
      slot.zero_();  // no gradient here; another rank's may still count (see finish)
    }
  }
  b.handle = group_->start_all_reduce(b.flat);
  b.started = true;
}

void GradReducer::finish() {
  MINIVL_CHECK(armed_, "GradReducer::finish: arm() was not called before the backward");
  armed_ = false;
  // Gradients the backward did not reach are final too (earlier micro-batches', or none).
  for (Bucket& b : buckets_) b.waiting = 0;
  start_ready_buckets();
  // Which parameters have a gradient anywhere: those that have none on every rank keep none.
  std::vector<double> present(params_.size(), 0.0);
  for (size_t k = 0; k < params_.size(); ++k) present[k] = params_[k].grad().defined() ? 1.0 : 0.0;
  present = group_->all_reduce_sum(std::move(present));
  const double inv_ranks = 1.0 / double(group_->size());
  NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    group_->finish_all_reduce(b.handle);
    b.started = false;
    for (size_t s = 0; s < b.params.size(); ++s) {
      Tensor p = params_[b.params[s]];
      if (present[b.params[s]] == 0.0) {
        p.zero_grad();
        continue;
      }
      // A fresh tensor, not a view of the bucket: the bucket is rewritten next step.
      p.set_grad(mul(b.flat.narrow(0, b.offsets[s], p.numel()), inv_ranks).reshape(p.shape()));
    }
  }
}

void broadcast_module(Module& model, ProcessGroup& group, int root) {
  for (const Tensor& p : model.parameters()) group.broadcast_(p, root);
  for (const auto& [name, t] : model.named_buffers()) group.broadcast_(t, root);
}

}  // namespace minivl::nn
