#include "nn/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/tensor_io.h"

namespace minivl::nn {
namespace fs = std::filesystem;

namespace {
constexpr const char* kFormat = "minivl-checkpoint";
constexpr int kVersion = 1;

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);  // best effort on directories: some filesystems refuse
  ::close(fd);
}

void write_file_synced(const fs::path& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    MINIVL_CHECK(out.good(), path.string(), ": cannot open for writing");
    out << text;
    out.flush();
    MINIVL_CHECK(out.good(), path.string(), ": write failed");
  }
  fsync_path(path, false);
}

bool complete(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "state.json", ec) && fs::is_regular_file(dir / "model.safetensors", ec) &&
         fs::is_regular_file(dir / "optimizer.safetensors", ec);
}
// A checkpoint is never written with NaN/inf weights (docs/hardening.md): it would overwrite the
// last good one. x * 0 sums to NaN exactly when x holds a NaN or an inf.
void check_weights_finite(const std::string& run_dir, const NamedTensors& state) {
  NoGradGuard no_grad;
  for (const auto& [name, t] : state) {
    if (!is_floating(t.dtype()) || t.numel() == 0) continue;
    MINIVL_CHECK(std::isfinite(sum(mul(t, 0.0)).item()), "checkpoint: not writing ", run_dir,
                 "/checkpoint: parameter '", name, "' holds non-finite values (NaN or inf); the previous checkpoint is kept");
  }
}
}  // namespace

void save_checkpoint(const std::string& run_dir, const Module& model, const Optimizer& optimizer,
                     const TrainingState& state) {
  const NamedTensors weights = model.state_dict();
  check_weights_finite(run_dir, weights);
  const fs::path root(run_dir);
  fs::create_directories(root);
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = root / ("checkpoint.tmp." + pid);
  const fs::path final_dir = root / "checkpoint";
  const fs::path old = root / ("checkpoint.old." + pid);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    save_safetensors((tmp / "model.safetensors").string(), weights, {{"format", "pt"}});
    optimizer.save((tmp / "optimizer.safetensors").string());
    nlohmann::json j = {{"format", kFormat},
                        {"version", kVersion},
                        {"step", state.step},
                        {"rng", {{"seed", state.rng.seed}, {"offset", state.rng.offset}}},
                        {"data_cursor", state.data_cursor},
                        {"config", state.config},
                        {"extra", state.extra}};
    write_file_synced(tmp / "state.json", j.dump(2) + "\n");
    fsync_path(tmp, true);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  fs::remove_all(old);
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  fsync_path(root, true);
  fs::remove_all(old);
}

std::string find_checkpoint(const std::string& run_dir) {
  const fs::path root(run_dir);
  std::error_code ec;
  if (complete(root / "checkpoint")) return (root / "checkpoint").string();
  // A crash between "rename the old one away" and "rename the new one in" leaves only checkpoint.old.<pid>.
  if (!fs::is_directory(root, ec)) return "";
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.path().filename().string().rfind("checkpoint.old.", 0) == 0 && complete(entry.path()))
      return entry.path().string();
  return "";
}

TrainingState read_checkpoint_state(const std::string& run_dir) {
  const std::string dir = find_checkpoint(run_dir);
  MINIVL_CHECK(!dir.empty(), run_dir, ": no checkpoint here (expected ", run_dir,
               "/checkpoint/ with model.safetensors, optimizer.safetensors and state.json)");
  const std::string path = dir + "/state.json";
  std::ifstream in(path);
  MINIVL_CHECK(in.good(), path, ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  TrainingState s;
  try {
    nlohmann::json j = nlohmann::json::parse(ss.str());
    MINIVL_CHECK(j.value("format", "") == kFormat, "not a minivl checkpoint state (format is not '", kFormat, "')");
    MINIVL_CHECK(j.at("version").get<int>() == kVersion, "unsupported checkpoint version ", j.at("version").dump());
    s.step = j.at("step").get<int64_t>();
    s.rng.seed = j.at("rng").at("seed").get<uint64_t>();
    s.rng.offset = j.at("rng").at("offset").get<uint64_t>();
    s.data_cursor = j.at("data_cursor");
    s.config = j.at("config").get<std::string>();
    s.extra = j.value("extra", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    MINIVL_FAIL(path, ": ", e.what());
  } catch (const Error& e) {
    MINIVL_FAIL(path, ": ", e.what());
  }
  return s;
}

TrainingState load_checkpoint(const std::string& run_dir, Module& model, Optimizer& optimizer) {
  TrainingState s = read_checkpoint_state(run_dir);
  const std::string dir = find_checkpoint(run_dir);
  const std::string model_path = dir + "/model.safetensors";
  try {
    model.load_state_dict(load_safetensors(model_path));
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.rfind(model_path, 0) != 0) msg = model_path + ": " + msg;
    MINIVL_FAIL(msg);
  }
  // (The optimiser's own step count can trail s.step: f16 loss scaling skips overflowing steps.)
  optimizer.load(dir + "/optimizer.safetensors");
  return s;
}

}  // namespace minivl::nn
