// Attention v4 backward, host side: the launch (plan from this device's shared memory; false when
// a head does not fit one block) and the entry points of attention_v4.h. The kernel and its
// lesson: kernels/cuda/attention_v4_backward.cuh.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_v4.h"
#include "kernels/cuda/attention_v4_backward.cuh"

namespace minivl::cuda {
namespace v4 {
namespace {

template <typename T, int D>
bool launch_backward(const StridedView& q, const StridedView& k, const StridedView& v, const StridedView& mask,
                     bool causal, double scale, const StridedView& out, const StridedView& lse,
                     const StridedView& dout, const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  const int64_t B = q.sizes[0], H = q.sizes[1], Tq = q.sizes[2], Tk = k.sizes[2];
  const BackwardPlan plan = plan_backward(Tq, Tk, D, device_smem().per_block);
  if (!plan.fits) return false;
  const int64_t blocks = B * H;
  if (blocks == 0) return true;
  auto kernel = backward_v4_kernel<T, D>;
  allow_dynamic_smem(kernel, plan.smem_bytes);
  const BackwardArgs args{static_cast<const uint16_t*>(q.data),
                          static_cast<const uint16_t*>(k.data),
                          static_cast<const uint16_t*>(v.data),
                          static_cast<const uint16_t*>(out.data),
                          static_cast<const uint16_t*>(dout.data),
                          mask.data ? static_cast<const uint8_t*>(mask.data) : nullptr,
                          lse.ptr<float>(),
                          static_cast<uint16_t*>(dq.data),
                          static_cast<uint16_t*>(dk.data),
                          static_cast<uint16_t*>(dv.data),
                          H,
                          Tq,
                          Tk,
                          causal,
                          float(scale),
                          float(scale * 1.4426950408889634),
                          plan};
  kernel<<<unsigned(blocks), unsigned(plan.warps * 32), size_t(plan.smem_bytes), stream()>>>(args);
  CUDA_CHECK_LAUNCH();
  return true;
}

template <typename T>
bool backward_head_dim(const StridedView& q, const StridedView& k, const StridedView& v, const StridedView& mask,
                       bool causal, double scale, const StridedView& out, const StridedView& lse,
                       const StridedView& dout, const StridedView& dq, const StridedView& dk, const StridedView& dv) {
  switch (q.sizes[3]) {
    case 32: return launch_backward<T, 32>(q, k, v, mask, causal, scale, out, lse, dout, dq, dk, dv);
    case 64: return launch_backward<T, 64>(q, k, v, mask, causal, scale, out, lse, dout, dq, dk, dv);
    default: return launch_backward<T, 128>(q, k, v, mask, causal, scale, out, lse, dout, dq, dk, dv);
  }
}

}  // namespace
}  // namespace v4

bool attention_v4_backward_fused(DType dtype, int64_t head_dim, int64_t Tq, int64_t Tk, bool /*has_mask*/,
                                 bool /*causal*/) {
  if (!v4::takes_dtype_and_head_dim(dtype, head_dim)) return false;
  return v4::plan_backward(Tq, Tk, head_dim, v4::device_smem().per_block).fits;
}

bool attention_v4_backward(const StridedView& q, const StridedView& k, const StridedView& v,
                           const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                           const StridedView& lse, const StridedView& dout, const StridedView& dq,
                           const StridedView& dk, const StridedView& dv) {
  if (!attention_v4_backward_fused(q.dtype, q.sizes[3], q.sizes[2], k.sizes[2], key_padding_mask.data != nullptr,
                                   causal))
    return false;
  const void* operands[] = {q.data, k.data, v.data, out.data, dout.data, dq.data, dk.data, dv.data};
  for (const void* ptr : operands)
    if (!aligned16(ptr)) return false;
  if (q.dtype == DType::bf16) return v4::backward_head_dim<bf16>(q, k, v, key_padding_mask, causal, scale, out, lse,
                                                                  dout, dq, dk, dv);
  return v4::backward_head_dim<f16>(q, k, v, key_padding_mask, causal, scale, out, lse, dout, dq, dk, dv);
}

}  // namespace minivl::cuda
