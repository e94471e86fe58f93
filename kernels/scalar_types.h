#pragma once
// The scalar types kernels understand, with no dependency on core/.
// bf16 and f16 are storage types: kernels load them into f32, compute, and
// store back (f32 accumulation everywhere).
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define MINIVL_HOST_DEVICE __host__ __device__
#else
#define MINIVL_HOST_DEVICE
#endif

namespace minivl {

// The order is the serialisation order of nothing: names come from dtype_name().
enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, boolean };
inline constexpr int kNumDTypes = 8;

MINIVL_HOST_DEVICE constexpr int scalar_size(DType t) {
  return t == DType::f64 || t == DType::i64 ? 8 : (t == DType::f32 || t == DType::i32) ? 4 : (t == DType::bf16 || t == DType::f16) ? 2 : 1;
}

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

MINIVL_HOST_DEVICE inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
MINIVL_HOST_DEVICE inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

MINIVL_HOST_DEVICE inline float to_float(bf16 v) { return bits_to_float(uint32_t(v.bits) << 16); }

// Round to nearest even; NaN stays NaN (quiet).
MINIVL_HOST_DEVICE inline bf16 to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};
  uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return bf16{uint16_t((u + rounding) >> 16)};
}

// IEEE half <-> float, round to nearest even, with subnormals, inf and NaN.
MINIVL_HOST_DEVICE inline float to_float(f16 v) {
  uint32_t h = v.bits;
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | (exp + 112) << 23 | (mant << 13);
  }
  return bits_to_float(u);
}

MINIVL_HOST_DEVICE inline f16 to_f16(float f) {
  uint32_t u = float_to_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return f16{uint16_t(sign | 0x7e00u)};   // NaN
  if (abs >= 0x477ff000u) return f16{uint16_t(sign | 0x7c00u)};  // overflow -> inf
  if (abs < 0x38800000u) {                                       // subnormal or zero
    if (abs < 0x33000000u) return f16{uint16_t(sign)};
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - exp;  // 14..24
    uint32_t half = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1u))) ++half;
    return f16{uint16_t(sign | half)};
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return f16{uint16_t(sign | ((rounded - 0x38000000u) >> 13))};
}

// Compute type for a storage type: f32 for the 16-bit floats, itself otherwise.
template <typename T> struct ComputeType { using type = T; };
template <> struct ComputeType<bf16> { using type = float; };
template <> struct ComputeType<f16> { using type = float; };
template <typename T> using compute_t = typename ComputeType<T>::type;

template <typename T>
MINIVL_HOST_DEVICE inline compute_t<T> load(const T* p) { return *p; }
template <> MINIVL_HOST_DEVICE inline float load(const bf16* p) { return to_float(*p); }
template <> MINIVL_HOST_DEVICE inline float load(const f16* p) { return to_float(*p); }

template <typename T, typename V>
MINIVL_HOST_DEVICE inline void store(T* p, V v) { *p = static_cast<T>(v); }
template <typename V> MINIVL_HOST_DEVICE inline void store(bf16* p, V v) { *p = to_bf16(float(v)); }
template <typename V> MINIVL_HOST_DEVICE inline void store(f16* p, V v) { *p = to_f16(float(v)); }

}  // namespace minivl

namespace minivl {

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) with T the C++ type of `dtype`; the generic lambda
// then says `using scalar_t = typename decltype(tag)::type;`.
template <typename F>
void dispatch_floating(DType dtype, const char* name, F&& f) {
  switch (dtype) {
    case DType::f32: return f(TypeTag<float>{});
    case DType::f64: return f(TypeTag<double>{});
    case DType::bf16: return f(TypeTag<bf16>{});
    case DType::f16: return f(TypeTag<f16>{});
    default: throw std::runtime_error(std::string(name) + ": expected a floating dtype");
  }
}

template <typename F>
void dispatch_all(DType dtype, const char* name, F&& f) {
  switch (dtype) {
    case DType::i32: return f(TypeTag<int32_t>{});
    case DType::i64: return f(TypeTag<int64_t>{});
    case DType::u8: return f(TypeTag<uint8_t>{});
    case DType::boolean: return f(TypeTag<bool>{});
    default: return dispatch_floating(dtype, name, f);
  }
}

}  // namespace minivl
