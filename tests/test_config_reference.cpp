// The config reference: `minivl train --print-config` prints every key of the chosen trainer as
// valid TOML that resolves (and trains) to the same config, with each key's help, range and default;
// docs/config.md is what the schemas generate; eval.batches limits every trainer's evaluation.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "models/trainers.h"
#include "nn/trainer.h"
#include "nn_test_util.h"
#include "tiny_models.h"

TEST_SUITE_BEGIN("config_reference");

using namespace minivl;
namespace fs = std::filesystem;

namespace {

std::string source_file(const std::string& relative) { return std::string(MINIVL_SOURCE_DIR) + "/" + relative; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> committed_configs() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(source_file("configs")))
    if (e.path().extension() == ".toml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Dotted paths of every leaf of a parsed TOML table.
void leaf_paths(const toml::table& t, const std::string& prefix, std::set<std::string>& out) {
  for (auto&& [k, node] : t) {
    const std::string path = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (const toml::table* sub = node.as_table()) leaf_paths(*sub, path, out);
    else out.insert(path);
  }
}

// The two comment lines above `leaf = ...` in the section of `key`.
std::pair<std::string, std::string> comments_above(const std::string& text, const std::string& key) {
  const size_t dot = key.rfind('.');
  const std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
  const std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
  std::istringstream in(text);
  std::vector<std::string> lines;
  std::string current;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '[') current = line.substr(1, line.size() - 2);
    if (current == section && line.rfind(leaf + " = ", 0) == 0 && lines.size() >= 2)
      return {lines[lines.size() - 2], lines.back()};
    lines.push_back(line);
  }
  return {};
}

}  // namespace

TEST_CASE("config reference: --print-config of every committed config is valid TOML holding every key, and resolves "
          "to the same config") {
  models::register_all_trainers();
  const std::vector<std::string> configs = committed_configs();
  REQUIRE(configs.size() >= 4);
  std::set<std::string> trainers_seen;
  for (const std::string& path : configs) {
    CAPTURE(path);
    nn::TrainOptions o;
    o.config_path = path;
    o.overrides = {"steps=7", "optim.lr=0.0125"};
    const nn::ResolvedTrainingConfig want = nn::resolve_training_config(o);
    trainers_seen.insert(want.trainer->name);
    const std::string printed = nn::print_training_config(o);
    toml::table parsed;
    REQUIRE_NOTHROW(parsed = toml::parse(printed, std::string("printed.toml")));
    // Every key of the trainer, nothing else, each once.
    std::set<std::string> leaves, keys;
    leaf_paths(parsed, "", leaves);
    for (const nn::ConfigKeySpec& k : want.schema.keys()) keys.insert(k.key);
    CHECK(leaves == keys);
    CHECK(parsed.at_path("steps").value<int64_t>() == 7);
    CHECK(parsed.at_path("optim.lr").value<double>() == 0.0125);
    // Read back (no overrides this time), the same values.
    const nn::ResolvedTrainingConfig again = nn::resolve_training_config(printed, "printed.toml", {});
    CHECK(again.trainer == want.trainer);
    CHECK(again.config.values() == want.config.values());
    // Each key under its help, and what it accepts with its default.
    for (const nn::ConfigKeySpec& k : want.schema.keys()) {
      CAPTURE(k.key);
      const auto [help, allowed] = comments_above(printed, k.key);
      CHECK(help == "# " + k.help);
      CHECK(allowed.rfind("# " + nn::describe_allowed(k), 0) == 0);
      CHECK(allowed.ends_with(k.default_value ? "; default " + nn::format_config_value(*k.default_value)
                                              : std::string("; required")));
    }
  }
  CHECK(trainers_seen == std::set<std::string>{"captioner", "clip", "mlp", "vqa"});
}

TEST_CASE("config reference: the comments say each key's range and default in words") {
  models::register_all_trainers();
  nn::TrainOptions o;
  o.config_path = source_file("configs/clip_shapes.toml");
  const std::string printed = nn::print_training_config(o);
  struct Want {
    const char* key;
    const char* help;  // "" = not checked
    const char* allowed;
  };
  const Want want[] = {
      {"optim.beta1", "# AdamW beta1", "# float in [0.0, 1.0]; default 0.9"},
      {"steps", "# optimiser steps in the whole run", "# integer >= 1; required"},
      {"precision", "", "# one of \"f32\", \"bf16\", \"f16\"; default \"f32\""},
      {"model.patch_size", "# ViT patch size", "# integer >= 1; default 4"},
      {"data.labelled_only", "", "# boolean; default false"},
      {"eval.batches", "", "# integer >= 0; default 0"},
  };
  for (const Want& w : want) {
    CAPTURE(w.key);
    const auto [help, allowed] = comments_above(printed, w.key);
    if (*w.help) CHECK(help == w.help);
    CHECK(allowed == w.allowed);
  }
  // The same key name, another trainer, its own default (vqa's vision tower is not clip's).
  o.config_path = source_file("configs/vqa_shapes.toml");
  CHECK(comments_above(nn::print_training_config(o), "model.patch_size").second == "# integer >= 1; default 8");
  // The toy's held-out stream is endless: its eval.batches is at least one batch.
  o.config_path = source_file("configs/toy_mlp.toml");
  CHECK(comments_above(nn::print_training_config(o), "eval.batches").second == "# integer >= 1; default 1");
}

TEST_CASE("config reference: a run from the printed config trains exactly as the original") {
  testing::NnTempDir dir;
  models::register_all_trainers();
  nn::TrainOptions o;
  o.config_path = source_file("configs/toy_mlp.toml");
  o.overrides = {"steps=5", "model.hidden=24", "checkpoint.every=0"};
  o.quiet = true;
  const std::string printed = dir.file("printed.toml");
  std::ofstream(printed) << nn::print_training_config(o);
  o.run_dir = dir.file("original");
  const nn::TrainResult a = nn::run_training(o);
  nn::TrainOptions p;
  p.config_path = printed;
  p.run_dir = dir.file("printed");
  p.quiet = true;
  const nn::TrainResult b = nn::run_training(p);
  REQUIRE(a.losses.size() == 5);
  CHECK(a.losses == b.losses);
  CHECK(a.final_eval == b.final_eval);
  CHECK(read_file(dir.file("original/config.toml")) == read_file(dir.file("printed/config.toml")));
}

TEST_CASE("config reference: minivl train --print-config prints what the library generates, and rejects a bad key") {
  models::register_all_trainers();
  nn::TrainOptions o;
  o.config_path = source_file("configs/caption_shapes.toml");
  o.overrides = {"data.batch_size=3"};
  auto r = testing::run_minivl("train --print-config " + o.config_path + " --set data.batch_size=3");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  CHECK(r.output == nn::print_training_config(o));
  auto bad = testing::run_minivl("train --print-config " + o.config_path + " --set model.hiden=3");
  CHECK(bad.exit_code != 0);
  CHECK(bad.output.find("unknown key 'model.hiden' (did you mean 'hidden'?)") != std::string::npos);
}

// Compared with the CLI's output, not the registry of this process: other tests register trainers of their own.
TEST_CASE("config reference: docs/config.md is what the schemas generate, and lists every trainer's keys") {
  models::register_all_trainers();
  auto d = testing::run_minivl("train --print-config-docs");
  REQUIRE_MESSAGE(d.exit_code == 0, d.output);
  const std::string committed = read_file(source_file("docs/config.md"));
  CHECK_MESSAGE(committed == d.output,
                "docs/config.md is stale: regenerate it with `build/bin/minivl train --print-config-docs > docs/config.md`");
  // The trainers `minivl train` knows; the library generates the same text from them.
  auto list = testing::run_minivl("train --list");
  REQUIRE_MESSAGE(list.exit_code == 0, list.output);
  std::vector<std::string> names;
  std::istringstream lines(list.output);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) names.push_back(line.substr(0, line.find(' ')));
  CHECK(names == std::vector<std::string>{"captioner", "clip", "mlp", "vqa"});
  const std::string generated = nn::config_reference_markdown(names);
  CHECK(generated == d.output);
  // Each trainer's section has a row for each of its keys that the common table does not declare the same way,
  // with its own default: the same key name may have two defaults in two trainers.
  const nn::ConfigSchema base = nn::ConfigSchema::training();
  for (const nn::ConfigKeySpec& k : base.keys())
    CHECK(generated.find("| `" + k.key + "` | ") < generated.find("\n## `model.name"));
  for (const std::string& name : names) {
    CAPTURE(name);
    const size_t begin = generated.find("\n## `model.name = \"" + name + "\"`");
    REQUIRE(begin != std::string::npos);
    const std::string section = generated.substr(begin, generated.find("\n## ", begin + 1) - begin);
    const nn::ConfigSchema schema = nn::trainer_schema(*nn::find_trainer(name));
    for (const nn::ConfigKeySpec& k : schema.keys()) {
      CAPTURE(k.key);
      const nn::ConfigKeySpec* common = base.find(k.key);
      const bool own_row = !common || !nn::same_spec(*common, k);
      const std::string row = "| `" + k.key + "` | " +
                              (k.default_value ? "`" + nn::format_config_value(*k.default_value) + "`" : "required") + " |";
      CHECK((section.find(row) != std::string::npos) == own_row);
    }
  }
}

// ---- eval.batches ----
namespace {

std::map<std::string, double> final_eval(const std::string& config, const std::string& run_dir,
                                         std::vector<std::string> overrides) {
  nn::TrainOptions o;
  o.config_path = source_file(config);
  o.run_dir = run_dir;
  o.overrides = std::move(overrides);
  o.overrides.insert(o.overrides.end(), {"steps=1", "eval.every=0", "checkpoint.every=0"});
  o.quiet = true;
  return nn::run_training(o).final_eval;
}

}  // namespace

// One training step, then the final evaluation three ways: eval.batches = 1 of B examples; the trainer's own
// limit (data.eval_images / eval_questions) at B; the whole held-out set. The first two must agree (the same
// B examples), and differ from the third; when eval.batches were ignored the first would be the third.
TEST_CASE("config reference: eval.batches limits the evaluation of clip, vqa and the captioner to that many batches") {
  testing::NnTempDir dir;
  models::register_all_trainers();
  const std::string world = "data.path=" + dir.file("shapes");
  const std::vector<std::string> small_world = {world, "data.generate_n=120", "data.generate_size=32"};
  auto join = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const std::vector<std::string> vision_language = join(testing::tiny_vision_language_keys(), {"model.vision_init="});
  struct Case {
    const char* name;
    const char* config;
    std::vector<std::string> keys;
    const char* own_limit;  // the trainer's count of held-out examples
    int64_t batch;
  };
  const Case cases[] = {
      {"vqa", "configs/vqa_shapes.toml", join(vision_language, {"data.answer_min_count=1"}), "data.eval_questions", 3},
      {"captioner", "configs/caption_shapes.toml", join(vision_language, {"data.eval_beam=1"}), "data.eval_images", 2},
      {"clip", "configs/clip_shapes.toml", join(testing::tiny_clip_keys(), {"data.learned_vocab_size=520"}),
       "data.eval_images", 4},
  };
  for (const Case& c : cases) {
    const std::string trainer = c.name;
    CAPTURE(trainer);
    const std::vector<std::string> keys = join(join(small_world, c.keys), {"data.batch_size=" + std::to_string(c.batch)});
    const std::string own = std::string(c.own_limit) + "=";
    const auto limited = final_eval(c.config, dir.file(std::string(c.name) + "_batches"),
                                    join(keys, {"eval.batches=1", own + "0"}));
    const auto by_own_limit = final_eval(c.config, dir.file(std::string(c.name) + "_own"),
                                         join(keys, {"eval.batches=0", own + std::to_string(c.batch)}));
    const auto whole = final_eval(c.config, dir.file(std::string(c.name) + "_all"), join(keys, {"eval.batches=0", own + "0"}));
    REQUIRE_FALSE(limited.empty());
    CHECK(limited == by_own_limit);
    CHECK(limited != whole);
    if (std::string(c.name) == "clip") {
      // Four images: each caption's image is among the top 5 of 4, whatever the model.
      CHECK(limited.at("t2i_r5") == 1.0);
      CHECK(whole.at("t2i_r5") < 1.0);
    }
  }
}

TEST_SUITE_END();
