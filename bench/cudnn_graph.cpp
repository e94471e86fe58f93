// OpGraph and Plan of bench/cudnn_backend.h: tensors and operations of cuDNN's backend API, the
// heuristics query and the execution plan. Attribute names and value types as cudnn_graph.h
// declares them (every tensor 16-byte aligned, as cuDNN's frontend sets them).
#include <sstream>

#include "bench/cudnn_backend.h"

namespace minivl::bench::cudnn_detail {

int64_t OpGraph::tensor(cudnnDataType_t type, std::vector<int64_t> dims, std::vector<int64_t> strides,
                        TensorKind kind, const char* name) {
  if (dims.size() != strides.size() || dims.empty())
    throw CudnnError(name_ + ": tensor " + name + " needs as many strides as dims");
  const int64_t uid = int64_t(tensors_.size()) + 1;
  Desc d(CUDNN_BACKEND_TENSOR_DESCRIPTOR, name_ + " tensor " + name);
  const int64_t alignment = 16;
  const bool is_virtual = kind == TensorKind::virtual_;
  const bool by_value = kind == TensorKind::by_value;
  d.set_type(CUDNN_ATTR_TENSOR_DATA_TYPE, type, "DATA_TYPE")
      .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, int64_t(dims.size()), dims.data(), "DIMENSIONS")
      .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, int64_t(strides.size()), strides.data(), "STRIDES")
      .set_i64(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid, "UNIQUE_ID")
      .set_i64(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, alignment, "BYTE_ALIGNMENT");
  if (is_virtual) d.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "IS_VIRTUAL");
  if (by_value) d.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "IS_BY_VALUE");
  d.finalize();
  tensors_.emplace(uid, TensorInfo{std::move(d), std::move(dims), std::move(strides), kind});
  return uid;
}

int64_t OpGraph::virtual_like(int64_t like, cudnnDataType_t type, const char* name) {
  const TensorInfo& t = info(like);
  return tensor(type, t.dims, t.strides, TensorKind::virtual_, name);
}

int64_t OpGraph::scalar(cudnnDataType_t type, const char* name) {
  return tensor(type, {1, 1, 1, 1}, {1, 1, 1, 1}, TensorKind::by_value, name);
}

const OpGraph::TensorInfo& OpGraph::info(int64_t uid) const {
  auto it = tensors_.find(uid);
  if (it == tensors_.end()) throw CudnnError(name_ + ": no tensor with uid " + std::to_string(uid));
  return it->second;
}

cudnnBackendDescriptor_t OpGraph::tensor_desc(int64_t uid) const { return info(uid).desc.get(); }

bool OpGraph::is_by_value(int64_t uid) const { return info(uid).kind == TensorKind::by_value; }

std::vector<int64_t> OpGraph::io_uids() const {
  std::vector<int64_t> out;
  for (const auto& [uid, t] : tensors_)
    if (t.kind != TensorKind::virtual_) out.push_back(uid);
  return out;
}

void OpGraph::pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t compute, int64_t x, int64_t b, int64_t t,
                        int64_t y, const char* name, int64_t axis) {
  Desc& pw = keep_.emplace_back(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, name_ + " pointwise " + name);
  pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "MODE")
      .set_type(CUDNN_ATTR_POINTWISE_MATH_PREC, compute, "MATH_PREC");
  if (mode == CUDNN_POINTWISE_GEN_INDEX) pw.set_i64(CUDNN_ATTR_POINTWISE_AXIS, axis, "AXIS");
  pw.finalize();
  Desc op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, name_ + " operation " + name);
  op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw.get(), "PW_DESCRIPTOR")
      .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, tensor_desc(x), "XDESC")
      .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, tensor_desc(y), "YDESC");
  if (b) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, tensor_desc(b), "BDESC");
  if (t) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, tensor_desc(t), "TDESC");
  const float one = 1.0f;
  op.set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, CUDNN_TYPE_FLOAT, 1, &one, "ALPHA1")
      .set(CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2, CUDNN_TYPE_FLOAT, 1, &one, "ALPHA2");
  op.finalize();
  ops_.push_back(std::move(op));
}

void OpGraph::matmul(int64_t a, int64_t b, int64_t c, const char* name, int64_t m_override, int64_t n_override,
                     int64_t k_override) {
  Desc& md = keep_.emplace_back(CUDNN_BACKEND_MATMUL_DESCRIPTOR, name_ + " matmul " + name);
  md.set_type(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT, "COMP_TYPE").finalize();
  Desc op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR, name_ + " operation " + name);
  op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, tensor_desc(a), "ADESC")
      .set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, tensor_desc(b), "BDESC")
      .set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, tensor_desc(c), "CDESC")
      .set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, md.get(), "DESC");
  if (m_override)
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, tensor_desc(m_override), "GEMM_M_OVERRIDE_DESC");
  if (n_override)
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, tensor_desc(n_override), "GEMM_N_OVERRIDE_DESC");
  if (k_override)
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, tensor_desc(k_override), "GEMM_K_OVERRIDE_DESC");
  op.finalize();
  ops_.push_back(std::move(op));
}

void OpGraph::reduction(cudnnReduceTensorOp_t reduce_op, int64_t x, int64_t y, const char* name) {
  Desc& rd = keep_.emplace_back(CUDNN_BACKEND_REDUCTION_DESCRIPTOR, name_ + " reduction " + name);
  rd.set_type(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT, "COMP_TYPE")
      .set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce_op, "OPERATOR")
      .finalize();
  Desc op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR, name_ + " operation " + name);
  op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, rd.get(), "DESC")
      .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, tensor_desc(x), "XDESC")
      .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, tensor_desc(y), "YDESC")
      .finalize();
  ops_.push_back(std::move(op));
}

void OpGraph::reshape(int64_t x, int64_t y, const char* name) {
  Desc op(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR, name_ + " operation " + name);
  op.set_desc(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, tensor_desc(x), "XDESC")
      .set_desc(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, tensor_desc(y), "YDESC")
      .finalize();
  ops_.push_back(std::move(op));
}

void OpGraph::finalize(cudnnHandle_t handle) {
  graph_ = std::make_unique<Desc>(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, name_ + " operation graph");
  std::vector<cudnnBackendDescriptor_t> ops;
  for (const Desc& op : ops_) ops.push_back(op.get());
  graph_->set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, int64_t(ops.size()), ops.data(), "OPS");
  if (handle) graph_->set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle, "HANDLE");
  graph_->finalize();
}

namespace {

// The engine configurations cuDNN's heuristics offer for `graph` in `mode` (may be empty).
std::vector<Desc> engine_configs(const OpGraph& graph, cudnnBackendHeurMode_t mode, const char* mode_name) {
  Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, graph.name() + " heuristics " + mode_name);
  heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph.get(), "OPERATION_GRAPH")
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "MODE")
      .finalize();
  int64_t count = 0;
  check(api().get_attribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                            nullptr),
        "cudnnBackendGetAttribute(" + heur.what() + ", RESULTS count)");
  std::vector<Desc> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i) {
    configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, graph.name() + " engine config");
    raw.push_back(configs.back().get());
  }
  int64_t got = 0;
  if (count > 0)
    check(api().get_attribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                              raw.data()),
          "cudnnBackendGetAttribute(" + heur.what() + ", RESULTS)");
  while (int64_t(configs.size()) > got) configs.pop_back();
  return configs;
}

int64_t engine_index(const Desc& config) {
  try {
    Desc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR, "engine");
    cudnnBackendDescriptor_t raw = engine.get();
    int64_t n = 0, index = -1;
    check(api().get_attribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &raw),
          "ENGINECFG_ENGINE");
    check(api().get_attribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index),
          "ENGINE_GLOBAL_INDEX");
    return index;
  } catch (const CudnnError&) {
    return -1;  // only for the note
  }
}

}  // namespace

Plan::Plan(const OpGraph& graph, cudnnHandle_t handle) : handle_(handle) {
  std::ostringstream failures;
  const std::pair<cudnnBackendHeurMode_t, const char*> modes[] = {{CUDNN_HEUR_MODE_A, "A"},
                                                                   {CUDNN_HEUR_MODE_FALLBACK, "fallback"}};
  for (const auto& [mode, mode_name] : modes) {
    std::vector<Desc> configs;
    try {
      configs = engine_configs(graph, mode, mode_name);
    } catch (const CudnnError& e) {
      failures << "heuristics " << mode_name << ": " << e.what() << "; ";
      continue;
    }
    if (configs.empty()) failures << "heuristics " << mode_name << ": no configurations; ";
    for (size_t i = 0; i < configs.size(); ++i) {
      try {
        auto plan = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, graph.name() + " plan");
        plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_, "HANDLE")
            .set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, configs[i].get(), "ENGINE_CONFIG")
            .finalize();
        int64_t n = 0;
        check(api().get_attribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n,
                                  &workspace_),
              "cudnnBackendGetAttribute(" + plan->what() + ", WORKSPACE_SIZE)");
        std::ostringstream note;
        note << graph.op_count() << " ops, engine " << engine_index(configs[i]) << " (heuristics " << mode_name
             << ", config " << i + 1 << " of " << configs.size() << "), workspace " << bytes_str(workspace_);
        note_ = note.str();
        plan_ = std::move(plan);
        return;
      } catch (const CudnnError& e) {
        failures << "config " << i + 1 << " (" << mode_name << "): " << e.what() << "; ";
      }
    }
  }
  throw CudnnError(graph.name() + ": no engine configuration finalised a plan: " + failures.str());
}

void Plan::bind(const std::vector<int64_t>& uids, const std::vector<void*>& pointers, void* workspace) {
  if (uids.size() != pointers.size()) throw CudnnError("variant pack: as many pointers as uids needed");
  if (workspace_ > 0 && !workspace) throw CudnnError("variant pack: the plan needs a workspace");
  auto pack = std::make_unique<Desc>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, "variant pack");
  pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, int64_t(uids.size()), uids.data(), "UNIQUE_IDS")
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, int64_t(pointers.size()), pointers.data(),
           "DATA_POINTERS")
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace, "WORKSPACE")
      .finalize();
  pack_ = std::move(pack);
}

void bind_graph(const OpGraph& graph, Plan& plan, const std::map<int64_t, const void*>& given, void* workspace) {
  std::vector<int64_t> uids;
  std::vector<void*> pointers;
  for (int64_t uid : graph.io_uids()) {
    auto it = given.find(uid);
    if (it == given.end() || !it->second)
      throw CudnnError(graph.name() + ": no pointer for tensor uid " + std::to_string(uid));
    uids.push_back(uid);
    pointers.push_back(const_cast<void*>(it->second));
  }
  plan.bind(uids, pointers, workspace);
}

void Plan::execute() {
  if (!pack_) throw CudnnError("cudnnBackendExecute: nothing bound");
  check(api().execute(handle_, plan_->get(), pack_->get()), "cudnnBackendExecute(" + plan_->what() + ")");
}

}  // namespace minivl::bench::cudnn_detail
