#include "tools/numeric_option.h"

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <optional>
#include <system_error>

namespace minivl::tools::numeric_detail {
namespace {

bool less(WideInt a, WideInt b) {
  if (a.negative != b.negative) return a.negative;
  return a.negative ? a.magnitude > b.magnitude : a.magnitude < b.magnitude;
}

std::string to_string(WideInt v) { return (v.negative ? "-" : "") + std::to_string(v.magnitude); }

std::string to_string(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back as v
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

std::string range_text(const Range& r) {
  return r.real ? "[" + to_string(r.real_min) + ", " + to_string(r.real_max) + "]"
                : "[" + to_string(r.int_min) + ", " + to_string(r.int_max) + "]";
}

// "minivl preprocess" for the subcommand `cmd` (the root's own name is argv[0], not used).
std::string command_path(const CLI::App* cmd) {
  std::string path;
  for (const CLI::App* a = cmd; a != nullptr && a->get_parent() != nullptr; a = a->get_parent())
    path = " " + a->get_name() + path;
  return "minivl" + path;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

enum class Verdict { ok, not_a_number, out_of_range };

// Decimal digits with one optional sign; a magnitude past 2^64 - 1 is out of range, not wrapped.
Verdict parse_integer(std::string_view s, const Range& r, WideInt& out) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (!all_digits(s)) return Verdict::not_a_number;
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude);
  if (ec == std::errc::result_out_of_range) return Verdict::out_of_range;
  if (ec != std::errc() || ptr != s.data() + s.size()) return Verdict::not_a_number;
  out = {negative && magnitude != 0, magnitude};
  return less(out, r.int_min) || less(r.int_max, out) ? Verdict::out_of_range : Verdict::ok;
}

// A decimal real (digits, point, exponent; one optional sign). nan and inf are not finite numbers.
Verdict parse_real(std::string_view body, const Range& r, double& out, bool& finite) {
  finite = true;
  if (!body.empty() && body[0] == '+') {
    body.remove_prefix(1);
    if (!body.empty() && body[0] == '-') return Verdict::not_a_number;  // "+-1"
  }
  if (body.empty()) return Verdict::not_a_number;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), out, std::chars_format::general);
  if (ptr != body.data() + body.size()) return Verdict::not_a_number;
  if (ec == std::errc::result_out_of_range) return Verdict::out_of_range;  // 1e999, 1e-999
  if (ec != std::errc()) return Verdict::not_a_number;
  if (!std::isfinite(out)) {
    finite = false;
    return Verdict::not_a_number;
  }
  return out < r.real_min || out > r.real_max ? Verdict::out_of_range : Verdict::ok;
}

Value check_value(const CLI::App* cmd, const std::string& option, const std::string& text, const Range& r) {
  Value v;
  bool finite = true;
  const Verdict verdict = r.real ? parse_real(text, r, v.real, finite) : parse_integer(text, r, v.integer);
  if (verdict == Verdict::ok) return v;
  const std::string what = verdict == Verdict::out_of_range ? text + " is out of range"
                           : !finite                        ? text + " is not a finite number"
                           : r.real                         ? "'" + text + "' is not a number"
                                                            : "'" + text + "' is not an integer";
  throw CLI::ValidationError(command_path(cmd) + ": " + option + " " + what + ": must be in " + range_text(r));
}

}  // namespace

CLI::Option* add_numeric(CLI::App* cmd, const std::string& name, const std::string& help, const Range& range,
                         bool list, std::function<void(const Value&)> store, std::function<void()> clear) {
  if (range.real ? !(range.real_min <= range.real_max) : less(range.int_max, range.int_min))
    throw CLI::IncorrectConstruction(name + ": empty range " + range_text(range));
  // The option's own name for messages, filled in once CLI11 has parsed `name`.
  auto shown = std::make_shared<std::string>();
  CLI::Option* opt = cmd->add_option(
      name,
      [cmd, range, shown, store = std::move(store), clear = std::move(clear)](const CLI::results_t& results) {
        clear();
        for (const std::string& text : results) store(check_value(cmd, *shown, text, range));
        return true;
      },
      help);
  *shown = opt->get_name();
  opt->type_name(std::string(range.real ? "FLOAT" : "INT") + " in " + range_text(range));
  if (list) {
    opt->expected(1, -1);
    opt->allow_extra_args(true);
  } else {
    opt->expected(1);
  }
  return opt;
}

}  // namespace minivl::tools::numeric_detail
