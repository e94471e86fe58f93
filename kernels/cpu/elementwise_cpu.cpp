// Pointwise CPU kernels: unary, its derivative, binary, where, dropout.
// All run through for_each_row (kernels/cpu/strided_loop.h); the math is the
// shared definition in kernels/elementwise_ops.h. Memory-bound: one read per
// input and one write per element.
#include <array>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/strided_loop.h"
#include "kernels/philox.h"

namespace minivl::cpu {

void unary(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& out) {
  dispatch_floating(x.dtype, "unary", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    using C = compute_t<scalar_t>;
    const scalar_t* xp = x.ptr<scalar_t>();
    scalar_t* op_ = out.ptr<scalar_t>();
    for_each_row<2>(out.sizes, out.ndim, {x.strides, out.strides}, [&](auto off, int64_t n, auto st) {
      const scalar_t* a = xp + off[0];
      scalar_t* y = op_ + off[1];
      for (int64_t i = 0; i < n; ++i) store(y + i * st[1], unary_forward<C>(op, p, load(a + i * st[0])));
    });
  });
}

void unary_backward(UnaryOp op, UnaryParams p, const StridedView& x, const StridedView& gy, const StridedView& gx) {
  dispatch_floating(x.dtype, "unary_backward", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
    using C = compute_t<scalar_t>;
    const scalar_t* xp = x.ptr<scalar_t>();
    const scalar_t* gyp = gy.ptr<scalar_t>();
    scalar_t* gxp = gx.ptr<scalar_t>();
    for_each_row<3>(gx.sizes, gx.ndim, {x.strides, gy.strides, gx.strides}, [&](auto off, int64_t n, auto st) {
      for (int64_t i = 0; i < n; ++i) {
        C d = unary_derivative<C>(op, p, load(xp + off[0] + i * st[0]));
        store(gxp + off[2] + i * st[2], d * load(gyp + off[1] + i * st[1]));
      }
    });
  });
}

void binary(BinaryOp op, const StridedView& a, const StridedView& b, const StridedView& out) {
  dispatch_all(out.dtype, "binary", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
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
  dispatch_all(out.dtype, "where", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
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
  dispatch_floating(x.dtype, "dropout", [&](auto tag_) {
    using scalar_t = typename decltype(tag_)::type;
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
