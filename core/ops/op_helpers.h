#pragma once
// Small helpers the op files (core/ops/*.cpp) share; not part of the public op API.
#include "core/tensor.h"

namespace minivl {

// The dtype fused kernels keep statistics and scalars in (mean/rstd, row log-sum-exps, losses):
// f32, or f64 for f64 inputs so that the gradient checks stay exact.
inline DType stats_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

// The kernel view of an optional tensor: data == nullptr when it is undefined.
inline StridedView view_or_none(const Tensor& t) { return t.defined() ? t.view() : StridedView{}; }

}  // namespace minivl
