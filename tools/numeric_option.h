#pragma once
// Numeric command-line options declared with their allowed range beside them.
//
//   add_numeric_option(cmd, "--size", o.size, Bounds<int>{1, 8192}, "Resolution R");
//
// The value is parsed strictly: the whole text must be a decimal integer (integer targets) or a
// finite decimal real (real targets), inside [min, max]. Anything else ends the parse with a
// CLI::ValidationError (so a non-zero exit) whose message names the command, the option, the
// value and the range:
//   minivl preprocess: --size -3 is out of range: must be in [1, 8192]
//   minivl preprocess: --size 'abc' is not an integer: must be in [1, 8192]
// Values far outside the target type (10^30, 2^64 into an int) are out of range, never wrapped.
// An option that is not given keeps its target's initial value, which may lie outside the range
// (0 for "not given" beside a range that starts at 1).
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace minivl::tools {

// The closed interval [min, max] of T.
template <typename T>
struct Bounds {
  T min, max;
};

namespace numeric_detail {

// An integer of any sign up to 64 bits of magnitude: holds every int64_t and every uint64_t.
struct WideInt {
  bool negative = false;  // never set for zero
  uint64_t magnitude = 0;
};

template <typename T>
WideInt to_wide(T v) {
  if constexpr (std::is_signed_v<T>) {
    if (v < 0) return {true, uint64_t(0) - uint64_t(int64_t(v))};
  }
  return {false, uint64_t(v)};
}

template <typename T>
T from_wide(WideInt v) {  // v is known to lie in T's range
  if (v.negative) return T(int64_t(uint64_t(0) - v.magnitude));
  return T(v.magnitude);
}

struct Range {
  bool real = false;
  WideInt int_min, int_max;    // integer targets
  double real_min = 0, real_max = 0;  // real targets
};

struct Value {
  WideInt integer;
  double real = 0;
};

// Adds the option (a single value, or a list of one or more for `list`); `store` receives each
// checked value in order, after `clear`.
CLI::Option* add_numeric(CLI::App* cmd, const std::string& name, const std::string& help, const Range& range,
                         bool list, std::function<void(const Value&)> store, std::function<void()> clear);

template <typename T>
Range range_of(Bounds<T> b) {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, "numeric options hold numbers");
  static_assert(sizeof(T) <= 8, "at most 64-bit numbers");
  Range r;
  if constexpr (std::is_floating_point_v<T>) {
    r.real = true;
    r.real_min = double(b.min);
    r.real_max = double(b.max);
  } else {
    r.int_min = to_wide(b.min);
    r.int_max = to_wide(b.max);
  }
  return r;
}

template <typename T>
T value_as(const Value& v) {
  if constexpr (std::is_floating_point_v<T>) {
    return T(v.real);
  } else {
    return from_wide<T>(v.integer);
  }
}

}  // namespace numeric_detail

// `name` is "--long" (optionally "-s,--long") or a positional name. `--help` shows the range as the
// value's type ("--size INT in [1, 8192]") before `help`.
template <typename T>
CLI::Option* add_numeric_option(CLI::App* cmd, const std::string& name, T& target, Bounds<T> range,
                                const std::string& help) {
  return numeric_detail::add_numeric(
      cmd, name, help, numeric_detail::range_of(range), false,
      [&target](const numeric_detail::Value& v) { target = numeric_detail::value_as<T>(v); }, [] {});
}

// One or more values, each in `range` (a positional list of token ids, say).
template <typename T>
CLI::Option* add_numeric_list(CLI::App* cmd, const std::string& name, std::vector<T>& target, Bounds<T> range,
                              const std::string& help) {
  return numeric_detail::add_numeric(
      cmd, name, help, numeric_detail::range_of(range), true,
      [&target](const numeric_detail::Value& v) { target.push_back(numeric_detail::value_as<T>(v)); },
      [&target] { target.clear(); });
}

}  // namespace minivl::tools
