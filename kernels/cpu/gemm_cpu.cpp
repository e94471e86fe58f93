// CPU GEMM: packed, register-blocked, BLIS-style (see gemm_cpu.h for the contract). This is
// v4, the top of the ladder in gemm_ladder_cpu.h (v1-v3 are in gemm_ladder_cpu.cpp).
//
// Loops, outermost first (GotoBLAS / BLIS naming):
//   jc over N by nc:  pack B(:, jc:jc+nc), all of K, into KC x NR micro-panels   (L3, <= 8 MiB)
//     unit = (mc rows of A) x (a chunk of B micro-panels), taken dynamically by threads
//       pc over K by KC:  pack A(ic:ic+mc, pc:pc+KC) into MR x KC micro-panels   (L2)
//         jr over the chunk by NR, ir over mc by MR:  microkernel, C(MR x NR) += A panel @ B panel
// The KC x NR B micro-panel is reused (from L1 / L2) while ir sweeps the packed A block.
//
// Microkernel (chosen at compile time):
//   AVX-512: f32 14 x 32 (28 zmm accumulators, 2 B vectors, 1 broadcast of A),
//            f64 14 x 16 (same register shape). Per k: 2 vector loads of B,
//            14 broadcasts of A, 28 FMAs; 28 independent chains cover the FMA
//            latency x throughput (4 cycles x 2 pipes = 8), so it is FMA-bound.
//   AVX2+FMA: f32 6 x 16, f64 6 x 8 (12 ymm accumulators). An AVX-512 build also
//             compiles the f32 one, as the ladder's v4_avx2 (gemm_f32_v4_variants).
//   Scalar:   4 x 4.
// Blocking (f32 AVX-512; L1d 48 KiB, L2 1 MiB per core on the Zen 5 dev box):
//   KC = 512: A micro-panel 14 x 512 x 4 B = 28 KiB in L1; the B micro-panel (512 x 32 x 4 B
//             = 64 KiB) streams from L2 while ir sweeps the A panels. Measured faster than
//             KC = 256 with its B panel in L1, likely because half as many microkernel calls
//             means half the C tile read-modify-writes (docs/kernels/gemm.md, "Tuning v4").
//   MC = 168: packed A block 168 x 512 x 4 B = 336 KiB, a third of L2 (smaller mc when
//             threads need more units; never under 4 * MR rows).
//   nc:       all of K x nc of B packed once, capped at 8 MiB (L3 is 32 MiB).
// Bound: compute. Packing costs O(MK + KN) scalar copies against 2MNK FLOPs; the
// C update is one read-modify-write of C per KC slice.
// Edge tiles: packing zero-pads A rows / B columns to MR / NR, so the microkernel
// always runs a full tile; only the C update is clipped (masked loads/stores).
//
// Files: this one holds the microkernel, the loop nest that calls it (kept together
// so the microkernel inlines into it) and the threading; the packing routines are in
// gemm_pack_cpu.cpp, and gemm_internal.h declares what the two share (tile shapes, pack_*).
//
// Threads (OpenMP): a batch of many or small GEMMs runs one GEMM per thread with
// private pack buffers. Otherwise one team shares the packed B: threads claim B-panel
// packing jobs and then work units from atomic counters (packing their own A), and
// wait only for work to be finished, never at a barrier for a thread to arrive, so a
// thread that the OS delays on a busy machine does not stall the others (see TeamSync).
#include "kernels/cpu/gemm_cpu.h"
#include "kernels/cpu/gemm_internal.h"
#include "kernels/cpu/gemm_ladder_cpu.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // SIMD intrinsics and _mm_pause
#endif

namespace minivl::cpu {
namespace {

// ---------------------------------------------------------------------------
// SIMD vocabulary: one struct per (ISA, scalar type), all with the same members.
// ---------------------------------------------------------------------------
#if defined(__AVX512F__)
struct SimdAvx512F32 {
  using Scalar = float;
  using Vec = __m512;
  static constexpr int kWidth = 16;
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec broadcast(float x) { return _mm512_set1_ps(x); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec load_first(const float* p, int count) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << count) - 1), p);
  }
  static void store_first(float* p, Vec v, int count) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << count) - 1), v);
  }
};
struct SimdAvx512F64 {
  using Scalar = double;
  using Vec = __m512d;
  static constexpr int kWidth = 8;
  static Vec zero() { return _mm512_setzero_pd(); }
  static Vec broadcast(double x) { return _mm512_set1_pd(x); }
  static Vec load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, Vec v) { _mm512_storeu_pd(p, v); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_pd(a, b, c); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_pd(a, b); }
  static Vec load_first(const double* p, int count) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << count) - 1), p);
  }
  static void store_first(double* p, Vec v, int count) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << count) - 1), v);
  }
};
#endif
#if defined(__AVX2__) && defined(__FMA__)
// Sliding window over {-1 x W, 0 x W}: the first `count` lanes set.
alignas(64) constexpr int32_t kLaneMask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
alignas(64) constexpr int64_t kLaneMask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};
struct SimdAvx2F32 {
  using Scalar = float;
  using Vec = __m256;
  static constexpr int kWidth = 8;
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec broadcast(float x) { return _mm256_set1_ps(x); }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static __m256i mask(int count) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask32 + 8 - count));
  }
  static Vec load_first(const float* p, int count) { return _mm256_maskload_ps(p, mask(count)); }
  static void store_first(float* p, Vec v, int count) { _mm256_maskstore_ps(p, mask(count), v); }
};
struct SimdAvx2F64 {
  using Scalar = double;
  using Vec = __m256d;
  static constexpr int kWidth = 4;
  static Vec zero() { return _mm256_setzero_pd(); }
  static Vec broadcast(double x) { return _mm256_set1_pd(x); }
  static Vec load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, Vec v) { _mm256_storeu_pd(p, v); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_pd(a, b, c); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_pd(a, b); }
  static __m256i mask(int count) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kLaneMask64 + 4 - count));
  }
  static Vec load_first(const double* p, int count) { return _mm256_maskload_pd(p, mask(count)); }
  static void store_first(double* p, Vec v, int count) { _mm256_maskstore_pd(p, mask(count), v); }
};
#endif
template <class T>
struct SimdScalar {
  using Scalar = T;
  using Vec = T;
  static constexpr int kWidth = 1;
  static Vec zero() { return T(0); }
  static Vec broadcast(T x) { return x; }
  static Vec load(const T* p) { return *p; }
  static void store(T* p, Vec v) { *p = v; }
  static Vec fmadd(Vec a, Vec b, Vec c) { return a * b + c; }
  static Vec mul(Vec a, Vec b) { return a * b; }
  static Vec load_first(const T* p, int count) { return count > 0 ? *p : T(0); }
  static void store_first(T* p, Vec v, int count) {
    if (count > 0) *p = v;
  }
};

// The widest vocabulary the build has is gemm_f32's / gemm_f64's.
#if defined(__AVX512F__)
using SimdF32 = SimdAvx512F32;
using SimdF64 = SimdAvx512F64;
#elif defined(__AVX2__) && defined(__FMA__)
using SimdF32 = SimdAvx2F32;
using SimdF64 = SimdAvx2F64;
#else
using SimdF32 = SimdScalar<float>;
using SimdF64 = SimdScalar<double>;
#endif

// ---------------------------------------------------------------------------
// Microkernel: C(m_valid x n_valid) = alpha * Apanel @ Bpanel + beta * C.
// a_panel: (kc, MR) packed, a_panel[k * MR + i]; b_panel: (kc, NR) packed,
// b_panel[k * NR + j]; both zero-padded, so the FMA loop never branches.
// ---------------------------------------------------------------------------
template <class Simd, int kMR, int kNR>
struct Microkernel {
  using T = typename Simd::Scalar;
  using Vec = typename Simd::Vec;
  static constexpr int MR = kMR;
  static constexpr int NR = kNR;
  static constexpr int kVecsPerRow = NR / Simd::kWidth;
  static_assert(NR % Simd::kWidth == 0, "NR must be a whole number of vectors");

  static void run(int64_t kc, const T* __restrict a_panel, const T* __restrict b_panel, T* c,
                  int64_t c_row_stride, int64_t c_col_stride, int m_valid, int n_valid, T alpha,
                  T beta) {
    Vec acc[MR][kVecsPerRow];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < kVecsPerRow; ++v) acc[i][v] = Simd::zero();

    for (int64_t k = 0; k < kc; ++k) {
      Vec b_row[kVecsPerRow];
#pragma GCC unroll 8
      for (int v = 0; v < kVecsPerRow; ++v) b_row[v] = Simd::load(b_panel + v * Simd::kWidth);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const Vec a_broadcast = Simd::broadcast(a_panel[i]);
#pragma GCC unroll 8
        for (int v = 0; v < kVecsPerRow; ++v) acc[i][v] = Simd::fmadd(a_broadcast, b_row[v], acc[i][v]);
      }
      a_panel += MR;
      b_panel += NR;
    }

    const Vec alpha_vec = Simd::broadcast(alpha);
    const Vec beta_vec = Simd::broadcast(beta);
    if (c_col_stride == 1) {
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        if (i >= m_valid) break;
        T* c_row = c + i * c_row_stride;
#pragma GCC unroll 8
        for (int v = 0; v < kVecsPerRow; ++v) {
          const int count = n_valid - v * Simd::kWidth;
          if (count <= 0) break;
          T* c_vec = c_row + v * Simd::kWidth;
          Vec result = Simd::mul(alpha_vec, acc[i][v]);
          if (count >= Simd::kWidth) {
            if (beta != T(0)) result = Simd::fmadd(beta_vec, Simd::load(c_vec), result);
            Simd::store(c_vec, result);
          } else {
            if (beta != T(0)) result = Simd::fmadd(beta_vec, Simd::load_first(c_vec, count), result);
            Simd::store_first(c_vec, result, count);
          }
        }
      }
      return;
    }
    // Any other C layout: spill the tile and update element by element.
    alignas(64) T tile[MR * NR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < kVecsPerRow; ++v) Simd::store(tile + i * NR + v * Simd::kWidth, acc[i][v]);
    for (int i = 0; i < m_valid; ++i)
      for (int j = 0; j < n_valid; ++j) {
        T& out = c[i * c_row_stride + j * c_col_stride];
        out = beta == T(0) ? alpha * tile[i * NR + j] : alpha * tile[i * NR + j] + beta * out;
      }
  }
};

// Tile shapes come from gemm_internal.h, which the packing code (gemm_pack_cpu.cpp) shares.
using KernelF32 = Microkernel<SimdF32, detail::KernelShape<float>::MR, detail::KernelShape<float>::NR>;
using KernelF64 = Microkernel<SimdF64, detail::KernelShape<double>::MR, detail::KernelShape<double>::NR>;
#if defined(__AVX512F__)
constexpr const char* kKernelF32Name = "avx512 14x32";
#elif defined(__AVX2__) && defined(__FMA__)
constexpr const char* kKernelF32Name = "avx2+fma 6x16";
#else
constexpr const char* kKernelF32Name = "scalar 4x4";
#endif
#if MINIVL_GEMM_AVX2_BESIDE_AVX512
using KernelAvx2F32 = Microkernel<SimdAvx2F32, detail::Avx2TileF32::MR, detail::Avx2TileF32::NR>;
#endif

using detail::pack_a_panel;  // gemm_pack_cpu.cpp
using detail::pack_b_panel;

// Cache blocking of one microkernel, in elements (see the header comment for the byte budgets).
template <class Kernel>
struct Blocking {
  static constexpr bool kF32 = sizeof(typename Kernel::T) == 4;
  static constexpr int64_t KC = kF32 ? 512 : 192;
  static constexpr int64_t MC = 168 / Kernel::MR * Kernel::MR;
};

// ---------------------------------------------------------------------------
// Driver.
// ---------------------------------------------------------------------------
template <class T>
struct GemmOperands {  // one GEMM of the batch, offsets already applied
  int64_t M, N, K;
  T alpha;
  const T* a;
  int64_t a_row_stride, a_col_stride;
  const T* b;
  int64_t b_row_stride, b_col_stride;
  T beta;
  T* c;
  int64_t c_row_stride, c_col_stride;
};

// A 64-byte-aligned scratch buffer that only grows.
template <class T>
class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { std::free(data_); }
  T* reserve(size_t elements) {
    if (elements > capacity_) {
      std::free(data_);
      const size_t bytes = (elements * sizeof(T) + 63) / 64 * 64;
      data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (!data_) throw std::bad_alloc();
      capacity_ = elements;
    }
    return data_;
  }

 private:
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

template <class T>
struct PackBuffers {
  PackBuffer<T> a, b;
};

// Each thread keeps its buffers between calls (no allocation per small GEMM).
template <class T>
PackBuffers<T>& this_thread_pack_buffers() {
  thread_local PackBuffers<T> buffers;
  return buffers;
}

inline int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
inline int64_t round_up(int64_t x, int64_t multiple) { return ceil_div(x, multiple) * multiple; }

// How a team coordinates without barriers. Jobs (packing one B micro-panel, or one
// work unit) are numbered across the whole parallel region and claimed with a CAS
// that never overshoots, so every thread can compute the same job ranges on its own.
// A thread waits only for *work* to be finished (all of B packed before computing;
// all units done before B is repacked), never for another thread to show up: if the
// OS delays a thread, the others take its share. Waiting spins briefly, then yields
// (plain spinning steals the time slice a delayed partner needs on a loaded machine).
struct TeamSync {
  std::atomic<int64_t> packs_claimed{0}, packs_done{0};
  std::atomic<int64_t> units_claimed{0}, units_done{0};

  // The next job id below `end`, or -1 when all are claimed.
  static int64_t claim(std::atomic<int64_t>& claimed, int64_t end) {
    int64_t next = claimed.load(std::memory_order_relaxed);
    while (next < end)
      if (claimed.compare_exchange_weak(next, next + 1, std::memory_order_relaxed)) return next;
    return -1;
  }
  static void wait_until_at_least(const std::atomic<int64_t>& done, int64_t target) {
    for (int spins = 0; done.load(std::memory_order_acquire) < target; ++spins) {
      if (spins < 256) {
#if defined(__x86_64__) || defined(__i386__)
        _mm_pause();
#endif
      } else {
        std::this_thread::yield();
      }
    }
  }
};

// A thread's position in the team's job numbering; identical on every thread.
struct TeamCursor {
  int64_t packs_before = 0, units_before = 0;
};

// The packed B block holds all of K for nc columns: nc is capped so it stays within this.
constexpr int64_t kPackedBBytes = int64_t(8) << 20;

template <class Kernel>
int64_t packed_b_columns(int64_t N, int64_t K) {
  using T = typename Kernel::T;
  const int64_t cap = std::max<int64_t>(Kernel::NR, kPackedBBytes / int64_t(sizeof(T)) / K / Kernel::NR * Kernel::NR);
  return std::min(round_up(N, Kernel::NR), cap);
}

// One GEMM is cut into units: a row block of mc rows of A times a chunk of
// consecutive B micro-panels. Threads take units dynamically, so a thread that
// the OS delays does not hold the others back.
struct WorkSplit {
  int64_t mc, m_blocks, panels_per_chunk, n_chunks;
  int64_t units() const { return m_blocks * n_chunks; }
};

template <class Kernel>
WorkSplit split_work(int64_t M, int64_t n_panels, int threads) {
  constexpr int64_t MR = Kernel::MR, MC = Blocking<Kernel>::MC;
  if (threads == 1) return {MC, ceil_div(M, MC), n_panels, 1};
  const int64_t target_units = 4 * int64_t(threads);
  const int64_t min_mc = 4 * MR;  // below this, B micro-panels are reused too little
  int64_t mc = std::clamp(round_up(ceil_div(M, target_units), MR), min_mc, MC);
  const int64_t m_blocks = ceil_div(M, mc);
  mc = round_up(ceil_div(M, m_blocks), MR);  // even out the blocks
  const int64_t wanted_chunks = std::min(n_panels, ceil_div(target_units, m_blocks));
  const int64_t panels_per_chunk = ceil_div(n_panels, wanted_chunks);
  return {mc, m_blocks, panels_per_chunk, ceil_div(n_panels, panels_per_chunk)};
}

// One GEMM (K >= 1). With sync == nullptr one thread does all of it; otherwise every
// thread of the team calls it with the same operands, the same shared packed_b
// (K x packed_b_columns elements), the same TeamSync and its own equal TeamCursor.
// Each thread packs A into its own buffer.
template <class Kernel>
void gemm_team(const GemmOperands<typename Kernel::T>& g, typename Kernel::T* packed_b, TeamSync* sync,
               TeamCursor& cursor, int threads) {
  using T = typename Kernel::T;
  constexpr int MR = Kernel::MR, NR = Kernel::NR;
  constexpr int64_t KC = Blocking<Kernel>::KC;
  const int64_t nc_max = packed_b_columns<Kernel>(g.N, g.K);
  const int64_t k_slices = ceil_div(g.K, KC);

  for (int64_t jc = 0; jc < g.N; jc += nc_max) {
    const int64_t nc = std::min(nc_max, g.N - jc);
    const int64_t n_panels = ceil_div(nc, NR);
    const int64_t slice_elements = n_panels * NR;  // per K row of a slice
    const WorkSplit split = split_work<Kernel>(g.M, n_panels, sync ? threads : 1);

    // Pack B(:, jc:jc+nc): slice pc starts at packed_b + pc * slice_elements, its panel jp
    // (kc x NR) at + jp * NR * kc. Job p = (slice p / n_panels, panel p % n_panels).
    const int64_t packs = k_slices * n_panels;
    auto pack_b_job = [&](int64_t p) {
      const int64_t pc = p / n_panels * KC, jp = p % n_panels;
      const int64_t kc = std::min(KC, g.K - pc);
      const int n = int(std::min<int64_t>(NR, nc - jp * NR));
      pack_b_panel<NR>(g.b + pc * g.b_row_stride + (jc + jp * NR) * g.b_col_stride, g.b_row_stride, g.b_col_stride,
                       n, kc, packed_b + pc * slice_elements + jp * NR * kc);
    };
    if (sync) {
      TeamSync::wait_until_at_least(sync->units_done, cursor.units_before);  // nobody still reads old B
      const int64_t end = cursor.packs_before + packs;
      for (int64_t job; (job = TeamSync::claim(sync->packs_claimed, end)) >= 0;) {
        pack_b_job(job - cursor.packs_before);
        sync->packs_done.fetch_add(1, std::memory_order_release);
      }
      TeamSync::wait_until_at_least(sync->packs_done, end);
      cursor.packs_before = end;
    } else {
      for (int64_t p = 0; p < packs; ++p) pack_b_job(p);
    }

    T* packed_a = this_thread_pack_buffers<T>().a.reserve(size_t(round_up(split.mc, MR) * std::min(g.K, KC)));
    auto compute_unit = [&](int64_t unit) {
      const int64_t ic = unit / split.n_chunks * split.mc;
      const int64_t mc = std::min(split.mc, g.M - ic);
      const int64_t m_panels = ceil_div(mc, MR);
      const int64_t jp_begin = unit % split.n_chunks * split.panels_per_chunk;
      const int64_t jp_end = std::min(n_panels, jp_begin + split.panels_per_chunk);
      for (int64_t pc = 0; pc < g.K; pc += KC) {
        const int64_t kc = std::min(KC, g.K - pc);
        const T beta = pc == 0 ? g.beta : T(1);  // later K slices accumulate into C
        for (int64_t ip = 0; ip < m_panels; ++ip) {
          const int m = int(std::min<int64_t>(MR, mc - ip * MR));
          pack_a_panel<MR>(g.a + (ic + ip * MR) * g.a_row_stride + pc * g.a_col_stride, g.a_row_stride,
                           g.a_col_stride, m, kc, packed_a + ip * MR * kc);
        }
        // jr outer, ir inner: the kc x NR B micro-panel stays in L1 across the A panels.
        for (int64_t jp = jp_begin; jp < jp_end; ++jp) {
          const T* b_panel = packed_b + pc * slice_elements + jp * NR * kc;
          const int n = int(std::min<int64_t>(NR, nc - jp * NR));
          for (int64_t ip = 0; ip < m_panels; ++ip) {
            const int m = int(std::min<int64_t>(MR, mc - ip * MR));
            T* c_tile = g.c + (ic + ip * MR) * g.c_row_stride + (jc + jp * NR) * g.c_col_stride;
            Kernel::run(kc, packed_a + ip * MR * kc, b_panel, c_tile, g.c_row_stride, g.c_col_stride, m, n,
                        g.alpha, beta);
          }
        }
      }
    };
    if (sync) {
      const int64_t end = cursor.units_before + split.units();
      for (int64_t job; (job = TeamSync::claim(sync->units_claimed, end)) >= 0;) {
        compute_unit(job - cursor.units_before);
        sync->units_done.fetch_add(1, std::memory_order_release);
      }
      cursor.units_before = end;
    } else {
      for (int64_t unit = 0; unit < split.units(); ++unit) compute_unit(unit);
    }
  }
}

// C = beta * C (zeros when beta == 0, never reading C): the K == 0 / alpha == 0 case.
template <class T>
void scale_c(T* c, int64_t M, int64_t N, int64_t row_stride, int64_t col_stride, T beta) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      T& out = c[i * row_stride + j * col_stride];
      out = beta == T(0) ? T(0) : beta * out;
    }
}

// Below this many FLOPs per GEMM, one thread does a whole GEMM (team overhead dominates).
constexpr double kMinFlopsForTeam = 1 << 21;

template <class Kernel>
void gemm_batched(int64_t batch, int64_t M, int64_t N, int64_t K, typename Kernel::T alpha,
                  const typename Kernel::T* a, int64_t a_row_stride, int64_t a_col_stride,
                  const int64_t* a_offsets, const typename Kernel::T* b, int64_t b_row_stride,
                  int64_t b_col_stride, const int64_t* b_offsets, typename Kernel::T beta,
                  typename Kernel::T* c, int64_t c_row_stride, int64_t c_col_stride,
                  const int64_t* c_offsets) {
  using T = typename Kernel::T;
  if (c_offsets == nullptr) batch = 1;
  if (batch <= 0 || M <= 0 || N <= 0) return;

  auto operands = [&](int64_t index) {
    return GemmOperands<T>{M,
                           N,
                           K,
                           alpha,
                           a + (a_offsets ? a_offsets[index] : 0),
                           a_row_stride,
                           a_col_stride,
                           b + (b_offsets ? b_offsets[index] : 0),
                           b_row_stride,
                           b_col_stride,
                           beta,
                           c + (c_offsets ? c_offsets[index] : 0),
                           c_row_stride,
                           c_col_stride};
  };

  const int max_threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (K <= 0 || alpha == T(0)) {
#pragma omp parallel for schedule(static) num_threads(max_threads) if (batch > 1 && max_threads > 1)
    for (int64_t index = 0; index < batch; ++index)
      scale_c(operands(index).c, M, N, c_row_stride, c_col_stride, beta);
    return;
  }

  const size_t packed_b_elements = size_t(K * packed_b_columns<Kernel>(N, K));
  const double flops_per_gemm = 2.0 * double(M) * double(N) * double(K);
  const bool one_gemm_per_thread =
      max_threads > 1 && batch > 1 &&
      (batch % max_threads == 0 || batch >= 4 * max_threads || flops_per_gemm < kMinFlopsForTeam);
  if (one_gemm_per_thread) {
#pragma omp parallel num_threads(max_threads)
    {
      T* packed_b = this_thread_pack_buffers<T>().b.reserve(packed_b_elements);
      TeamCursor unused;
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t index = 0; index < batch; ++index) gemm_team<Kernel>(operands(index), packed_b, nullptr, unused, 1);
    }
    return;
  }

  // One team per GEMM, sharing the caller's packed B buffer.
  T* packed_b = this_thread_pack_buffers<T>().b.reserve(packed_b_elements);
  const int team_threads = flops_per_gemm < kMinFlopsForTeam ? 1 : max_threads;
  TeamCursor cursor;
  if (team_threads == 1) {
    for (int64_t index = 0; index < batch; ++index) gemm_team<Kernel>(operands(index), packed_b, nullptr, cursor, 1);
    return;
  }
  TeamSync sync;
#pragma omp parallel num_threads(team_threads) firstprivate(cursor)
  {
    const int threads = omp_get_num_threads();
    TeamSync* team_sync = threads > 1 ? &sync : nullptr;
    for (int64_t index = 0; index < batch; ++index)
      gemm_team<Kernel>(operands(index), packed_b, team_sync, cursor, threads);
  }
}

}  // namespace

void gemm_f32(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
              int64_t a_row_stride, int64_t a_col_stride, const int64_t* a_offsets, const float* b,
              int64_t b_row_stride, int64_t b_col_stride, const int64_t* b_offsets, float beta, float* c,
              int64_t c_row_stride, int64_t c_col_stride, const int64_t* c_offsets) {
  gemm_batched<KernelF32>(batch, M, N, K, alpha, a, a_row_stride, a_col_stride, a_offsets, b,
                          b_row_stride, b_col_stride, b_offsets, beta, c, c_row_stride, c_col_stride,
                          c_offsets);
}

void gemm_f64(int64_t batch, int64_t M, int64_t N, int64_t K, double alpha, const double* a,
              int64_t a_row_stride, int64_t a_col_stride, const int64_t* a_offsets, const double* b,
              int64_t b_row_stride, int64_t b_col_stride, const int64_t* b_offsets, double beta,
              double* c, int64_t c_row_stride, int64_t c_col_stride, const int64_t* c_offsets) {
  gemm_batched<KernelF64>(batch, M, N, K, alpha, a, a_row_stride, a_col_stride, a_offsets, b,
                          b_row_stride, b_col_stride, b_offsets, beta, c, c_row_stride, c_col_stride,
                          c_offsets);
}

const char* gemm_f32_microkernel_name() { return kKernelF32Name; }

#if MINIVL_GEMM_AVX2_BESIDE_AVX512
namespace {
void gemm_f32_v4_avx2(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* a,
                      int64_t a_row_stride, int64_t a_col_stride, const int64_t* a_offsets, const float* b,
                      int64_t b_row_stride, int64_t b_col_stride, const int64_t* b_offsets, float beta, float* c,
                      int64_t c_row_stride, int64_t c_col_stride, const int64_t* c_offsets) {
  gemm_batched<KernelAvx2F32>(batch, M, N, K, alpha, a, a_row_stride, a_col_stride, a_offsets, b, b_row_stride,
                              b_col_stride, b_offsets, beta, c, c_row_stride, c_col_stride, c_offsets);
}
}  // namespace
#endif

std::span<const GemmF32Version> gemm_f32_v4_variants() {
  static const GemmF32Version variants[] = {
#if MINIVL_GEMM_AVX2_BESIDE_AVX512
      {4, "v4_avx2_6x16", "v4 with the AVX2 6 x 16 microkernel (12 ymm accumulators)", gemm_f32_v4_avx2, false},
#endif
#if defined(__AVX512F__)
      {4, "v4_avx512_14x32", "packed micro-panels, 14 x 32 register tile (28 zmm accumulators)", gemm_f32, true},
#elif defined(__AVX2__) && defined(__FMA__)
      {4, "v4_avx2_6x16", "packed micro-panels, 6 x 16 register tile (12 ymm accumulators)", gemm_f32, true},
#else
      {4, "v4_scalar_4x4", "packed micro-panels, 4 x 4 scalar tile", gemm_f32, true},
#endif
  };
  return variants;
}

}  // namespace minivl::cpu
