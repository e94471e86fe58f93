// Registers the fused attention kernels into the kernel table (called from core/backends.cpp's
// register_cuda_kernels) and picks the registered version per dtype and head dim: the fastest
// that applies (v3 on tensor cores for bf16/f16 with D in {32, 64, 128}, v2 for f32/bf16/f16 with
// D <= 128, v1 otherwise). Parity on sm_90: bench/results/2026-11-27-h100-h200.md. v4
// (attention_v4.h) is a candidate, never picked here: only MINIVL_ATTENTION_VERSION=4 (or a direct
// call) runs it until a GPU run shows its parity. The versions: docs/kernels/attention.md.
#include <cstdlib>

#include "core/dispatch.h"
#include "kernels/cuda/attention.h"

namespace minivl::cuda {

// MINIVL_ATTENTION_VERSION=N (read once) makes version N the registered one wherever it applies,
// so the parity tests and benchmarks can run an earlier version through the op.
int attention_registered_version(DType dtype, int64_t head_dim) {
  static const int forced = [] {
    const char* env = std::getenv("MINIVL_ATTENTION_VERSION");
    return env ? std::atoi(env) : 0;
  }();
  if (forced > 0 && attention_version_supported(forced, dtype, head_dim)) return forced;
  for (int version : {3, 2})
    if (attention_version_supported(version, dtype, head_dim)) return version;
  return 1;
}

void attention_forward_cuda(const StridedView& q, const StridedView& k, const StridedView& v,
                            const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                            const StridedView& lse) {
  attention_forward_cuda_version(attention_registered_version(q.dtype, q.sizes[3]), q, k, v, key_padding_mask,
                                 causal, scale, out, lse);
}

void attention_backward_cuda(const StridedView& q, const StridedView& k, const StridedView& v,
                             const StridedView& key_padding_mask, bool causal, double scale,
                             const StridedView& out, const StridedView& lse, const StridedView& dout,
                             const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  attention_backward_cuda_version(attention_registered_version(q.dtype, q.sizes[3]), q, k, v, key_padding_mask,
                                  causal, scale, out, lse, dout, dq, dk, dv);
}

void register_attention_kernels(KernelTable& t) {
  const int d = int(DeviceType::CUDA);
  t.attention[d] = attention_forward_cuda;
  t.attention_backward[d] = attention_backward_cuda;
}

}  // namespace minivl::cuda
