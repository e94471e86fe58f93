// bench/cudnn_peer.h when the build found no cuDNN headers (cudnn_graph.h): the library is never
// loaded and every peer object says why, so the benchmarks still build and run.
#include "bench/cudnn_peer.h"

namespace minivl::bench {
namespace {
const char* kReason =
    "built without cuDNN's headers (CMake found no cudnn_graph.h in the CUDA toolkit, $CUDNN_INCLUDE or "
    "python3's nvidia/cudnn/include)";
}

std::string CudnnLibrary::describe() const { return "cuDNN not loaded: " + reason; }

const CudnnLibrary& cudnn_library() {
  static const CudnnLibrary info = [] {
    CudnnLibrary l;
    l.reason = kReason;
    return l;
  }();
  return info;
}

struct CudnnSdpa::Impl {};
CudnnSdpa::CudnnSdpa(const SdpaProblem&, bool, double, void*) { throw CudnnError(kReason); }
CudnnSdpa::~CudnnSdpa() = default;
void CudnnSdpa::bind_forward(const void*, const void*, const void*, void*, void*) { throw CudnnError(kReason); }
void CudnnSdpa::bind_backward(const void*, const void*, const void*, const void*, const void*, const void*, void*,
                              void*, void*) {
  throw CudnnError(kReason);
}
void CudnnSdpa::forward() { throw CudnnError(kReason); }
void CudnnSdpa::backward() { throw CudnnError(kReason); }
std::string CudnnSdpa::note() const { return kReason; }

struct CudnnLayerNorm::Impl {};
CudnnLayerNorm::CudnnLayerNorm(const LayerNormProblem&, bool, void*) { throw CudnnError(kReason); }
CudnnLayerNorm::~CudnnLayerNorm() = default;
void CudnnLayerNorm::bind_forward(const void*, const void*, const void*, void*, void*, void*) {
  throw CudnnError(kReason);
}
void CudnnLayerNorm::bind_backward(const void*, const void*, const void*, const void*, const void*, void*, void*,
                                   void*) {
  throw CudnnError(kReason);
}
void CudnnLayerNorm::forward() { throw CudnnError(kReason); }
void CudnnLayerNorm::backward() { throw CudnnError(kReason); }
std::string CudnnLayerNorm::note() const { return kReason; }

}  // namespace minivl::bench
