// Every numeric option of every minivl subcommand, probed through run_cli (main() itself) with
// zero, -1, huge values, boundaries and non-numbers: a value outside the option's range is a
// non-zero exit whose message names the command, the option, the value and the range; a value
// inside parses. The table below is the specification; a test fails when a subcommand has a
// numeric option the table lacks, and when docs/cli.md misses a subcommand, an option or a range.
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tools/commands.h"
#include "tools/numeric_option.h"

namespace {

struct NumericOptionSpec {
  std::string command, option;  // option: "--name", or a positional's name
  bool real;                    // a real number (else an integer)
  std::string min, max;         // the closed range, as the message and docs/cli.md print it
};

const std::vector<NumericOptionSpec>& numeric_options() {
  static const std::vector<NumericOptionSpec> table = {
      {"demo", "--steps", false, "10", "1000000"},
      {"tokenize", "--context", false, "2", "1048576"},
      {"detokenize", "ids", false, "0", "2147483647"},
      {"train-bpe", "--vocab-size", false, "514", "1048576"},
      {"preprocess", "--size", false, "1", "8192"},
      {"preprocess", "--max-pixels", false, "1", "4294967296"},
      {"gen-shapes", "--n", false, "1", "1000000000"},
      {"gen-shapes", "--seed", false, "0", "18446744073709551615"},
      {"gen-shapes", "--size", false, "16", "1000"},
      {"gen-shapes", "--threads", false, "0", "1024"},
      {"train", "--stop-at", false, "1", "1000000000"},
      {"zeroshot", "--top", false, "1", "1000000"},
      {"eval", "--limit", false, "0", "1000000000"},
      {"bench-step", "--steps", false, "1", "1000000"},
      {"bench-step", "--warmup", false, "1", "1000000"},
      {"bench-step", "--phase-steps", false, "0", "1000000"},
      {"bench-step", "--peak-tflops", true, "0.001", "10000"},
      {"vqa", "--top", false, "1", "1000000"},
      {"vqa", "--limit", false, "0", "1000000000"},
      {"caption", "--beam", false, "1", "256"},
      {"caption", "--length-penalty", true, "-10", "10"},
      {"caption", "--max-length", false, "1", "4096"},
      {"caption", "--limit", false, "0", "1000000000"},
  };
  return table;
}

// What each subcommand needs besides the probed option to parse (files are named, never read:
// the probes only parse). `after` follows the probe (tokenize's TEXT).
struct CommandArgs {
  std::vector<std::string> before, after;
};
const std::map<std::string, CommandArgs> kCommandArgs = {
    {"demo", {}},
    {"tokenize", {{"--vocab", "v.json"}, {"a text"}}},
    {"detokenize", {{"--vocab", "v.json"}, {}}},
    {"train-bpe", {{"--corpus", "c.txt", "--out", "vocab_dir", "--vocab-size", "1000"}, {}}},
    {"preprocess", {{"--image", "a.png", "--out", "a.safetensors"}, {}}},
    {"gen-shapes", {{"--out", "shapes", "--n", "10", "--seed", "1"}, {}}},
    {"train", {{"configs/clip_tiny.toml"}, {}}},
    {"zeroshot", {{"--model", "m", "--image", "a.png", "--labels", "cat,dog"}, {}}},
    {"eval", {{"--model", "m", "--data", "d"}, {}}},
    {"bench-step", {{"--config", "c.toml"}, {}}},
    {"vqa", {{"--model", "m"}, {}}},
    {"caption", {{"--model", "m"}, {}}},
};

struct CliResult {
  int status = 0;
  std::string err;
};

CliResult parse_only(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"minivl"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  const int status = minivl::tools::run_cli(int(argv.size()), argv.data(), false, out, err);
  return {status, err.str()};
}

std::vector<std::string> probe_args(const NumericOptionSpec& spec, const std::string& value) {
  const CommandArgs& extra = kCommandArgs.at(spec.command);
  std::vector<std::string> args{spec.command};
  args.insert(args.end(), extra.before.begin(), extra.before.end());
  // The option may also be one the command needs (train-bpe --vocab-size): given last, it would
  // be given twice, so the probe replaces it.
  for (size_t i = 1; i + 1 < args.size(); ++i)
    if (args[i] == spec.option) args.erase(args.begin() + long(i), args.begin() + long(i) + 2);
  // A positional's value after "--", or "-inf" would read as an option: "-1" alone is tested below.
  args.push_back(spec.option.rfind("-", 0) == 0 ? spec.option : "--");
  args.push_back(value);
  args.insert(args.end(), extra.after.begin(), extra.after.end());
  return args;
}

// The expected verdict, from the table alone: exact integer arithmetic (beyond 64 bits, so that
// 2^64 and 10^29 compare right) or doubles for reals.
using Wide = __int128;

std::optional<Wide> exact_integer(const std::string& s) {
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return std::nullopt;
  Wide v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    if (v > Wide(1) << 100) return Wide(1) << 100;  // far outside every range
    v = v * 10 + (s[i] - '0');
  }
  return s[0] == '-' ? -v : v;
}

std::string to_text(Wide v) {
  if (v == 0) return "0";
  const bool neg = v < 0;
  std::string s;
  for (Wide m = neg ? -v : v; m > 0; m /= 10) s.insert(s.begin(), char('0' + int(m % 10)));
  return neg ? "-" + s : s;
}

bool expect_accepted(const NumericOptionSpec& spec, const std::string& value) {
  if (spec.real) {
    if (value.find_first_of("xX") != std::string::npos) return false;  // strtod reads hex; a CLI does not
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(v)) return false;
    return v >= std::stod(spec.min) && v <= std::stod(spec.max);
  }
  const std::optional<Wide> v = exact_integer(value);
  return v && *v >= *exact_integer(spec.min) && *v <= *exact_integer(spec.max);
}

std::vector<std::string> probe_values(const NumericOptionSpec& spec) {
  std::vector<std::string> values = {"0",  "-1", "1000000000000", "9223372036854775807", "9223372036854775808",
                                     "18446744073709551616", "-9223372036854775809", "100000000000000000000000000000",
                                     "abc", "", "1.5", "1e3", "0x10", "nan", "inf", "-inf", "5abc", "--", spec.min,
                                     spec.max};
  if (spec.real) {
    for (const char* v : {"1e999", "-1e999", "0.25", "-0.5", "1e-3"}) values.push_back(v);
    values.push_back(std::to_string(std::stod(spec.max) + 1e-6));
    values.push_back(std::to_string(std::stod(spec.min) - 1e-6));
  } else {
    values.push_back(to_text(*exact_integer(spec.min) - 1));
    values.push_back(to_text(*exact_integer(spec.max) + 1));
  }
  return values;
}

// An option counts as numeric when CLI11 (or add_numeric_option) types it as a number.
bool is_numeric_type(const std::string& type_name) {
  for (const char* prefix : {"INT", "UINT", "FLOAT", "NUMBER"})
    if (type_name.rfind(prefix, 0) == 0) return true;
  return false;
}

struct DeclaredOption {
  std::string command, name, type_name;
};

std::vector<DeclaredOption> declared_options() {
  CLI::App app;
  minivl::tools::register_all_commands(app);
  std::vector<DeclaredOption> all;
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    for (const CLI::Option* opt : sub->get_options())
      if (opt != sub->get_help_ptr()) all.push_back({sub->get_name(), opt->get_name(), opt->get_type_name()});
  return all;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// docs/cli.md's section "## minivl NAME", up to the next "## " heading.
std::string doc_section(const std::string& doc, const std::string& command) {
  const std::string heading = "\n## minivl " + command + "\n";
  const size_t at = doc.find(heading);
  if (at == std::string::npos) return {};
  const size_t end = doc.find("\n## ", at + heading.size() - 1);
  return doc.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

}  // namespace

TEST_SUITE("cli_options") {

TEST_CASE("every numeric option rejects values outside its range, naming command, option, value and range") {
  for (const NumericOptionSpec& spec : numeric_options()) {
    for (const std::string& value : probe_values(spec)) {
      const CliResult r = parse_only(probe_args(spec, value));
      const bool accept = expect_accepted(spec, value);
      INFO("minivl ", spec.command, " ", spec.option, " '", value, "': ", r.err);
      if (accept) {
        CHECK(r.status == 0);
        CHECK(r.err.empty());
        continue;
      }
      CHECK(r.status != 0);
      if (value == "--") continue;  // read as the end of the options, not as a value
      CHECK(r.err.find("minivl " + spec.command + ": " + spec.option + " ") != std::string::npos);
      CHECK(r.err.find("must be in [" + spec.min + ", " + spec.max + "]") != std::string::npos);
      CHECK(r.err.find(value) != std::string::npos);
    }
  }
}

TEST_CASE("a value given as --option=value is checked the same way") {
  for (const NumericOptionSpec& spec : numeric_options()) {
    if (spec.option.rfind("--", 0) != 0) continue;
    std::vector<std::string> args = probe_args(spec, spec.max);
    const auto it = std::find(args.begin(), args.end(), spec.option);
    REQUIRE(it != args.end());
    *it = spec.option + "=-1000000";
    args.erase(it + 1);
    const CliResult r = parse_only(args);
    INFO("minivl ", spec.command, " ", spec.option, "=-1000000: ", r.err);
    CHECK(r.status != 0);
    CHECK(r.err.find(spec.option + " -1000000 is out of range: must be in [" + spec.min + ", " + spec.max + "]") !=
          std::string::npos);
  }
}

TEST_CASE("a negative positional number is a value, not an option") {
  const CliResult r = parse_only({"detokenize", "--vocab", "v.json", "1", "-2", "3"});
  CHECK(r.status != 0);
  CHECK(r.err.find("minivl detokenize: ids -2 is out of range: must be in [0, 2147483647]") != std::string::npos);
  CHECK(parse_only({"detokenize", "--vocab", "v.json", "1", "0", "49407"}).status == 0);
}

TEST_CASE("the table holds exactly the numeric options the subcommands declare") {
  std::set<std::pair<std::string, std::string>> declared, table;
  for (const DeclaredOption& o : declared_options())
    if (is_numeric_type(o.type_name)) declared.insert({o.command, o.name});
  for (const NumericOptionSpec& spec : numeric_options()) {
    table.insert({spec.command, spec.option});
    CHECK_MESSAGE(kCommandArgs.count(spec.command), spec.command, " has no entry in kCommandArgs");
  }
  for (const auto& [command, option] : declared)
    CHECK_MESSAGE(table.count({command, option}), "minivl ", command, " ", option,
                  " is numeric but not in the table of tests/test_cli_options.cpp");
  for (const auto& [command, option] : table)
    CHECK_MESSAGE(declared.count({command, option}), "the table names minivl ", command, " ", option,
                  ", which is not a numeric option");
  CHECK(declared.size() >= 21);
}

TEST_CASE("the type a numeric option shows in --help carries its range") {
  for (const DeclaredOption& o : declared_options()) {
    for (const NumericOptionSpec& spec : numeric_options()) {
      if (spec.command != o.command || spec.option != o.name) continue;
      CHECK(o.type_name == std::string(spec.real ? "FLOAT" : "INT") + " in [" + spec.min + ", " + spec.max + "]");
    }
  }
}

TEST_CASE("docs/cli.md documents every subcommand, every option and every range") {
  const std::string doc = read_text(MINIVL_SOURCE_DIR "/docs/cli.md");
  std::set<std::string> commands;
  for (const DeclaredOption& o : declared_options()) commands.insert(o.command);
  CLI::App app;
  minivl::tools::register_all_commands(app);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) commands.insert(sub->get_name());
  for (const std::string& command : commands) {
    const std::string section = doc_section(doc, command);
    CHECK_MESSAGE(!section.empty(), "docs/cli.md has no section '## minivl ", command, "'");
    CHECK_MESSAGE(section.find("```") != std::string::npos, "docs/cli.md: minivl ", command, " has no example");
  }
  for (const DeclaredOption& o : declared_options()) {
    const std::string section = doc_section(doc, o.command);
    CHECK_MESSAGE(section.find("`" + o.name + "`") != std::string::npos, "docs/cli.md: minivl ", o.command,
                  " does not list `", o.name, "`");
  }
  for (const NumericOptionSpec& spec : numeric_options()) {
    // The option's own line (its table row) states the range.
    const std::string section = doc_section(doc, spec.command);
    const std::string range = "[" + spec.min + ", " + spec.max + "]";
    bool found = false;
    std::istringstream lines(section);
    for (std::string line; std::getline(lines, line);)
      found = found || (line.find("`" + spec.option + "`") != std::string::npos && line.find(range) != std::string::npos);
    CHECK_MESSAGE(found, "docs/cli.md: minivl ", spec.command, " ", spec.option, " does not state ", range);
  }
}

TEST_CASE("add_numeric_option stores the parsed value in targets of every type") {
  using minivl::tools::Bounds;
  int i = 0;
  int64_t l = 0;
  uint64_t u = 0;
  std::size_t z = 0;
  double d = 0;
  std::vector<int32_t> ids;
  CLI::App app;
  CLI::App* cmd = app.add_subcommand("probe");
  minivl::tools::add_numeric_option(cmd, "--i", i, Bounds<int>{-5, 5}, "");
  minivl::tools::add_numeric_option(cmd, "--l", l, Bounds<int64_t>{INT64_MIN, INT64_MAX}, "");
  minivl::tools::add_numeric_option(cmd, "--u", u, Bounds<uint64_t>{0, UINT64_MAX}, "");
  minivl::tools::add_numeric_option(cmd, "--z", z, Bounds<std::size_t>{1, 10}, "");
  minivl::tools::add_numeric_option(cmd, "--d", d, Bounds<double>{-1, 1}, "");
  minivl::tools::add_numeric_list(cmd, "ids", ids, Bounds<int32_t>{0, 100}, "");
  std::vector<std::string> args = {"probe", "--i", "-5", "--l", "-9223372036854775808", "--u", "18446744073709551615",
                                   "--z", "+7", "--d", "-0.25", "100", "0", "3"};
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector last argument first
  app.parse(args);
  CHECK(i == -5);
  CHECK(l == INT64_MIN);
  CHECK(u == UINT64_MAX);
  CHECK(z == 7);
  CHECK(d == -0.25);
  CHECK(ids == std::vector<int32_t>{100, 0, 3});
  app.parse(std::vector<std::string>{"7", "probe"});  // a second parse replaces the list
  CHECK(ids == std::vector<int32_t>{7});
  CHECK(cmd->get_option("--l")->get_type_name() == "INT in [-9223372036854775808, 9223372036854775807]");
  CHECK_THROWS_AS(minivl::tools::add_numeric_option(cmd, "--empty", i, Bounds<int>{2, 1}, ""),
                  CLI::IncorrectConstruction);
}

TEST_CASE("preprocess with a negative --size writes nothing and fails") {
  namespace fs = std::filesystem;
  const fs::path out = fs::temp_directory_path() / "minivl_cli_options_negative_size.safetensors";
  fs::remove(out);
  const std::string out_s = out.string();
  const char* argv[] = {"minivl", "preprocess", "--image", "missing.png", "--out", out_s.c_str(), "--size", "-3"};
  std::ostringstream o, e;
  CHECK(minivl::tools::run_cli(8, argv, true, o, e) != 0);
  CHECK(e.str().find("minivl preprocess: --size -3 is out of range: must be in [1, 8192]") != std::string::npos);
  CHECK(!fs::exists(out));
}

}  // TEST_SUITE
