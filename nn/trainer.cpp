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

TrainResult run_training(const TrainOptions& o) {
  MINIVL_CHECK(!o.run_dir.empty(), "train: no run directory");
  const fs::path run_dir(o.run_dir);

  // ---- the config: the file, or the checkpoint's when resuming without one ----
  const auto [text, source] = config_text(o);
  MINIVL_CHECK(o.resume || find_checkpoint(o.run_dir).empty(), o.run_dir,
               " already holds a checkpoint: pass --resume ", o.run_dir, " to continue it, or choose another run dir");
  const ResolvedTrainingConfig resolved = resolve_training_config(text, source, o.overrides);
  const TrainerInfo* info = resolved.trainer;
  const Config& config = resolved.config;

  const Device device = parse_device(config.get_string("device"));
  const std::string precision = config.get_string("precision");
  const int64_t total_steps = config.get_int("steps");
  const int64_t accum = config.get_int("optim.grad_accum");
  const double clip = config.get_float("optim.grad_clip");
  const int64_t ckpt_every = config.get_int("checkpoint.every");
  const int64_t eval_every = config.get_int("eval.every");
  const int64_t eval_batches = config.get_int("eval.batches");
  const int64_t log_every = config.get_int("log.every");
  const int64_t max_nonfinite = config.get_int("optim.max_nonfinite_steps");
  MINIVL_CHECK(o.stop_at >= 0, "train: --stop-at must be >= 0");

  // ---- data parallelism (docs/distributed.md): rank 0 alone writes; all ranks step together ----
  const std::shared_ptr<ProcessGroup>& group = o.process_group;
  const bool root = !group || group->is_root();
  const bool quiet = o.quiet || !root;
  if (group && device.is_cuda()) {  // one process per GPU: this machine's ranks take its GPUs in turn
    const int gpus = cuda_device_count();
    MINIVL_CHECK(gpus > 0, "train: device = \"", config.get_string("device"), "\" but ", cuda_unavailable_reason());
    select_cuda_device(group->local_rank() % gpus);
  }

  // ---- model, optimiser, schedule, precision ----
  Generator& gen = default_generator();
  gen.manual_seed(uint64_t(config.get_int("seed")));
  if (group && !root) group->barrier();  // rank 0 first: it may generate the data set the others read
  std::unique_ptr<Trainer> trainer = info->create(config, device);
  if (group && root) group->barrier();
  if (group && !trainer->set_process_group(group) && root && group->size() > 1)
    std::fprintf(stderr, "train: note: model '%s' does not shard its batches: each of the %d ranks computes the whole "
                 "global batch\n", info->name.c_str(), group->size());
  Module& model = trainer->model();
  std::unique_ptr<Optimizer> optimizer = make_optimizer(config, *trainer);
  LRSchedule schedule{LRSchedule::kind_from_name(config.get_string("schedule.name")), config.get_float("optim.lr"),
                      config.get_float("schedule.min_lr"), config.get_int("schedule.warmup_steps"), total_steps};
  const bool autocast_on = precision != "f32";
  const DType autocast_dtype = precision == "f16" ? DType::f16 : DType::bf16;
  GradScaler scaler(GradScalerOptions{}, precision == "f16");

  TrainResult result;
  int64_t step = 0;
  if (o.resume) {
    TrainingState s = load_checkpoint(o.run_dir, model, *optimizer);
    step = s.step;
    gen.set_state(s.rng);
    trainer->set_data_cursor(s.data_cursor);
    if (s.extra.contains("grad_scaler")) scaler.load_state(s.extra["grad_scaler"]);
  }
  result.start_step = step;
  std::unique_ptr<GradReducer> reducer;
  if (group) {
    broadcast_module(model, *group);  // the same weights on every rank, whatever each one's init did
    reducer = std::make_unique<GradReducer>(model.parameters(), group,
                                            int64_t(config.get_float("dist.bucket_mib") * double(1 << 20)));
    if (!quiet)
      std::printf("train: data parallel over %d rank(s) (%s), gradients in %lld bucket(s)\n", group->size(),
                  group->backend().c_str(), (long long)reducer->num_buckets());
  }
  const fs::path metrics_path = run_dir / "metrics.jsonl";
  std::ofstream metrics;
  if (root) {
    fs::create_directories(run_dir);
    std::ofstream cfg(run_dir / "config.toml", std::ios::trunc);
    cfg << config.to_toml();
    if (o.resume) truncate_metrics(metrics_path, step);
    metrics.open(metrics_path, o.resume ? std::ios::app : std::ios::trunc);
  }

  int64_t last_checkpoint = o.resume ? step : -1;   // the step of the newest checkpoint on disk
  auto checkpoint = [&](int64_t at_step) {
    TrainingState s;
    s.step = at_step;
    s.rng = gen.state();
    s.data_cursor = trainer->data_cursor();
    s.config = config.to_toml();
    s.extra = {{"grad_scaler", scaler.state()}};
    if (root) save_checkpoint(o.run_dir, model, *optimizer, s);
    if (group) group->barrier();  // no rank runs ahead of the checkpoint it would resume from
    last_checkpoint = at_step;
  };
  auto evaluate = [&]() {
    const GeneratorState saved = gen.state();  // evaluation never shifts the training stream
    std::map<std::string, double> m;
    {
      NoGradGuard no_grad;
      model.eval();
      AutocastGuard amp(autocast_dtype, autocast_on);
      m = trainer->evaluate(eval_batches);
      model.train();
    }
    gen.set_state(saved);
    return m;
  };

  const std::vector<Tensor> params = model.parameters();
  const int64_t end = o.stop_at > 0 ? std::min(o.stop_at, total_steps) : total_steps;
  const auto t0 = std::chrono::steady_clock::now();
  model.train();
  SigintGuard sigint;
  int64_t nonfinite_in_a_row = 0;
  // A step's outcome. On the device path (AdamW's fused guarded step: one device, no process
  // group, no f16 loss scaling) the loss, the gradient norm and the skip decision stay on the
  // device and are read, all pending steps in one copy, at log, eval and checkpoint steps and at
  // the end: no step waits for the device. Otherwise they are read at once, as the guard decides.
  struct StepRecord {
    int64_t step;
    double lr, loss = NAN, grad_norm = NAN;
    bool skipped = false;
    Tensor on_device;  // (3) f64: mean loss, gradient norm, skipped (0/1); undefined once read
  };
  std::vector<StepRecord> pending;
  AdamW* adamw = dynamic_cast<AdamW*>(optimizer.get());
  const bool device_guard = adamw && !group && !scaler.enabled();
  // Writes a step's metrics line and log line, and applies the non-finite rule (throws after
  // max_nonfinite skipped steps in a row).
  auto report = [&](const StepRecord& r, const nlohmann::json& extra) {
    const double loss = r.loss;
    result.losses.push_back(loss);
    nlohmann::json line = {{"step", r.step + 1}, {"loss", loss}, {"lr", r.lr}};
    if (clip > 0 && std::isfinite(r.grad_norm)) line["grad_norm"] = r.grad_norm;
    if (scaler.enabled()) line["loss_scale"] = scaler.scale();
    if (r.skipped) line["skipped"] = true;
    for (const auto& [k, v] : extra.items()) line[k] = v;
    if (root) {
      metrics << line.dump() << "\n";
      metrics.flush();
    }
    if (!quiet && ((r.step + 1) % log_every == 0 || r.step + 1 == end)) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double done = double(r.step + 1 - result.start_step);
      const double eta = secs / done * double(end - r.step - 1);
      const int64_t per_batch = trainer->examples_per_batch();
      char rate[64] = "";
      if (per_batch > 0) std::snprintf(rate, sizeof(rate), "  %.0f ex/s", done * double(per_batch * accum) / secs);
      std::printf("step %lld/%lld  loss %.6f  lr %.3g%s  (%.1fs, ETA %.0fs)\n", (long long)(r.step + 1),
                  (long long)total_steps, loss, r.lr, rate, secs, eta);
      std::fflush(stdout);
    }
    const bool nonfinite = r.skipped && !(scaler.enabled() && std::isfinite(loss));  // scaler overflows do not count
    if (nonfinite) {
      ++nonfinite_in_a_row;
      if (root)
        std::fprintf(stderr, "train: warning: step %lld: non-finite %s (loss %g); step skipped, weights unchanged (%lld in a row, limit optim.max_nonfinite_steps = %lld)\n",
                     (long long)(r.step + 1), std::isfinite(loss) ? "gradient norm" : "loss", loss,
                     (long long)nonfinite_in_a_row, (long long)max_nonfinite);
      if (nonfinite_in_a_row >= max_nonfinite) {
        const std::string where = last_checkpoint >= 0
            ? "the last good checkpoint is " + (run_dir / "checkpoint").string() + " (step " + std::to_string(last_checkpoint) +
                  "); resume it with: minivl train --resume " + o.run_dir + " --set optim.lr=<lower>"
            : std::string("no checkpoint was written yet (set checkpoint.every to keep some)");
        MINIVL_FAIL("train: stopped at step ", r.step + 1, ": ", nonfinite_in_a_row,
                    " consecutive steps had a non-finite loss or gradient norm (the weights were not updated by them); ",
                    where, ". Try a lower optim.lr, optim.grad_clip > 0, or precision = \"f32\"");
      }
    } else {
      nonfinite_in_a_row = 0;
    }
  };
  // Reads every pending step's values in one copy and reports them in order.
  auto flush = [&](const nlohmann::json& extra_for_last) {
    std::vector<Tensor> parts;
    for (const StepRecord& r : pending)
      if (r.on_device.defined()) parts.push_back(r.on_device);
    const std::vector<double> v = parts.empty() ? std::vector<double>() : cat(parts, 0).to_vector();
    size_t k = 0;
    std::vector<StepRecord> ready = std::move(pending);
    pending.clear();
    for (size_t i = 0; i < ready.size(); ++i) {
      StepRecord& r = ready[i];
      if (r.on_device.defined()) {
        r.loss = v[k], r.grad_norm = v[k + 1], r.skipped = v[k + 2] != 0.0;
        k += 3;
      }
      report(r, i + 1 == ready.size() ? extra_for_last : nlohmann::json::object());
    }
  };
  for (; step < end; ++step) {
    const double lr = schedule.lr_at(step);
    optimizer->set_lr(lr);
    trainer->before_step(step);
    double loss_sum = 0.0;
    Tensor loss_total;  // the device path's sum of the micro-batch losses
    for (int64_t micro = 0; micro < accum; ++micro) {
      Tensor loss;
      {
        AutocastGuard amp(autocast_dtype, autocast_on);
        loss = trainer->train_loss();
      }
      MINIVL_CHECK(loss.numel() == 1, "train: the trainer's loss must be a scalar, got ", loss.shape_str());
      Tensor scaled = mul(loss, 1.0 / double(accum));
      if (reducer && micro + 1 == accum) reducer->arm(scaled);  // earlier micro-batches accumulate locally
      scaler.scale_loss(scaled).backward();
      if (device_guard) {
        NoGradGuard no_grad;
        Tensor l = loss.detach().reshape({}).to(DType::f64);
        loss_total = loss_total.defined() ? add(loss_total, l) : l;
      } else {
        loss_sum += loss.item();
      }
    }
    bool interrupted_anywhere = false;
    if (group) {
      reducer->finish();  // every rank now holds the same averaged gradients
      const std::vector<double> sums = group->all_reduce_sum({loss_sum, g_interrupted.load() ? 1.0 : 0.0});
      loss_sum = sums[0] / double(group->size());
      interrupted_anywhere = sums[1] > 0;  // one rank's Ctrl-C stops them all after the same step
    }
    StepRecord record{step, lr, NAN, NAN, false, Tensor()};
    Tensor decision = device_guard ? adamw->step_guarded(loss_total, clip) : Tensor();
    if (decision.defined()) {
      // The update ran or was skipped on the device; after_step runs either way (CLIP's logit-scale
      // clamp leaves unchanged weights unchanged).
      trainer->after_step();
      NoGradGuard no_grad;
      record.on_device = cat({mul(loss_total, 1.0 / double(accum)).reshape({1}), decision}, 0);
    } else {
      if (device_guard) {  // the fused kernel cannot take these parameters: read the losses now
        NoGradGuard no_grad;
        loss_sum = loss_total.item();
      }
      const bool finite = scaler.unscale_(params);
      double grad_norm = NAN;
      if (finite && clip > 0) grad_norm = clip_grad_norm_(params, clip);
      // The non-finite guard: a NaN/inf loss or gradient skips the step (f16 loss-scale overflows
      // are the scaler's business and do not count).
      const bool nonfinite = !std::isfinite(loss_sum) ||
          (finite && !scaler.enabled() && (clip > 0 ? !std::isfinite(grad_norm) : !grads_finite(params)));
      if (finite && !nonfinite) {
        optimizer->step();
        trainer->after_step();
      }
      scaler.update(!finite);
      record.loss = loss_sum / double(accum);
      record.grad_norm = grad_norm;
      record.skipped = !finite || nonfinite;
    }
    optimizer->zero_grad();
    pending.push_back(std::move(record));

    const bool eval_now = root && eval_every > 0 && (step + 1) % eval_every == 0 && step + 1 < total_steps;
    const bool ckpt_now = ckpt_every > 0 && (step + 1) % ckpt_every == 0 && step + 1 < end;
    const bool stop_now = (group ? interrupted_anywhere : g_interrupted.load()) && step + 1 < end;
    const bool log_now = (step + 1) % log_every == 0 || step + 1 == end;
    if (!device_guard || !pending.back().on_device.defined() || eval_now || ckpt_now || stop_now || log_now) {
      nlohmann::json extra = nlohmann::json::object();
      if (eval_now)
        for (const auto& [k, v] : evaluate()) extra["eval_" + k] = v;  // rank 0 alone: the others wait
      flush(extra);
    }
    if (ckpt_now) checkpoint(step + 1);
    if (stop_now) {
      ++step;
      result.interrupted = true;
      break;
    }
  }
  flush(nlohmann::json::object());
  result.end_step = step;
  checkpoint(step);
  if (step == total_steps && root) {  // rank 0 alone evaluates and exports the model
    result.final_eval = evaluate();
    if (!result.final_eval.empty()) {
      nlohmann::json line = {{"step", step}};
      for (const auto& [k, v] : result.final_eval) line["eval_" + k] = v;
      metrics << line.dump() << "\n";
      if (!quiet) std::printf("eval at step %lld: %s\n", (long long)step, line.dump().c_str());
    }
    trainer->finish(o.run_dir, result.final_eval);
  } else if (result.interrupted && root) {
    std::fprintf(stderr, "\ninterrupted at step %lld: checkpoint written to %s; resume with:\n  minivl train --resume %s\n",
                 (long long)step, (run_dir / "checkpoint").string().c_str(), o.run_dir.c_str());
  } else if (!quiet) {
    std::printf("stopped at step %lld; continue with --resume %s\n", (long long)step, o.run_dir.c_str());
  }
  return result;
}

}  // namespace minivl::nn
