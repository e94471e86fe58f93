#pragma once
// What the CUDA benchmarks' cuDNN rows share (bench_attention, bench_layernorm): the row's skip when
// cuDNN or the GPU is missing, and one problem's plans kept for both passes' rows. Peer is one of
// bench/cudnn_peer.h's classes (CudnnSdpa, CudnnLayerNorm).
#include <benchmark/benchmark.h>

#include <exception>
#include <memory>
#include <string>

#include "bench/cudnn_peer.h"
#include "core/device.h"

namespace minivl::bench {

// Whether a cuDNN row can run. If not, skips the row saying why: cuDNN's library not loaded, or no
// GPU; then build_dry() (the peer built with a null stream: its graphs finalised, no plan) adds its
// note, or why cuDNN rejected the graph.
template <typename BuildDry>
bool cudnn_row_can_run(benchmark::State& state, BuildDry build_dry) {
  const CudnnLibrary& lib = cudnn_library();
  if (!lib.loaded) {
    state.SkipWithError(lib.describe().c_str());
    return false;
  }
  if (cuda_available()) return true;
  std::string msg = "no GPU (" + cuda_unavailable_reason() + "): " + lib.describe() + "; ";
  try {
    msg += build_dry().note();
  } catch (const std::exception& e) {
    msg += std::string("the graph was rejected: ") + e.what();
  }
  state.SkipWithError(msg.c_str());
  return false;
}

// One problem's cuDNN plans, forward and backward, built once for both passes' rows (building a plan
// can compile kernels at run time) and rebuilt when the problem's key changes. When the backward
// plan fails, the forward still runs and the backward row (pass 1) throws why.
template <typename Peer>
class CudnnPlans {
 public:
  // build(with_backward) returns a std::unique_ptr<Peer> on the benchmarks' stream.
  template <typename Build>
  Peer& get(const std::string& key, int pass, Build build) {
    if (!peer_ || key_ != key) {
      peer_.reset();
      key_.clear();
      backward_error_.clear();
      try {
        peer_ = build(true);
      } catch (const std::exception& e) {
        backward_error_ = std::string("with the backward graph: ") + e.what();
        peer_ = build(false);
      }
      key_ = key;
    }
    if (pass == 1 && !backward_error_.empty()) throw CudnnError(backward_error_);
    return *peer_;
  }

 private:
  std::string key_, backward_error_;
  std::unique_ptr<Peer> peer_;
};

}  // namespace minivl::bench
