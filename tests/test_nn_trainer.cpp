// Training safety (docs/hardening.md): the non-finite guard skips a bad step with a
// warning and stops after optim.max_nonfinite_steps in a row, naming the last good checkpoint; a
// checkpoint is never written with NaN/inf weights; Ctrl-C finishes the step, checkpoints and
// prints the resume command (in-process and through `minivl train`). Out of host memory:
// tests/test_tensor.cpp.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/autograd.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/trainer.h"
#include "tests/core_test_util.h"
#include "tests/nn_test_util.h"

using namespace minivl;
using namespace minivl::nn;
using minivl::testing::error_of;
using minivl::testing::NnTempDir;
using minivl::testing::run_minivl;
namespace fs = std::filesystem;

namespace {

// A one-layer model whose loss is sum(linear(x)^2) on a fixed x. Per batch index (the data
// cursor): `nan_batches` make the loss NaN, `poison_after` sets the weights to NaN after that
// batch's step, `sigint_batch` raises SIGINT while computing that batch's loss.
struct ScriptedTrainer : Trainer {
  std::shared_ptr<Linear> model_ = std::make_shared<Linear>(4, 2);
  std::set<int64_t> nan_batches;
  int64_t poison_after = -1, sigint_batch = -1, cursor = 0;

  Module& model() override { return *model_; }
  Tensor train_loss() override {
    const int64_t b = cursor++;
    if (b == sigint_batch) std::raise(SIGINT);
    Tensor y = model_->forward(full({3, 4}, 0.5));
    Tensor loss = sum(mul(y, y));
    return nan_batches.count(b) ? mul(loss, std::nan("")) : loss;
  }
  void after_step() override {
    if (cursor - 1 == poison_after) {
      NoGradGuard no_grad;
      model_->weight.fill_(std::nan(""));
    }
  }
  nlohmann::json data_cursor() const override { return {{"batch", cursor}}; }
  void set_data_cursor(const nlohmann::json& c) override { cursor = c.at("batch").get<int64_t>(); }
};

// Registers "scripted" whose trainer is configured by `setup`.
void register_scripted(std::function<void(ScriptedTrainer&)> setup) {
  TrainerInfo info;
  info.name = "scripted";
  info.description = "test trainer (tests/test_nn_trainer.cpp)";
  info.create = [setup](const Config&, Device) -> std::unique_ptr<Trainer> {
    auto t = std::make_unique<ScriptedTrainer>();
    setup(*t);
    return t;
  };
  register_trainer(std::move(info));
}

TrainOptions scripted_run(const NnTempDir& dir, const std::string& extra = "") {
  const std::string cfg = dir.file("scripted.toml");
  std::ofstream(cfg) << "steps = 10\n[model]\nname = \"scripted\"\n[optim]\nname = \"sgd\"\nlr = 0.01\n"
                        "max_nonfinite_steps = 3\n[checkpoint]\nevery = 2\n" << extra;
  TrainOptions o;
  o.config_path = cfg;
  o.run_dir = dir.file("run");
  o.quiet = true;
  return o;
}

std::vector<nlohmann::json> metrics_lines(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

size_t metrics_lines_count(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

// The model weights of run_dir's checkpoint, by name.
std::map<std::string, std::vector<double>> checkpoint_weights(const std::string& run_dir) {
  std::map<std::string, std::vector<double>> w;
  for (const auto& [name, t] : load_safetensors(run_dir + "/checkpoint/model.safetensors")) w[name] = t.to_vector();
  return w;
}

// The scripted model's weights before training: the loop seeds the default generator with the
// config's seed (0) and then builds the trainer.
std::map<std::string, std::vector<double>> initial_weights() {
  default_generator().manual_seed(0);
  std::map<std::string, std::vector<double>> w;
  for (const auto& [name, t] : Linear(4, 2).state_dict()) w[name] = t.to_vector();
  return w;
}

}  // namespace

TEST_SUITE("nn_trainer") {

TEST_CASE("trainer: a non-finite loss skips the step; K in a row stop the run naming the last good checkpoint") {
  NnTempDir dir;
  // Batch 2 (step 3) alone, then batches 5, 6, 7 (steps 6, 7, 8): the third in a row stops.
  register_scripted([](ScriptedTrainer& t) { t.nan_batches = {2, 5, 6, 7}; });
  const TrainOptions o = scripted_run(dir);
  const std::string e = error_of<std::exception>([&] { run_training(o); });
  CHECK(e.find("stopped at step 8") != std::string::npos);
  CHECK(e.find("3 consecutive steps had a non-finite loss") != std::string::npos);
  CHECK(e.find("last good checkpoint is " + (fs::path(o.run_dir) / "checkpoint").string() + " (step 6)") !=
        std::string::npos);
  CHECK(e.find("minivl train --resume " + o.run_dir) != std::string::npos);
  const auto lines = metrics_lines(o.run_dir);
  REQUIRE(lines.size() == 8);
  CHECK(lines[2].value("skipped", false));   // step 3
  CHECK_FALSE(lines[3].value("skipped", false));
  // The skipped steps left the weights (and momenta) alone: the step-6 checkpoint (steps 3 and 6
  // skipped) holds finite weights, bitwise those of a clean run stopped after its 4th step (four
  // updates each, constant lr, the same init).
  CHECK(read_checkpoint_state(o.run_dir).step == 6);
  const std::map<std::string, std::vector<double>> after_skips = checkpoint_weights(o.run_dir);
  REQUIRE(after_skips.count("weight") == 1);
  for (const auto& [name, values] : after_skips) {
    CAPTURE(name);
    CHECK(std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); }));
  }
  NnTempDir clean_dir;
  register_scripted([](ScriptedTrainer&) {});
  TrainOptions clean = scripted_run(clean_dir);
  clean.stop_at = 4;
  run_training(clean);
  CHECK(after_skips == checkpoint_weights(clean.run_dir));
  CHECK(after_skips != initial_weights());   // and the four updates did move them
}

TEST_CASE("trainer: a checkpoint is never written with non-finite weights; the previous one is kept") {
  NnTempDir dir;
  register_scripted([](ScriptedTrainer& t) { t.poison_after = 2; });   // weights NaN after step 3
  const TrainOptions o = scripted_run(dir);
  const std::string e = error_of<std::exception>([&] { run_training(o); });
  CHECK(e.find("not writing") != std::string::npos);
  CHECK(e.find("'weight' holds non-finite values") != std::string::npos);
  CHECK(read_checkpoint_state(o.run_dir).step == 2);
  for (const auto& entry : fs::directory_iterator(o.run_dir))   // no half-written checkpoint.tmp.*
    CHECK(entry.path().filename().string().rfind("checkpoint.tmp", 0) != 0);
}

TEST_CASE("trainer: Ctrl-C finishes the step, writes a checkpoint and the run resumes from it") {
  NnTempDir dir;
  register_scripted([](ScriptedTrainer& t) { t.sigint_batch = 3; });   // during step 4
  TrainOptions o = scripted_run(dir);
  void (*before)(int) = std::signal(SIGINT, SIG_IGN);
  TrainResult r = run_training(o);
  const bool restored = std::signal(SIGINT, before) == SIG_IGN;   // the loop put the handler back
  CHECK(restored);
  CHECK(r.interrupted);
  CHECK(r.end_step == 4);
  CHECK(read_checkpoint_state(o.run_dir).step == 4);
  register_scripted([](ScriptedTrainer&) {});
  o.resume = true;
  TrainResult rest = run_training(o);
  CHECK_FALSE(rest.interrupted);
  CHECK(rest.start_step == 4);
  CHECK(rest.end_step == 10);
}

TEST_CASE("trainer: minivl train stops a diverging run with the step, the cause and the checkpoint") {
  NnTempDir dir;
  const std::string run = dir.file("run");
  const auto r = run_minivl("train " MINIVL_SOURCE_DIR "/configs/toy_mlp.toml --quiet --run-dir " + run +
                            " --set steps=40 --set optim.lr=1e30 --set optim.grad_clip=0 --set checkpoint.every=1"
                            " --set optim.max_nonfinite_steps=2 --set eval.every=0");
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("train: warning: step") != std::string::npos);
  CHECK(r.output.find("2 consecutive steps had a non-finite loss or gradient norm") != std::string::npos);
  CHECK(r.output.find("last good checkpoint is " + run + "/checkpoint") != std::string::npos);
  CHECK(fs::exists(run + "/checkpoint/model.safetensors"));
}

TEST_CASE("trainer: Ctrl-C on minivl train exits 130 with a checkpoint and the resume command") {
  NnTempDir dir;
  const std::string run = dir.file("run"), out = dir.file("out.txt");
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string cmd = "exec " MINIVL_CLI_PATH " train " MINIVL_SOURCE_DIR "/configs/toy_mlp.toml --run-dir " +
                            run + " --set steps=1000000 --set checkpoint.every=0 --set eval.every=0 --set log.every=1000 > " +
                            out + " 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for a few steps in metrics.jsonl, then Ctrl-C.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline && metrics_lines_count(run) < 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(out);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  CAPTURE(text);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  CHECK(text.find("interrupted at step") != std::string::npos);
  CHECK(text.find("minivl train --resume " + run) != std::string::npos);
  const int64_t step = read_checkpoint_state(run).step;
  CHECK(step >= 3);
  CHECK(int64_t(metrics_lines(run).size()) == step);
}

}  // TEST_SUITE
