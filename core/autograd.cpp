#include "core/autograd.h"

#include <mutex>
#include <unordered_map>

#include "core/error.h"
#include "core/ops.h"

namespace minivl {
namespace {

thread_local bool t_grad_enabled = true;

// The grad-accumulated hooks: an immutable snapshot swapped under the mutex, so that a hook may
// add or remove hooks while being called without invalidating the list being walked.
struct HookList {
  std::vector<std::pair<int64_t, GradAccumulatedHook>> hooks;
};
std::mutex g_hooks_mutex;
std::shared_ptr<const HookList> g_hooks = std::make_shared<HookList>();
int64_t g_next_hook_id = 1;

std::shared_ptr<const HookList> current_hooks() {
  std::lock_guard<std::mutex> lock(g_hooks_mutex);
  return g_hooks;
}

// Accumulates the incoming gradient into a leaf's .grad (out of place, so a
// gradient tensor shared between two leaves is never written through). A first
// gradient that nothing else can see (the only handle on the only tensor of its
// storage, which it covers exactly) becomes .grad as it is: the copy would
// protect no one, and it cost a kernel launch per parameter per step.
struct AccumulateGrad final : Node {
  std::weak_ptr<TensorImpl> leaf;
  const char* name() const override { return "AccumulateGrad"; }
  static bool unshared(const Tensor& g) {
    return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.offset() == 0 && g.is_contiguous() &&
           g.nbytes() == g.storage()->nbytes();
  }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    auto impl = leaf.lock();
    if (!impl) return {};
    Tensor g = std::move(grads[0]);
    Tensor t(impl);
    MINIVL_CHECK(g.shape() == t.shape(), "AccumulateGrad: gradient ", g.shape_str(), " for a leaf of shape ",
                 t.shape_str());
    if (g.dtype() != t.dtype()) g = g.to(t.dtype());
    Tensor old = t.grad();
    t.set_grad(old.defined() ? add(old, g) : unshared(g) ? g : g.clone());
    std::shared_ptr<const HookList> hooks = current_hooks();
    for (const auto& [id, hook] : hooks->hooks) hook(t);
    return {};
  }
};

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  auto impl = leaf.impl_ptr();
  if (auto existing = impl->grad_accumulator.lock()) return existing;
  auto node = std::make_shared<AccumulateGrad>();
  node->leaf = impl;
  node->outputs.push_back({leaf.shape(), leaf.dtype(), leaf.device()});
  impl->grad_accumulator = node;
  return node;
}

}  // namespace

int64_t add_grad_accumulated_hook(GradAccumulatedHook hook) {
  MINIVL_CHECK(bool(hook), "add_grad_accumulated_hook: empty hook");
  std::lock_guard<std::mutex> lock(g_hooks_mutex);
  auto next = std::make_shared<HookList>(*g_hooks);
  const int64_t id = g_next_hook_id++;
  next->hooks.emplace_back(id, std::move(hook));
  g_hooks = std::move(next);
  return id;
}

void remove_grad_accumulated_hook(int64_t id) {
  std::lock_guard<std::mutex> lock(g_hooks_mutex);
  auto next = std::make_shared<HookList>(*g_hooks);
  std::erase_if(next->hooks, [id](const auto& h) { return h.first == id; });
  g_hooks = std::move(next);
}

std::vector<Tensor> reachable_leaves(const Tensor& root) {
  std::vector<Tensor> leaves;
  if (!root.defined() || !root.requires_grad()) return leaves;
  if (!root.grad_fn()) return {root};
  std::vector<Node*> stack{root.grad_fn().get()};
  std::unordered_map<Node*, bool> seen{{stack.back(), true}};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (auto* acc = dynamic_cast<AccumulateGrad*>(n)) {
      if (auto impl = acc->leaf.lock()) leaves.emplace_back(impl);
    }
    for (const Edge& e : n->next_edges)
      if (e.fn && !seen[e.fn.get()]) {
        seen[e.fn.get()] = true;
        stack.push_back(e.fn.get());
      }
  }
  return leaves;
}

// ---- nodes ----
// Destroying the last reference to the end of a long chain would otherwise
// recurse once per node (~Node -> ~Edge -> ~Node ...) and overflow the stack.
// Instead, take over the edges of every node we hold the last reference to.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> doomed;
  auto take_edges = [&doomed](std::vector<Edge>& edges) {
    for (Edge& e : edges)
      if (e.fn && e.fn.use_count() == 1) doomed.push_back(std::move(e.fn));
    edges.clear();
  };
  take_edges(next_edges);
  while (!doomed.empty()) {
    std::shared_ptr<Node> n = std::move(doomed.back());
    doomed.pop_back();
    take_edges(n->next_edges);
  }  // n is freed here with no edges left, so its destructor does not recurse
}

// ---- saved tensors ----
SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  tensor_ = t.detach();
  version_ = t.storage()->version();
}

Tensor SavedTensor::get(const char* node_name) const {
  MINIVL_CHECK(!released_, node_name,
               ": its saved tensors were freed by an earlier backward; call backward(..., retain_graph=true) "
               "the first time to backward through the graph twice");
  if (tensor_.defined()) {
    uint64_t now = tensor_.storage()->version();
    MINIVL_CHECK(now == version_, node_name, ": a tensor ", tensor_.desc(),
                 " saved for the backward was modified in place after it was saved (version ", version_,
                 ", now ", now, "); clone it before the in-place op");
  }
  return tensor_;
}

// ---- grad mode ----
bool grad_enabled() { return t_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(t_grad_enabled) { t_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { t_grad_enabled = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void set_history(const std::shared_ptr<Node>& node, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs) {
  node->next_edges.clear();
  for (const Tensor& in : inputs) {
    Edge e;
    if (in.defined() && in.requires_grad()) {
      if (in.grad_fn()) {
        e.fn = in.grad_fn();
        e.input_nr = in.impl()->output_nr;
      } else {
        e.fn = grad_accumulator(in);
      }
    }
    node->next_edges.push_back(e);
  }
  node->outputs.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->outputs.push_back({out.shape(), out.dtype(), out.device()});
    out.impl()->grad_fn = node;
    out.impl()->output_nr = uint32_t(i);
    out.impl()->requires_grad = true;
  }
}

// ---- the engine ----
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  NoGradGuard no_grad;
  // Seed: the roots' own nodes (a leaf root accumulates straight into itself).
  std::vector<Edge> seeds;
  for (const Tensor& r : roots) {
    Edge e;
    e.fn = r.grad_fn() ? r.grad_fn() : grad_accumulator(r);
    e.input_nr = r.grad_fn() ? r.impl()->output_nr : 0;
    seeds.push_back(e);
  }

  // Count, for every reachable node, how many edges point at it (iterative DFS).
  std::unordered_map<Node*, int> dependencies;
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (const Edge& e : seeds) {
    if (!seen[e.fn.get()]) {
      seen[e.fn.get()] = true;
      stack.push_back(e.fn.get());
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.fn) continue;
      ++dependencies[e.fn.get()];
      if (!seen[e.fn.get()]) {
        seen[e.fn.get()] = true;
        stack.push_back(e.fn.get());
      }
    }
  }

  // Gradients waiting for each node, summed as they arrive.
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto accumulate = [&](const Edge& e, const Tensor& g) {
    auto& buf = buffers[e.fn.get()];
    if (buf.empty()) buf.resize(e.fn->outputs.size());
    Tensor& slot = buf[e.input_nr];
    slot = slot.defined() ? add(slot, g) : g;
  };
  std::vector<std::shared_ptr<Node>> ready;
  for (size_t i = 0; i < seeds.size(); ++i) {
    accumulate(seeds[i], grads[i]);
  }
  for (const Edge& e : seeds) {
    if (dependencies[e.fn.get()] == 0) {
      bool queued = false;
      for (auto& r : ready) queued |= r == e.fn;
      if (!queued) ready.push_back(e.fn);
    }
  }

  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.back();
    ready.pop_back();
    std::vector<Tensor> in = std::move(buffers[node.get()]);
    buffers.erase(node.get());
    in.resize(node->outputs.size());
    for (size_t i = 0; i < in.size(); ++i) {
      if (!in[i].defined()) {
        const OutputMeta& m = node->outputs[i];
        in[i] = zeros(m.shape, m.dtype, m.device);
      }
    }
    std::vector<Tensor> out = node->apply(std::move(in));
    if (!retain_graph) node->release_saved();
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& e = node->next_edges[i];
      if (!e.fn) continue;
      if (i < out.size() && out[i].defined()) accumulate(e, out[i]);
      if (--dependencies[e.fn.get()] == 0) ready.push_back(e.fn);
    }
  }
}

Tensor sum_to_shape(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  int64_t lead = grad.dim() - int64_t(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead || (shape[d - lead] == 1 && grad.size(d) != 1)) dims.push_back(d);
  }
  Tensor r = dims.empty() ? grad : sum(grad, dims, /*keepdim=*/true);
  return r.reshape(shape);
}

}  // namespace minivl
