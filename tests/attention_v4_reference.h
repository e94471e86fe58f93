#pragma once
// What the attention v4 tests (test_parity_attention_v4.cpp on a GPU, test_attention_v4_emulated.cpp
// on the CPU) share: the vision-language shapes and masking modes, random inputs rounded to the
// dtype, the CPU reference (kernels/cpu/attention_cpu.h, f32), and the element-wise comparison.
//
// Reference: f32 on the dtype-rounded inputs; its backward reads the reference output rounded to
// the dtype (what a GPU backward reads). Tolerance per element: |got - ref| <= c u (|ref| + max|ref|)
// with u the dtype's unit roundoff (2^-8 bf16, 2^-11 f16), c = 4 for out (P is rounded to the dtype
// once before P V), 8 for dq, dk, dv (P and dS rounded); lse within 1e-4 (1 + |ref|); -inf exactly.
// dk, dv of padded keys, and out, dq of rows that see no key, must be exactly 0.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/ops.h"
#include "kernels/cpu/attention_cpu.h"

namespace minivl::attention_v4_test {

struct SeqShape {
  const char* name;
  int64_t B, H, Tq, Tk;
};

enum class Mode { none, causal, pad_bool, pad_u8, causal_pad };
inline const Mode kModes[] = {Mode::none, Mode::causal, Mode::pad_bool, Mode::pad_u8, Mode::causal_pad};
inline const char* mode_name(Mode m) {
  switch (m) {
    case Mode::none: return "none";
    case Mode::causal: return "causal";
    case Mode::pad_bool: return "padding bool";
    case Mode::pad_u8: return "padding u8";
    default: return "causal + padding u8";
  }
}
inline bool mode_causal(Mode m) { return m == Mode::causal || m == Mode::causal_pad; }
inline bool mode_pad(Mode m) { return m == Mode::pad_bool || m == Mode::pad_u8 || m == Mode::causal_pad; }

// f32 CPU tensors holding dtype-representable values; the mask (B, Tk): batch 0 ~30% padded with its
// last key padded, batch 1 ~10%, batch 2 and later every key.
struct Inputs {
  Tensor q, k, v, dout, mask;  // mask undefined: none
  std::vector<uint8_t> padded;  // (B, Tk)
};

inline Inputs make_inputs(const SeqShape& s, int64_t D, DType dt, Mode mode, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto tensor = [&](int64_t T) {
    std::vector<double> v(size_t(s.B * s.H * T * D));
    for (double& x : v) x = normal(rng);
    return from_vector(v, {s.B, s.H, T, D}).to(dt).to(DType::f32);
  };
  Inputs in;
  in.q = tensor(s.Tq);
  in.k = tensor(s.Tk);
  in.v = tensor(s.Tk);
  in.dout = tensor(s.Tq);
  in.padded.assign(size_t(s.B * s.Tk), 0);
  if (mode_pad(mode)) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t j = 0; j < s.Tk; ++j) {
        const double rate = b == 0 ? 0.3 : b == 1 ? 0.1 : 2.0;
        in.padded[size_t(b * s.Tk + j)] = u(rng) < rate || (b == 0 && j == s.Tk - 1);
      }
    std::vector<double> m(in.padded.begin(), in.padded.end());
    in.mask = from_vector(m, {s.B, s.Tk}, mode == Mode::pad_bool ? DType::boolean : DType::u8);
  }
  return in;
}

struct Reference {
  Tensor out, lse, dq, dk, dv;  // f32
  std::vector<uint8_t> empty_row;  // (B, Tq): the row sees no key
};

inline Reference reference(const SeqShape& s, int64_t D, DType dt, Mode mode, const Inputs& in, double scale) {
  const bool causal = mode_causal(mode);
  const Shape qshape = {s.B, s.H, s.Tq, D}, kshape = {s.B, s.H, s.Tk, D};
  Reference r;
  r.out = empty(qshape);
  r.lse = empty({s.B, s.H, s.Tq});
  const StridedView mask = in.mask.defined() ? in.mask.view() : StridedView{};
  cpu::attention_forward(in.q.view(), in.k.view(), in.v.view(), mask, causal, scale, r.out.view(), r.lse.view());
  const Tensor out_rounded = r.out.to(dt).to(DType::f32);
  r.dq = empty(qshape);
  r.dk = empty(kshape);
  r.dv = empty(kshape);
  cpu::attention_backward(in.q.view(), in.k.view(), in.v.view(), mask, causal, scale, out_rounded.view(),
                          r.lse.view(), in.dout.view(), r.dq.view(), r.dk.view(), r.dv.view());
  r.empty_row.assign(size_t(s.B * s.Tq), 0);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t i = 0; i < s.Tq; ++i) {
      bool any = false;
      for (int64_t j = 0; j < s.Tk && !any; ++j)
        any = !in.padded[size_t(b * s.Tk + j)] && (!causal || j <= i + s.Tk - s.Tq);
      r.empty_row[size_t(b * s.Tq + i)] = !any;
    }
  return r;
}

inline double unit_roundoff(DType dt) { return dt == DType::bf16 ? 1.0 / 256 : 1.0 / 2048; }

// "" or the first element outside |got - want| <= c u (|want| + max|want|); infinities must be equal.
inline std::string compare(const char* what, const std::vector<double>& got, const std::vector<double>& want,
                           double c_u) {
  if (got.size() != want.size()) return std::string(what) + ": sizes differ";
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::isfinite(w) ? std::abs(w) : 0.0);
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    const bool ok = std::isinf(w) ? g == w : std::abs(g - w) <= c_u * (std::abs(w) + scale);
    if (!ok) {
      std::ostringstream os;
      os << what << ": element " << i << " of " << got.size() << ": got " << g << ", cpu " << w << " (bound "
         << c_u * (std::abs(w) + scale) << (std::isnan(g) ? "; NaN: an unwritten element?)" : ")");
      return os.str();
    }
  }
  return "";
}

// lse: within 1e-4 (1 + |ref|); -inf (a row that sees no key) exactly.
inline std::string compare_lse(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return "lse: sizes differ";
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (std::isinf(w) ? g == w : std::abs(g - w) <= 1e-4 * (1 + std::abs(w))) continue;
    std::ostringstream os;
    os << "lse: element " << i << " of " << got.size() << ": got " << g << ", cpu " << w;
    return os.str();
  }
  return "";
}

// "" or the first row of a (B, H, T, D) tensor selected by zero_row (B, T) that is not exactly 0.
inline std::string check_zero_rows(const char* what, const std::vector<double>& v, int64_t B, int64_t H, int64_t T,
                                   int64_t D, const std::vector<uint8_t>& zero_row) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        if (!zero_row[size_t(b * T + i)]) continue;
        for (int64_t d = 0; d < D; ++d)
          if (v[size_t(((b * H + h) * T + i) * D + d)] != 0.0)
            return std::string(what) + ": row (b " + std::to_string(b) + ", " + std::to_string(i) + ") is not exactly 0";
      }
  return "";
}

// Every check of one case: "" or the first failure.
inline std::string check_all(const SeqShape& s, int64_t D, DType dt, const Inputs& in, const Reference& r,
                             const std::vector<double>& out, const std::vector<double>& lse,
                             const std::vector<double>& dq, const std::vector<double>& dk,
                             const std::vector<double>& dv, bool with_backward) {
  const double u = unit_roundoff(dt);
  std::vector<std::string> checks = {compare("out", out, r.out.to_vector(), 4 * u),
                                     compare_lse(lse, r.lse.to_vector()),
                                     check_zero_rows("out", out, s.B, s.H, s.Tq, D, r.empty_row)};
  if (with_backward) {
    checks.push_back(compare("dq", dq, r.dq.to_vector(), 8 * u));
    checks.push_back(compare("dk", dk, r.dk.to_vector(), 8 * u));
    checks.push_back(compare("dv", dv, r.dv.to_vector(), 8 * u));
    checks.push_back(check_zero_rows("dq", dq, s.B, s.H, s.Tq, D, r.empty_row));
    checks.push_back(check_zero_rows("dk", dk, s.B, s.H, s.Tk, D, in.padded));
    checks.push_back(check_zero_rows("dv", dv, s.B, s.H, s.Tk, D, in.padded));
  }
  for (const std::string& c : checks)
    if (!c.empty()) return c;
  return "";
}

}  // namespace minivl::attention_v4_test
