#pragma once
// cuDNN as the benchmarks' peer, loaded at run time (dlopen) so that a build or a machine without
// it still runs: each cuDNN row then says why it is empty. Nothing here needs cuDNN's headers;
// bench/cudnn_backend.cpp (the loader and graph helpers), cudnn_sdpa.cpp and cudnn_layernorm.cpp
// use them and call cuDNN only through function pointers taken with dlsym.
//
// Where the library is looked for, first hit wins (CudnnLibrary::searched lists what was tried):
//   $CUDNN_LIB (a libcudnn.so.9 file or the folder holding it); the nvidia/cudnn/lib folder of
//   python3's site-packages (the nvidia-cudnn-cu13 wheel that PyTorch loads); the loader's own
//   search (LD_LIBRARY_PATH, ldconfig); CUDA toolkit folders; /usr/lib/x86_64-linux-gnu.
// Only cuDNN 9 is taken (its backend graph API is what the graphs below are written for).
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace minivl::bench {

struct CudnnLibrary {
  bool loaded = false;
  std::string path;      // the file loaded (resolved through dladdr), empty when none
  int64_t version = 0;   // cudnnGetVersion(), e.g. 91900 for 9.19.0
  int64_t cudart = 0;    // cudnnGetCudartVersion()
  std::string searched;  // the candidates tried, with why each failed
  std::string reason;    // why nothing was loaded; empty when loaded
  std::string describe() const;  // "cuDNN 9.19.0 (cudart 13000) from /path" or "cuDNN not loaded: ..."
};
// Looks on the first call; later calls return the same answer. Never throws.
const CudnnLibrary& cudnn_library();

// Every cuDNN failure: the call, the descriptor or attribute, cuDNN's status and its last message.
struct CudnnError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Scaled-dot-product attention, bf16 in and out, f32 statistics: q (B, H, Tq, D), k, v (B, H, Tk, D),
// o (B, H, Tq, D), stats (B, H, Tq) = log-sum-exp of the scaled, masked scores (minivl's lse).
// causal: query i sees key j iff j <= i + (Tk - Tq) (bottom-right aligned, as minivl).
struct SdpaProblem {
  int64_t batch = 0, heads = 0, q_len = 0, kv_len = 0, head_dim = 0;
  bool causal = false;
};

// The graphs follow the operation pattern of cuDNN's fused flash-attention engines (matmul, scale,
// mask, softmax with statistics, matmul; the backward recomputes P from the statistics). stream ==
// nullptr builds and finalises the operation graphs only (no GPU needed: checks every descriptor and
// attribute); bind/run then throw. Otherwise the plans are built on a cuDNN handle bound to `stream`.
class CudnnSdpa {
 public:
  CudnnSdpa(const SdpaProblem& problem, bool with_backward, double scale, void* stream);
  ~CudnnSdpa();
  CudnnSdpa(const CudnnSdpa&) = delete;
  CudnnSdpa& operator=(const CudnnSdpa&) = delete;

  // Device pointers, contiguous, kept until the next bind.
  void bind_forward(const void* q, const void* k, const void* v, void* o, void* stats);
  void bind_backward(const void* q, const void* k, const void* v, const void* o, const void* stats,
                     const void* dout, void* dq, void* dk, void* dv);
  void forward();   // enqueued on the stream
  void backward();  // needs with_backward
  // "forward: 14 ops, engine 8 (heuristics A, config 1 of 3), workspace 0 B; backward: ..."
  std::string note() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Layer normalisation over the last dim of contiguous (rows, cols): x, y, dy, dx in bf16 (or f32),
// scale, bias, dscale, dbias, mean, inv_std in f32 (cuDNN's tested layout). inv_std = 1/sqrt(var + eps).
struct LayerNormProblem {
  int64_t rows = 0, cols = 0;
  bool bf16 = true;
  double eps = 1e-5;
};

class CudnnLayerNorm {
 public:
  CudnnLayerNorm(const LayerNormProblem& problem, bool with_backward, void* stream);
  ~CudnnLayerNorm();
  CudnnLayerNorm(const CudnnLayerNorm&) = delete;
  CudnnLayerNorm& operator=(const CudnnLayerNorm&) = delete;

  void bind_forward(const void* x, const void* scale, const void* bias, void* y, void* mean, void* inv_std);
  void bind_backward(const void* x, const void* dy, const void* scale, const void* mean, const void* inv_std,
                     void* dx, void* dscale, void* dbias);
  void forward();
  void backward();
  std::string note() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace minivl::bench
