// Pointwise CPU kernels: strided copies with dtype conversion, fills, Philox random fills, unary,
// its derivative, binary, where, dropout. All run through for_each_row (kernels/cpu/strided_loop.h);
// the math is the shared definition in kernels/elementwise_ops.h. Memory-bound: one read per
// input and one write per element.
//
// Unary f32 rows with unit strides take a fast path: the switch on the op is
// hoisted out of the loop (one instantiation per op) and exp, sigmoid, tanh,
// quick_gelu, gelu_tanh and gelu (erf) run on eight lanes at a time with the
// vec_math_f32.h forms (explicit vectors, so AVX2-only builds vectorise too) instead
// of calling libm per element, whose expf / erff calls were a large share of the CLIP
// and VQA training steps (profiles in docs/clip.md and docs/vqa_caption.md); exact GELU
// (erf) goes through normal_parts_f32.
// exp_f32 is within 0.93 ulp, tanh_f32 2.4 ulp; the derivatives take 1 - s
// and 1 - tanh^2 from e^-x directly, so against a long-double reference the
// fast rows are as accurate as the libm path in absolute terms (<= 1.4 ulp of
// max(|y|, 1), measured on 2M points per op) and keep relative accuracy in the
// tails where 1 - s and 1 - t * t cancel. f64 (the gradient checks), bf16/f16 and
// strided views keep the generic per-element path.
#include <array>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/cpu/vec_math_f32.h"
#include "kernels/philox.h"

// F32x8 values cross (always-inlined) function boundaries: no ABI is involved, so the
// note GCC and Clang give for it on pre-AVX targets (-march=x86-64 builds) is noise.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace minivl::cpu {
namespace {

// ---- copies ----

// One element converted between dtypes; to bool is float(value) != 0.
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

// ---- unary ----

// The ops with a vector form: exp and the functions built on it.
constexpr bool has_vector_form(UnaryOp op) {
  return op == UnaryOp::exp || op == UnaryOp::sigmoid || op == UnaryOp::tanh || op == UnaryOp::quick_gelu ||
         op == UnaryOp::gelu_tanh || op == UnaryOp::gelu;
}

// y = f(x) on eight lanes (the same expressions as unary_forward, with exp_f32 / tanh_f32).
template <UnaryOp Op, typename V>
MINIVL_SIMD_INLINE V unary_vec(V x) {
  if constexpr (Op == UnaryOp::exp) {
    return exp_f32(x);
  } else if constexpr (Op == UnaryOp::sigmoid) {
    return sigmoid_f32(x);
  } else if constexpr (Op == UnaryOp::tanh) {
    return tanh_f32(x);
  } else if constexpr (Op == UnaryOp::quick_gelu) {
    return x / (1.0f + exp_f32(-1.702f * x));
  } else if constexpr (Op == UnaryOp::gelu) {
    return x * normal_parts_f32<V, false>(x).cdf;
  } else {
    static_assert(Op == UnaryOp::gelu_tanh);
    return 0.5f * x * tanh_parts_f32(0.7978845608028654f * (x + 0.044715f * x * x * x)).one_plus_t;
  }
}

// dy/dx on eight lanes. 1 - s is taken as e s (e = e^-z) where s -> 1, and 1 - tanh^2 from
// tanh_parts_f32, so the derivatives keep their relative accuracy in the tails.
template <UnaryOp Op, typename V>
MINIVL_SIMD_INLINE V unary_derivative_vec(V x) {
  if constexpr (Op == UnaryOp::exp) {
    return exp_f32(x);
  } else if constexpr (Op == UnaryOp::sigmoid) {
    const V e = exp_f32(-x), s = 1.0f / (1.0f + e);
    return s * select(x >= splat<V>(0.0f), e * s, 1.0f - s);
  } else if constexpr (Op == UnaryOp::tanh) {
    return tanh_parts_f32(x).one_minus_t2;
  } else if constexpr (Op == UnaryOp::quick_gelu) {
    const V e = exp_f32(-1.702f * x), s = 1.0f / (1.0f + e);
    return s + x * 1.702f * s * select(x >= splat<V>(0.0f), e * s, 1.0f - s);
  } else if constexpr (Op == UnaryOp::gelu) {
    const NormalParts<V> n = normal_parts_f32<V, true>(x);
    return n.cdf + x * n.pdf;
  } else {
    static_assert(Op == UnaryOp::gelu_tanh);
    const float k = 0.7978845608028654f;
    const TanhParts<V> th = tanh_parts_f32(k * (x + 0.044715f * x * x * x));
    const V dinner = k * (1.0f + float(3 * 0.044715) * x * x);
    return 0.5f * th.one_plus_t + 0.5f * x * th.one_minus_t2 * dinner;
  }
}

// One contiguous f32 row. Vector-form ops go eight lanes at a time, the last partial group
// through a zero-padded vector, so every element sees the same instructions; the other ops
// are plain loops over the shared scalar definition (the switch folds: Op is a constant;
// -O3 vectorises neg, abs, relu, affine and the like).
template <UnaryOp Op>
void unary_row_f32(UnaryParams p, const float* x, float* y, int64_t n) {
  if constexpr (has_vector_form(Op)) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store8(y + i, unary_vec<Op>(load8(x + i)));
    if (i < n) {
      float t[8] = {};
      std::memcpy(t, x + i, size_t(n - i) * sizeof(float));
      store8(t, unary_vec<Op>(load8(t)));
      std::memcpy(y + i, t, size_t(n - i) * sizeof(float));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = unary_forward<float>(Op, p, x[i]);
  }
}

template <UnaryOp Op>
void unary_backward_row_f32(UnaryParams p, const float* x, const float* gy, float* gx, int64_t n) {
  if constexpr (has_vector_form(Op)) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) store8(gx + i, unary_derivative_vec<Op>(load8(x + i)) * load8(gy + i));
    if (i < n) {
      float tx[8] = {}, tg[8] = {};
      std::memcpy(tx, x + i, size_t(n - i) * sizeof(float));
      std::memcpy(tg, gy + i, size_t(n - i) * sizeof(float));
      store8(tx, unary_derivative_vec<Op>(load8(tx)) * load8(tg));
      std::memcpy(gx + i, tx, size_t(n - i) * sizeof(float));
    }
  } else {
    for (int64_t i = 0; i < n; ++i) gx[i] = unary_derivative<float>(Op, p, x[i]) * gy[i];
  }
}

// Calls fn(std::integral_constant<UnaryOp, op>{}): the runtime op as a compile-time one.
template <typename Fn>
void with_unary_op(UnaryOp op, Fn&& fn) {
  switch (op) {
#define MINIVL_UNARY_CASE(name) \
  case UnaryOp::name: return fn(std::integral_constant<UnaryOp, UnaryOp::name>{});
    MINIVL_UNARY_CASE(neg)
    MINIVL_UNARY_CASE(exp)
    MINIVL_UNARY_CASE(log)
    MINIVL_UNARY_CASE(sqrt)
    MINIVL_UNARY_CASE(rsqrt)
    MINIVL_UNARY_CASE(pow)
    MINIVL_UNARY_CASE(abs)
    MINIVL_UNARY_CASE(tanh)
    MINIVL_UNARY_CASE(sigmoid)
    MINIVL_UNARY_CASE(relu)
    MINIVL_UNARY_CASE(gelu)
    MINIVL_UNARY_CASE(gelu_tanh)
    MINIVL_UNARY_CASE(quick_gelu)
    MINIVL_UNARY_CASE(clamp)
    MINIVL_UNARY_CASE(affine)
#undef MINIVL_UNARY_CASE
  }
}

}  // namespace

void copy(const StridedView& src, const StridedView& dst) {
  dispatch_all(src.dtype, "copy", [&]<typename S>(TypeTag<S>) {
    dispatch_all(dst.dtype, "copy", [&]<typename D>(TypeTag<D>) {
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
  dispatch_all(dst.dtype, "fill", [&]<typename scalar_t>(TypeTag<scalar_t>) {
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
void random_fill(const StridedView& dst, RandomKind kind, uint64_t seed, uint64_t offset) {
  dispatch_floating(dst.dtype, "random", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    const int64_t n = dst.numel();
    scalar_t* dp = dst.ptr<scalar_t>();
    const bool contiguous = dst.is_contiguous();
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      double v;
      if constexpr (std::is_same_v<scalar_t, double>) {
        v = kind == RandomKind::uniform ? philox_uniform_f64(seed, offset, uint64_t(i)) : double(philox_normal(seed, offset, uint64_t(i)));
      } else {
        v = kind == RandomKind::uniform ? philox_uniform(seed, offset, uint64_t(i)) : philox_normal(seed, offset, uint64_t(i));
      }
      store(dp + (contiguous ? i : strided_offset(dst, i)), static_cast<compute_t<scalar_t>>(v));
    }
  });
}

void unary(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& out) {
  dispatch_floating(x.dtype, "unary", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* xp = x.ptr<scalar_t>();
    scalar_t* op_ = out.ptr<scalar_t>();
    for_each_row<2>(out.sizes, out.ndim, {x.strides, out.strides}, [&](auto off, int64_t n, auto st) {
      const scalar_t* a = xp + off[0];
      scalar_t* y = op_ + off[1];
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (st[0] == 1 && st[1] == 1)
          return with_unary_op(op, [&](auto o) { unary_row_f32<decltype(o)::value>(p, a, y, n); });
      }
      for (int64_t i = 0; i < n; ++i) store(y + i * st[1], unary_forward<C>(op, p, load(a + i * st[0])));
    });
  });
}

void unary_backward(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& gy, const StridedView& gx) {
  dispatch_floating(x.dtype, "unary_backward", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* xp = x.ptr<scalar_t>();
    const scalar_t* gyp = gy.ptr<scalar_t>();
    scalar_t* gxp = gx.ptr<scalar_t>();
    for_each_row<3>(gx.sizes, gx.ndim, {x.strides, gy.strides, gx.strides}, [&](auto off, int64_t n, auto st) {
      if constexpr (std::is_same_v<scalar_t, float>) {
        if (st[0] == 1 && st[1] == 1 && st[2] == 1)
          return with_unary_op(op, [&](auto o) {
            unary_backward_row_f32<decltype(o)::value>(p, xp + off[0], gyp + off[1], gxp + off[2], n);
          });
      }
      for (int64_t i = 0; i < n; ++i) {
        C d = unary_derivative<C>(op, p, load(xp + off[0] + i * st[0]));
        store(gxp + off[2] + i * st[2], d * load(gyp + off[1] + i * st[1]));
      }
    });
  });
}

void binary(BinaryOp op, const StridedView& a, const StridedView& b, const StridedView& out) {
  dispatch_all(out.dtype, "binary", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const scalar_t* ap = a.ptr<scalar_t>();
    const scalar_t* bp = b.ptr<scalar_t>();
    scalar_t* op_ = out.ptr<scalar_t>();
    for_each_row<3>(out.sizes, out.ndim, {a.strides, b.strides, out.strides}, [&](auto off, int64_t n, auto st) {
      const scalar_t* x = ap + off[0];
      const scalar_t* y = bp + off[1];
      scalar_t* z = op_ + off[2];
      if (st[0] == 1 && st[1] == 1 && st[2] == 1) {  // the common case, vectorisable
        switch (op) {
          case BinaryOp::add:
            for (int64_t i = 0; i < n; ++i) store(z + i, C(load(x + i)) + C(load(y + i)));
            return;
          case BinaryOp::mul:
            for (int64_t i = 0; i < n; ++i) store(z + i, C(load(x + i)) * C(load(y + i)));
            return;
          default: break;
        }
      }
      for (int64_t i = 0; i < n; ++i)
        store(z + i * st[2], binary_forward<C>(op, load(x + i * st[0]), load(y + i * st[1])));
    });
  });
}

void where(const StridedView& cond, const StridedView& a, const StridedView& b, const StridedView& out) {
  // cond is bool or u8: one byte per element either way.
  dispatch_all(out.dtype, "where", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    const uint8_t* cp = static_cast<const uint8_t*>(cond.data);
    const scalar_t* ap = a.ptr<scalar_t>();
    const scalar_t* bp = b.ptr<scalar_t>();
    scalar_t* op_ = out.ptr<scalar_t>();
    for_each_row<4>(out.sizes, out.ndim, {cond.strides, a.strides, b.strides, out.strides},
                    [&](auto off, int64_t n, auto st) {
                      for (int64_t i = 0; i < n; ++i) {
                        bool c = cp[off[0] + i * st[0]] != 0;
                        op_[off[3] + i * st[3]] = c ? ap[off[1] + i * st[1]] : bp[off[2] + i * st[2]];
                      }
                    });
  });
}

// Element i (row-major over x's shape) is kept when its Philox uniform is >= p,
// so the mask is a pure function of (seed, offset, i): CUDA draws the same one.
void dropout(const StridedView& x, const StridedView& out, double p, uint64_t seed, uint64_t offset) {
  dispatch_floating(x.dtype, "dropout", [&]<typename scalar_t>(TypeTag<scalar_t>) {
    using C = compute_t<scalar_t>;
    const C scale = p < 1.0 ? C(1.0 / (1.0 - p)) : C(0);
    const float threshold = float(p);
    const int64_t n = x.numel();
    const scalar_t* xp = x.ptr<scalar_t>();
    scalar_t* yp = out.ptr<scalar_t>();
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      bool keep = philox_uniform(seed, offset, uint64_t(i)) >= threshold;
      store(yp + strided_offset(out, i), keep ? C(load(xp + strided_offset(x, i))) * scale : C(0));
    }
  });
}

}  // namespace minivl::cpu
