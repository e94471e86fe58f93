// The models learn: CLIP, the VQA model and the captioner, each trained by its own trainer from its
// committed config (configs/{clip,vqa,caption}_shapes.toml) with `minivl train --set` overrides, drive
// the loss on one fixed batch to under a quarter of the first step's loss.
//
// One fixed batch: the whole training split of a 12-image shapes world (10 images, 58 questions) is
// one batch (data.batch_size = the split's size), and each image keeps one caption
// (data.captions_per_image = 1), so every step sees the same examples, only in another order.
// The overrides shrink the towers to one layer of width 32 at 32 px and shorten the schedule;
// the VQA model and the captioner also get a higher lr, and the captioner no label smoothing: with
// it, the loss cannot fall below the smoothed targets' entropy (about 0.7 here, a sixth of the start).
// The runs are single-threaded: at these sizes threads only add waiting (on a loaded 2-core machine a
// 2-thread run took 20 times longer), and one thread gives the same losses on every machine.
#include <doctest/doctest.h>
#include <omp.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "data/shapes.h"
#include "models/clip_train.h"
#include "models/vqa_caption_train.h"
#include "nn/trainer.h"
#include "nn_test_util.h"
#include "tests/tiny_models.h"

TEST_SUITE_BEGIN("overfit");

using namespace minivl;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A 12-image, 32 px shapes world generated once per process, and the sizes of its training split.
struct OverfitWorld {
  testing::NnTempDir dir;
  std::string path = dir.file("shapes");
  int64_t train_images = 0, train_questions = 0;

  OverfitWorld() {
    data::shapes::GenerateOptions g;
    g.out_dir = path;
    g.n = 12;
    g.seed = 1;
    g.size = 32;
    data::shapes::generate_shapes(g);
    const json splits = json::parse(std::ifstream(fs::path(path) / "splits.json"));
    const json questions = json::parse(std::ifstream(fs::path(path) / "vqa" / "questions.json"));
    std::set<int64_t> train;
    for (const auto& id : splits.at("train")) train.insert(id.get<int64_t>());
    train_images = int64_t(train.size());
    for (const auto& q : questions.at("questions")) train_questions += int64_t(train.count(q.at("image_id").get<int64_t>()));
  }
  // The data.generate_* keys that name this world, so the trainer uses it as it is.
  std::vector<std::string> data_overrides() const {
    return {"data.path=\"" + path + "\"", "data.generate_n=12", "data.generate_seed=1", "data.generate_size=32"};
  }
};

const OverfitWorld& world() {
  static const OverfitWorld w;
  return w;
}

// The vision tower at 32 px, one layer of width 32, trained from scratch.
const std::vector<std::string> kTinyVision = minivl::testing::with_overrides(
    minivl::testing::tiny_vision_keys(), {"model.image_size=32", "model.vision_width=32", "model.vision_mlp=64"});

// OpenMP's thread count is 1 for this object's lifetime.
struct SingleThreaded {
  int saved = omp_get_max_threads();
  SingleThreaded() { omp_set_num_threads(1); }
  ~SingleThreaded() { omp_set_num_threads(saved); }
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;
};

// Trains configs/CONFIG with the overrides; returns each step's loss from the run's metrics.jsonl.
std::vector<double> train_losses(const std::string& config, int64_t steps, std::vector<std::string> overrides) {
  testing::NnTempDir run;
  nn::TrainOptions o;
  o.config_path = std::string(MINIVL_SOURCE_DIR) + "/configs/" + config;
  o.run_dir = run.file("run");
  o.quiet = true;
  o.overrides = world().data_overrides();
  o.overrides.insert(o.overrides.end(), kTinyVision.begin(), kTinyVision.end());
  for (const char* common : {"schedule.warmup_steps=5", "eval.every=0", "checkpoint.every=0"})
    o.overrides.push_back(common);
  o.overrides.push_back("steps=" + std::to_string(steps));
  o.overrides.insert(o.overrides.end(), overrides.begin(), overrides.end());
  const SingleThreaded one_thread;
  const auto t0 = std::chrono::steady_clock::now();
  const nn::TrainResult r = nn::run_training(o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> losses;
  std::ifstream in(fs::path(o.run_dir) / "metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const json j = json::parse(line);
    if (j.contains("loss")) losses.push_back(j.at("loss").get<double>());
  }
  INFO(config << ": " << steps << " steps in " << secs << " s");
  REQUIRE(int64_t(losses.size()) == steps);
  CHECK(r.losses == losses);   // the run's record is what the loop computed
  return losses;
}

void check_overfits(const std::vector<double>& losses) {
  INFO("first step's loss " << losses.front() << ", last " << losses.back());
  CHECK(losses.front() > 0.5);   // a real starting loss, not an already-solved batch
  CHECK(losses.back() < 0.25 * losses.front());
}

}  // namespace

TEST_CASE("overfit: CLIP drives the contrastive loss on one fixed batch under a quarter of its start") {
  models::register_clip_trainers();
  const OverfitWorld& w = world();
  REQUIRE(w.train_images >= 8);
  check_overfits(train_losses(
      "clip_shapes.toml", 40,
      {"data.batch_size=" + std::to_string(w.train_images), "data.labelled_only=false", "data.captions_per_image=1",
       "data.eval_images=2", "model.text_width=32", "model.text_layers=1", "model.text_mlp=64",
       "model.projection_dim=32"}));
}

TEST_CASE("overfit: the VQA model drives its answer loss on one fixed batch under a quarter of its start") {
  models::register_vqa_caption_trainers();
  const OverfitWorld& w = world();
  REQUIRE(w.train_questions >= 40);
  check_overfits(train_losses(
      "vqa_shapes.toml", 60,
      {"data.batch_size=" + std::to_string(w.train_questions), "data.answer_min_count=1", "data.eval_questions=4",
       "model.vision_init=\"\"", "model.freeze_vision=false", "model.unfreeze_vision_at=0", "model.hidden=32",
       "model.layers=1", "model.heads=2", "model.mlp=64", "optim.lr=1e-2"}));
}

TEST_CASE("overfit: the captioner drives its teacher-forcing loss on one fixed batch under a quarter of its start") {
  models::register_vqa_caption_trainers();
  const OverfitWorld& w = world();
  REQUIRE(w.train_images >= 8);
  check_overfits(train_losses(
      "caption_shapes.toml", 100,
      {"data.batch_size=" + std::to_string(w.train_images), "data.captions_per_image=1", "data.eval_images=1",
       "data.eval_beam=1", "model.vision_init=\"\"", "model.hidden=32", "model.layers=1", "model.heads=2",
       "model.mlp=64", "model.label_smoothing=0", "optim.lr=1e-2"}));
}

TEST_SUITE_END();
