#pragma once
// The pointwise math shared by the CPU and CUDA backends: one definition of
// each forward function and its derivative, so both devices compute the same.
#include <cmath>
#include <type_traits>

#include "kernels/scalar_types.h"

namespace minivl {

enum class UnaryOp { neg, exp, log, sqrt, rsqrt, pow, abs, tanh, sigmoid, relu, gelu, gelu_tanh, quick_gelu, clamp, affine };
enum class BinaryOp { add, sub, mul, div, eq };  // eq: 1 where equal, else 0
enum class ReduceOp { sum, mean, max };

// Parameters of the parameterised unary ops: pow (a = exponent), clamp
// (a = min, b = max; +-inf when absent), affine (y = a * x + b).
struct UnaryParams {
  double a = 0.0;
  double b = 0.0;
};

template <typename T>
MINIVL_HOST_DEVICE inline T unary_forward(UnaryOp op, UnaryParams p, T x) {
  using std::erf;
  using std::exp;
  using std::log;
  using std::pow;
  using std::sqrt;
  using std::tanh;
  const T kSqrt2OverPi = T(0.7978845608028654);
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return exp(x);
    case UnaryOp::log: return log(x);
    case UnaryOp::sqrt: return sqrt(x);
    case UnaryOp::rsqrt: return T(1) / sqrt(x);
    case UnaryOp::pow: return pow(x, T(p.a));
    case UnaryOp::abs: return x < T(0) ? -x : x;
    case UnaryOp::tanh: return tanh(x);
    case UnaryOp::sigmoid: return T(1) / (T(1) + exp(-x));
    case UnaryOp::relu: return x > T(0) ? x : T(0);
    case UnaryOp::gelu: return T(0.5) * x * (T(1) + erf(x * T(0.7071067811865476)));
    case UnaryOp::gelu_tanh: return T(0.5) * x * (T(1) + tanh(kSqrt2OverPi * (x + T(0.044715) * x * x * x)));
    case UnaryOp::quick_gelu: return x / (T(1) + exp(T(-1.702) * x));
    case UnaryOp::clamp: return x < T(p.a) ? T(p.a) : (x > T(p.b) ? T(p.b) : x);
    case UnaryOp::affine: return T(p.a) * x + T(p.b);
  }
  return x;
}

// d unary_forward(x) / dx.
template <typename T>
MINIVL_HOST_DEVICE inline T unary_derivative(UnaryOp op, UnaryParams p, T x) {
  using std::erf;
  using std::exp;
  using std::pow;
  using std::sqrt;
  using std::tanh;
  const T kSqrt2OverPi = T(0.7978845608028654);
  switch (op) {
    case UnaryOp::neg: return T(-1);
    case UnaryOp::exp: return exp(x);
    case UnaryOp::log: return T(1) / x;
    case UnaryOp::sqrt: return T(0.5) / sqrt(x);
    case UnaryOp::rsqrt: return T(-0.5) / (x * sqrt(x));
    case UnaryOp::pow: return p.a == 0.0 ? T(0) : T(p.a) * pow(x, T(p.a - 1.0));
    case UnaryOp::abs: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::tanh: {
      T t = tanh(x);
      return T(1) - t * t;
    }
    case UnaryOp::sigmoid: {
      T s = T(1) / (T(1) + exp(-x));
      return s * (T(1) - s);
    }
    case UnaryOp::relu: return x > T(0) ? T(1) : T(0);
    case UnaryOp::gelu: {
      T cdf = T(0.5) * (T(1) + erf(x * T(0.7071067811865476)));
      T pdf = exp(T(-0.5) * x * x) * T(0.3989422804014327);
      return cdf + x * pdf;
    }
    case UnaryOp::gelu_tanh: {
      T inner = kSqrt2OverPi * (x + T(0.044715) * x * x * x);
      T t = tanh(inner);
      T dinner = kSqrt2OverPi * (T(1) + T(3 * 0.044715) * x * x);
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * dinner;
    }
    case UnaryOp::quick_gelu: {
      T s = T(1) / (T(1) + exp(T(-1.702) * x));
      return s + x * T(1.702) * s * (T(1) - s);
    }
    case UnaryOp::clamp: return (x >= T(p.a) && x <= T(p.b)) ? T(1) : T(0);
    case UnaryOp::affine: return T(p.a);
  }
  return T(0);
}

template <typename T>
MINIVL_HOST_DEVICE inline T binary_forward(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul:
      if constexpr (std::is_same_v<T, bool>) return a && b;  // what bool(a * b) is, without the int detour
      else return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::eq: return a == b ? T(1) : T(0);
  }
  return a;
}

}  // namespace minivl
