#pragma once
// The dispatch table: for every kernel family, one function pointer per device
// type. Backends fill it from one explicit function each
// (register_cpu_kernels, register_cuda_kernels); the op layer looks kernels up
// here and never names a backend. The op list (ops.def) maps ops to families,
// which is how `minivl ops` prints the op x device coverage.
#include <cstdint>
#include <string>

#include "core/device.h"
#include "kernels/adamw_kernel.h"
#include "kernels/gemm_problem.h"
#include "kernels/kernel_entry_points.h"

namespace minivl {

enum class OpId {
#define MINIVL_OP(name, family, differentiable) name,
#include "core/ops.def"
#undef MINIVL_OP
  count_
};
inline constexpr int kNumOps = int(OpId::count_);

// Every kernel family, once: the enum and the names come from this list.
#define MINIVL_KERNEL_FAMILIES(X) X(view) X(composed) X(copy) X(fill) X(unary) X(binary) X(where) X(reduce) X(arg_reduce) X(matmul) X(softmax) X(cross_entropy) X(embedding) X(dropout) X(layernorm) X(contrastive) X(attention)
enum class KernelFamily {
#define MINIVL_FAMILY_ENUM(name) name,
  MINIVL_KERNEL_FAMILIES(MINIVL_FAMILY_ENUM)
#undef MINIVL_FAMILY_ENUM
};
const char* kernel_family_name(KernelFamily family);

struct OpInfo {
  const char* name;
  KernelFamily family;
  bool differentiable;
};
const OpInfo& op_info(OpId op);
bool op_available(OpId op, DeviceType device);  // has a kernel (or needs none) on that device type

struct KernelTable {
  // dst = src (same shape; converts dtype)
  using CopyFn = void (*)(const StridedView& src, const StridedView& dst);
  using FillFn = void (*)(const StridedView& dst, double value);
  using RandomFn = void (*)(const StridedView& dst, RandomKind kind, uint64_t seed, uint64_t offset);
  using UnaryFn = void (*)(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& out);
  // gx = f'(x) * gy
  using UnaryBackwardFn = void (*)(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& gy,
                                   const StridedView& gx);
  // a, b already broadcast (expanded) to out's shape
  using BinaryFn = void (*)(BinaryOp op, const StridedView& a, const StridedView& b, const StridedView& out);
  using WhereFn = void (*)(const StridedView& cond, const StridedView& a, const StridedView& b,
                           const StridedView& out);
  // in: kept dims first (matching out's dims), then `n_reduced` reduced dims last.
  using ReduceFn = void (*)(ReduceOp op, const StridedView& in, int n_reduced, const StridedView& out);
  // in: (R, L) rows; out: (R) i64 index of the first maximum
  using ArgmaxFn = void (*)(const StridedView& in, const StridedView& out);
  // in: (R, L) rows; values (R, k) and indices (R, k), sorted descending
  using TopkFn = void (*)(const StridedView& in, int64_t k, const StridedView& values, const StridedView& indices);
  using GemmFn = void (*)(const GemmProblem& problem);  // kernels/gemm_problem.h
  // x, y: contiguous (R, L); softmax (or log-softmax) along L
  using SoftmaxFn = void (*)(const StridedView& x, const StridedView& y, bool log);
  using SoftmaxBackwardFn = void (*)(const StridedView& y, const StridedView& gy, const StridedView& gx, bool log);
  // logits (N, C) contiguous, target (N) i64; per-row loss (N) and row log-sum-exp (N, f32/f64)
  using CrossEntropyFn = void (*)(const StridedView& logits, const StridedView& target, const StridedView& loss,
                                  const StridedView& lse, int64_t ignore_index, double label_smoothing);
  // glogits = grow * (softmax - target distribution); zero for ignored rows
  using CrossEntropyBackwardFn = void (*)(const StridedView& logits, const StridedView& target,
                                          const StridedView& lse, const StridedView& grow,
                                          const StridedView& glogits, int64_t ignore_index, double label_smoothing);
  // weight (V, D), ids (n) i64, out (n, D)
  using EmbeddingFn = void (*)(const StridedView& weight, const StridedView& ids, const StridedView& out);
  // gweight (V, D) zero-filled, += rows of gout (n, D) at ids; deterministic order
  using EmbeddingBackwardFn = void (*)(const StridedView& gout, const StridedView& ids, const StridedView& gweight);
  // out = x * keep / (1 - p), keep(i) = philox_uniform(seed, offset, i) >= p
  using DropoutFn = void (*)(const StridedView& x, const StridedView& out, double p, uint64_t seed, uint64_t offset);
  // Fused layernorm over the last dim of contiguous (R, C) rows. residual.data == nullptr: plain
  // layernorm of x; otherwise h = x + residual is written to `sum` and normalised. weight/bias (C)
  // may have data == nullptr. mean, rstd (R): the statistics dtype (f64 for f64 input, else f32).
  using LayerNormFn = void (*)(const StridedView& x, const StridedView& residual, const StridedView& weight,
                               const StridedView& bias, double eps, const StridedView& sum, const StridedView& y,
                               const StridedView& mean, const StridedView& rstd);
  // h: the normalised input (x, or x + residual); dh = LN'(dy) (+ dsum when dsum.data != nullptr).
  // dweight/dbias (C) written when their data != nullptr; deterministic (no float atomics).
  using LayerNormBackwardFn = void (*)(const StridedView& dy, const StridedView& h, const StridedView& weight,
                                       const StridedView& mean, const StridedView& rstd, const StridedView& dsum,
                                       const StridedView& dh, const StridedView& dweight,
                                       const StridedView& dbias);
  // Contrastive losses over image, text (N, d) contiguous, never materialising the N x N logits.
  // Scalars (logit_scale, logit_bias, loss, grad_loss, d-scalars) are 0-d views in the statistics
  // dtype (f64 for f64 features, else f32) on the features' device.
  // CLIP: loss = (CE over rows + CE over columns of s * image @ text^T) / 2, s = exp(logit_scale);
  // lse_row, lse_col (N) are saved for the backward.
  using ClipLossFn = void (*)(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                              const StridedView& loss, const StridedView& lse_row, const StridedView& lse_col);
  using ClipLossBackwardFn = void (*)(const StridedView& image, const StridedView& text,
                                      const StridedView& logit_scale, const StridedView& lse_row,
                                      const StridedView& lse_col, const StridedView& grad_loss,
                                      const StridedView& dimage, const StridedView& dtext,
                                      const StridedView& dlogit_scale);
  // SigLIP: loss = -(1/N) sum_ij log sigmoid(z_ij (s * image_i . text_j + logit_bias)), z = 2 I - 1.
  using SiglipLossFn = void (*)(const StridedView& image, const StridedView& text, const StridedView& logit_scale,
                                const StridedView& logit_bias, const StridedView& loss);
  using SiglipLossBackwardFn = void (*)(const StridedView& image, const StridedView& text,
                                        const StridedView& logit_scale, const StridedView& logit_bias,
                                        const StridedView& grad_loss, const StridedView& dimage,
                                        const StridedView& dtext, const StridedView& dlogit_scale,
                                        const StridedView& dlogit_bias);

  // Fused scaled-dot-product attention (kernels/cpu/attention_cpu.h, kernels/cuda/attention.h).
  // q (B, H, Tq, D), k, v (B, H, Tk, D), out (B, H, Tq, D): contiguous, one dtype. key_padding_mask:
  // contiguous (B, Tk) bool/u8 (nonzero = ignore that key) or data == nullptr. causal: query i sees
  // keys j <= i + (Tk - Tq). lse (B, H, Tq): the row log-sum-exp of the scaled, masked scores in
  // the statistics dtype (f64 for f64 input, else f32); -inf (and out = 0) where a row sees no key.
  using AttentionFn = void (*)(const StridedView& q, const StridedView& k, const StridedView& v,
                               const StridedView& key_padding_mask, bool causal, double scale,
                               const StridedView& out, const StridedView& lse);
  // dq, dk, dv (shapes of q, k, v) from dout (B, H, Tq, D), recomputing the probabilities from lse.
  using AttentionBackwardFn = void (*)(const StridedView& q, const StridedView& k, const StridedView& v,
                                       const StridedView& key_padding_mask, bool causal, double scale,
                                       const StridedView& out, const StridedView& lse, const StridedView& dout,
                                       const StridedView& dq, const StridedView& dk, const StridedView& dv);

  CopyFn copy[kNumDeviceTypes] = {};
  FillFn fill[kNumDeviceTypes] = {};
  RandomFn random_fill[kNumDeviceTypes] = {};
  UnaryFn unary[kNumDeviceTypes] = {};
  UnaryBackwardFn unary_backward[kNumDeviceTypes] = {};
  BinaryFn binary[kNumDeviceTypes] = {};
  WhereFn where[kNumDeviceTypes] = {};
  ReduceFn reduce[kNumDeviceTypes] = {};
  ArgmaxFn argmax[kNumDeviceTypes] = {};
  TopkFn topk[kNumDeviceTypes] = {};
  GemmFn gemm[kNumDeviceTypes] = {};
  SoftmaxFn softmax[kNumDeviceTypes] = {};
  SoftmaxBackwardFn softmax_backward[kNumDeviceTypes] = {};
  CrossEntropyFn cross_entropy[kNumDeviceTypes] = {};
  CrossEntropyBackwardFn cross_entropy_backward[kNumDeviceTypes] = {};
  EmbeddingFn embedding[kNumDeviceTypes] = {};
  EmbeddingBackwardFn embedding_backward[kNumDeviceTypes] = {};
  DropoutFn dropout[kNumDeviceTypes] = {};

  // The fused AdamW step over every parameter tensor at once (kernels/adamw_kernel.h);
  // nn::AdamW uses it when the parameters are f32, and public ops otherwise.
  using AdamWFn = void (*)(const AdamWTensor* tensors, int64_t count, const AdamWHyper& hyper);
  AdamWFn adamw[kNumDeviceTypes] = {};

  LayerNormFn layernorm[kNumDeviceTypes] = {};
  LayerNormBackwardFn layernorm_backward[kNumDeviceTypes] = {};
  ClipLossFn clip_loss[kNumDeviceTypes] = {};
  ClipLossBackwardFn clip_loss_backward[kNumDeviceTypes] = {};
  SiglipLossFn siglip_loss[kNumDeviceTypes] = {};
  SiglipLossBackwardFn siglip_loss_backward[kNumDeviceTypes] = {};
  AttentionFn attention[kNumDeviceTypes] = {};
  AttentionBackwardFn attention_backward[kNumDeviceTypes] = {};

  // Host <-> device copies of contiguous bytes (set by the CUDA backend).
  using DeviceCopyFn = void (*)(const void* src, Device src_device, void* dst, Device dst_device, size_t nbytes);
  DeviceCopyFn device_copy = nullptr;
};

// The table, filled on first use by the backends' registration functions.
const KernelTable& kernels();

// Looks up a slot with an error naming the op and the device when it is empty.
template <typename Fn>
Fn kernel_for(const Fn (&slots)[kNumDeviceTypes], Device device, const char* op);

// Backend registration (called once, from kernels()).
void register_cpu_kernels(KernelTable& table);
void register_cuda_kernels(KernelTable& table);  // no-op without CUDA

}  // namespace minivl

#include "core/dispatch_impl.h"
