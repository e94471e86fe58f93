// TOML configs against the schema: every kind of mistake names the file, the
// line and the key; --set overrides; the canonical text round trips.
#include <doctest/doctest.h>

#include "core_test_util.h"
#include "models/trainers.h"
#include "nn/config.h"
#include "nn/trainer.h"

TEST_SUITE_BEGIN("nn_config");

using namespace minivl;
using namespace minivl::nn;
using minivl::testing::check_error;

namespace {
ConfigSchema schema() {
  ConfigSchema s = ConfigSchema::training();
  s.add_int("model.hidden", 64, "width", 1);
  return s;
}
const char* kGood = R"(steps = 10
[model]
name = "mlp"
hidden = 32
[optim]
lr = 1   # an integer where a float is expected is fine
)";
}  // namespace

TEST_CASE("nn config: defaults fill in, integers widen to floats") {
  Config c = Config::parse(kGood, "good.toml", schema());
  CHECK(c.get_int("steps") == 10);
  CHECK(c.get_int("model.hidden") == 32);
  CHECK(c.get_float("optim.lr") == 1.0);
  CHECK(c.get_string("optim.name") == "adamw");
  CHECK(c.get_float("optim.beta2") == 0.999);
  CHECK(c.get_bool("optim.nesterov") == false);
  check_error([&] { c.get_string("steps"); }, {"'steps' is an integer, not a string"});
}

TEST_CASE("nn config: schema errors name the file, the line and the key") {
  struct Case {
    const char* text;
    std::vector<std::string> parts;
  };
  const Case cases[] = {
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\nlrr = 0.1\n",
       {"x.toml:5: unknown key 'optim.lrr' (did you mean 'lr'?)"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optm]\nlr = 0.1\n",
       {"x.toml:4: unknown section 'optm' (did you mean 'optim'?)"}},
      {"stesp = 1\n[model]\nname = \"mlp\"\n", {"x.toml:1: unknown key 'stesp' (did you mean 'steps'?)"}},
      {"steps = 1\n[model]\nname = \"mlp\"\nzzzzzz = 3\n", {"x.toml:4: unknown key 'model.zzzzzz'"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\n\nlr = \"fast\"\n",
       {"x.toml:6: key 'optim.lr' must be a float, got string"}},
      {"steps = 1.5\n[model]\nname = \"mlp\"\n", {"x.toml:1: key 'steps' must be an integer, got float"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\nnesterov = 1\n",
       {"x.toml:5: key 'optim.nesterov' must be a boolean, got integer"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\nname = \"adam\"\n",
       {"x.toml:5: key 'optim.name' must be one of adamw, sgd; got 'adam'"}},
      {"steps = 0\n[model]\nname = \"mlp\"\n", {"x.toml:1: key 'steps' must be >= 1, got 0"}},
      {"steps = 1\nmodel = 3\n", {"x.toml:2: 'model' is a section (a table), got integer"}},
      {"steps = {a = 1}\n[model]\nname = \"mlp\"\n", {"x.toml:1: key 'steps' must be an integer, got table"}},
      {"steps = 1\n", {"x.toml: missing required key 'model.name'"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\nlr = [1, 2]\n", {"x.toml:5: key 'optim.lr' must be a float, got array"}},
      {"steps = 1\n[model\n", {"x.toml:2: invalid TOML"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\nbeta1 = 1.5\n",
       {"x.toml:5: key 'optim.beta1' must be in [0, 1], got 1.5"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\nbeta2 = -0.5\n",
       {"x.toml:5: key 'optim.beta2' must be in [0, 1], got -0.5"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\nlr = nan\n", {"x.toml:5: key 'optim.lr' must be a finite number, got nan"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[optim]\ngrad_clip = inf\n",
       {"x.toml:5: key 'optim.grad_clip' must be a finite number, got inf"}},
      {"steps = 1\n[model]\nname = \"mlp\"\n[eval]\nbatches = -1\n", {"x.toml:5: key 'eval.batches' must be >= 0, got -1"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    check_error([&] { Config::parse(c.text, "x.toml", schema()); }, c.parts);
  }
}

TEST_CASE("nn config: --set overrides are typed and validated like the file") {
  Config c = Config::parse(kGood, "good.toml", schema(),
                           {"optim.lr=0.25", "steps=7", "optim.name=sgd", "optim.nesterov=true", "model.name=\"x\""});
  CHECK(c.get_float("optim.lr") == 0.25);
  CHECK(c.get_int("steps") == 7);
  CHECK(c.get_string("optim.name") == "sgd");
  CHECK(c.get_bool("optim.nesterov"));
  CHECK(c.get_string("model.name") == "x");
  check_error([&] { Config::parse(kGood, "good.toml", schema(), {"optim.lrr=0.1"}); },
              {"--set optim.lrr=0.1: unknown key 'optim.lrr' (did you mean 'lr'?)"});
  check_error([&] { Config::parse(kGood, "good.toml", schema(), {"steps=ten"}); },
              {"--set steps=ten: key 'steps' must be an integer, got 'ten'"});
  check_error([&] { Config::parse(kGood, "good.toml", schema(), {"optim.lr"}); }, {"expected section.key=value"});
  check_error([&] { Config::parse(kGood, "good.toml", schema(), {"precision=f8"}); },
              {"must be one of f32, bf16, f16; got 'f8'"});
  check_error([&] { Config::parse(kGood, "good.toml", schema(), {"optim.eps=-inf"}); },
              {"--set optim.eps=-inf: key 'optim.eps' must be a finite number, got -inf"});
}

// Each trainer's own keys and ranges: a key of one trainer is unknown to another, and a key two
// trainers declare differently is checked against the chosen trainer's range.
TEST_CASE("nn config: a trainer's config is checked against that trainer's schema") {
  models::register_all_trainers();
  auto resolve = [](const std::string& text, const std::vector<std::string>& overrides = {}) {
    return resolve_training_config(text, "t.toml", overrides);
  };
  const std::string toy = "steps = 2\n[model]\nname = \"mlp\"\n";
  const std::string clip = "steps = 2\n[model]\nname = \"clip\"\n";
  CHECK(resolve(toy).config.get_int("eval.batches") == 1);  // the toy's endless held-out stream: one batch
  CHECK(resolve(clip).config.get_int("eval.batches") == 0);  // clip: the whole held-out set
  CHECK(resolve(clip).config.get_int("model.patch_size") == 4);
  CHECK(resolve("steps = 2\n[model]\nname = \"vqa\"\n").config.get_int("model.patch_size") == 8);
  check_error([&] { resolve(toy, {"eval.batches=0"}); }, {"--set eval.batches=0: key 'eval.batches' must be >= 1, got 0"});
  check_error([&] { resolve(clip, {"eval.batches=-2"}); }, {"key 'eval.batches' must be >= 0, got -2"});
  check_error([&] { resolve(clip + "patch_sise = 4\n"); }, {"t.toml:4: unknown key 'model.patch_sise' (did you mean 'patch_size'?)"});
  check_error([&] { resolve(toy + "patch_size = 4\n"); }, {"t.toml:4: unknown key 'model.patch_size'"});
  check_error([&] { resolve(clip + "[data]\nlearned_vocab_size = 300\n"); },
              {"t.toml:5: key 'data.learned_vocab_size' must be >= 514, got 300"});
  check_error([&] { resolve("steps = 2\n[model]\nname = \"captioner\"\nlabel_smoothing = 0.95\n"); },
              {"t.toml:4: key 'model.label_smoothing' must be in [0, 0.9], got 0.95"});
  check_error([&] { resolve("steps = 2\n[model]\nname = \"gpt\"\n"); },
              {"t.toml: unknown model 'gpt' (registered trainers: ", "captioner, clip, mlp", "vqa"});
}

TEST_CASE("nn config: eval_example_limit takes eval.batches batches of the held-out examples, 0 = all") {
  CHECK(eval_example_limit(100, 0, 8) == 100);
  CHECK(eval_example_limit(100, 1, 8) == 8);
  CHECK(eval_example_limit(100, 12, 8) == 96);
  CHECK(eval_example_limit(100, 13, 8) == 100);  // more batches than there are: all
  CHECK(eval_example_limit(100, int64_t(1) << 62, 1 << 20) == 100);  // no overflow
  CHECK(eval_example_limit(0, 3, 8) == 0);
  check_error([] { eval_example_limit(10, -1, 8); }, {"eval_example_limit: bad arguments"});
}

TEST_CASE("nn config: to_toml is canonical and parses back to the same values") {
  Config c = Config::parse(kGood, "good.toml", schema(), {"optim.lr=0.1", "model.name=a \"quoted\" name"});
  const std::string text = c.to_toml();
  CHECK(text.find("lr = 0.1\n") != std::string::npos);
  Config d = Config::parse(text, "again.toml", schema());
  CHECK(d.values() == c.values());
  CHECK(d.to_toml() == text);
  CHECK(peek_config_string(kGood, "good.toml", "model.name") == std::optional<std::string>("mlp"));
  CHECK_FALSE(peek_config_string(kGood, "good.toml", "steps").has_value());
  CHECK(closest_name("lrr", {"lr", "eps", "beta1"}) == std::optional<std::string>("lr"));
  CHECK_FALSE(closest_name("zzzzzz", {"lr", "eps"}).has_value());
}

TEST_SUITE_END();
