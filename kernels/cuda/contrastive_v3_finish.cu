// The small kernels of the contrastive losses v3 around the tile kernels of contrastive_v3.cu:
// the per-chunk merge of (max, sum) partials, log-sum-exp from the running states, fixed-order
// sums of block partials, CLIP's diagonal logits and the last scaling of dimage / dtext. All are
// memory-bound and tiny next to the tiles (O(N) or O(N d) bytes per call); every sum has a fixed
// order, so the results do not depend on timing.
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/contrastive_v3_parts.cuh"
#include "kernels/cuda/mma_sm80.cuh"

namespace minivl::cuda::v3 {
namespace {

// The low and high 16-bit value of a register, as float.
template <typename T>
__device__ __forceinline__ float unpack_lo(uint32_t v) {
  return std::is_same_v<T, bf16> ? __uint_as_float(v << 16) : __half2float(__ushort_as_half(uint16_t(v & 0xffffu)));
}
template <typename T>
__device__ __forceinline__ float unpack_hi(uint32_t v) {
  return std::is_same_v<T, bf16> ? __uint_as_float(v & 0xffff0000u) : __half2float(__ushort_as_half(uint16_t(v >> 16)));
}

// Folds one chunk's partials, slot by slot, into the running row and column states. The chunk
// with c0 == 0 starts a row's state, the one with r0 == 0 a column's.
__global__ void merge_chunk(Plan plan, Chunk c, const float2* row_part, const float2* col_part, float2* row_state,
                            float2* col_state) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t cap = chunk_capacity(plan);
  if (t < c.rows) {
    MaxSum st = c.c0 == 0 ? MaxSum{} : MaxSum{row_state[c.r0 + t].x, row_state[c.r0 + t].y};
    for (int64_t q = 0; q < row_part_slots(c); ++q) st = merge(st, MaxSum{row_part[q * cap + t].x, row_part[q * cap + t].y});
    row_state[c.r0 + t] = make_float2(st.m, st.s);
  }
  if (t < c.cols) {
    MaxSum st = c.r0 == 0 ? MaxSum{} : MaxSum{col_state[c.c0 + t].x, col_state[c.c0 + t].y};
    for (int64_t q = 0; q < col_part_slots(c); ++q) st = merge(st, MaxSum{col_part[q * cap + t].x, col_part[q * cap + t].y});
    col_state[c.c0 + t] = make_float2(st.m, st.s);
  }
}

__global__ void lse_from_states(int64_t n, const float2* row_state, const float2* col_state, float* lse_row,
                                float* lse_col) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  lse_row[i] = lse(MaxSum{row_state[i].x, row_state[i].y});
  lse_col[i] = lse(MaxSum{col_state[i].x, col_state[i].y});
}

// One block, fixed order: out = scale * (mult ? *mult : 1) * (sum_{i < nxy} (x[i] + y[i]) - 2 sum_{i < nz} z[i]);
// y and z nullable.
__global__ void fixed_sum(const float* x, const float* y, int64_t nxy, const float* z, int64_t nz, const float* mult,
                          float scale, float* out) {
  __shared__ float scratch[32];
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < nxy; i += blockDim.x) s += x[i] + (y ? y[i] : 0.0f);
  if (z)
    for (int64_t i = threadIdx.x; i < nz; i += blockDim.x) s -= 2.0f * z[i];
  s = block_reduce<float, false>(s, scratch);
  if (threadIdx.x == 0) *out = s * scale * (mult ? *mult : 1.0f);
}

// CLIP's targets: out[i] = L_ii = s <a_i, b_i>, one warp per row (f32 products of the 16-bit inputs).
template <typename T>
__global__ void diag_logits(const uint16_t* a, const uint16_t* b, int64_t n, int d, const float* log_scale,
                            float* out) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + (threadIdx.x >> 5);
  if (row >= n) return;
  const int lane = int(threadIdx.x) & 31;
  float s = 0.0f;
  for (int k = lane * 2; k < d; k += 64) {  // d % 8 == 0: pairs never straddle the end
    const uint32_t x = *reinterpret_cast<const uint32_t*>(a + row * d + k);
    const uint32_t y = *reinterpret_cast<const uint32_t*>(b + row * d + k);
    s += unpack_lo<T>(x) * unpack_lo<T>(y) + unpack_hi<T>(x) * unpack_hi<T>(y);
  }
  s = warp_sum(s);
  if (lane == 0) out[row] = expf(*log_scale) * s;
}

// out = s * (g / coef_div) * (acc - 2 target), 4 elements per step (count % 4 == 0: d % 8 == 0).
// target (16-bit, the other operand's rows; CLIP's -2 I term of G) is nullable.
template <typename T>
__global__ void finish_grad(const float* acc, const uint16_t* target, int64_t count, const float* log_scale,
                            const float* grad_loss, float coef_div, uint16_t* out) {
  const float f = expf(*log_scale) * (*grad_loss / coef_div);
  for (int64_t i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * 4; i < count;
       i += int64_t(gridDim.x) * blockDim.x * 4) {
    float4 v = *reinterpret_cast<const float4*>(acc + i);
    if (target) {
      const uint2 t = *reinterpret_cast<const uint2*>(target + i);
      v.x -= 2.0f * unpack_lo<T>(t.x), v.y -= 2.0f * unpack_hi<T>(t.x);
      v.z -= 2.0f * unpack_lo<T>(t.y), v.w -= 2.0f * unpack_hi<T>(t.y);
    }
    *reinterpret_cast<uint2*>(out + i) = make_uint2(pack2<T>(f * v.x, f * v.y), pack2<T>(f * v.z, f * v.w));
  }
}

unsigned blocks_of(int64_t n, int threads) { return unsigned(ceil_div(n < 1 ? 1 : n, threads)); }

}  // namespace

void launch_merge_chunk(const Plan& plan, const Chunk& c, const float2* row_part, const float2* col_part,
                        float2* row_state, float2* col_state) {
  merge_chunk<<<blocks_of(c.rows > c.cols ? c.rows : c.cols, 256), 256, 0, stream()>>>(plan, c, row_part, col_part,
                                                                                     row_state, col_state);
  CUDA_CHECK_LAUNCH();
}

void launch_lse_from_states(int64_t n, const float2* row_state, const float2* col_state, float* lse_row,
                            float* lse_col) {
  lse_from_states<<<blocks_of(n, 256), 256, 0, stream()>>>(n, row_state, col_state, lse_row, lse_col);
  CUDA_CHECK_LAUNCH();
}

void launch_fixed_sum(const float* x, const float* y, int64_t nxy, const float* z, int64_t nz, const float* mult,
                      float scale, float* out) {
  fixed_sum<<<1, 1024, 0, stream()>>>(x, y, nxy, z, nz, mult, scale, out);
  CUDA_CHECK_LAUNCH();
}

void launch_diag_logits(DType dt, const uint16_t* a, const uint16_t* b, int64_t n, int d, const float* log_scale,
                        float* out) {
  if (dt == DType::bf16) {
    diag_logits<bf16><<<blocks_of(n, 8), 256, 0, stream()>>>(a, b, n, d, log_scale, out);
  } else {
    diag_logits<f16><<<blocks_of(n, 8), 256, 0, stream()>>>(a, b, n, d, log_scale, out);
  }
  CUDA_CHECK_LAUNCH();
}

void launch_finish_grad(DType dt, const float* acc, const uint16_t* target, int64_t count, const float* log_scale,
                        const float* grad_loss, float coef_div, uint16_t* out) {
  const unsigned blocks = grid_for(count / 4);
  if (dt == DType::bf16) {
    finish_grad<bf16><<<blocks, 256, 0, stream()>>>(acc, target, count, log_scale, grad_loss, coef_div, out);
  } else {
    finish_grad<f16><<<blocks, 256, 0, stream()>>>(acc, target, count, log_scale, grad_loss, coef_div, out);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace minivl::cuda::v3
