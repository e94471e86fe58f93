#include "nn/trainer.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/autograd.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "nn/amp.h"
#include "nn/checkpoint.h"
#include "nn/data_parallel.h"
#include "nn/distributed.h"
#include "nn/optim.h"

namespace minivl::nn {
namespace fs = std::filesystem;

namespace {
std::map<std::string, TrainerInfo>& registry() {
  static std::map<std::string, TrainerInfo> r;
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MINIVL_CHECK(in.good(), path, ": cannot open the config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Keeps the metrics lines of steps <= `step` (a resumed run rewrites what came after its checkpoint).
void truncate_metrics(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string line, kept;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step") || j["step"].get<int64_t>() <= step) kept += line + "\n";
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  out << kept;
}

// Ctrl-C during training (docs/hardening.md): the step in flight finishes, a checkpoint is
// written and the resume command printed. A second Ctrl-C kills as usual (the handler resets itself).
std::atomic<bool> g_interrupted{false};
extern "C" void on_training_sigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);
}
struct SigintGuard {
  void (*previous)(int);
  SigintGuard() : previous(std::signal(SIGINT, on_training_sigint)) { g_interrupted.store(false); }
  ~SigintGuard() { std::signal(SIGINT, previous == SIG_ERR ? SIG_DFL : previous); }
};

std::unique_ptr<Optimizer> make_optimizer(const Config& c, Trainer& trainer) {
  DecayPolicy policy{c.get_float("optim.weight_decay"), c.get_bool("optim.decay_biases"),
                     c.get_bool("optim.decay_norms"), c.get_bool("optim.decay_embeddings")};
  auto groups = split_by_lr_scale(make_param_groups(trainer.model(), policy),
                                  [&](const std::string& name) { return trainer.lr_scale(name); });
  if (c.get_string("optim.name") == "sgd")
    return std::make_unique<SGD>(groups, SGDOptions{c.get_float("optim.lr"), c.get_float("optim.momentum"),
                                                    c.get_bool("optim.nesterov")});
  return std::make_unique<AdamW>(groups, AdamWOptions{c.get_float("optim.lr"), c.get_float("optim.beta1"),
                                                      c.get_float("optim.beta2"), c.get_float("optim.eps")});
}
}  // namespace

void register_trainer(TrainerInfo info) {
  MINIVL_CHECK(!info.name.empty() && info.create, "register_trainer: a trainer needs a name and a create function");
  registry()[info.name] = std::move(info);
}

const TrainerInfo* find_trainer(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> trainer_names() {
  std::vector<std::string> names;
  for (const auto& [n, info] : registry()) names.push_back(n);
  return names;
}

int64_t eval_example_limit(int64_t available, int64_t batches, int64_t batch_size) {
  MINIVL_CHECK(available >= 0 && batches >= 0 && batch_size >= 1, "eval_example_limit: bad arguments (", available,
               ", ", batches, ", ", batch_size, ")");
  if (batches == 0 || batches > available / batch_size) return available;
  return batches * batch_size;
}

ConfigSchema trainer_schema(const TrainerInfo& trainer) {
  ConfigSchema schema = ConfigSchema::training();
  if (trainer.extend_schema) trainer.extend_schema(schema);
  return schema;
}

ResolvedTrainingConfig resolve_training_config(const std::string& text, const std::string& source,
                                               const std::vector<std::string>& overrides) {
  auto model_name = peek_config_string(text, source, "model.name");
  for (const std::string& kv : overrides)  // --set model.name=... picks the trainer too
    if (kv.rfind("model.name=", 0) == 0) {
      std::string v = kv.substr(11);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      model_name = v;
    }
  MINIVL_CHECK(model_name.has_value(), source, ": missing required key 'model.name' (a string naming the trainer)");
  const TrainerInfo* info = find_trainer(*model_name);
  if (!info) {
    std::string names;
    for (const std::string& n : trainer_names()) names += (names.empty() ? "" : ", ") + n;
    MINIVL_FAIL(source, ": unknown model '", *model_name, "' (registered trainers: ", names, ")");
  }
  ResolvedTrainingConfig r;
  r.trainer = info;
  r.schema = trainer_schema(*info);
  r.config = Config::parse(text, source, r.schema, overrides);
  return r;
}

namespace {
// The config text of a run and the name its errors print.
std::pair<std::string, std::string> config_text(const TrainOptions& o) {
  TrainingState resumed;
  if (o.resume) resumed = read_checkpoint_state(o.run_dir);  // a resume needs its checkpoint, config given or not
  if (!o.config_path.empty()) return {read_text(o.config_path), o.config_path};
  MINIVL_CHECK(o.resume, "train: no config file given");
  return {resumed.config, o.run_dir + "/checkpoint/state.json (config)"};
}
}  // namespace

ResolvedTrainingConfig resolve_training_config(const TrainOptions& o) {
  const auto [text, source] = config_text(o);
  return resolve_training_config(text, source, o.overrides);
}

std::string print_training_config(const TrainOptions& o) {
  const ResolvedTrainingConfig r = resolve_training_config(o);
  const std::string from = o.config_path.empty() ? o.run_dir + "'s checkpoint" : o.config_path;
  std::string header = "The configuration of " + from;
  for (const std::string& kv : o.overrides) header += " --set " + kv;
  header += ", resolved: trainer \"" + r.trainer->name + "\" (" + r.trainer->description + ").\n" +
            "Every key the trainer reads, with its value; above each, what it does, what it accepts and its default.\n" +
            "Valid TOML: `minivl train THIS_FILE` trains the same run (docs/config.md lists every trainer's keys).";
  return annotated_toml(r.config, r.schema, header);
}

std::string config_reference_markdown(const std::vector<std::string>& trainers) {
  const ConfigSchema base = ConfigSchema::training();
  std::string out =
      "# Training configuration reference\n\n"
      "<!-- Generated from the trainers' schemas: `build/bin/minivl train --print-config-docs > docs/config.md`. "
      "Do not edit: tests/test_config_reference.cpp fails when this file differs from the schemas. -->\n\n"
      "A training config is TOML (docs/nn.md, \"Configs\"): the keys below, by dotted path (`optim.lr` is `lr` "
      "under `[optim]`). A key left out takes its default; an unknown key, a wrong type, a value outside what "
      "the key accepts or a missing required key is an error naming the file, the line and the key. "
      "`minivl train --print-config CONFIG [--set key=value]...` prints CONFIG resolved: every key of its "
      "trainer with its value, help, range and default, as TOML to copy. "
      "`minivl train --list` lists the trainers.\n\n"
      "## Keys of every trainer\n\n";
  out += config_keys_markdown(base.keys());
  for (const std::string& name : trainers) {
    const TrainerInfo* found = find_trainer(name);
    MINIVL_CHECK(found, "config_reference_markdown: no trainer '", name, "' is registered");
    const TrainerInfo& info = *found;
    const ConfigSchema schema = trainer_schema(info);
    std::vector<ConfigKeySpec> own, redeclared;
    for (const ConfigKeySpec& spec : schema.keys()) {
      const ConfigKeySpec* b = base.find(spec.key);
      if (!b) own.push_back(spec);
      else if (!same_spec(*b, spec)) redeclared.push_back(spec);
    }
    out += "\n## `model.name = \"" + name + "\"`\n\n" + info.description + ".\n\n";
    if (!redeclared.empty()) {
      out += "Keys of every trainer that this one declares its own way (its default and range replace the ones above):\n\n";
      out += config_keys_markdown(redeclared) + "\n";
    }
    out += own.empty() ? std::string("No keys of its own.\n") : "Its own keys:\n\n" + config_keys_markdown(own);
  }
  return out;
}

namespace {

// The loop's keys, read once.
struct LoopSettings {
  Device device;
  bool autocast_on;
  DType autocast_dtype;
  bool f16_scaler;
  int64_t total_steps, accum, ckpt_every, eval_every, eval_batches, log_every, max_nonfinite;
  double clip;
  explicit LoopSettings(const Config& c)
      : device(parse_device(c.get_string("device"))),
        autocast_on(c.get_string("precision") != "f32"),
        autocast_dtype(c.get_string("precision") == "f16" ? DType::f16 : DType::bf16),
        f16_scaler(c.get_string("precision") == "f16"),
        total_steps(c.get_int("steps")),
        accum(c.get_int("optim.grad_accum")),
        ckpt_every(c.get_int("checkpoint.every")),
        eval_every(c.get_int("eval.every")),
        eval_batches(c.get_int("eval.batches")),
        log_every(c.get_int("log.every")),
        max_nonfinite(c.get_int("optim.max_nonfinite_steps")),
        clip(c.get_float("optim.grad_clip")) {}
};

// What one optimiser step did. On the device path (AdamW's fused guarded step) the loss, the
// gradient norm and the skip decision stay on the device in `on_device` until a flush reads them;
// on the host path they are filled in at once.
struct StepRecord {
  int64_t step = 0;
  double lr = 0, loss = NAN;      // loss: the mean over micro-batches (and ranks)
  double grad_norm = NAN;         // before clipping; reported only with optim.grad_clip
  bool skipped = false;           // the update did not run (a non-finite value, or an f16 overflow)
  bool interrupted_anywhere = false;
  Tensor on_device;               // (3) f64: mean loss, gradient norm, skipped (0/1); undefined once read
};

// The config of a new run or a resumed one (the file, or the checkpoint's when resuming without one).
ResolvedTrainingConfig resolve_run_config(const TrainOptions& o) {
  MINIVL_CHECK(!o.run_dir.empty(), "train: no run directory");
  const auto [text, source] = config_text(o);
  MINIVL_CHECK(o.resume || find_checkpoint(o.run_dir).empty(), o.run_dir,
               " already holds a checkpoint: pass --resume ", o.run_dir, " to continue it, or choose another run dir");
  return resolve_training_config(text, source, o.overrides);
}

// One call of run_training: the set-up in the constructor, then run(): steps, logging, the non-finite
// guard, checkpoints, and at the end the final evaluation and the trainer's export.
class TrainingRun {
 public:
  explicit TrainingRun(const TrainOptions& o)
      : o_(o), run_dir_(o.run_dir), resolved_(resolve_run_config(o)), config_(resolved_.config), s_(config_),
        group_(o.process_group), root_(!group_ || group_->is_root()), quiet_(o.quiet || !root_),
        gen_(default_generator()), scaler_(GradScalerOptions{}, s_.f16_scaler) {
    MINIVL_CHECK(o.stop_at >= 0, "train: --stop-at must be >= 0");
    select_device();
    build_trainer();
    if (o.resume) resume();
    result_.start_step = step_;
    params_ = trainer_->model().parameters();
    adamw_ = dynamic_cast<AdamW*>(optimizer_.get());
    device_guard_ = adamw_ && !group_ && !scaler_.enabled();
    set_up_data_parallel();
    open_run_dir();
  }

  // Steps are reported (metrics line, progress line, non-finite guard) when their values are read:
  // at once on the host path; on the device path at log, eval, checkpoint and stop steps and at
  // the end, every pending step in one copy, so no other step waits for the device.
  TrainResult run() {
    end_ = o_.stop_at > 0 ? std::min(o_.stop_at, s_.total_steps) : s_.total_steps;
    t0_ = std::chrono::steady_clock::now();
    trainer_->model().train();
    SigintGuard sigint;
    for (; step_ < end_; ++step_) {
      pending_.push_back(train_step(step_));
      const bool on_host = !pending_.back().on_device.defined();
      const bool eval_now = root_ && s_.eval_every > 0 && (step_ + 1) % s_.eval_every == 0 && step_ + 1 < s_.total_steps;
      const bool ckpt_now = s_.ckpt_every > 0 && (step_ + 1) % s_.ckpt_every == 0 && step_ + 1 < end_;
      const bool stop_now = (group_ ? pending_.back().interrupted_anywhere : g_interrupted.load()) && step_ + 1 < end_;
      const bool log_now = (step_ + 1) % s_.log_every == 0 || step_ + 1 == end_;
      if (on_host || eval_now || ckpt_now || stop_now || log_now) {
        nlohmann::json extra = nlohmann::json::object();
        if (eval_now)  // rank 0 alone: the others wait
          for (const auto& [k, v] : evaluate()) extra["eval_" + k] = v;
        flush(extra);
      }
      if (ckpt_now) checkpoint(step_ + 1);
      if (stop_now) {
        ++step_;
        result_.interrupted = true;
        break;
      }
    }
    flush(nlohmann::json::object());
    result_.end_step = step_;
    checkpoint(step_);
    finish();
    return result_;
  }

 private:
  // ---- set-up ----
  // Data parallelism (docs/distributed.md): one process per GPU, this machine's ranks taking its GPUs in turn.
  void select_device() {
    if (!group_ || !s_.device.is_cuda()) return;
    const int gpus = cuda_device_count();
    MINIVL_CHECK(gpus > 0, "train: device = \"", config_.get_string("device"), "\" but ", cuda_unavailable_reason());
    select_cuda_device(group_->local_rank() % gpus);
  }

  // The trainer (its model initialised from the seeded generator), the optimiser and the schedule.
  void build_trainer() {
    const TrainerInfo& info = *resolved_.trainer;
    gen_.manual_seed(uint64_t(config_.get_int("seed")));
    if (group_ && !root_) group_->barrier();  // rank 0 first: it may generate the data set the others read
    trainer_ = info.create(config_, s_.device);
    if (group_ && root_) group_->barrier();
    if (group_ && !trainer_->set_process_group(group_) && root_ && group_->size() > 1)
      std::fprintf(stderr, "train: note: model '%s' does not shard its batches: each of the %d ranks computes the whole "
                   "global batch\n", info.name.c_str(), group_->size());
    optimizer_ = make_optimizer(config_, *trainer_);
    schedule_ = LRSchedule{LRSchedule::kind_from_name(config_.get_string("schedule.name")), config_.get_float("optim.lr"),
                           config_.get_float("schedule.min_lr"), config_.get_int("schedule.warmup_steps"),
                           s_.total_steps};
  }

  void resume() {
    TrainingState st = load_checkpoint(o_.run_dir, trainer_->model(), *optimizer_);
    step_ = st.step;
    gen_.set_state(st.rng);
    trainer_->set_data_cursor(st.data_cursor);
    if (st.extra.contains("grad_scaler")) scaler_.load_state(st.extra["grad_scaler"]);
    last_checkpoint_ = step_;
  }

  // The same weights on every rank, whatever each one's init did, and the gradient reducer.
  void set_up_data_parallel() {
    if (!group_) return;
    broadcast_module(trainer_->model(), *group_);
    reducer_ = std::make_unique<GradReducer>(params_, group_,
                                             int64_t(config_.get_float("dist.bucket_mib") * double(1 << 20)));
    if (!quiet_)
      std::printf("train: data parallel over %d rank(s) (%s), gradients in %lld bucket(s)\n", group_->size(),
                  group_->backend().c_str(), (long long)reducer_->num_buckets());
  }

  // Rank 0 alone writes: RUN_DIR/config.toml, and metrics.jsonl (a resume keeps the lines up to its step).
  void open_run_dir() {
    if (!root_) return;
    fs::create_directories(run_dir_);
    std::ofstream(run_dir_ / "config.toml", std::ios::trunc) << config_.to_toml();
    const fs::path metrics_path = run_dir_ / "metrics.jsonl";
    if (o_.resume) truncate_metrics(metrics_path, step_);
    metrics_.open(metrics_path, o_.resume ? std::ios::app : std::ios::trunc);
  }

  // ---- the step ----
  // The sum of a step's micro-batch losses: left on the device on the device path, else read at once.
  struct LossSum {
    double host = 0.0;
    Tensor device;  // () f64, the device path's
  };

  // The micro-batches' losses and gradients (averaged over ranks), then the update: decided on the
  // device by AdamW::step_guarded, or on the host (unscaling, clipping, the guard's verdict).
  StepRecord train_step(int64_t step) {
    StepRecord r;
    r.step = step;
    r.lr = schedule_.lr_at(step);
    optimizer_->set_lr(r.lr);
    trainer_->before_step(step);
    LossSum sum = forward_backward();
    if (group_) {
      reducer_->finish();  // every rank now holds the same averaged gradients
      const std::vector<double> sums = group_->all_reduce_sum({sum.host, g_interrupted.load() ? 1.0 : 0.0});
      sum.host = sums[0] / double(group_->size());
      r.interrupted_anywhere = sums[1] > 0;  // one rank's Ctrl-C stops them all after the same step
    }
    Tensor decision = device_guard_ ? adamw_->step_guarded(sum.device, s_.clip) : Tensor();
    if (decision.defined()) {
      // The update ran or was skipped on the device; after_step runs either way (CLIP's logit-scale
      // clamp leaves unchanged weights unchanged).
      trainer_->after_step();
      NoGradGuard no_grad;
      r.on_device = cat({mul(sum.device, 1.0 / double(s_.accum)).reshape({1}), decision}, 0);
    } else {
      if (device_guard_) {  // the fused kernel cannot take these parameters: read the losses now
        NoGradGuard no_grad;
        sum.host = sum.device.item();
      }
      update_on_host(r, sum.host);
    }
    optimizer_->zero_grad();
    return r;
  }

  LossSum forward_backward() {
    LossSum sum;
    for (int64_t micro = 0; micro < s_.accum; ++micro) {
      Tensor loss;
      {
        AutocastGuard amp(s_.autocast_dtype, s_.autocast_on);
        loss = trainer_->train_loss();
      }
      MINIVL_CHECK(loss.numel() == 1, "train: the trainer's loss must be a scalar, got ", loss.shape_str());
      Tensor scaled = mul(loss, 1.0 / double(s_.accum));
      if (reducer_ && micro + 1 == s_.accum) reducer_->arm(scaled);  // earlier micro-batches accumulate locally
      scaler_.scale_loss(scaled).backward();
      if (device_guard_) {
        NoGradGuard no_grad;
        Tensor l = loss.detach().reshape({}).to(DType::f64);
        sum.device = sum.device.defined() ? add(sum.device, l) : l;
      } else {
        sum.host += loss.item();
      }
    }
    return sum;
  }

  // The host path (SGD, f16 loss scaling, process groups, parameters the fused kernel cannot take).
  void update_on_host(StepRecord& r, double loss_sum) {
    const bool finite = scaler_.unscale_(params_);
    if (finite && s_.clip > 0) r.grad_norm = clip_grad_norm_(params_, s_.clip);
    // The non-finite guard: a NaN/inf loss or gradient skips the step (f16 loss-scale overflows
    // are the scaler's business and do not count).
    const bool nonfinite = !std::isfinite(loss_sum) ||
        (finite && !scaler_.enabled() && (s_.clip > 0 ? !std::isfinite(r.grad_norm) : !grads_finite(params_)));
    if (finite && !nonfinite) {
      optimizer_->step();
      trainer_->after_step();
    }
    scaler_.update(!finite);
    r.loss = loss_sum / double(s_.accum);
    r.skipped = !finite || nonfinite;
  }

  // ---- reporting ----
  // Reads every pending step's device values in one copy and reports the steps in order; `extra`
  // (the evaluation) joins the last one's metrics line.
  void flush(const nlohmann::json& extra) {
    std::vector<Tensor> parts;
    for (const StepRecord& r : pending_)
      if (r.on_device.defined()) parts.push_back(r.on_device);
    const std::vector<double> v = parts.empty() ? std::vector<double>() : cat(parts, 0).to_vector();
    std::vector<StepRecord> ready = std::move(pending_);
    pending_.clear();
    size_t k = 0;
    for (size_t i = 0; i < ready.size(); ++i) {
      StepRecord& r = ready[i];
      if (r.on_device.defined()) {
        r.loss = v[k], r.grad_norm = v[k + 1], r.skipped = v[k + 2] != 0.0;
        k += 3;
      }
      result_.losses.push_back(r.loss);
      write_metrics_line(r, i + 1 == ready.size() ? extra : nlohmann::json::object());
      print_progress(r);
      guard_nonfinite(r);
    }
  }

  // metrics.jsonl: the step's line, with `extra` (rank 0 alone writes).
  void write_metrics_line(const StepRecord& r, const nlohmann::json& extra) {
    nlohmann::json line = {{"step", r.step + 1}, {"loss", r.loss}, {"lr", r.lr}};
    if (s_.clip > 0 && std::isfinite(r.grad_norm)) line["grad_norm"] = r.grad_norm;
    if (scaler_.enabled()) line["loss_scale"] = scaler_.scale();
    if (r.skipped) line["skipped"] = true;
    for (const auto& [k, v] : extra.items()) line[k] = v;
    if (root_) {
      metrics_ << line.dump() << "\n";
      metrics_.flush();
    }
  }

  // The progress line, every log.every steps and at the last one.
  void print_progress(const StepRecord& r) const {
    if (quiet_ || ((r.step + 1) % s_.log_every != 0 && r.step + 1 != end_)) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const double done = double(r.step + 1 - result_.start_step);
    const double eta = secs / done * double(end_ - r.step - 1);
    const int64_t per_batch = trainer_->examples_per_batch();
    char rate[64] = "";
    if (per_batch > 0) std::snprintf(rate, sizeof(rate), "  %.0f ex/s", done * double(per_batch * s_.accum) / secs);
    std::printf("step %lld/%lld  loss %.6f  lr %.3g%s  (%.1fs, ETA %.0fs)\n", (long long)(r.step + 1),
                (long long)s_.total_steps, r.loss, r.lr, rate, secs, eta);
    std::fflush(stdout);
  }

  // ---- the non-finite guard ----
  // A warning for each skipped non-finite step; optim.max_nonfinite_steps of them in a row stop the
  // run. f16 loss-scale overflows (skipped with a finite loss) are the scaler's business and do not count.
  void guard_nonfinite(const StepRecord& r) {
    if (!r.skipped || (scaler_.enabled() && std::isfinite(r.loss))) {
      nonfinite_in_a_row_ = 0;
      return;
    }
    ++nonfinite_in_a_row_;
    if (root_)
      std::fprintf(stderr, "train: warning: step %lld: non-finite %s (loss %g); step skipped, weights unchanged (%lld in a row, limit optim.max_nonfinite_steps = %lld)\n",
                   (long long)(r.step + 1), std::isfinite(r.loss) ? "gradient norm" : "loss", r.loss,
                   (long long)nonfinite_in_a_row_, (long long)s_.max_nonfinite);
    if (nonfinite_in_a_row_ < s_.max_nonfinite) return;
    const std::string where = last_checkpoint_ >= 0
        ? "the last good checkpoint is " + (run_dir_ / "checkpoint").string() + " (step " + std::to_string(last_checkpoint_) +
              "); resume it with: minivl train --resume " + o_.run_dir + " --set optim.lr=<lower>"
        : std::string("no checkpoint was written yet (set checkpoint.every to keep some)");
    MINIVL_FAIL("train: stopped at step ", r.step + 1, ": ", nonfinite_in_a_row_,
                " consecutive steps had a non-finite loss or gradient norm (the weights were not updated by them); ",
                where, ". Try a lower optim.lr, optim.grad_clip > 0, or precision = \"f32\"");
  }

  // ---- checkpoints, evaluation, export ----
  void checkpoint(int64_t at_step) {
    TrainingState st;
    st.step = at_step;
    st.rng = gen_.state();
    st.data_cursor = trainer_->data_cursor();
    st.config = config_.to_toml();
    st.extra = {{"grad_scaler", scaler_.state()}};
    if (root_) save_checkpoint(o_.run_dir, trainer_->model(), *optimizer_, st);
    if (group_) group_->barrier();  // no rank runs ahead of the checkpoint it would resume from
    last_checkpoint_ = at_step;
  }

  // The trainer's evaluation in eval mode under no-grad; it never shifts the training stream.
  std::map<std::string, double> evaluate() {
    const GeneratorState saved = gen_.state();
    std::map<std::string, double> m;
    {
      NoGradGuard no_grad;
      trainer_->model().eval();
      AutocastGuard amp(s_.autocast_dtype, s_.autocast_on);
      m = trainer_->evaluate(s_.eval_batches);
      trainer_->model().train();
    }
    gen_.set_state(saved);
    return m;
  }

  // After the last step: rank 0 alone evaluates and exports the model; or how to continue.
  void finish() {
    if (step_ == s_.total_steps && root_) {
      result_.final_eval = evaluate();
      if (!result_.final_eval.empty()) {
        nlohmann::json line = {{"step", step_}};
        for (const auto& [k, v] : result_.final_eval) line["eval_" + k] = v;
        metrics_ << line.dump() << "\n";
        if (!quiet_) std::printf("eval at step %lld: %s\n", (long long)step_, line.dump().c_str());
      }
      trainer_->finish(o_.run_dir, result_.final_eval);
    } else if (result_.interrupted && root_) {
      std::fprintf(stderr, "\ninterrupted at step %lld: checkpoint written to %s; resume with:\n  minivl train --resume %s\n",
                   (long long)step_, (run_dir_ / "checkpoint").string().c_str(), o_.run_dir.c_str());
    } else if (!quiet_) {
      std::printf("stopped at step %lld; continue with --resume %s\n", (long long)step_, o_.run_dir.c_str());
    }
  }

  const TrainOptions& o_;
  const fs::path run_dir_;
  const ResolvedTrainingConfig resolved_;
  const Config& config_;
  const LoopSettings s_;
  const std::shared_ptr<ProcessGroup> group_;
  const bool root_, quiet_;
  Generator& gen_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<Optimizer> optimizer_;
  LRSchedule schedule_;
  GradScaler scaler_;
  std::unique_ptr<GradReducer> reducer_;
  std::vector<Tensor> params_;
  AdamW* adamw_ = nullptr;     // the optimiser, when it is AdamW
  bool device_guard_ = false;  // AdamW::step_guarded decides each step: one device, no process group, no f16 scaling
  std::vector<StepRecord> pending_;  // stepped, not reported yet
  std::ofstream metrics_;
  TrainResult result_;
  int64_t step_ = 0, end_ = 0;  // end_: the step this call stops at
  int64_t last_checkpoint_ = -1;  // the step of the newest checkpoint on disk
  int64_t nonfinite_in_a_row_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

TrainResult run_training(const TrainOptions& o) { return TrainingRun(o).run(); }

}  // namespace minivl::nn
