#pragma once
// Contrastive losses v3 (kernels/cuda/contrastive_v3.cu): the four-GEMM-equivalent schedule
// (fused single-pass forward with row and column log-sum-exp; backward that recomputes each
// logits tile once and feeds both dimage and dtext from it). Host C++ may include this file:
// no CUDA headers. Its four passes are contrastive_v3_kernels() (fused.h), as v1's and v2's are.
#include <cstdint>

#include "kernels/strided_view.h"

namespace minivl::cuda {

// bf16/f16 image and text, contiguous (N, d) with d % 8 == 0, 16-byte aligned, sm_80+.
bool contrastive_v3_supported(const StridedView& image, const StridedView& text);

// The speed floor of bench_contrastive: the four GEMMs of one forward + backward of the loss
// (logits; logits again, dimage = G text, dtext = G^T image), bf16/f16 in, f32 accumulate,
// through cuBLASLt on caller-owned device buffers. logits: (rows, n) scratch for a strip of
// `rows` rows (the whole matrix when rows == n); dimage, dtext: (n, d) in the inputs' dtype.
void contrastive_four_gemms(DType dtype, int64_t n, int64_t d, int64_t rows, const void* image, const void* text,
                            void* logits, void* dimage, void* dtext);

}  // namespace minivl::cuda
