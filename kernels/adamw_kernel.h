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
#include <cstdint>

namespace minivl {

// One parameter tensor: contiguous f32 arrays of n elements each.
struct AdamWTensor {
  float* param = nullptr;
  const float* grad = nullptr;
  float* exp_avg = nullptr;     // m
  float* exp_avg_sq = nullptr;  // v
  int64_t n = 0;
  float weight_decay = 0.0f;    // per tensor: parameter groups differ
};

struct AdamWHyper {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float bias_correction1 = 1.0f;  // 1 - beta1^t
  float bias_correction2 = 1.0f;  // 1 - beta2^t
  float grad_scale = 1.0f;
};

namespace cpu {
// The CPU reference (OpenMP over fixed-size chunks; every element's update is
// independent, so the result does not depend on the thread count).
void adamw_step(const AdamWTensor* tensors, int64_t count, const AdamWHyper& h);
}  // namespace cpu

}  // namespace minivl
