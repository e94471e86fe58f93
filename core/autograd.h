#pragma once
// Eager reverse-mode autograd: every differentiable op records a Node whose
// apply() maps output gradients to input gradients. backward() walks the graph
// in topological order (iteratively, no recursion), sums gradients per node,
// and accumulates into leaves. Backward runs under no-grad.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace minivl {

struct Edge {
  std::shared_ptr<Node> fn;  // null: this input needs no gradient
  uint32_t input_nr = 0;     // which output of fn the gradient belongs to
};

// A tensor kept for the backward, with the storage version at save time so an
// in-place write in between is caught instead of giving a silently wrong gradient.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  Tensor get(const char* node_name) const;
  void release() { tensor_ = Tensor(); released_ = true; }
  bool defined() const { return tensor_.defined() || released_; }

 private:
  Tensor tensor_;  // detached alias: keeps the data, not the graph
  uint64_t version_ = 0;
  bool released_ = false;
};

struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

struct Node : std::enable_shared_from_this<Node> {
  // Frees a chain of nodes only this one keeps alive iteratively (no recursion per node).
  virtual ~Node();
  virtual const char* name() const = 0;
  // grads[i] is the gradient of output i (materialised as zeros when no path reached it).
  // Returns one gradient per input (undefined where the input needs none).
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  // Drops saved tensors after a backward without retain_graph.
  virtual void release_saved() {}

  std::vector<Edge> next_edges;     // one per input
  std::vector<OutputMeta> outputs;  // one per output
};

// ---- grad mode ----
bool grad_enabled();
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any input requires grad: the op must record a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Wires `node` as the producer of `outputs` and connects it to `inputs`.
void set_history(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs);

// Runs the backward from `roots` seeded with `grads`.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph);

// Called on the backward's thread right after AccumulateGrad has written a leaf's .grad: the
// leaf's gradient for this backward is then final (every path into it has been summed). Data
// parallelism (nn/data_parallel.h) starts a bucket's all-reduce from here, while the rest of the
// backward still runs. Hooks see every leaf of every backward; they filter for themselves.
using GradAccumulatedHook = std::function<void(const Tensor& leaf)>;
int64_t add_grad_accumulated_hook(GradAccumulatedHook hook);  // returns an id for remove
void remove_grad_accumulated_hook(int64_t id);
// The leaves a backward from `root` would accumulate into (root itself when it is a leaf): data
// parallelism marks the others' gradients final before the backward starts.
std::vector<Tensor> reachable_leaves(const Tensor& root);

// The gradient of a broadcast: sums `grad` down to `shape` (the input's shape before broadcasting).
Tensor sum_to_shape(const Tensor& grad, const Shape& shape);

}  // namespace minivl
