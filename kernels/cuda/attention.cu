// The CUDA attention's version switch: which numbered version takes a dtype and head dim, and
// running version N of the forward or the backward (the versions live in attention_v1_v2.cu,
// attention_v3.cu, attention_v3_backward.cu, attention_v4.cu and attention_v4_backward.cu).
// Which version a call gets is the version registry's choice (core/kernel_versions.h, registered
// in core/register_cuda.cpp); the benchmarks and the parity runs call a version by number here.
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_v4.h"

namespace minivl::cuda {
namespace {

[[noreturn]] void unsupported(int version, DType dtype, int64_t D) {
  throw CudaError("attention: CUDA version " + std::to_string(version) + " does not take dtype " +
                  std::to_string(int(dtype)) + " with head dim " + std::to_string(D));
}

}  // namespace

bool attention_version_supported(int version, DType dtype, int64_t head_dim) {
  switch (version) {
    case 1: return attention_v1_supported(dtype, head_dim);
    case 2: return attention_v2_supported(dtype, head_dim);
    case 3: return attention_v3_supported(dtype, head_dim);
    case 4: return attention_v3_supported(dtype, head_dim);  // v4's dtypes and head dims are v3's
    default: return false;
  }
}

void attention_forward_cuda_version(int version, const StridedView& q, const StridedView& k, const StridedView& v,
                                    const StridedView& key_padding_mask, bool causal, double scale,
                                    const StridedView& out, const StridedView& lse) {
  if (!attention_version_supported(version, q.dtype, q.sizes[3])) unsupported(version, q.dtype, q.sizes[3]);
  // v4 declines what v3 declines, which runs v3's forward; v3 declines operands that are not
  // 16-byte aligned, which run v2's.
  if (version == 4 && attention_v4_forward(q, k, v, key_padding_mask, causal, scale, out, lse)) return;
  if (version >= 3 && attention_forward_v3(q, k, v, key_padding_mask, causal, scale, out, lse)) return;
  attention_forward_v1_v2(version == 1 ? 1 : 2, q, k, v, key_padding_mask, causal, scale, out, lse);
}

void attention_backward_cuda_version(int version, const StridedView& q, const StridedView& k, const StridedView& v,
                                     const StridedView& key_padding_mask, bool causal, double scale,
                                     const StridedView& out, const StridedView& lse, const StridedView& dout,
                                     const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  if (!attention_version_supported(version, q.dtype, q.sizes[3])) unsupported(version, q.dtype, q.sizes[3]);
  // v4's fused backward declines heads too large for one block (v3's three passes run them).
  if (version == 4 && attention_v4_backward(q, k, v, key_padding_mask, causal, scale, out, lse, dout, dq, dk, dv))
    return;
  if (version >= 3 && attention_backward_v3(q, k, v, key_padding_mask, causal, scale, out, lse, dout, dq, dk, dv))
    return;
  attention_backward_v1_v2(version == 1 ? 1 : 2, q, k, v, key_padding_mask, causal, scale, out, lse, dout, dq, dk, dv);
}

}  // namespace minivl::cuda
