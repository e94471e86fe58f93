// Strided copies with dtype conversion, fills, and Philox random fills.
// Memory-bound: one read and one write per element.
#include <array>
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/philox.h"

namespace minivl::cpu {

namespace {
template <typename Dst, typename Src>
inline Dst convert(Src v) {
  if constexpr (std::is_same_v<Dst, bool>) {
    return float(load(&v)) != 0.0f;
  } else {
    Dst out;
    store(&out, load(&v));
    return out;
  }
}
}  // namespace

void copy(const StridedView& src, const StridedView& dst) {
  dispatch_all(src.dtype, "copy", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    using S = scalar_t;
    dispatch_all(dst.dtype, "copy", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
      using D = scalar_t;
      const S* sp = src.ptr<S>();
      D* dp = dst.ptr<D>();
      for_each_row<2>(dst.sizes, dst.ndim, {src.strides, dst.strides}, [&](auto off, int64_t n, auto st) {
        if constexpr (std::is_same_v<S, D>) {
          if (st[0] == 1 && st[1] == 1) {
            std::memcpy(dp + off[1], sp + off[0], size_t(n) * sizeof(D));
            return;
          }
        }
        for (int64_t i = 0; i < n; ++i) dp[off[1] + i * st[1]] = convert<D>(sp[off[0] + i * st[0]]);
      });
    });
  });
}

void fill(const StridedView& dst, double value) {
  dispatch_all(dst.dtype, "fill", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    scalar_t v;
    if constexpr (std::is_same_v<scalar_t, bool>) v = value != 0.0;
    else store(&v, static_cast<compute_t<scalar_t>>(value));
    scalar_t* dp = dst.ptr<scalar_t>();
    for_each_row<1>(dst.sizes, dst.ndim, {dst.strides}, [&](auto off, int64_t n, auto st) {
      for (int64_t i = 0; i < n; ++i) dp[off[0] + i * st[0]] = v;
    });
  });
}

// Element i of the (row-major) output takes Philox draw i of (seed, offset).
void random_fill(const StridedView& dst, int kind, uint64_t seed, uint64_t offset) {
  dispatch_floating(dst.dtype, "random", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    const int64_t n = dst.numel();
    scalar_t* dp = dst.ptr<scalar_t>();
    const bool contiguous = dst.is_contiguous();
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      double v;
      if constexpr (std::is_same_v<scalar_t, double>) {
        v = kind == 0 ? philox_uniform_f64(seed, offset, uint64_t(i)) : double(philox_normal(seed, offset, uint64_t(i)));
      } else {
        v = kind == 0 ? philox_uniform(seed, offset, uint64_t(i)) : philox_normal(seed, offset, uint64_t(i));
      }
      store(dp + (contiguous ? i : strided_offset(dst, i)), static_cast<compute_t<scalar_t>>(v));
    }
  });
}

}  // namespace minivl::cpu
