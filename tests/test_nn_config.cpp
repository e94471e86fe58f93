// TOML configs against the schema: every kind of mistake names the file, the
// line and the key; --set overrides; the canonical text round trips.
#include <doctest/doctest.h>

#include "core_test_util.h"
#include "nn/config.h"

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
