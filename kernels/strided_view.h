#pragma once
// StridedView: what a kernel sees of a tensor. Raw pointer (already offset),
// sizes and strides in elements, and the dtype. No ownership, no core/ types.
#include <cstdint>

#include "kernels/scalar_types.h"

namespace minivl {

inline constexpr int kMaxDims = 8;

struct StridedView {
  void* data = nullptr;
  DType dtype = DType::f32;
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  MINIVL_HOST_DEVICE int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= sizes[d];
    return n;
  }
  MINIVL_HOST_DEVICE bool is_contiguous() const {
    int64_t expected = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      if (sizes[d] != 1 && strides[d] != expected) return false;
      expected *= sizes[d];
    }
    return true;
  }
  template <typename T> MINIVL_HOST_DEVICE T* ptr() const { return static_cast<T*>(data); }
};

// Dims [first, first + count) of v as a view of their own (same data pointer).
inline StridedView sub_view(const StridedView& v, int first, int count) {
  StridedView s;
  s.data = v.data;
  s.dtype = v.dtype;
  s.ndim = count;
  for (int d = 0; d < count; ++d) {
    s.sizes[d] = v.sizes[first + d];
    s.strides[d] = v.strides[first + d];
  }
  return s;
}

// Element offset (in elements) of the linear index `i` of a row-major walk over `v`.
MINIVL_HOST_DEVICE inline int64_t strided_offset(const StridedView& v, int64_t i) {
  int64_t off = 0;
  for (int d = v.ndim - 1; d >= 0; --d) {
    int64_t idx = i % v.sizes[d];
    i /= v.sizes[d];
    off += idx * v.strides[d];
  }
  return off;
}

}  // namespace minivl
