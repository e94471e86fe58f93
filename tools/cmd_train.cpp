// `minivl train CONFIG [--set section.key=value]... [--run-dir DIR] [--resume RUN_DIR] [--stop-at STEP]`:
// validates the TOML config and runs the trainer its model.name selects. `--print-config` prints
// the resolved config instead (docs/config.md), `--print-config-docs` that file, `--list` the trainers
// (all registered by models::register_all_trainers(), models/trainers.h).
// Under mpirun (docs/distributed.md) every rank runs this command: MPI's world
// becomes the run's process group, ranks other than 0 print nothing on stdout,
// and an error on any rank ends them all (MPI_Abort) instead of leaving the
// others waiting in a collective.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "nn/distributed.h"
#include "models/trainers.h"
#include "nn/trainer.h"
#include "tools/commands.h"
#include "tools/numeric_option.h"

namespace minivl::tools {
namespace {

struct TrainCliOptions {
  std::string config, run_dir, resume;
  std::vector<std::string> overrides;
  int64_t stop_at = 0;
  bool list = false, quiet = false, print_config = false, print_config_docs = false;
};

void run_train_command(const TrainCliOptions& o) {
  models::register_all_trainers();
  if (o.list) {
    for (const std::string& name : nn::trainer_names())
      std::printf("%-12s %s\n", name.c_str(), nn::find_trainer(name)->description.c_str());
    return;
  }
  if (o.print_config_docs) {
    std::fputs(nn::config_reference_markdown(nn::trainer_names()).c_str(), stdout);
    return;
  }
  MINIVL_CHECK(!o.config.empty() || !o.resume.empty(), "train: give a CONFIG file, or --resume RUN_DIR");
  if (o.print_config) {
    nn::TrainOptions p;
    p.config_path = o.config;
    p.overrides = o.overrides;
    p.resume = !o.resume.empty();
    p.run_dir = o.resume;
    std::fputs(nn::print_training_config(p).c_str(), stdout);
    return;
  }
  MINIVL_CHECK(o.resume.empty() || o.run_dir.empty() || o.run_dir == o.resume,
               "train: --run-dir and --resume name different folders");
  nn::TrainOptions t;
  t.config_path = o.config;
  t.overrides = o.overrides;
  t.resume = !o.resume.empty();
  t.run_dir = t.resume ? o.resume
                       : (o.run_dir.empty() ? "runs/" + std::filesystem::path(o.config).stem().string() : o.run_dir);
  t.stop_at = o.stop_at;
  t.quiet = o.quiet;
  t.process_group = nn::launched_process_group();
  const bool root = !t.process_group || t.process_group->is_root();
  if (!root) {  // rank 0 speaks for the run (warnings and errors still reach stderr)
    std::fflush(stdout);
    if (!std::freopen("/dev/null", "w", stdout)) std::fprintf(stderr, "minivl: rank %d: stdout stays open\n", t.process_group->rank());
  }
  nn::TrainResult r;
  try {
    r = nn::run_training(t);
    if (t.process_group) t.process_group->close();  // NCCL goes before the CUDA runtime's exit handlers
  } catch (const std::exception& e) {
    if (!t.process_group || t.process_group->size() == 1) throw;
    std::fprintf(stderr, "minivl: error (rank %d of %d): %s\n", t.process_group->rank(), t.process_group->size(),
                 e.what());
    t.process_group->abort(1);
  }
  if (r.interrupted) throw CLI::RuntimeError(130);   // Ctrl-C: the checkpoint and resume line are out
  if (!o.quiet && root)
    std::printf("trained steps %lld..%lld; run dir %s\n", (long long)r.start_step, (long long)r.end_step,
                t.run_dir.c_str());
}

}  // namespace

void register_train_commands(CLI::App& app) {
  auto opts = std::make_shared<TrainCliOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Train a model from a TOML config (see docs/nn.md)");
  cmd->add_option("config", opts->config, "Training config (TOML); optional with --resume");
  cmd->add_option("--set", opts->overrides, "Override a config key: section.key=value (repeatable)");
  cmd->add_option("--run-dir", opts->run_dir, "Run directory (default runs/<config name>)");
  cmd->add_option("--resume", opts->resume, "Continue the run in RUN_DIR from its checkpoint");
  add_numeric_option(cmd, "--stop-at", opts->stop_at, Bounds<int64_t>{1, 1'000'000'000},
                     "Stop after this step, with a checkpoint (default: run all steps)");
  cmd->add_flag("--list", opts->list, "List the registered trainers");
  cmd->add_flag("--print-config", opts->print_config,
                "Print CONFIG (with --set overrides) resolved: every key of its trainer with its value, help, range "
                "and default, as TOML; trains nothing");
  cmd->add_flag("--print-config-docs", opts->print_config_docs,
                "Print docs/config.md: every trainer's keys, from the schemas");
  cmd->add_flag("--quiet", opts->quiet, "No progress lines");
  cmd->callback([opts] { run_train_command(*opts); });
}

}  // namespace minivl::tools
