// Fills the kernel table's CPU slots from kernels/cpu (the only place that
// knows the CPU backend's function names) and registers the CPU kernel versions: the f32 GEMM
// ladder (kernels/cpu/gemm_ladder_cpu.h), whose version the matmul op's f32 slot asks the registry for.
#include <string>
#include <vector>

#include "core/dispatch.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/kernel_versions.h"
#include "kernels/adamw_kernel.h"
#include "kernels/cpu/attention_cpu.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/fused_cpu.h"
#include "kernels/cpu/gemm_cpu.h"
#include "kernels/cpu/gemm_ladder_cpu.h"

namespace minivl {
namespace {

// The ladder's entry for a version number: v4's is gemm_f32 itself (the widest microkernel this
// build compiled; the narrower v4 variants are benchmark rows, not versions).
const cpu::GemmF32Version* gemm_f32_version(int number) {
  const cpu::GemmF32Version* found = nullptr;
  for (const cpu::GemmF32Version& v : cpu::gemm_f32_versions())
    if (v.number == number && (!found || v.is_default)) found = &v;
  return found;
}

// The f32 GEMM the registry chooses (gemm_f32, v4, unless MINIVL_GEMM_VERSION asks for another).
cpu::GemmF32Function chosen_gemm_f32(int64_t K) {
  static const KernelVersionFamily& family = kernel_versions().family("gemm");
  return gemm_f32_version(family.choose({DType::f32, K}))->run;
}

// bf16/f16 GEMM on the CPU: widen each batch to f32, multiply, narrow back.
template <typename T>
void gemm_half_via_f32(const GemmProblem& p) {
  std::vector<float> a(size_t(p.M * p.K)), b(size_t(p.K * p.N)), c(size_t(p.M * p.N));
  const T* ap = static_cast<const T*>(p.a);
  const T* bp = static_cast<const T*>(p.b);
  T* cp = static_cast<T*>(p.c);
  for (int64_t bi = 0; bi < p.batch; ++bi) {
    const int64_t ao = p.a_offsets ? p.a_offsets[bi] : 0, bo = p.b_offsets ? p.b_offsets[bi] : 0,
                  co = p.c_offsets ? p.c_offsets[bi] : 0;
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t k = 0; k < p.K; ++k) a[size_t(i * p.K + k)] = load(ap + ao + i * p.a_row_stride + k * p.a_col_stride);
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t j = 0; j < p.N; ++j) b[size_t(k * p.N + j)] = load(bp + bo + k * p.b_row_stride + j * p.b_col_stride);
    if (p.beta != 0.0) {
      for (int64_t i = 0; i < p.M; ++i)
        for (int64_t j = 0; j < p.N; ++j) c[size_t(i * p.N + j)] = load(cp + co + i * p.c_row_stride + j * p.c_col_stride);
    }
    int64_t zero = 0;
    cpu::gemm_f32(1, p.M, p.N, p.K, float(p.alpha), a.data(), p.K, 1, &zero, b.data(), p.N, 1, &zero,
                  float(p.beta), c.data(), p.N, 1, &zero);
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) store(cp + co + i * p.c_row_stride + j * p.c_col_stride, c[size_t(i * p.N + j)]);
  }
}

void gemm_cpu(const GemmProblem& p) {
  MINIVL_CHECK(p.epilogue == GemmEpilogue::none, "matmul: the CPU GEMM has no epilogue (bias, GELU): add them as ops");
  switch (p.dtype) {
    case DType::f32:
      chosen_gemm_f32(p.K)(p.batch, p.M, p.N, p.K, float(p.alpha), static_cast<const float*>(p.a), p.a_row_stride,
                    p.a_col_stride, p.a_offsets, static_cast<const float*>(p.b), p.b_row_stride, p.b_col_stride,
                    p.b_offsets, float(p.beta), static_cast<float*>(p.c), p.c_row_stride, p.c_col_stride,
                    p.c_offsets);
      return;
    case DType::f64:
      cpu::gemm_f64(p.batch, p.M, p.N, p.K, p.alpha, static_cast<const double*>(p.a), p.a_row_stride,
                    p.a_col_stride, p.a_offsets, static_cast<const double*>(p.b), p.b_row_stride, p.b_col_stride,
                    p.b_offsets, p.beta, static_cast<double*>(p.c), p.c_row_stride, p.c_col_stride, p.c_offsets);
      return;
    case DType::bf16: return gemm_half_via_f32<bf16>(p);
    case DType::f16: return gemm_half_via_f32<f16>(p);
    default: MINIVL_FAIL("matmul: no CPU GEMM for dtype ", dtype_name(p.dtype));
  }
}

}  // namespace

void register_cpu_kernels(KernelTable& t) {
  const int d = int(DeviceType::CPU);
#define MINIVL_REGISTER_CPU(name, params) t.name[d] = cpu::name;
  MINIVL_SHARED_KERNELS(MINIVL_REGISTER_CPU)
#undef MINIVL_REGISTER_CPU
  t.gemm[d] = gemm_cpu;
  t.layernorm[d] = cpu::layernorm_forward;
  t.layernorm_backward[d] = cpu::layernorm_backward;
  t.clip_loss[d] = cpu::clip_loss_forward;
  t.clip_loss_backward[d] = cpu::clip_loss_backward;
  t.siglip_loss[d] = cpu::siglip_loss_forward;
  t.siglip_loss_backward[d] = cpu::siglip_loss_backward;
  t.attention[d] = cpu::attention_forward;
  t.attention_backward[d] = cpu::attention_backward;
  t.adamw[d] = cpu::adamw_step;
}

void register_cpu_kernel_versions(KernelVersionRegistry& versions) {
  KernelVersionFamily& f = versions.add_family("gemm", "cpu", "size", {{"any M, N, K", 64}}, {DType::f32});
  const char* const tested =
      "tests pass on the CPU (tests/test_gemm_ladder.cpp: against v1 at awkward sizes and layouts; v1 against f64)";
  const char* const names[] = {"", "naive", "blocked", "packed", "register-tiled"};
  for (int n = 1; n <= 4; ++n) {
    const cpu::GemmF32Version* v = gemm_f32_version(n);
    MINIVL_CHECK(v != nullptr, "the CPU GEMM ladder has no v", n);
    f.add({n, names[n], [](const VersionQuery& q) { return q.dtype == DType::f32; }, "f32; any M, N, K",
           std::string(v->summary) + " (" + v->name + "). The matmul op's f32 GEMM; bf16/f16 matmuls and the " +
               "CPU attention and contrastive tiles call v4 directly",
           tested});
  }
}

}  // namespace minivl
