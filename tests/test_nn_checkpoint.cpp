// Checkpoints and exact resume: N steps straight versus N/2, stop, resume,
// N/2 give bit-identical losses and weights on the CPU (in-process and through
// `minivl train`); the checkpoint swap is atomic and survives a crash between
// its two renames.
#include <doctest/doctest.h>

#include <algorithm>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/tensor_io.h"
#include "core_test_util.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/trainer.h"
#include "nn_test_util.h"

TEST_SUITE_BEGIN("nn_checkpoint");

using namespace minivl;
using namespace minivl::nn;
namespace fs = std::filesystem;
using minivl::testing::check_error;
using minivl::testing::NnTempDir;

namespace {
// The toy trainer with dropout (RNG state matters), cosine warm-up, clipping and accumulation.
std::string toy_config(const std::string& optim = "adamw", int64_t accum = 2) {
  return "steps = 12\nseed = 3\n[model]\nname = \"mlp\"\nhidden = 24\ndropout = 0.2\n[data]\nbatch_size = 16\n"
         "[optim]\nname = \"" + optim + "\"\nlr = 0.01\nweight_decay = 0.1\ngrad_clip = 0.5\ngrad_accum = " +
         std::to_string(accum) + "\n[schedule]\nname = \"cosine\"\nwarmup_steps = 3\n[eval]\nevery = 4\n"
         "[checkpoint]\nevery = 5\n";
}

std::string write_config(const NnTempDir& dir, const std::string& text) {
  std::string path = dir.file("toy.toml");
  std::ofstream(path) << text;
  return path;
}

std::vector<double> losses_in(const std::string& metrics_path) {
  std::ifstream in(metrics_path);
  std::vector<double> out;
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE("nn resume: N straight == N/2 + stop + resume + N/2, bit for bit (losses, weights, moments)") {
  register_toy_trainers();
  for (const char* optim : {"adamw", "sgd"}) {
    CAPTURE(optim);
    NnTempDir dir;
    const std::string cfg = write_config(dir, toy_config(optim));
    TrainOptions straight{cfg, {}, dir.file("straight"), false, 0, true};
    TrainResult a = run_training(straight);
    REQUIRE(a.losses.size() == 12);

    TrainOptions first{cfg, {}, dir.file("split"), false, 6, true};
    TrainResult b1 = run_training(first);
    CHECK(b1.end_step == 6);
    TrainOptions second{"", {}, dir.file("split"), true, 0, true};  // config from the checkpoint
    TrainResult b2 = run_training(second);
    CHECK(b2.start_step == 6);
    std::vector<double> split = b1.losses;
    split.insert(split.end(), b2.losses.begin(), b2.losses.end());
    CHECK(split == a.losses);  // exact
    CHECK(losses_in(dir.file("split/metrics.jsonl")) == a.losses);
    CHECK(file_bytes(dir.file("straight/checkpoint/model.safetensors")) ==
          file_bytes(dir.file("split/checkpoint/model.safetensors")));
    CHECK(file_bytes(dir.file("straight/checkpoint/optimizer.safetensors")) ==
          file_bytes(dir.file("split/checkpoint/optimizer.safetensors")));
    CHECK(a.final_eval == b2.final_eval);
    CHECK(a.final_eval.count("accuracy") == 1);
  }
}

TEST_CASE("nn resume: a run dir with a checkpoint is not overwritten without --resume") {
  register_toy_trainers();
  NnTempDir dir;
  const std::string cfg = write_config(dir, toy_config());
  run_training({cfg, {"steps=2"}, dir.file("run"), false, 0, true});
  check_error([&] { run_training({cfg, {}, dir.file("run"), false, 0, true}); },
              {"already holds a checkpoint", "--resume"});
  check_error([&] { run_training({"", {}, dir.file("nothing"), true, 0, true}); }, {"no checkpoint here"});
  check_error([&] { run_training({cfg, {"model.name=\"resnet\""}, dir.file("r2"), false, 0, true}); },
              {"unknown model 'resnet'", "mlp"});
  check_error([&] { run_training({cfg, {"model.hiddn=3"}, dir.file("r3"), false, 0, true}); },
              {"unknown key 'model.hiddn' (did you mean 'hidden'?)"});
}

TEST_CASE("nn checkpoint: state.json holds step, RNG, cursor, config; the swap leaves no temporaries") {
  register_toy_trainers();
  NnTempDir dir;
  const std::string cfg = write_config(dir, toy_config());
  run_training({cfg, {}, dir.file("run"), false, 4, true});
  TrainingState s = read_checkpoint_state(dir.file("run"));
  CHECK(s.step == 4);
  CHECK(s.rng.seed == 3);
  CHECK(s.rng.offset > 0);
  CHECK(s.data_cursor["batch"] == 8);  // 4 steps x 2 micro-batches
  CHECK(s.config.find("grad_accum = 2") != std::string::npos);
  CHECK(s.extra.contains("grad_scaler"));
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir.file("run"))) entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  CHECK(entries == std::vector<std::string>{"checkpoint", "config.toml", "metrics.jsonl"});
}

TEST_CASE("nn checkpoint: a crash between the two renames leaves checkpoint.old.* that is still found") {
  NnTempDir dir;
  Linear model(2, 2);
  AdamW opt(make_param_groups(model, {0.0}), {});
  TrainingState s;
  s.step = 3;
  s.config = "steps = 3\n";
  save_checkpoint(dir.file("run"), model, opt, s);
  // Simulate: old renamed away, the new one never renamed in.
  fs::rename(dir.file("run/checkpoint"), dir.file("run/checkpoint.old.999"));
  CHECK(find_checkpoint(dir.file("run")) == dir.file("run/checkpoint.old.999"));
  Linear other(2, 2);
  AdamW opt2(make_param_groups(other, {0.0}), {});
  CHECK(load_checkpoint(dir.file("run"), other, opt2).step == 3);
  CHECK(other.weight.to_vector() == model.weight.to_vector());
  // An incomplete folder is never taken for a checkpoint.
  fs::remove(dir.file("run/checkpoint.old.999/optimizer.safetensors"));
  CHECK(find_checkpoint(dir.file("run")).empty());
  // A model that does not match is a clear error naming the file.
  save_checkpoint(dir.file("run2"), model, opt, s);
  Linear wrong(3, 2);
  AdamW opt3(make_param_groups(wrong, {0.0}), {});
  check_error([&] { load_checkpoint(dir.file("run2"), wrong, opt3); },
              {"model.safetensors", "weight (expected (2, 3), got (2, 2))"});
}

TEST_CASE("nn minivl train: the CLI trains, stops, resumes bit-identically, and rejects bad configs") {
  NnTempDir dir;
  const std::string cfg = write_config(dir, toy_config());
  auto straight = minivl::testing::run_minivl("train " + cfg + " --run-dir " + dir.file("a") + " --quiet");
  REQUIRE_MESSAGE(straight.exit_code == 0, straight.output);
  auto first = minivl::testing::run_minivl("train " + cfg + " --run-dir " + dir.file("b") + " --stop-at 5");
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  CHECK(first.output.find("stopped at step 5") != std::string::npos);
  auto second = minivl::testing::run_minivl("train --resume " + dir.file("b") + " --quiet");
  REQUIRE_MESSAGE(second.exit_code == 0, second.output);
  CHECK(losses_in(dir.file("a/metrics.jsonl")) == losses_in(dir.file("b/metrics.jsonl")));
  CHECK(file_bytes(dir.file("a/checkpoint/model.safetensors")) ==
        file_bytes(dir.file("b/checkpoint/model.safetensors")));

  auto bad = minivl::testing::run_minivl("train " + cfg + " --run-dir " + dir.file("c") + " --set optim.lrr=1");
  CHECK(bad.exit_code != 0);
  CHECK(bad.output.find("unknown key 'optim.lrr' (did you mean 'lr'?)") != std::string::npos);
  std::ofstream(dir.file("bad.toml")) << "steps = 3\n[model]\nname = \"mlp\"\n[optim]\nlr = \"x\"\n";
  bad = minivl::testing::run_minivl("train " + dir.file("bad.toml") + " --run-dir " + dir.file("d"));
  CHECK(bad.exit_code != 0);
  CHECK(bad.output.find(dir.file("bad.toml") + ":5: key 'optim.lr' must be a float, got string") != std::string::npos);
  auto list = minivl::testing::run_minivl("train --list");
  CHECK(list.output.find("mlp") != std::string::npos);
}

TEST_CASE("nn configs/toy_mlp.toml validates") {
  register_toy_trainers();
  ConfigSchema s = ConfigSchema::training();
  find_trainer("mlp")->extend_schema(s);
  Config c = Config::load(std::string(MINIVL_SOURCE_DIR) + "/configs/toy_mlp.toml", s);
  CHECK(c.get_string("model.name") == "mlp");
}

TEST_SUITE_END();
