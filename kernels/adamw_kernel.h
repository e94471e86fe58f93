#pragma once
// The fused AdamW step's kernel interface: one call updates every parameter
// tensor (a multi-tensor "foreach" step), so the CUDA version is one launch.
// Raw pointers and sizes only; no core/ types (see DESIGN.md, Kernels).
//
// Per element, with t the step number after increment (PyTorch's AdamW):
//   g  = grad * grad_scale                      (grad_scale undoes a loss scale)
//   p  = p * (1 - lr * weight_decay)            (decoupled weight decay)
//   m  = beta1 * m + (1 - beta1) * g
//   v  = beta2 * v + (1 - beta2) * g * g
//   p -= lr * (m / bias_correction1) / (sqrt(v / bias_correction2) + eps)
//   bias_correction{1,2} = 1 - beta{1,2}^t
// Bound: pure bandwidth, 16 bytes read + 12 written per f32 element (p, g, m, v
// read; p, m, v written): 28 B/element.
//
// The guarded step (control != nullptr) decides on the device whether to update,
// so a training step never waits for the host (nn::AdamW::step_guarded):
//   mode measure: control[0] = sum of every grad^2 (f64, a fixed order), then
//     norm = sqrt(control[0])                       -> control[1]
//     skip = !finite(norm) || !finite(*loss)        -> control[2] (0 or 1)
//     t    = control[3] + (skip ? 0 : 1)            -> control[3]
//     clip = max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1  -> control[4]
//   mode update: nothing when control[2] != 0; else the rule above with
//     g = grad * grad_scale * control[4] and bias_correction{1,2} = 1 - beta{1,2}^control[3].
#include <cmath>
#include <cstdint>

#include "kernels/scalar_types.h"

namespace minivl {

// One parameter tensor: contiguous f32 arrays of n elements each.
struct AdamWTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* exp_avg = nullptr;     // m
  float* exp_avg_sq = nullptr;  // v
  int64_t n = 0;
  float weight_decay = 0.0f;    // per tensor: parameter groups differ
  // A low-precision copy of the updated parameter, written in the same pass (autocast's weights:
  // nn/amp.h), or nullptr. Written on a skipped step too, from the unchanged parameter.
  void* param_low = nullptr;
  enum class Low : uint8_t { bf16, f16 };
  Low low_dtype = Low::bf16;
};

// Writes the low-precision copy of p (round to nearest even, as the copy kernels convert).
#if defined(__CUDACC__)
__host__ __device__
#endif
inline void adamw_store_low(const AdamWTensor& t, int64_t i, float p) {
  if (t.low_dtype == AdamWTensor::Low::bf16) static_cast<bf16*>(t.param_low)[i] = to_bf16(p);
  else static_cast<f16*>(t.param_low)[i] = to_f16(p);
}

struct AdamWHyper {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float bias_correction1 = 1.0f;  // 1 - beta1^t (unguarded steps)
  float bias_correction2 = 1.0f;  // 1 - beta2^t
  float grad_scale = 1.0f;
  // The guarded step (above): control (kAdamWControlSize f64) and loss (one f32, or nullptr) live
  // on the parameters' device.
  enum class Mode { update, measure };
  Mode mode = Mode::update;
  double* control = nullptr;
  const float* loss = nullptr;
  double max_norm = 0.0;
  double beta1_exact = 0.9, beta2_exact = 0.999;  // the guarded step's bias corrections use these
};
inline constexpr int kAdamWControlSize = 5;  // sum of squares, norm, skip, t, clip coefficient

// The measure step's decision from the sum of squares (shared by the CPU and CUDA kernels).
#if defined(__CUDACC__)
__host__ __device__
#endif
inline void adamw_decide(double* control, double sum_sq, const float* loss, double max_norm) {
#if defined(__CUDA_ARCH__)
  const double norm = sqrt(sum_sq);
#else
  const double norm = std::sqrt(sum_sq);
#endif
  const bool norm_ok = norm - norm == 0.0;  // false for inf and NaN
  const bool loss_ok = !loss || double(*loss) - double(*loss) == 0.0;
  const bool skip = !(norm_ok && loss_ok);
  control[0] = sum_sq;
  control[1] = norm;
  control[2] = skip ? 1.0 : 0.0;
  control[3] += skip ? 0.0 : 1.0;
  control[4] = max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

// The update's bias corrections and gradient factor: the host's (unguarded) or control's.
struct AdamWScalars {
  float bias_correction1, bias_correction2, grad_factor;
};
#if defined(__CUDACC__)
__host__ __device__
#endif
inline AdamWScalars adamw_scalars(const AdamWHyper& h) {
  if (!h.control) return {h.bias_correction1, h.bias_correction2, h.grad_scale};
  const double t = h.control[3];
#if defined(__CUDA_ARCH__)
  const double bc1 = 1.0 - pow(h.beta1_exact, t), bc2 = 1.0 - pow(h.beta2_exact, t);
#else
  const double bc1 = 1.0 - std::pow(h.beta1_exact, t), bc2 = 1.0 - std::pow(h.beta2_exact, t);
#endif
  return {float(bc1), float(bc2), h.grad_scale * float(h.control[4])};
}

namespace cpu {
// The CPU reference (OpenMP over fixed-size chunks; every element's update is
// independent, so the result does not depend on the thread count).
void adamw_step(const AdamWTensor* tensors, int64_t count, const AdamWHyper& h);
}  // namespace cpu

}  // namespace minivl
