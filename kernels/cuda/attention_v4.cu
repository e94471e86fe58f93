// Attention v4 forward, host side: the launch (plan from this device's shared memory) and the entry
// points of attention_v4.h. The kernel and its lesson: kernels/cuda/attention_v4_forward.cuh.

#include <cmath>
#include <cstdint>

#include "kernels/cuda/attention_common.cuh"
#include "kernels/cuda/attention_v4.h"
#include "kernels/cuda/attention_v4_forward.cuh"

namespace minivl::cuda {
namespace v4 {

const DeviceSmem& device_smem() {
  static const DeviceSmem s = [] {
    DeviceSmem r;
    int per_sm = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device_props().device));
    r.per_block = device_props().max_smem_per_block_optin;
    r.per_sm = per_sm;
    return r;
  }();
  return s;
}

namespace {

template <typename T, int D>
void launch_forward(const StridedView& q, const StridedView& k, const StridedView& v, const StridedView& mask,
                    bool causal, double scale, const StridedView& out, const StridedView& lse) {
  const int64_t B = q.sizes[0], H = q.sizes[1], Tq = q.sizes[2], Tk = k.sizes[2];
  const ForwardPlan plan = plan_forward(Tq, Tk, D, device_smem().per_block, device_smem().per_sm);
  const int64_t blocks = B * H * plan.q_tiles;
  if (blocks == 0) return;
  auto kernel = forward_v4_kernel<T, D>;
  allow_dynamic_smem(kernel, plan.smem_bytes);
  const ForwardArgs args{static_cast<const uint16_t*>(q.data),
                         static_cast<const uint16_t*>(k.data),
                         static_cast<const uint16_t*>(v.data),
                         mask.data ? static_cast<const uint8_t*>(mask.data) : nullptr,
                         static_cast<uint16_t*>(out.data),
                         lse.ptr<float>(),
                         H,
                         Tq,
                         Tk,
                         causal,
                         float(scale * 1.4426950408889634),
                         plan};
  kernel<<<unsigned(blocks), unsigned(plan.warps * 32), size_t(plan.smem_bytes), stream()>>>(args);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void forward_head_dim(const StridedView& q, const StridedView& k, const StridedView& v, const StridedView& mask,
                      bool causal, double scale, const StridedView& out, const StridedView& lse) {
  switch (q.sizes[3]) {
    case 32: return launch_forward<T, 32>(q, k, v, mask, causal, scale, out, lse);
    case 64: return launch_forward<T, 64>(q, k, v, mask, causal, scale, out, lse);
    default: return launch_forward<T, 128>(q, k, v, mask, causal, scale, out, lse);
  }
}

}  // namespace
}  // namespace v4

bool attention_v4_supports(DType dtype, int64_t head_dim, int64_t Tq, int64_t Tk, bool /*has_mask*/, bool /*causal*/) {
  if (!v4::takes_dtype_and_head_dim(dtype, head_dim)) return false;
  const v4::DeviceSmem& s = v4::device_smem();
  return v4::plan_forward(Tq, Tk, head_dim, s.per_block, s.per_sm).fits;
}

bool attention_v4_forward(const StridedView& q, const StridedView& k, const StridedView& v,
                          const StridedView& key_padding_mask, bool causal, double scale, const StridedView& out,
                          const StridedView& lse) {
  if (!attention_v4_supports(q.dtype, q.sizes[3], q.sizes[2], k.sizes[2], key_padding_mask.data != nullptr, causal))
    return false;
  if (!aligned16(q.data) || !aligned16(k.data) || !aligned16(v.data) || !aligned16(out.data)) return false;
  if (q.dtype == DType::bf16) {
    v4::forward_head_dim<bf16>(q, k, v, key_padding_mask, causal, scale, out, lse);
  } else {
    v4::forward_head_dim<f16>(q, k, v, key_padding_mask, causal, scale, out, lse);
  }
  return true;
}

}  // namespace minivl::cuda
