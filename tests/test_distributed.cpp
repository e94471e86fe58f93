// Data parallelism (docs/distributed.md): a one-rank group's collectives, the sharded
// contrastive losses and the bucketed gradient reducer in one process; then real ranks:
// `mpirun -np 2` on this test binary (collectives, losses and gradients across 2 ranks against the
// global batch in one process) and on the CLI (`minivl train` of a tiny CLIP on 2 ranks, stopped
// and resumed, against one process on the same global batch: losses to 1e-6 relative, final
// weights to 1e-5). Without mpirun, or built without MPI, the MPI cases print why they skip.
// Suite distributed_cuda: one rank through NCCL on a GPU (tools/gpu_check.sh runs it).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/generator.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "gradcheck.h"
#include "models/clip.h"
#include "models/clip_train.h"
#include "nn/data_parallel.h"
#include "nn/distributed.h"
#include "nn/layers.h"
#include "nn/trainer.h"
#include "nn_test_util.h"
#include "tests/tiny_models.h"

using namespace minivl;
using namespace minivl::nn;
using minivl::testing::NnTempDir;
using minivl::testing::tiny_clip_keys;
using minivl::testing::toml_lines;
using minivl::testing::with_overrides;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to(Device::cpu()).to_vector(), y = b.to(Device::cpu()).to_vector();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

// (N, d) rows of unit length, seeded.
Tensor unit_rows(int64_t n, int64_t d, uint64_t seed, DType dtype = DType::f64) {
  default_generator().manual_seed(seed);
  return models::l2_normalize(randn({n, d}, dtype));
}

// The tiny CLIP at twice its width, with 4 px patches.
const std::vector<std::string> kTinyClip = with_overrides(
    tiny_clip_keys(), {"model.patch_size=4", "model.vision_width=32", "model.vision_mlp=64", "model.text_width=32",
                       "model.text_mlp=64", "model.projection_dim=16"});

// A tiny CLIP training config (shapes world, learned vocabulary) that trains in seconds on 2 cores.
// SGD with momentum by default; "adamw" for the AdamW variant (see compare_runs).
std::string tiny_clip_config(const NnTempDir& dir, const std::string& device = "cpu", const std::string& optim = "sgd") {
  const std::string path = dir.file("tiny_clip_" + optim + ".toml");
  std::ofstream(path) << "steps = 5\nseed = 3\ndevice = \"" << device << "\"\nprecision = \"f32\"\n"
                      << "[model]\nname = \"clip\"\n" << toml_lines(kTinyClip, "model")
                      << "[data]\ndataset = \"shapes\"\npath = \"" << dir.file("shapes") << "\"\n"
                      << "vocab = \"learn\"\nlearned_vocab_size = 520\ngenerate_n = 120\ngenerate_size = 16\n"
                         "eval_images = 16\nbatch_size = 16\n"
                      << (optim == "sgd" ? "[optim]\nname = \"sgd\"\nmomentum = 0.9\nlr = 0.2\n"
                                         : "[optim]\nname = \"adamw\"\nlr = 2e-3\n")
                      << "weight_decay = 0.1\ngrad_clip = 1.0\n"
                      << "[schedule]\nname = \"cosine\"\nwarmup_steps = 2\n"
                      << "[checkpoint]\nevery = 0\n[log]\nevery = 1\n[dist]\nbucket_mib = 0.02\n";
  return path;
}

std::vector<double> metrics_losses(const std::string& run_dir) {
  std::vector<double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

struct Agreement {
  double loss_rel = 0, weight_abs = 0;
  double key_bias_abs = 0;  // the attention key biases, when left out of weight_abs
};

// The largest relative loss difference and absolute weight difference between two runs' metrics and
// final checkpoints. With `skip_key_biases` the attention key biases (k_proj.bias) are measured apart:
// their exact gradient is zero (softmax ignores a shift q . b_k common to a query's scores), so what
// they get is rounding noise, which AdamW divides by its own RMS and turns into steps of about lr in
// either run. Under SGD that noise stays noise-sized and every weight is compared.
Agreement compare_runs(const std::string& a, const std::string& b, size_t steps, bool skip_key_biases = false) {
  Agreement r;
  const auto la = metrics_losses(a), lb = metrics_losses(b);
  REQUIRE(la.size() == steps);
  REQUIRE(lb.size() == steps);
  for (size_t i = 0; i < steps; ++i) r.loss_rel = std::max(r.loss_rel, std::abs(la[i] - lb[i]) / std::abs(la[i]));
  const NamedTensors wa = load_safetensors(a + "/checkpoint/model.safetensors");
  const NamedTensors wb = load_safetensors(b + "/checkpoint/model.safetensors");
  REQUIRE(wa.size() == wb.size());
  for (size_t i = 0; i < wa.size(); ++i) {
    REQUIRE(wa[i].first == wb[i].first);
    const double d = max_abs_diff(wa[i].second, wb[i].second);
    if (skip_key_biases && wa[i].first.ends_with("k_proj.bias")) {
      r.key_bias_abs = std::max(r.key_bias_abs, d);
    } else {
      r.weight_abs = std::max(r.weight_abs, d);
    }
  }
  return r;
}

// Trains the tiny CLIP on `device` twice, plainly and through the data-parallel path over `group`,
// and compares the two runs' 5 steps.
Agreement plain_and_data_parallel(const std::string& device, const std::shared_ptr<ProcessGroup>& group) {
  models::register_clip_trainers();
  NnTempDir dir;
  TrainOptions plain;
  plain.config_path = tiny_clip_config(dir, device);
  plain.run_dir = dir.file("plain");
  plain.quiet = true;
  run_training(plain);
  TrainOptions dp = plain;
  dp.run_dir = dir.file("dp");
  dp.process_group = group;
  run_training(dp);
  return compare_runs(plain.run_dir, dp.run_dir, 5);
}

std::string shell_output(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

// `mpirun -np N` with what a container or CI runner may need: root allowed (the flag and its
// environment fallback), oversubscription (2 cores), no core binding, no single-copy shared memory
// (CMA needs ptrace rights containers often lack), one OpenMP thread per rank. Empty when MPI is
// not there, with the reason in `why`.
std::string mpirun_prefix(int ranks, std::string* why) {
  if (!distributed_support().mpi) {
    *why = "built without MPI (-DMINIVL_MPI=OFF, or CMake found none)";
    return "";
  }
  std::string path = shell_output("command -v mpirun 2>/dev/null");
  while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
  if (path.empty()) {
    *why = "mpirun is not on PATH (tools/bootstrap.sh installs openmpi-bin)";
    return "";
  }
  std::string env = "OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 ";
  std::string flags = " -np " + std::to_string(ranks) + " --oversubscribe --bind-to none -x OMP_NUM_THREADS";
  if (::geteuid() == 0) {
    env += "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ";
    flags += " --allow-run-as-root";
  }
#if defined(__SANITIZE_ADDRESS__)
  env += "ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" ";  // MPI's own allocations are not ours to report
#endif
  return env + path + flags;
}

// mpirun's command prefix for `np` ranks, or "" after a MESSAGE saying why the test skips.
std::string mpirun_or_skip(int np) {
  std::string why;
  const std::string mpirun = mpirun_prefix(np, &why);
  if (mpirun.empty()) MESSAGE("distributed: skipped: " << why);
  return mpirun;
}

}  // namespace

TEST_SUITE_BEGIN("distributed");

TEST_CASE("distributed: a one-rank group's collectives are identities, and the async all-reduce completes") {
  auto g = ProcessGroup::single();
  CHECK(g->rank() == 0);
  CHECK(g->size() == 1);
  CHECK(g->backend() == "single");
  Tensor x = from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor y = x.clone();
  g->all_reduce_sum_(y);
  CHECK(max_abs_diff(x, y) == 0);
  CHECK(max_abs_diff(g->all_gather(x), x) == 0);
  CHECK(g->all_gather(x.t()).shape() == Shape{2, 3});  // non-contiguous input
  CHECK(max_abs_diff(g->reduce_scatter_sum(x), x) == 0);
  g->broadcast_(y, 0);
  CHECK(max_abs_diff(x, y) == 0);
  const int64_t h = g->start_all_reduce(y);
  g->poll();
  g->finish_all_reduce(h);
  CHECK(g->all_reduce_sum({1.5, -2.0}) == std::vector<double>{1.5, -2.0});
  CHECK_THROWS_WITH_AS(g->all_gather(from_vector({1, 2}, {2}, DType::i32)), doctest::Contains("all_gather"), Error);
}

TEST_CASE("distributed: with one rank the sharded CLIP and SigLIP losses equal the fused ops, with their gradients") {
  auto g = ProcessGroup::single();
  Tensor img = unit_rows(6, 5, 1).requires_grad_(), txt = unit_rows(6, 5, 2).requires_grad_();
  Tensor scale = full({}, 1.3, DType::f64).requires_grad_(), bias = full({}, -0.7, DType::f64).requires_grad_();
  Tensor img2 = img.detach().clone().requires_grad_(), txt2 = txt.detach().clone().requires_grad_();
  Tensor scale2 = scale.detach().clone().requires_grad_(), bias2 = bias.detach().clone().requires_grad_();

  Tensor a = sharded_clip_loss(img, txt, scale, *g), b = clip_loss(img2, txt2, scale2);
  CHECK(a.item() == doctest::Approx(b.item()).epsilon(1e-12));
  a.backward();
  b.backward();
  CHECK(max_abs_diff(img.grad(), img2.grad()) < 1e-12);
  CHECK(max_abs_diff(txt.grad(), txt2.grad()) < 1e-12);
  CHECK(max_abs_diff(scale.grad(), scale2.grad()) < 1e-12);

  Tensor c = sharded_siglip_loss(img.detach(), txt.detach(), scale, bias, *g);
  Tensor d = siglip_loss(img.detach(), txt.detach(), scale2, bias2);
  CHECK(c.item() == doctest::Approx(d.item()).epsilon(1e-12));
}

TEST_CASE("distributed: gradient checks of all_gather and the sharded losses (one rank)") {
  auto g = ProcessGroup::single();
  using testing::gradcheck;
  using testing::random_input;
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return all_gather(in[0], *g); }, {random_input({3, 4}, 5)}) == "");
  auto normalized = [](const Tensor& x) { return models::l2_normalize(x); };
  CHECK(gradcheck([&](const std::vector<Tensor>& in) {
          return sharded_clip_loss(normalized(in[0]), normalized(in[1]), in[2], *g);
        },
        {random_input({5, 3}, 6), random_input({5, 3}, 7), random_input({}, 8)}) == "");
  CHECK(gradcheck([&](const std::vector<Tensor>& in) {
          return sharded_siglip_loss(normalized(in[0]), normalized(in[1]), in[2], in[3], *g);
        },
        {random_input({4, 3}, 9), random_input({4, 3}, 10), random_input({}, 11), random_input({}, 12)}) == "");
}

TEST_CASE("distributed: the reducer buckets in reverse order, starts buckets during the backward, and keeps gradients") {
  auto g = ProcessGroup::single();
  default_generator().manual_seed(4);
  Linear l1(6, 8), l2(8, 8), l3(8, 2), unused(3, 3);
  std::vector<Tensor> params = {l1.weight, l1.bias, l2.weight, l2.bias, l3.weight, l3.bias, unused.weight};
  // 40 floats per bucket: l3 (16 + 2) fits one, l2's weight (64) is bigger than the cap and gets its own.
  GradReducer reducer(params, g, 40 * 4);
  const auto layout = reducer.bucket_layout();
  REQUIRE(layout.size() >= 3);
  CHECK(layout.front().front() == 6);  // reverse registration order: `unused` first
  CHECK(layout.back().back() == 0);    // l1.weight last
  Tensor x = randn({5, 6});
  auto loss_of = [&] { return sum(l3.forward(relu(l2.forward(relu(l1.forward(x)))))); };
  loss_of().backward();
  std::vector<Tensor> expected;
  for (const Tensor& p : params) expected.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
  for (Tensor p : params) p.zero_grad();
  Tensor loss = loss_of();
  reducer.arm(loss);
  loss.backward();
  reducer.finish();
  // Started from the hook, not all at finish(), although `unused` (never reached) opens bucket 0.
  CHECK(reducer.started_during_backward() >= 1);
  for (size_t k = 0; k < params.size(); ++k) {
    CAPTURE(k);
    REQUIRE(params[k].grad().defined() == expected[k].defined());
    if (expected[k].defined()) CHECK(max_abs_diff(params[k].grad(), expected[k]) == 0);
  }
  // Not armed: the hook leaves the gradients alone.
  for (Tensor p : params) p.zero_grad();
  loss_of().backward();
  CHECK(max_abs_diff(params[0].grad(), expected[0]) == 0);
}

TEST_CASE("distributed: training through the data-parallel path with one rank equals plain training (tiny CLIP)") {
  const Agreement r = plain_and_data_parallel("cpu", ProcessGroup::single());
  MESSAGE("one rank vs plain: loss rel diff " << r.loss_rel << ", weight abs diff " << r.weight_abs);
  CHECK(r.loss_rel < 1e-6);
  CHECK(r.weight_abs < 1e-5);
}

// Run by the next case under mpirun (skipped in a normal run): collectives, the sharded losses and
// the bucketed gradients across the launched ranks, against the global batch computed on each rank.
TEST_CASE("distributed worker: collectives, sharded losses and reducer across MPI ranks" * doctest::skip()) {
  auto g = launched_process_group();
  REQUIRE_MESSAGE(g != nullptr, "run this case under mpirun");
  const int r = g->rank(), R = g->size();
  REQUIRE(R >= 2);
  // Collectives.
  Tensor x = full({3, 2}, double(r + 1));
  g->all_reduce_sum_(x);
  CHECK(max_abs_diff(x, full({3, 2}, R * (R + 1) / 2.0)) == 0);
  Tensor gathered = g->all_gather(full({1, 2}, double(10 * r)));
  REQUIRE(gathered.shape() == Shape{R, 2});
  for (int s = 0; s < R; ++s) CHECK(gathered.to_vector()[size_t(2 * s)] == 10.0 * s);
  Tensor scattered = g->reduce_scatter_sum(arange(0, 2.0 * R, 1.0, DType::f64).reshape({R, 2}));
  CHECK(scattered.to_vector() == std::vector<double>{2.0 * r * R, (2.0 * r + 1) * R});
  Tensor b = full({4}, double(r));
  g->broadcast_(b, R - 1);
  CHECK(b.to_vector() == std::vector<double>(4, R - 1.0));
  Tensor flat = full({1000}, 1.0);
  const int64_t h = g->start_all_reduce(flat);
  g->poll();
  g->finish_all_reduce(h);
  CHECK(flat.to_vector()[999] == double(R));

  // The sharded losses: the mean over ranks and the gathered gradients equal the global batch's.
  const int64_t n = 3, N = n * R;
  const Tensor all_img = unit_rows(N, 5, 1), all_txt = unit_rows(N, 5, 2);  // the same on every rank
  for (bool siglip : {false, true}) {
    CAPTURE(siglip);
    Tensor img = all_img.narrow(0, r * n, n).clone().requires_grad_(), txt = all_txt.narrow(0, r * n, n).clone().requires_grad_();
    Tensor scale = full({}, 1.1, DType::f64).requires_grad_(), bias = full({}, -0.5, DType::f64).requires_grad_();
    Tensor gi = all_img.clone().requires_grad_(), gt = all_txt.clone().requires_grad_();
    Tensor gs = full({}, 1.1, DType::f64).requires_grad_(), gb = full({}, -0.5, DType::f64).requires_grad_();
    Tensor local = siglip ? sharded_siglip_loss(img, txt, scale, bias, *g) : sharded_clip_loss(img, txt, scale, *g);
    Tensor global = siglip ? siglip_loss(gi, gt, gs, gb) : clip_loss(gi, gt, gs);
    local.backward();
    global.backward();
    CHECK(g->all_reduce_sum({local.item()})[0] / R == doctest::Approx(global.item()).epsilon(1e-12));
    CHECK(max_abs_diff(mul(img.grad(), 1.0 / R), gi.grad().narrow(0, r * n, n)) < 1e-12);
    CHECK(max_abs_diff(mul(txt.grad(), 1.0 / R), gt.grad().narrow(0, r * n, n)) < 1e-12);
    Tensor ds = scale.grad().clone();
    g->all_reduce_sum_(ds);
    CHECK(ds.item() / R == doctest::Approx(gs.grad().item()).epsilon(1e-12));
  }

  // The reducer: each rank's mean over its rows, averaged, is the global mean's gradient.
  default_generator().manual_seed(5);
  Linear l1(4, 6), l2(6, 3);
  std::vector<Tensor> params = {l1.weight, l1.bias, l2.weight, l2.bias};
  for (const Tensor& p : params) g->broadcast_(p, 0);  // equal already (same seed); as training does
  Tensor X = randn({N, 4});
  auto loss_of = [&](const Tensor& rows) { return mean(l2.forward(relu(l1.forward(rows)))); };
  loss_of(X).backward();
  std::vector<Tensor> expected;
  for (Tensor p : params) {
    expected.push_back(p.grad().clone());
    p.zero_grad();
  }
  GradReducer reducer(params, g, 8 * 4);  // several buckets
  Tensor loss = loss_of(X.narrow(0, r * n, n));
  reducer.arm(loss);
  loss.backward();
  reducer.finish();
  CHECK(reducer.num_buckets() >= 3);
  CHECK(reducer.started_during_backward() >= 1);
  for (size_t k = 0; k < params.size(); ++k) CHECK(max_abs_diff(params[k].grad(), expected[k]) < 1e-6);
}

TEST_CASE("distributed: mpirun -np 2 runs the worker case: collectives, sharded losses, gradients across ranks") {
  const std::string mpirun = mpirun_or_skip(2);
  if (mpirun.empty()) return;
  char self[4096] = {};
  REQUIRE(::readlink("/proc/self/exe", self, sizeof(self) - 1) > 0);
  int rc = -1;
  const std::string out = shell_output(mpirun + " " + self +
                                           " --no-skip --no-version --no-colors --test-case='distributed worker*' 2>&1",
                                       &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("Status: SUCCESS") != std::string::npos);
}

TEST_CASE("distributed: mpirun -np 2 minivl train equals one process on the same global batch (tiny CLIP, resumed)") {
  const std::string mpirun = mpirun_or_skip(2);
  if (mpirun.empty()) return;
  NnTempDir dir;
  const std::string cfg = tiny_clip_config(dir);
  const std::string cli = MINIVL_CLI_PATH;
  int rc = -1;
  std::string out = shell_output("OMP_NUM_THREADS=1 " + cli + " train " + cfg + " --run-dir " + dir.file("one") + " 2>&1", &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  // Two ranks: stopped after step 3 with a checkpoint, then resumed by both ranks to step 5.
  out = shell_output(mpirun + " " + cli + " train " + cfg + " --run-dir " + dir.file("two") + " --stop-at 3 2>&1", &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  CHECK(out.find("data parallel over 2 rank(s) (mpi)") != std::string::npos);
  CHECK(out.find("step 3/5") != std::string::npos);
  out = shell_output(mpirun + " " + cli + " train --resume " + dir.file("two") + " 2>&1", &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  CHECK(std::filesystem::exists(dir.file("two/model/model.safetensors")));
  const Agreement r = compare_runs(dir.file("one"), dir.file("two"), 5);
  MESSAGE("SGD, 2 ranks vs 1 process: loss rel diff " << r.loss_rel << ", weight abs diff " << r.weight_abs);
  CHECK(r.loss_rel < 1e-6);
  CHECK(r.weight_abs < 1e-5);

  // AdamW, in one go: the same losses, and the same weights but for the key biases (compare_runs).
  const std::string adamw = tiny_clip_config(dir, "cpu", "adamw");
  out = shell_output("OMP_NUM_THREADS=1 " + cli + " train " + adamw + " --run-dir " + dir.file("one_adamw") + " 2>&1", &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  out = shell_output(mpirun + " " + cli + " train " + adamw + " --run-dir " + dir.file("two_adamw") + " 2>&1", &rc);
  REQUIRE_MESSAGE(rc == 0, out);
  const Agreement a = compare_runs(dir.file("one_adamw"), dir.file("two_adamw"), 5, /*skip_key_biases=*/true);
  MESSAGE("AdamW, 2 ranks vs 1 process: loss rel diff " << a.loss_rel << ", weight abs diff " << a.weight_abs
                                                         << " (key biases, noise: " << a.key_bias_abs << ")");
  CHECK(a.loss_rel < 1e-6);
  CHECK(a.weight_abs < 1e-5);
}

TEST_SUITE_END();

TEST_SUITE_BEGIN("distributed_cuda");

TEST_CASE("distributed_cuda: one rank through NCCL: collectives on CUDA tensors, and tiny CLIP training equals plain") {
  if (!cuda_available() || !distributed_support().nccl) {
    MESSAGE("distributed_cuda: skipped: "
            << (!cuda_available() ? cuda_unavailable_reason() : std::string("built without NCCL")));
    return;
  }
  auto g = ProcessGroup::single();
  Tensor x = from_vector({1, 2, 3, 4, 5, 6}, {3, 2}).to(Device::cuda());
  Tensor y = x.clone();
  g->all_reduce_sum_(y);
  CHECK(g->backend() == "single+nccl");  // NCCL's single-rank communicator did the work
  CHECK(max_abs_diff(x, y) == 0);
  CHECK(max_abs_diff(g->all_gather(x), x) == 0);
  CHECK(max_abs_diff(g->reduce_scatter_sum(x), x) == 0);
  g->broadcast_(y, 0);
  CHECK(max_abs_diff(x, y) == 0);
  const int64_t h = g->start_all_reduce(y);
  g->finish_all_reduce(h);
  CHECK(max_abs_diff(x, y) == 0);

  const Agreement r = plain_and_data_parallel("cuda", g);
  MESSAGE("CUDA, one NCCL rank vs plain: loss rel diff " << r.loss_rel << ", weight abs diff " << r.weight_abs);
  CHECK(r.loss_rel < 1e-5);
  CHECK(r.weight_abs < 1e-4);
}

TEST_SUITE_END();
