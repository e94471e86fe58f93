#pragma once
// TOML training configs (toml++), validated against a schema.
//
// A schema lists every allowed key by dotted path ("optim.lr") with its type,
// default (none = required), allowed string values and numeric range. Parsing
// checks the file against it: an unknown key, a wrong type, a value out of
// range or a missing required key is an error naming the file, the line and the
// key, e.g.
//   configs/x.toml:12: unknown key 'optim.lrr' (did you mean 'lr'?)
//   configs/x.toml:4: key 'optim.lr' must be a float, got string
// `--set section.key=value` overrides are parsed by the key's type and checked
// the same way. to_toml() prints the effective config (defaults filled in) in a
// canonical form that parses back to the same values; checkpoints store it.
// annotated_toml() prints it for people (`minivl train --print-config`): every
// key in schema order under a comment with its help, what it accepts and its
// default; config_keys_markdown() is the same for docs/config.md.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace minivl::nn {

enum class ConfigType { integer, floating, boolean, string };
const char* config_type_name(ConfigType type);  // "an integer", for messages
const char* config_type_word(ConfigType type);  // "integer", for tables
using ConfigValue = std::variant<int64_t, double, bool, std::string>;

struct ConfigKeySpec {
  std::string key;  // dotted path
  ConfigType type;
  std::optional<ConfigValue> default_value;  // none: required
  std::string help;
  std::vector<std::string> choices;  // strings: the allowed values (empty = any)
  std::optional<double> min, max;    // numbers: the allowed range (inclusive)
};

class ConfigSchema {
 public:
  ConfigSchema& add(ConfigKeySpec spec);  // replaces a spec with the same key
  // Shorthands.
  ConfigSchema& add_int(const std::string& key, std::optional<int64_t> def, const std::string& help,
                        std::optional<double> min = std::nullopt, std::optional<double> max = std::nullopt);
  ConfigSchema& add_float(const std::string& key, std::optional<double> def, const std::string& help,
                          std::optional<double> min = std::nullopt, std::optional<double> max = std::nullopt);
  ConfigSchema& add_bool(const std::string& key, std::optional<bool> def, const std::string& help);
  ConfigSchema& add_string(const std::string& key, std::optional<std::string> def, const std::string& help,
                           std::vector<std::string> choices = {});

  const ConfigKeySpec* find(const std::string& key) const;
  bool is_section(const std::string& prefix) const;  // some key starts with "prefix."
  const std::vector<ConfigKeySpec>& keys() const { return keys_; }
  // Keys directly inside `section` ("" = top level): leaf names and sub-section names.
  std::vector<std::string> names_in(const std::string& section) const;

  // The keys every training run has (steps, seed, device, precision, [model] name,
  // [data] batch_size, [optim], [schedule], [eval], [checkpoint], [log]).
  static ConfigSchema training();

 private:
  std::vector<ConfigKeySpec> keys_;
};

class Config {
 public:
  Config() = default;
  // text: TOML; source: the file name errors print; overrides: "key=value" strings.
  static Config parse(const std::string& text, const std::string& source, const ConfigSchema& schema,
                      const std::vector<std::string>& overrides = {});
  static Config load(const std::string& path, const ConfigSchema& schema,
                     const std::vector<std::string>& overrides = {});

  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // integers widen
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  bool contains(const std::string& key) const { return values_.count(key) != 0; }
  const std::map<std::string, ConfigValue>& values() const { return values_; }

  // Effective config, canonical: top-level keys, then one [section] per section, keys sorted.
  std::string to_toml() const;
  const std::string& source() const { return source_; }

 private:
  const ConfigValue& at(const std::string& key, ConfigType type) const;
  std::map<std::string, ConfigValue> values_;
  std::map<std::string, ConfigType> types_;
  std::string source_;
};

// The TOML literal of a value, as to_toml() writes it (floats: the shortest text that reads back exactly).
std::string format_config_value(const ConfigValue& value);
// What a key accepts, in words: "integer >= 1", "float in [0.0, 1.0]", "one of \"f32\", \"bf16\"", "boolean".
std::string describe_allowed(const ConfigKeySpec& spec);
// The default as a TOML literal, or "required".
std::string describe_default(const ConfigKeySpec& spec);

// `config` as TOML a user can copy: every key of `schema`, grouped by section in the schema's order,
// each under a comment "help" and "accepts ...; default ...". `header` (may be empty) goes first, each
// line commented. Parsed back against `schema`, it gives `config`'s values.
std::string annotated_toml(const Config& config, const ConfigSchema& schema, const std::string& header);
// A Markdown table of `keys`: key, type, default, accepts, help.
std::string config_keys_markdown(const std::vector<ConfigKeySpec>& keys);
// Whether two specs declare the same key alike (type, default, range, choices, help).
bool same_spec(const ConfigKeySpec& a, const ConfigKeySpec& b);

// A string value straight from TOML text, before any schema (to pick the model
// whose schema extension validates the rest); nullopt when absent or not a string.
std::optional<std::string> peek_config_string(const std::string& text, const std::string& source,
                                              const std::string& key);

// The closest of `candidates` to `name` by edit distance, when close enough to suggest.
std::optional<std::string> closest_name(const std::string& name, const std::vector<std::string>& candidates);

}  // namespace minivl::nn
