// Fills the kernel table's CUDA slots from kernels/cuda and registers the CUDA kernel versions
// (the one place that knows the CUDA backend's function names, as core/register_cpu.cpp is for
// the CPU). Every slot goes through one guard that turns the kernels' exceptions
// (cuda::CudaError, a std::runtime_error) into minivl::Error. A family with numbered versions
// (attention, contrastive, layernorm) is a slot that asks the version registry which version runs
// the call and hands that number to the kernels' version switch.
#include "core/allocator.h"
#include "core/dispatch.h"
#include "core/error.h"
#include "core/kernel_versions.h"

#if MINIVL_CUDA
#include "kernels/cuda/adamw.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/backend.h"
#include "kernels/cuda/caching_allocator.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/fused.h"
#include "kernels/cuda/gemm.h"
#endif

namespace minivl {

#if MINIVL_CUDA
namespace {

template <auto Fn>
struct Guard;
template <typename... A, void (*Fn)(A...)>
struct Guard<Fn> {
  static void call(A... args) {
    try {
      Fn(args...);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(e.what());
    }
  }
};
// guarded<f>: f behind the guard, with f's signature.
template <auto Fn>
constexpr auto guarded = &Guard<Fn>::call;

class CudaAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (cuda::device_count() == 0) throw Error("cannot allocate on cuda:0: " + cuda::unavailable_reason());
    try {
      return cuda::caching_allocator().allocate(nbytes);
    } catch (const std::exception& e) {
      throw Error(std::string("cannot allocate ") + std::to_string(nbytes) + " bytes on cuda:0: " + e.what());
    }
  }
  void deallocate(void* ptr, size_t nbytes) override { cuda::caching_allocator().deallocate(ptr, nbytes); }
  AllocatorStats stats() const override {
    cuda::CacheStats c = cuda::caching_allocator().stats();
    AllocatorStats s;
    s.allocated = c.allocated;
    s.reserved = c.reserved;
    s.peak_allocated = c.peak_allocated;
    s.num_allocs = c.num_allocs;
    s.num_device_allocs = c.num_cuda_mallocs;
    return s;
  }
  void reset_peak() override { cuda::caching_allocator().reset_peak(); }
  void empty_cache() override { cuda::caching_allocator().empty_cache(); }
};

void device_copy(const void* src, Device src_device, void* dst, Device dst_device, size_t nbytes) {
  MINIVL_CHECK(!(src_device.is_cpu() && dst_device.is_cpu()), "device_copy: both sides on the host");
  const cuda::CopyKind kind = src_device.is_cpu()   ? cuda::CopyKind::host_to_device
                              : dst_device.is_cpu() ? cuda::CopyKind::device_to_host
                                                    : cuda::CopyKind::device_to_device;
  cuda::memcpy_bytes(src, dst, nbytes, kind);
  int64_t bad_id = 0, vocab = 0;  // the embedding forward's deferred id check (embedding.cu)
  if (kind == cuda::CopyKind::device_to_host && cuda::take_embedding_error(bad_id, vocab))
    MINIVL_FAIL("embedding: id ", bad_id, " out of range for a vocabulary of ", vocab,
                " (found on the GPU by an earlier embedding call; reported at this copy to the host)");
}

// ---- the families with numbered versions: the registry picks, the kernels' switch runs it ----

int chosen(const char* family, DType dtype, int64_t size) {
  return kernel_versions().family(family).choose({dtype, size});
}

int64_t last_dim(const StridedView& v) { return v.ndim > 0 ? v.sizes[v.ndim - 1] : 1; }

void versioned_attention(const StridedView& q, const StridedView& k, const StridedView& v, const StridedView& mask,
                         bool causal, double scale, const StridedView& out, const StridedView& lse) {
  cuda::attention_forward_cuda_version(chosen("attention", q.dtype, q.sizes[3]), q, k, v, mask, causal, scale, out,
                                       lse);
}

void versioned_attention_backward(const StridedView& q, const StridedView& k, const StridedView& v,
                                  const StridedView& mask, bool causal, double scale, const StridedView& out,
                                  const StridedView& lse, const StridedView& dout, const StridedView& dq,
                                  const StridedView& dk, const StridedView& dv) {
  cuda::attention_backward_cuda_version(chosen("attention", q.dtype, q.sizes[3]), q, k, v, mask, causal, scale, out,
                                        lse, dout, dq, dk, dv);
}

void versioned_layernorm(const StridedView& x, const StridedView& residual, const StridedView& weight,
                         const StridedView& bias, double eps, const StridedView& sum, const StridedView& y,
                         const StridedView& mean, const StridedView& rstd) {
  cuda::layernorm_forward_cuda_version(chosen("layernorm", x.dtype, last_dim(x)), x, residual, weight, bias, eps, sum,
                                       y, mean, rstd);
}

void versioned_layernorm_backward(const StridedView& dy, const StridedView& h, const StridedView& weight,
                                  const StridedView& mean, const StridedView& rstd, const StridedView& dsum,
                                  const StridedView& dh, const StridedView& dweight, const StridedView& dbias) {
  cuda::layernorm_backward_cuda_version(chosen("layernorm", h.dtype, last_dim(h)), dy, h, weight, mean, rstd, dsum, dh,
                                        dweight, dbias);
}

const cuda::ContrastiveKernels& contrastive(const StridedView& image, const StridedView& text) {
  return cuda::contrastive_kernels(chosen("contrastive", image.dtype, last_dim(image)), image, text);
}

void versioned_clip_loss(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                         const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col) {
  contrastive(image, text).clip_loss(image, text, logit_scale, loss, lse_row, lse_col);
}

void versioned_clip_loss_backward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                  const StridedView& lse_row, const StridedView& lse_col, const StridedView& grad_loss,
                                  const StridedView& dimage, const StridedView& dtext,
                                  const StridedView& dlogit_scale) {
  contrastive(image, text)
      .clip_loss_backward(image, text, logit_scale, lse_row, lse_col, grad_loss, dimage, dtext, dlogit_scale);
}

void versioned_siglip_loss(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                           const StridedView& logit_bias, const StridedView& loss) {
  contrastive(image, text).siglip_loss(image, text, logit_scale, logit_bias, loss);
}

void versioned_siglip_loss_backward(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                    const StridedView& logit_bias, const StridedView& grad_loss,
                                    const StridedView& dimage, const StridedView& dtext,
                                    const StridedView& dlogit_scale, const StridedView& dlogit_bias) {
  contrastive(image, text)
      .siglip_loss_backward(image, text, logit_scale, logit_bias, grad_loss, dimage, dtext, dlogit_scale, dlogit_bias);
}

void versioned_adamw(const AdamWTensor* tensors, int64_t count, const AdamWHyper& hyper) {
  cuda::adamw_step_cuda_version(chosen("adamw", DType::f32, count), tensors, count, hyper);
}

// A version's predicate: the kernels' own switch says what version n takes.
template <bool (*Supported)(int, DType, int64_t)>
std::function<bool(const VersionQuery&)> takes(int n) {
  return [n](const VersionQuery& q) { return Supported(n, q.dtype, q.size); };
}

// What the first GPU runs showed (bench/results/2026-11-27-h100-h200.md).
const char* const kParityBoth = "parity passed on H200 and H100, 2026-11-27";
const char* const kCandidate = "";

// One add() per version. A new version starts with kCandidate as its status, so it runs only when
// asked for by number (MINIVL_<FAMILY>_VERSION=N) until its parity has passed on a GPU.
void register_attention_versions(KernelVersionRegistry& r) {
  KernelVersionFamily& f = r.add_family("attention", "cuda", "head dim D",
                                        {{"D in {32, 64, 128}", 64}, {"other D <= 128", 80}, {"D > 128", 256}});
  constexpr auto t = takes<cuda::attention_version_supported>;
  f.add({1, "naive", t(1), "f32, f64, bf16, f16; any D",
         "S = scale q k^T materialised per (b, h) in global memory, a row softmax, then P v; the reference",
         "checked against the CPU on H100, 2026-11-27 (bench_attention: bf16, D = 64; the parity tests never "
         "choose it)"});
  f.add({2, "tiled SIMT", t(2), "f32, bf16, f16; D <= 128",
         "FlashAttention-2's loop order on SIMT cores in f32, 16 query rows per block, 32-key tiles", kParityBoth});
  f.add({3, "tensor cores", t(3), "bf16, f16; D in {32, 64, 128}",
         "FlashAttention-2 on mma.sync m16n8k16 with cp.async double buffering; operands not 16-byte aligned "
         "run v2",
         kParityBoth});
  f.add({4, "short-sequence tensor cores", t(4), "bf16, f16; D in {32, 64, 128}",
         "sized for T = 50-577: 16-row strips and 16-key steps, a head's K/V resident in shared memory where it "
         "fits; the backward one block per (b, h) from one recomputation of P where the head fits a block; what "
         "it declines runs v3",
         kCandidate});
}

void register_contrastive_versions(KernelVersionRegistry& r) {
  KernelVersionFamily& f = r.add_family("contrastive", "cuda", "feature dim d", {{"d % 8 == 0", 512}, {"other d", 36}});
  constexpr auto t = takes<cuda::contrastive_version_supported>;
  f.add({1, "tiled SIMT", t(1), "f32, f64, bf16, f16; any d",
         "CLIP and SigLIP losses over logit tiles in registers, never the N x N logits", kParityBoth});
  f.add({2, "tensor cores", t(2), "bf16, f16; d % 8 == 0",
         "mma.sync m16n8k16 logit tiles; rows that are not contiguous and 16-byte aligned, or a GPU below "
         "sm_80, run v1",
         kParityBoth});
  f.add({3, "four-GEMM schedule", t(3), "bf16, f16; d % 8 == 0, d <= 65536",
         "single-pass forward with row and column log-sum-exp partials; the backward recomputes each logits tile "
         "once into a 16-bit G chunk feeding dimage and dtext through cuBLASLt; what it declines runs v2",
         kCandidate});
}

void register_layernorm_versions(KernelVersionRegistry& r) {
  KernelVersionFamily& f = r.add_family("layernorm", "cuda", "row length C",
                                        {{"16-byte rows, C <= 32768", 768}, {"other C", 33}, {"C > 32768", 65536}});
  constexpr auto t = takes<cuda::layernorm_version_supported>;
  f.add({1, "thread per row", t(1), "f32, f64, bf16, f16; any C",
         "forward and backward one thread per row, dweight/dbias one thread per column; the reference",
         "forward checked against the CPU on H100, 2026-11-27 (bench_layernorm, bf16); its backward has not run "
         "on a GPU"});
  f.add({2, "warp per row", t(2), "f32, f64, bf16, f16; any C",
         "one warp per row; dweight/dbias in two deterministic stages over 256-row chunks", kParityBoth});
  f.add({3, "vectorised forward", t(3), "f32, bf16, f16; C * element size a multiple of 16 bytes, C <= 32768",
         "forward: 128-bit loads, the row held in registers (unaligned pointers run v2's forward); backward: v2's",
         kParityBoth});
}

void register_adamw_versions(KernelVersionRegistry& r) {
  KernelVersionFamily& f = r.add_family("adamw", "cuda", "tensor count", {{"any list of tensors", 1}}, {DType::f32});
  constexpr auto t = takes<cuda::adamw_version_supported>;
  f.add({1, "launch per tensor", t(1), "f32 tensors", "a grid-stride loop per parameter tensor, one launch each",
         kCandidate});
  f.add({2, "multi-tensor", t(2), "f32 tensors",
         "one launch over every tensor, blocks find their tensor by binary search over a prefix sum",
         "trained on H200 and H100, 2026-11-27 (the data-parallel check: one rank through NCCL against plain "
         "training); not yet run on a GPU since: its CPU parity test (nn_cuda), the device-side non-finite guard and "
         "the bf16/f16 weight copies written in the update (2026-12-07)"});
}

}  // namespace

void register_cuda_kernels(KernelTable& t) {
  static CudaAllocator allocator;
  set_cuda_allocator(&allocator);  // registered when built; a missing GPU fails at allocation
  const int d = int(DeviceType::CUDA);
#define MINIVL_REGISTER_CUDA(name, params) t.name[d] = guarded<cuda::name>;
  MINIVL_SHARED_KERNELS(MINIVL_REGISTER_CUDA)
#undef MINIVL_REGISTER_CUDA
  t.gemm[d] = guarded<cuda::gemm>;
  t.layernorm[d] = guarded<versioned_layernorm>;
  t.layernorm_backward[d] = guarded<versioned_layernorm_backward>;
  t.clip_loss[d] = guarded<versioned_clip_loss>;
  t.clip_loss_backward[d] = guarded<versioned_clip_loss_backward>;
  t.siglip_loss[d] = guarded<versioned_siglip_loss>;
  t.siglip_loss_backward[d] = guarded<versioned_siglip_loss_backward>;
  t.attention[d] = guarded<versioned_attention>;
  t.attention_backward[d] = guarded<versioned_attention_backward>;
  t.adamw[d] = guarded<versioned_adamw>;
  t.device_copy = guarded<device_copy>;
}

void register_cuda_kernel_versions(KernelVersionRegistry& versions) {
  register_attention_versions(versions);
  register_contrastive_versions(versions);
  register_layernorm_versions(versions);
  register_adamw_versions(versions);
}

#else

void register_cuda_kernels(KernelTable&) {}
void register_cuda_kernel_versions(KernelVersionRegistry&) {}

#endif

}  // namespace minivl
