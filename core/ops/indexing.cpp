// embedding (gather / scatter-add), cat, stack, split. (layernorm: core/ops/layernorm.cpp)
#include <numeric>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/ops.h"

namespace minivl {
namespace {

struct EmbeddingBackward final : Node {
  SavedTensor ids;
  Shape weight_shape;
  const char* name() const override { return "EmbeddingBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    Tensor i = ids.get(name());
    const Tensor& g = grads[0];
    Tensor gw = zeros(weight_shape, g.dtype(), g.device());
    Tensor rows = g.contiguous().reshape({i.numel(), weight_shape[1]});
    kernel_for(kernels().embedding_backward, g.device(), "embedding")(rows.view(), i.view(), gw.view());
    return {gw, Tensor()};
  }
  void release_saved() override { ids.release(); }
};

struct CatBackward final : Node {
  int64_t dim;
  std::vector<int64_t> sizes;
  const char* name() const override { return "CatBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override {
    std::vector<Tensor> out;
    int64_t start = 0;
    for (int64_t s : sizes) {
      out.push_back(grads[0].narrow(dim, start, s));
      start += s;
    }
    return out;
  }
};

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  MINIVL_CHECK(weight.defined() && ids.defined(), "embedding: undefined tensor argument");
  MINIVL_CHECK(weight.dim() == 2 && weight.is_floating_point(), "embedding: weight must be floating (V, D), got ",
               weight.desc());
  MINIVL_CHECK(ids.dtype() == DType::i64 || ids.dtype() == DType::i32, "embedding: ids must be integer, got ",
               ids.desc());
  MINIVL_CHECK(weight.device() == ids.device(), "embedding: weight on ", weight.device().str(), ", ids on ",
               ids.device().str());
  const int64_t vocab = weight.size(0), dim = weight.size(1);
  Tensor flat = ids.to(DType::i64).contiguous().reshape({ids.numel()});
  // The ids are checked where they live, without the host waiting for a device: CPU ids here;
  // the CUDA kernel flags the first bad id on the device (its row reads as zeros) and the error
  // is raised at the next copy to the host (kernels/cuda/embedding.cu).
  if (flat.device().is_cpu()) {
    const int64_t* id = flat.data<int64_t>();
    for (int64_t i = 0; i < flat.numel(); ++i)
      MINIVL_CHECK(id[i] >= 0 && id[i] < vocab, "embedding: id ", id[i], " out of range for a vocabulary of ", vocab);
  }
  Shape out_shape = ids.shape();
  out_shape.push_back(dim);
  Tensor w = weight.detach().contiguous();
  Tensor out = make_tensor({flat.numel(), dim}, weight.dtype(), weight.device());
  if (out.numel() > 0) kernel_for(kernels().embedding, weight.device(), "embedding")(w.view(), flat.view(), out.view());
  out = out.reshape(out_shape);
  if (needs_grad({&weight})) {
    auto node = std::make_shared<EmbeddingBackward>();
    node->ids = SavedTensor(flat);
    node->weight_shape = weight.shape();
    set_history(node, {weight, ids}, {out});
  }
  return out;
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  MINIVL_CHECK(!tensors.empty(), "cat: expected at least one tensor");
  const Tensor& first = tensors[0];
  MINIVL_CHECK(first.defined() && first.dim() > 0, "cat: tensors must have at least one dim");
  int64_t d = wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  shape[size_t(d)] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    MINIVL_CHECK(t.defined(), "cat: tensor ", i, " is undefined");
    MINIVL_CHECK(t.dtype() == first.dtype() && t.device() == first.device(), "cat: tensor ", i, " is ", t.desc(),
                 " but tensor 0 is ", first.desc());
    bool ok = t.dim() == first.dim();
    for (int64_t k = 0; ok && k < t.dim(); ++k) ok = k == d || t.size(k) == first.size(k);
    MINIVL_CHECK(ok, "cat: tensor ", i, " has shape ", t.shape_str(), ", tensor 0 has ", first.shape_str(),
                 "; only dim ", d, " may differ");
    shape[size_t(d)] += t.size(d);
    sizes.push_back(t.size(d));
  }
  Tensor out = make_tensor(shape, first.dtype(), first.device());
  {
    NoGradGuard no_grad;
    int64_t start = 0;
    for (const Tensor& t : tensors) {
      out.narrow(d, start, t.size(d)).copy_(t);
      start += t.size(d);
    }
  }
  if (needs_grad(tensors)) {
    auto node = std::make_shared<CatBackward>();
    node->dim = d;
    node->sizes = sizes;
    set_history(node, tensors, {out});
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  MINIVL_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    MINIVL_CHECK(tensors[i].defined() && tensors[i].shape() == tensors[0].shape(), "stack: tensor ", i,
                 " has shape ", tensors[i].defined() ? tensors[i].shape_str() : "undefined", ", tensor 0 has ",
                 tensors[0].shape_str());
    parts.push_back(tensors[i].unsqueeze(d));
  }
  return cat(parts, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  MINIVL_CHECK(x.defined() && x.dim() > 0, "split: expected a tensor with at least one dim");
  int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  MINIVL_CHECK(total == x.size(d), "split: sizes add up to ", total, " but dim ", d, " of ", x.shape_str(),
               " has ", x.size(d));
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    MINIVL_CHECK(s >= 0, "split: negative size ", s);
    out.push_back(x.narrow(d, start, s));
    start += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  MINIVL_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  MINIVL_CHECK(x.defined() && x.dim() > 0, "split: expected a tensor with at least one dim");
  int64_t d = wrap_dim(dim, x.dim(), "split");
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < x.size(d); start += split_size)
    sizes.push_back(std::min(split_size, x.size(d) - start));
  return split(x, sizes, d);
}

}  // namespace minivl
