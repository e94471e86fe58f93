#pragma once
// Internal to bench/cudnn_*.cpp: the dlsym'd cuDNN entry points and small RAII helpers over
// cuDNN 9's backend (graph) API: descriptors, an operation graph that numbers its tensors, and an
// execution plan chosen by cuDNN's heuristics. Includes cuDNN's headers (types and enums only;
// every call goes through the pointers in Api). See bench/cudnn_peer.h for the public side.
#include <cudnn_graph.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "bench/cudnn_peer.h"

namespace minivl::bench::cudnn_detail {

struct Api {
  decltype(&cudnnGetVersion) get_version = nullptr;
  decltype(&cudnnGetCudartVersion) get_cudart_version = nullptr;
  decltype(&cudnnGetErrorString) get_error_string = nullptr;
  decltype(&cudnnGetLastErrorString) get_last_error_string = nullptr;  // may stay null
  decltype(&cudnnCreate) create = nullptr;
  decltype(&cudnnDestroy) destroy = nullptr;
  decltype(&cudnnSetStream) set_stream = nullptr;
  decltype(&cudnnBackendCreateDescriptor) create_descriptor = nullptr;
  decltype(&cudnnBackendDestroyDescriptor) destroy_descriptor = nullptr;
  decltype(&cudnnBackendSetAttribute) set_attribute = nullptr;
  decltype(&cudnnBackendGetAttribute) get_attribute = nullptr;
  decltype(&cudnnBackendFinalize) finalize = nullptr;
  decltype(&cudnnBackendExecute) execute = nullptr;
};
// The loaded library's entry points; throws CudnnError (with CudnnLibrary::reason) when none loaded.
const Api& api();
int64_t version();
// Throws CudnnError "what: STATUS (cuDNN's last message)" unless status is success.
void check(cudnnStatus_t status, const std::string& what);
// One cuDNN handle per process, bound to `stream` (the benchmarks use one stream).
cudnnHandle_t handle_for(void* stream);

// An owned backend descriptor.
class Desc {
 public:
  Desc(cudnnBackendDescriptorType_t type, std::string what);
  ~Desc();
  Desc(Desc&& other) noexcept;
  Desc& operator=(Desc&&) = delete;
  Desc(const Desc&) = delete;

  cudnnBackendDescriptor_t get() const { return desc_; }
  const std::string& what() const { return what_; }
  Desc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, int64_t count, const void* values,
            const char* attribute);
  Desc& set_desc(cudnnBackendAttributeName_t name, cudnnBackendDescriptor_t value, const char* attribute);
  Desc& set_i64(cudnnBackendAttributeName_t name, int64_t value, const char* attribute);
  Desc& set_type(cudnnBackendAttributeName_t name, cudnnDataType_t value, const char* attribute);
  void finalize();

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
  std::string what_;
};

enum class TensorKind { device, virtual_, by_value };

// An operation graph under construction: tensors get unique ids (1, 2, ...) in creation order,
// operations are kept in the order added (each after the ops that produce its inputs).
class OpGraph {
 public:
  explicit OpGraph(std::string name) : name_(std::move(name)) {}

  int64_t tensor(cudnnDataType_t type, std::vector<int64_t> dims, std::vector<int64_t> strides, TensorKind kind,
                 const char* name);
  // A virtual tensor with the dims and strides of `like`.
  int64_t virtual_like(int64_t like, cudnnDataType_t type, const char* name);
  // A by-value scalar, dims and strides (1, 1, 1, 1) like the 4-d tensors it meets (as cuDNN's
  // frontend expands them); the variant pack gives a host pointer to its value.
  int64_t scalar(cudnnDataType_t type, const char* name);

  // y = mode(x[, b[, t]]); t is BINARY_SELECT's mask. b, t = 0 when absent; axis for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t compute, int64_t x, int64_t b, int64_t t, int64_t y,
                 const char* name, int64_t axis = -1);
  // c = a @ b over the last two dims (f32 accumulation); m/n/k overrides: 0 for none.
  void matmul(int64_t a, int64_t b, int64_t c, const char* name, int64_t m_override = 0, int64_t n_override = 0,
              int64_t k_override = 0);
  void reduction(cudnnReduceTensorOp_t op, int64_t x, int64_t y, const char* name);
  void reshape(int64_t x, int64_t y, const char* name);
  // Adds an operation finalised by the caller (the norm operations).
  void add_operation(Desc op) { ops_.push_back(std::move(op)); }
  cudnnBackendDescriptor_t tensor_desc(int64_t uid) const;

  // Finalises the graph; handle may be null (cuDNN >= 9.8 builds a graph without one).
  void finalize(cudnnHandle_t handle);
  cudnnBackendDescriptor_t get() const { return graph_ ? graph_->get() : nullptr; }
  const std::string& name() const { return name_; }
  size_t op_count() const { return ops_.size(); }
  // The non-virtual tensors: what a variant pack must give a pointer for.
  std::vector<int64_t> io_uids() const;
  bool is_by_value(int64_t uid) const;

 private:
  struct TensorInfo {
    Desc desc;
    std::vector<int64_t> dims, strides;
    TensorKind kind;
  };
  const TensorInfo& info(int64_t uid) const;

  std::string name_;
  std::map<int64_t, TensorInfo> tensors_;
  std::deque<Desc> keep_;  // pointwise / matmul / reduction descriptors the operations point to
  std::vector<Desc> ops_;
  std::unique_ptr<Desc> graph_;
};

// The first engine configuration that cuDNN's heuristics offer (mode A, then the fallback list)
// and that finalises into a plan for this graph; throws with every failure when none does.
class Plan {
 public:
  Plan(const OpGraph& graph, cudnnHandle_t handle);
  int64_t workspace_bytes() const { return workspace_; }
  // Binds device (and by-value host) pointers for the uids, plus the workspace.
  void bind(const std::vector<int64_t>& uids, const std::vector<void*>& pointers, void* workspace);
  void execute();
  std::string note() const { return note_; }

 private:
  cudnnHandle_t handle_;
  std::unique_ptr<Desc> plan_;
  std::unique_ptr<Desc> pack_;
  int64_t workspace_ = 0;
  std::string note_;
};

// Binds `given` (uid -> device pointer, or host pointer for a by-value scalar) for every
// non-virtual tensor of `graph`, in uid order; throws naming the first tensor without one.
void bind_graph(const OpGraph& graph, Plan& plan, const std::map<int64_t, const void*>& given, void* workspace);

// Device scratch owned by a peer object (cudaMalloc / cudaFree); size 0 holds nothing.
class DeviceScratch {
 public:
  DeviceScratch() = default;
  explicit DeviceScratch(int64_t bytes);
  ~DeviceScratch();
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(DeviceScratch&& other) noexcept;
  void* get() const { return ptr_; }

 private:
  void* ptr_ = nullptr;
};

std::string bytes_str(int64_t bytes);

}  // namespace minivl::bench::cudnn_detail
