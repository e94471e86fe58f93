// CudnnLayerNorm (bench/cudnn_peer.h): cuDNN 9's norm operations in layer-norm mode, one
// operation per graph. Layout as cuDNN's own layernorm samples: x (rows, cols, 1, 1) with strides
// (cols, 1, cols, cols), scale/bias (1, cols, 1, 1) in f32, statistics (rows, 1, 1, 1) in f32,
// epsilon a by-value f32 scalar. Forward in training phase (it writes mean and inv_std for the
// backward); backward gives dx, dscale and dbias.
#include <map>

#include "bench/cudnn_backend.h"

namespace minivl::bench {
using namespace cudnn_detail;

namespace {

struct Ids {
  int64_t x = 0, scale = 0, bias = 0, eps = 0, y = 0, mean = 0, inv_std = 0;
  int64_t dy = 0, dx = 0, dscale = 0, dbias = 0;
};

struct Layout {
  std::vector<int64_t> act_dims, act_strides, param_dims, param_strides, stat_dims, stat_strides;
  cudnnDataType_t act_type;
};

Layout layout(const LayerNormProblem& p) {
  const int64_t R = p.rows, C = p.cols;
  return {{R, C, 1, 1}, {C, 1, C, C}, {1, C, 1, 1}, {C, 1, C, C}, {R, 1, 1, 1}, {1, 1, 1, 1},
          p.bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT};
}

Ids build_forward(OpGraph& g, const LayerNormProblem& p) {
  const Layout l = layout(p);
  const auto dev = TensorKind::device;
  Ids id;
  id.x = g.tensor(l.act_type, l.act_dims, l.act_strides, dev, "X");
  id.scale = g.tensor(CUDNN_DATA_FLOAT, l.param_dims, l.param_strides, dev, "scale");
  id.bias = g.tensor(CUDNN_DATA_FLOAT, l.param_dims, l.param_strides, dev, "bias");
  id.eps = g.scalar(CUDNN_DATA_FLOAT, "epsilon");
  id.y = g.tensor(l.act_type, l.act_dims, l.act_strides, dev, "Y");
  id.mean = g.tensor(CUDNN_DATA_FLOAT, l.stat_dims, l.stat_strides, dev, "mean");
  id.inv_std = g.tensor(CUDNN_DATA_FLOAT, l.stat_dims, l.stat_strides, dev, "inv_variance");
  Desc op(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR, g.name() + " operation");
  const cudnnBackendNormMode_t mode = CUDNN_LAYER_NORM;
  const cudnnBackendNormFwdPhase_t phase = CUDNN_NORM_FWD_TRAINING;
  op.set(CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode, "MODE")
      .set(CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase, "PHASE")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, g.tensor_desc(id.x), "XDESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, g.tensor_desc(id.scale), "SCALE_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, g.tensor_desc(id.bias), "BIAS_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_FWD_EPSILON_DESC, g.tensor_desc(id.eps), "EPSILON_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, g.tensor_desc(id.y), "YDESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, g.tensor_desc(id.mean), "MEAN_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, g.tensor_desc(id.inv_std), "INV_VARIANCE_DESC")
      .finalize();
  g.add_operation(std::move(op));
  return id;
}

Ids build_backward(OpGraph& g, const LayerNormProblem& p) {
  const Layout l = layout(p);
  const auto dev = TensorKind::device;
  Ids id;
  id.x = g.tensor(l.act_type, l.act_dims, l.act_strides, dev, "X");
  id.dy = g.tensor(l.act_type, l.act_dims, l.act_strides, dev, "DY");
  id.scale = g.tensor(CUDNN_DATA_FLOAT, l.param_dims, l.param_strides, dev, "scale");
  id.mean = g.tensor(CUDNN_DATA_FLOAT, l.stat_dims, l.stat_strides, dev, "mean");
  id.inv_std = g.tensor(CUDNN_DATA_FLOAT, l.stat_dims, l.stat_strides, dev, "inv_variance");
  id.dx = g.tensor(l.act_type, l.act_dims, l.act_strides, dev, "DX");
  id.dscale = g.tensor(CUDNN_DATA_FLOAT, l.param_dims, l.param_strides, dev, "dscale");
  id.dbias = g.tensor(CUDNN_DATA_FLOAT, l.param_dims, l.param_strides, dev, "dbias");
  const bool old = version() < 8906;  // never for cuDNN 9; kept as the frontend does
  if (old) id.eps = g.scalar(CUDNN_DATA_FLOAT, "epsilon");
  Desc op(CUDNN_BACKEND_OPERATION_NORM_BACKWARD_DESCRIPTOR, g.name() + " operation");
  const cudnnBackendNormMode_t mode = CUDNN_LAYER_NORM;
  op.set(CUDNN_ATTR_OPERATION_NORM_BWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode, "MODE")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_XDESC, g.tensor_desc(id.x), "XDESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_DYDESC, g.tensor_desc(id.dy), "DYDESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_SCALE_DESC, g.tensor_desc(id.scale), "SCALE_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_MEAN_DESC, g.tensor_desc(id.mean), "MEAN_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_INV_VARIANCE_DESC, g.tensor_desc(id.inv_std), "INV_VARIANCE_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_DSCALE_DESC, g.tensor_desc(id.dscale), "DSCALE_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_DBIAS_DESC, g.tensor_desc(id.dbias), "DBIAS_DESC")
      .set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_DXDESC, g.tensor_desc(id.dx), "DXDESC");
  if (old) op.set_desc(CUDNN_ATTR_OPERATION_NORM_BWD_EPSILON_DESC, g.tensor_desc(id.eps), "EPSILON_DESC");
  op.finalize();
  g.add_operation(std::move(op));
  return id;
}

}  // namespace

struct CudnnLayerNorm::Impl {
  LayerNormProblem p;
  float eps = 1e-5f;
  OpGraph fwd{"layernorm forward"}, bwd{"layernorm backward"};
  Ids fi, bi;
  std::unique_ptr<Plan> fwd_plan, bwd_plan;
  DeviceScratch fwd_ws, bwd_ws;
  std::string dry_note;
};

CudnnLayerNorm::CudnnLayerNorm(const LayerNormProblem& problem, bool with_backward, void* stream)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (problem.rows <= 0 || problem.cols <= 0) throw CudnnError("cuDNN layernorm: rows and cols must be positive");
  m.p = problem;
  m.eps = float(problem.eps);
  const cudnnHandle_t handle = stream ? handle_for(stream) : nullptr;
  m.fi = build_forward(m.fwd, problem);
  if (with_backward) m.bi = build_backward(m.bwd, problem);
  if (!handle && version() < 90800) {
    m.dry_note = "operations finalised; cuDNN < 9.8 finalises a graph only with a handle (a GPU)";
    return;
  }
  m.fwd.finalize(handle);
  if (with_backward) m.bwd.finalize(handle);
  if (!handle) {
    m.dry_note = "operation graphs finalised; no plan without a GPU";
    return;
  }
  m.fwd_plan = std::make_unique<Plan>(m.fwd, handle);
  m.fwd_ws = DeviceScratch(m.fwd_plan->workspace_bytes());
  if (with_backward) {
    m.bwd_plan = std::make_unique<Plan>(m.bwd, handle);
    m.bwd_ws = DeviceScratch(m.bwd_plan->workspace_bytes());
  }
}

CudnnLayerNorm::~CudnnLayerNorm() = default;

void CudnnLayerNorm::bind_forward(const void* x, const void* scale, const void* bias, void* y, void* mean,
                                  void* inv_std) {
  Impl& m = *impl_;
  if (!m.fwd_plan) throw CudnnError("cuDNN layernorm: no plan (" + m.dry_note + ")");
  const Ids& i = m.fi;
  bind_graph(m.fwd, *m.fwd_plan,
             {{i.x, x}, {i.scale, scale}, {i.bias, bias}, {i.eps, &m.eps}, {i.y, y}, {i.mean, mean},
              {i.inv_std, inv_std}},
             m.fwd_ws.get());
}

void CudnnLayerNorm::bind_backward(const void* x, const void* dy, const void* scale, const void* mean,
                                   const void* inv_std, void* dx, void* dscale, void* dbias) {
  Impl& m = *impl_;
  if (!m.bwd_plan) throw CudnnError("cuDNN layernorm: no backward plan (" + m.dry_note + ")");
  const Ids& i = m.bi;
  std::map<int64_t, const void*> given = {{i.x, x},   {i.dy, dy},         {i.scale, scale},
                                          {i.mean, mean}, {i.inv_std, inv_std}, {i.dx, dx},
                                          {i.dscale, dscale}, {i.dbias, dbias}};
  if (i.eps) given[i.eps] = &m.eps;
  bind_graph(m.bwd, *m.bwd_plan, given, m.bwd_ws.get());
}

void CudnnLayerNorm::forward() {
  if (!impl_->fwd_plan) throw CudnnError("cuDNN layernorm: no plan (" + impl_->dry_note + ")");
  impl_->fwd_plan->execute();
}

void CudnnLayerNorm::backward() {
  if (!impl_->bwd_plan) throw CudnnError("cuDNN layernorm: no backward plan (" + impl_->dry_note + ")");
  impl_->bwd_plan->execute();
}

std::string CudnnLayerNorm::note() const {
  const Impl& m = *impl_;
  if (!m.fwd_plan) return m.dry_note;
  return "forward: " + m.fwd_plan->note() + (m.bwd_plan ? "; backward: " + m.bwd_plan->note() : "");
}

}  // namespace minivl::bench
