#include "nn/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "core/error.h"

namespace minivl::nn {

const char* config_type_name(ConfigType type) {
  switch (type) {
    case ConfigType::integer: return "an integer";
    case ConfigType::floating: return "a float";
    case ConfigType::boolean: return "a boolean";
    case ConfigType::string: return "a string";
  }
  return "?";
}

const char* config_type_word(ConfigType type) {
  switch (type) {
    case ConfigType::integer: return "integer";
    case ConfigType::floating: return "float";
    case ConfigType::boolean: return "boolean";
    case ConfigType::string: return "string";
  }
  return "?";
}

// ---- schema ----
ConfigSchema& ConfigSchema::add(ConfigKeySpec spec) {
  MINIVL_CHECK(!spec.key.empty() && spec.key.front() != '.' && spec.key.back() != '.',
               "ConfigSchema: bad key '", spec.key, "'");
  for (ConfigKeySpec& k : keys_)
    if (k.key == spec.key) {
      k = std::move(spec);
      return *this;
    }
  keys_.push_back(std::move(spec));
  return *this;
}

ConfigSchema& ConfigSchema::add_int(const std::string& key, std::optional<int64_t> def, const std::string& help,
                                    std::optional<double> min, std::optional<double> max) {
  std::optional<ConfigValue> d;
  if (def) d = ConfigValue(*def);
  return add({key, ConfigType::integer, d, help, {}, min, max});
}
ConfigSchema& ConfigSchema::add_float(const std::string& key, std::optional<double> def, const std::string& help,
                                      std::optional<double> min, std::optional<double> max) {
  std::optional<ConfigValue> d;
  if (def) d = ConfigValue(*def);
  return add({key, ConfigType::floating, d, help, {}, min, max});
}
ConfigSchema& ConfigSchema::add_bool(const std::string& key, std::optional<bool> def, const std::string& help) {
  std::optional<ConfigValue> d;
  if (def) d = ConfigValue(*def);
  return add({key, ConfigType::boolean, d, help, {}, std::nullopt, std::nullopt});
}
ConfigSchema& ConfigSchema::add_string(const std::string& key, std::optional<std::string> def,
                                       const std::string& help, std::vector<std::string> choices) {
  std::optional<ConfigValue> d;
  if (def) d = ConfigValue(*def);
  return add({key, ConfigType::string, d, help, std::move(choices), std::nullopt, std::nullopt});
}

const ConfigKeySpec* ConfigSchema::find(const std::string& key) const {
  for (const ConfigKeySpec& k : keys_)
    if (k.key == key) return &k;
  return nullptr;
}

bool ConfigSchema::is_section(const std::string& prefix) const {
  for (const ConfigKeySpec& k : keys_)
    if (k.key.size() > prefix.size() && k.key.compare(0, prefix.size(), prefix) == 0 && k.key[prefix.size()] == '.')
      return true;
  return false;
}

std::vector<std::string> ConfigSchema::names_in(const std::string& section) const {
  std::set<std::string> out;
  const std::string prefix = section.empty() ? "" : section + ".";
  for (const ConfigKeySpec& k : keys_) {
    if (k.key.compare(0, prefix.size(), prefix) != 0) continue;
    std::string rest = k.key.substr(prefix.size());
    out.insert(rest.substr(0, rest.find('.')));
  }
  return {out.begin(), out.end()};
}

ConfigSchema ConfigSchema::training() {
  ConfigSchema s;
  s.add_int("steps", std::nullopt, "optimiser steps in the whole run", 1);
  s.add_int("seed", 0, "seed of the default generator (init, dropout, data order)", 0);
  s.add_string("device", "cpu", "cpu, cuda or cuda:N");
  s.add_string("precision", "f32", "f32; bf16 (autocast, f32 master weights); f16 (autocast + loss scaling)",
               {"f32", "bf16", "f16"});
  s.add_string("model.name", std::nullopt, "which trainer (model) runs");
  s.add_int("data.batch_size", 32, "examples per micro-batch", 1);
  s.add_string("optim.name", "adamw", "optimiser", {"adamw", "sgd"});
  s.add_float("optim.lr", 1e-3, "peak learning rate", 0.0);
  s.add_float("optim.beta1", 0.9, "AdamW beta1", 0.0, 1.0);
  s.add_float("optim.beta2", 0.999, "AdamW beta2", 0.0, 1.0);
  s.add_float("optim.eps", 1e-8, "AdamW epsilon", 0.0);
  s.add_float("optim.weight_decay", 0.0, "decoupled weight decay (AdamW) or L2 (SGD)", 0.0);
  s.add_bool("optim.decay_biases", false, "apply weight decay to biases too");
  s.add_bool("optim.decay_norms", false, "apply weight decay to norm weights too");
  s.add_bool("optim.decay_embeddings", false, "apply weight decay to embeddings too");
  s.add_float("optim.momentum", 0.9, "SGD momentum", 0.0);
  s.add_bool("optim.nesterov", false, "SGD Nesterov momentum");
  s.add_float("optim.grad_clip", 0.0, "clip the global gradient norm to this (0 = off)", 0.0);
  s.add_int("optim.grad_accum", 1, "micro-batches per optimiser step", 1);
  s.add_int("optim.max_nonfinite_steps", 5,
            "stop the run after this many consecutive steps with a non-finite loss or gradient (each is skipped)", 1);
  s.add_string("schedule.name", "constant", "learning-rate schedule", {"constant", "cosine"});
  s.add_int("schedule.warmup_steps", 0, "linear warm-up steps", 0);
  s.add_float("schedule.min_lr", 0.0, "cosine floor", 0.0);
  s.add_int("eval.every", 0, "evaluate every N steps (0 = only at the end)", 0);
  s.add_int("eval.batches", 0,
            "evaluate on at most this many batches of data.batch_size held-out examples (0 = the whole held-out set)",
            0);
  s.add_int("checkpoint.every", 0, "checkpoint every N steps (0 = only at the end)", 0);
  s.add_int("log.every", 10, "print a progress line every N steps", 1);
  s.add_float("dist.bucket_mib", 4.0,
              "data parallelism (mpirun -np N): gradients are all-reduced in buckets of about this many MiB, "
              "each started as soon as the backward has finished its gradients", 1e-6);
  return s;
}

// ---- helpers ----
std::optional<std::string> closest_name(const std::string& name, const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::optional<std::string> best;
  size_t best_d = 0;
  for (const std::string& c : candidates) {
    size_t d = distance(name, c);
    if (!best || d < best_d) {
      best = c;
      best_d = d;
    }
  }
  if (best && best_d <= std::max<size_t>(2, name.size() / 3) && best_d < std::max(name.size(), best->size()))
    return best;
  return std::nullopt;
}

namespace {

std::string where(const std::string& source, int64_t line) {
  return line > 0 ? source + ":" + std::to_string(line) : source;
}

std::string leaf_of(const std::string& key) {
  size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}
std::string parent_of(const std::string& key) {
  size_t dot = key.rfind('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

[[noreturn]] void fail_unknown(const ConfigSchema& schema, const std::string& at, const std::string& key,
                               bool section) {
  std::string msg = at + ": unknown " + (section ? "section" : "key") + " '" + key + "'";
  const std::string parent = parent_of(key);
  if (!parent.empty() && !schema.is_section(parent)) MINIVL_FAIL(msg);
  if (auto s = closest_name(leaf_of(key), schema.names_in(parent))) msg += " (did you mean '" + *s + "'?)";
  MINIVL_FAIL(msg);
}

std::string value_kind(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
    default: return "nothing";
  }
}

void check_value(const ConfigKeySpec& spec, const ConfigValue& v, const std::string& at) {
  if (spec.type == ConfigType::string && !spec.choices.empty()) {
    const std::string& s = std::get<std::string>(v);
    if (std::find(spec.choices.begin(), spec.choices.end(), s) == spec.choices.end()) {
      std::string list;
      for (size_t i = 0; i < spec.choices.size(); ++i) list += (i ? ", " : "") + spec.choices[i];
      MINIVL_FAIL(at, ": key '", spec.key, "' must be one of ", list, "; got '", s, "'");
    }
  }
  if (spec.type == ConfigType::integer || spec.type == ConfigType::floating) {
    double x = spec.type == ConfigType::integer ? double(std::get<int64_t>(v)) : std::get<double>(v);
    if (!std::isfinite(x)) MINIVL_FAIL(at, ": key '", spec.key, "' must be a finite number, got ", x);
    const bool below = spec.min && !(x >= *spec.min), above = spec.max && !(x <= *spec.max);
    if ((below || above) && spec.min && spec.max)
      MINIVL_FAIL(at, ": key '", spec.key, "' must be in [", *spec.min, ", ", *spec.max, "], got ", x);
    if (below) MINIVL_FAIL(at, ": key '", spec.key, "' must be >= ", *spec.min, ", got ", x);
    if (above) MINIVL_FAIL(at, ": key '", spec.key, "' must be <= ", *spec.max, ", got ", x);
  }
}

ConfigValue from_node(const ConfigKeySpec& spec, const toml::node& n, const std::string& at) {
  switch (spec.type) {
    case ConfigType::integer:
      if (auto v = n.as_integer()) return int64_t(v->get());
      break;
    case ConfigType::floating:
      if (auto v = n.as_floating_point()) return double(v->get());
      if (auto v = n.as_integer()) return double(v->get());
      break;
    case ConfigType::boolean:
      if (auto v = n.as_boolean()) return bool(v->get());
      break;
    case ConfigType::string:
      if (auto v = n.as_string()) return std::string(v->get());
      break;
  }
  MINIVL_FAIL(at, ": key '", spec.key, "' must be ", config_type_name(spec.type), ", got ", value_kind(n));
}

ConfigValue from_text(const ConfigKeySpec& spec, std::string text, const std::string& at) {
  auto bad = [&]() -> ConfigValue {
    MINIVL_FAIL(at, ": key '", spec.key, "' must be ", config_type_name(spec.type), ", got '", text, "'");
  };
  switch (spec.type) {
    case ConfigType::integer: {
      if (text.empty()) return bad();
      char* end = nullptr;
      errno = 0;
      long long v = std::strtoll(text.c_str(), &end, 10);
      if (*end != '\0' || errno) return bad();
      return int64_t(v);
    }
    case ConfigType::floating: {
      if (text.empty()) return bad();
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (*end != '\0') return bad();
      return v;
    }
    case ConfigType::boolean:
      if (text == "true") return true;
      if (text == "false") return false;
      return bad();
    case ConfigType::string:
      if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
      return text;
  }
  return bad();
}

void walk(const toml::table& table, const std::string& prefix, const ConfigSchema& schema,
          const std::string& source, std::map<std::string, ConfigValue>& values) {
  for (auto&& [k, node] : table) {
    const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    int64_t line = int64_t(node.source().begin.line);
    if (line == 0) line = int64_t(k.source().begin.line);
    const std::string at = where(source, line);
    if (const toml::table* sub = node.as_table()) {
      if (!schema.is_section(path)) {
        if (const ConfigKeySpec* spec = schema.find(path))
          MINIVL_FAIL(at, ": key '", path, "' must be ", config_type_name(spec->type), ", got table");
        fail_unknown(schema, at, path, true);
      }
      walk(*sub, path, schema, source, values);
      continue;
    }
    const ConfigKeySpec* spec = schema.find(path);
    if (!spec) {
      if (schema.is_section(path)) MINIVL_FAIL(at, ": '", path, "' is a section (a table), got ", value_kind(node));
      fail_unknown(schema, at, path, false);
    }
    ConfigValue v = from_node(*spec, node, at);
    check_value(*spec, v, at);
    values[path] = std::move(v);
  }
}

toml::table parse_toml(const std::string& text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    MINIVL_FAIL(where(source, int64_t(e.source().begin.line)), ": invalid TOML: ", e.description());
  }
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

}  // namespace

std::string format_config_value(const ConfigValue& v) {
  if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (auto s = std::get_if<std::string>(&v)) return quote(*s);
  double d = std::get<double>(v);
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 15; precision <= 17; ++precision) {  // the shortest form that reads back exactly
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

// ---- Config ----
Config Config::parse(const std::string& text, const std::string& source, const ConfigSchema& schema,
                     const std::vector<std::string>& overrides) {
  Config c;
  c.source_ = source;
  toml::table table = parse_toml(text, source);
  walk(table, "", schema, source, c.values_);
  for (const std::string& o : overrides) {
    const std::string at = "--set " + o;
    size_t eq = o.find('=');
    MINIVL_CHECK(eq != std::string::npos && eq > 0, at, ": expected section.key=value");
    const std::string key = o.substr(0, eq);
    const ConfigKeySpec* spec = schema.find(key);
    if (!spec) fail_unknown(schema, at, key, false);
    ConfigValue v = from_text(*spec, o.substr(eq + 1), at);
    check_value(*spec, v, at);
    c.values_[key] = std::move(v);
  }
  for (const ConfigKeySpec& spec : schema.keys()) {
    c.types_[spec.key] = spec.type;
    if (c.values_.count(spec.key)) continue;
    MINIVL_CHECK(spec.default_value.has_value(), source, ": missing required key '", spec.key, "' (",
                 spec.help, ")");
    c.values_[spec.key] = *spec.default_value;
  }
  return c;
}

Config Config::load(const std::string& path, const ConfigSchema& schema, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  MINIVL_CHECK(in.good(), path, ": cannot open the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path, schema, overrides);
}

const ConfigValue& Config::at(const std::string& key, ConfigType type) const {
  auto it = values_.find(key);
  MINIVL_CHECK(it != values_.end(), "config: no key '", key, "' in the schema");
  MINIVL_CHECK(types_.at(key) == type || (type == ConfigType::floating && types_.at(key) == ConfigType::integer),
               "config: key '", key, "' is ", config_type_name(types_.at(key)), ", not ", config_type_name(type));
  return it->second;
}

int64_t Config::get_int(const std::string& key) const { return std::get<int64_t>(at(key, ConfigType::integer)); }
double Config::get_float(const std::string& key) const {
  const ConfigValue& v = at(key, ConfigType::floating);
  if (auto i = std::get_if<int64_t>(&v)) return double(*i);
  return std::get<double>(v);
}
bool Config::get_bool(const std::string& key) const { return std::get<bool>(at(key, ConfigType::boolean)); }
const std::string& Config::get_string(const std::string& key) const {
  return std::get<std::string>(at(key, ConfigType::string));
}

std::string Config::to_toml() const {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> sections;
  for (const auto& [key, v] : values_) sections[parent_of(key)].emplace_back(leaf_of(key), format_config_value(v));
  std::string out;
  for (const auto& [section, entries] : sections) {
    if (!section.empty()) out += (out.empty() ? "[" : "\n[") + section + "]\n";
    for (const auto& [k, v] : entries) out += k + " = " + v + "\n";
  }
  return out;
}

// ---- reference: annotated TOML and Markdown ----
namespace {
std::string format_bound(double x, ConfigType type) {
  if (type == ConfigType::integer) return std::to_string(int64_t(x));
  return format_config_value(x);
}

// One line: newlines in help text would end a TOML comment or a table row.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Sections in the order of their first key, each with its keys in schema order ("" = top level, first).
std::vector<std::pair<std::string, std::vector<const ConfigKeySpec*>>> by_section(const ConfigSchema& schema) {
  std::vector<std::pair<std::string, std::vector<const ConfigKeySpec*>>> out;
  out.emplace_back("", std::vector<const ConfigKeySpec*>{});
  for (const ConfigKeySpec& spec : schema.keys()) {
    const std::string section = parent_of(spec.key);
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == section; });
    if (it == out.end()) it = out.insert(out.end(), {section, {}});
    it->second.push_back(&spec);
  }
  return out;
}
}  // namespace

std::string describe_allowed(const ConfigKeySpec& spec) {
  std::string out = config_type_word(spec.type);
  switch (spec.type) {
    case ConfigType::integer:
    case ConfigType::floating:
      if (spec.min && spec.max)
        out += " in [" + format_bound(*spec.min, spec.type) + ", " + format_bound(*spec.max, spec.type) + "]";
      else if (spec.min)
        out += " >= " + format_bound(*spec.min, spec.type);
      else if (spec.max)
        out += " <= " + format_bound(*spec.max, spec.type);
      break;
    case ConfigType::string:
      if (!spec.choices.empty()) {
        out = "one of ";
        for (size_t i = 0; i < spec.choices.size(); ++i) out += (i ? ", " : "") + quote(spec.choices[i]);
      }
      break;
    case ConfigType::boolean: break;
  }
  return out;
}

std::string describe_default(const ConfigKeySpec& spec) {
  return spec.default_value ? format_config_value(*spec.default_value) : "required";
}

bool same_spec(const ConfigKeySpec& a, const ConfigKeySpec& b) {
  return a.key == b.key && a.type == b.type && a.default_value == b.default_value && a.help == b.help &&
         a.choices == b.choices && a.min == b.min && a.max == b.max;
}

std::string annotated_toml(const Config& config, const ConfigSchema& schema, const std::string& header) {
  std::string out;
  if (!header.empty()) {
    std::istringstream lines(header);
    for (std::string line; std::getline(lines, line);) out += line.empty() ? "#\n" : "# " + line + "\n";
  }
  for (const auto& [section, specs] : by_section(schema)) {
    if (specs.empty()) continue;
    if (!out.empty()) out += "\n";
    if (!section.empty()) out += "[" + section + "]\n";
    for (const ConfigKeySpec* spec : specs) {
      auto it = config.values().find(spec->key);
      MINIVL_CHECK(it != config.values().end(), "annotated_toml: the config has no key '", spec->key, "'");
      out += "# " + one_line(spec->help) + "\n";
      out += "# " + describe_allowed(*spec) + (spec->default_value ? "; default " + describe_default(*spec) : "; required") +
             "\n";
      out += leaf_of(spec->key) + " = " + format_config_value(it->second) + "\n";
    }
  }
  return out;
}

std::string config_keys_markdown(const std::vector<ConfigKeySpec>& keys) {
  // A table cell: '|' ends a cell (also inside code), '<' outside code starts an HTML tag ("<bos>" would vanish).
  auto cell = [](std::string s, bool code) {
    std::string out;
    for (char c : one_line(std::move(s))) {
      if (c == '|') out += "\\|";
      else if (c == '<' && !code) out += "&lt;";
      else out += c;
    }
    return out;
  };
  std::string out = "| key | default | accepts | what it does |\n|---|---|---|---|\n";
  for (const ConfigKeySpec& k : keys)
    out += "| `" + k.key + "` | " + (k.default_value ? "`" + cell(describe_default(k), true) + "`" : "required") +
           " | " + cell(describe_allowed(k), false) + " | " + cell(k.help, false) + " |\n";
  return out;
}

std::optional<std::string> peek_config_string(const std::string& text, const std::string& source,
                                              const std::string& key) {
  toml::table table = parse_toml(text, source);
  auto node = table.at_path(key);
  if (auto s = node.as_string()) return std::string(s->get());
  return std::nullopt;
}

}  // namespace minivl::nn
