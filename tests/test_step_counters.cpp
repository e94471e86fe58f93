// What a CLIP training step costs beyond its arithmetic (issue 24, core/counters.h): kernel
// dispatches, host waits, allocations and host <-> device bytes per steady-state step of
// `minivl bench-step` on configs/clip_tiny.toml (CPU path, which dispatches what the CUDA path
// launches), and the pieces that keep the step free of host waits: the device-side text pooling,
// the guarded AdamW step that decides on the device, gradients kept without a copy, and the
// embedding backward and id check on CUDA.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/counters.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "models/clip.h"
#include "nn/amp.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tests/nn_test_util.h"
#include "tests/skip_report.h"

using namespace minivl;
using minivl::testing::run_minivl;

namespace {

struct StepCounts {
  int64_t launches, syncs, allocs, bytes;
  double flops;
};

// One bench-step run; the counts are per step, so a small batch gives the same ones faster.
StepCounts bench_step_counts(const std::string& extra) {
  const auto r = run_minivl("bench-step --config " MINIVL_SOURCE_DIR "/configs/clip_tiny.toml --steps 1 --warmup 1"
                            " --phase-steps 0 " + extra);
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  const nlohmann::json j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  return {j.at("launches_per_step").get<int64_t>(), j.at("syncs_per_step").get<int64_t>(),
          j.at("device_allocs_per_step").get<int64_t>(), j.at("host_device_bytes_per_step").get<int64_t>(),
          j.at("flops_per_step").get<double>()};
}

std::string layers(int vision, int text) {
  return "--set model.vision_layers=" + std::to_string(vision) + " --set model.text_layers=" + std::to_string(text);
}

}  // namespace

// The dispatches of one f32 step, counted from the op layer (core/dispatch_impl.h kernel_for),
// read from a traced run of each:
//
// Per transformer layer (vision and text alike), 50:
//   forward 21: layer_norm1 1; q, k, v, out_proj, fc1, fc2: a GEMM and a bias add each, 12;
//     q, k, v made contiguous for the fused attention 3; attention 1; its (B, H, T, Dh) output
//     made contiguous for out_proj 1; add_layernorm (residual + layer_norm2) 1; quick_gelu 1;
//     the second residual add 1.
//   backward 29: per Linear the bias gradient's row sum and two GEMMs (dx, dW), 18; the fused
//     backwards of quick_gelu, add_layernorm, attention and layer_norm1, 4; attention's dout and
//     the q, k, v gradients made contiguous to reshape, 4; x's gradient summed over its three
//     uses (q, k, v) and with the residual, 3. Every weight gradient arrives contiguous and
//     unshared, so .grad keeps it without a copy.
// Outside the layers, 72:
//   forward 30: text 16 (token gather, position add, the pooling one-hot: ids to f32, the eos
//     scalar, equal, mul, add, row max, equal; its (B, 1, T) @ (B, T, D) product, final LN,
//     projection, L2 normalisation: mul, sum, rsqrt, mul); vision 13 (patch unfold copy, patch
//     GEMM, class token and patches concatenated: 2 copies, position add, pre-LN, the class row
//     made contiguous, post-LN, projection, L2 normalisation 4); clip_loss 1.
//   backward 39: the seed 1; clip_loss 1; each L2 normalisation 9 (x 2); the projections' GEMMs 4;
//     post-LN, final LN and pre-LN 3; the class row's select (zero fill + copy) 2; the pooling
//     product's GEMM 1; the token embedding's zero fill + scatter 2; the text positions' batch sum
//     and narrow (zero fill + copy) 3; the vision positions' and class token's batch sums 2; the
//     patch gradient made contiguous + the patch weight's GEMM 2.
//   the optimizer: one fused AdamW call for every parameter 1; clamp_logit_scale's clamp + copy 2.
// Syncs: none. The step reads nothing on the host: ids are checked where they live, the pooling
// position is a device one-hot, the logit-scale clamp is a device op.
// Allocations (CPU: every tensor storage is a real one; CUDA's caching allocator serves them from
// its cache in the steady state): per layer 62, the forward's 21 outputs plus layernorm's mean and
// rstd (2), add_layernorm's sum, mean and rstd (3) and attention's lse (1), 27; the backward's 29
// outputs plus the second and third outputs of the layer_norm1, add_layernorm and attention
// backwards (dweight and dbias twice, dk and dv) 6, 35. Outside the layers 82.
TEST_CASE("bench-step: clip_tiny's per-step dispatches, host waits and allocations are exact") {
  constexpr int64_t kLaunchesPerLayer = 50, kLaunchesOutside = 72;
  constexpr int64_t kAllocsPerLayer = 62, kAllocsOutside = 82;
  const StepCounts tiny = bench_step_counts("--set data.batch_size=4");  // clip_tiny: 4 + 4 layers
  CHECK(tiny.syncs == 0);
  CHECK(tiny.bytes == 0);  // nothing moves between host and device inside the step
  CHECK(tiny.launches == kLaunchesOutside + 8 * kLaunchesPerLayer);
  CHECK(tiny.allocs == kAllocsOutside + 8 * kAllocsPerLayer);
  // The per-layer and outside terms, separately: no layers, and 2 + 3 layers.
  const StepCounts none = bench_step_counts("--set data.batch_size=4 " + layers(0, 0));
  CHECK(none.launches == kLaunchesOutside);
  CHECK(none.allocs == kAllocsOutside);
  const StepCounts mixed = bench_step_counts("--set data.batch_size=4 " + layers(2, 3));
  CHECK(mixed.launches == kLaunchesOutside + 5 * kLaunchesPerLayer);
  CHECK(mixed.syncs == 0);
  // The counts do not depend on the batch (the FLOPs do).
  const StepCounts batch2 = bench_step_counts("--set data.batch_size=2");
  CHECK(batch2.launches == tiny.launches);
  CHECK(batch2.allocs == tiny.allocs);
  CHECK(batch2.flops < tiny.flops);
}

TEST_CASE("bench-step and bench/torch_clip_step.py count the same FLOPs per step") {
  FILE* probe = popen("python3 -c 'import tomllib' 2>&1", "r");
  const int python_rc = probe ? pclose(probe) : -1;
  if (python_rc != 0) {
    MINIVL_REPORT_SKIP("python3 with tomllib (3.11+) is not available");
    return;
  }
  for (const char* cfg : {"clip_tiny", "clip_vitb32", "clip_vitb16"}) {
    CAPTURE(cfg);
    const std::string path = std::string(MINIVL_SOURCE_DIR) + "/configs/" + cfg + ".toml";
    const auto ours = run_minivl("bench-step --flops-only --config " + path);
    REQUIRE_MESSAGE(ours.exit_code == 0, ours.output);
    const double minivl_flops = nlohmann::json::parse(ours.output).at("flops_per_step").get<double>();
    std::string py;
    FILE* p = popen(("python3 " MINIVL_SOURCE_DIR "/bench/torch_clip_step.py --flops-only --config " + path).c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[512];
    while (fgets(buf, sizeof buf, p)) py += buf;
    REQUIRE(pclose(p) == 0);
    const double torch_flops = nlohmann::json::parse(py).at("results").at(0).at("flops_per_step").get<double>();
    CHECK(minivl_flops == torch_flops);
    CHECK(minivl_flops > 0);
  }
  // ViT-B/32 at batch 256, by hand: 6 B T L (4 D^2 + 2 D M) + 12 B L T^2 D per tower, patches, projections, logits.
  const double B = 256, v = 6 * B * 50 * 12 * (4.0 * 768 * 768 + 2.0 * 768 * 3072) + 12 * B * 12 * 50.0 * 50 * 768,
               t = 6 * B * 77 * 12 * (4.0 * 512 * 512 + 2.0 * 512 * 2048) + 12 * B * 12 * 77.0 * 77 * 512,
               rest = 6 * B * 49 * 3 * 32.0 * 32 * 768 + 6 * B * (768 + 512) * 512.0 + 6 * B * B * 512;
  const auto ours = run_minivl("bench-step --flops-only --config " MINIVL_SOURCE_DIR "/configs/clip_vitb32.toml");
  CHECK(nlohmann::json::parse(ours.output).at("flops_per_step").get<double>() == v + t + rest);
}

namespace {
// A tiny text tower whose weights do not matter; eos_token_id as given.
models::ClipTowerConfig tiny_text(int64_t eos) {
  models::ClipTowerConfig c;
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_attention_heads = 2;
  c.num_hidden_layers = 1;
  c.vocab_size = 12;
  c.max_position_embeddings = 6;
  c.eos_token_id = eos;
  return c;
}

// The pooled rows the way pool_positions reads them on the host: final LN of h at each row's position.
Tensor pooled_by_host_positions(const models::ClipTextTransformer& t, const Tensor& ids) {
  const Tensor h = t.encoder->forward(t.embeddings->forward(ids), true);  // (B, T, D)
  const std::vector<int64_t> pos = t.pool_positions(ids);
  std::vector<Tensor> rows;
  for (size_t b = 0; b < pos.size(); ++b) rows.push_back(h.select(0, int64_t(b)).select(0, pos[b]).unsqueeze(0));
  return t.final_layer_norm->forward(cat(rows, 0));
}
}  // namespace

TEST_CASE("CLIP text pooling on the device picks pool_positions' rows: first eos, none, legacy arg-max ties") {
  default_generator().manual_seed(3);
  // eos 11: a row with eos at 2 and again at 4 (the first counts), one at the last position only,
  // one with none (the last position), one with eos at 0.
  models::ClipTextTransformer text(tiny_text(11));
  const Tensor ids = from_vector_i64({1, 3, 11, 4, 11, 5,  2, 3, 4, 5, 6, 11,  1, 2, 3, 4, 5, 6,  11, 1, 2, 3, 4, 5},
                                     {4, 6});
  REQUIRE(text.pool_positions(ids) == std::vector<int64_t>{2, 5, 5, 0});
  CHECK(max(abs(sub(text.forward(ids), pooled_by_host_positions(text, ids)))).item() == 0.0);
  // Legacy eos 2: the largest id, the first of equal ones.
  models::ClipTextTransformer legacy(tiny_text(2));
  const Tensor lids = from_vector_i64({1, 9, 3, 9, 2, 0,  7, 1, 1, 1, 1, 1,  0, 0, 0, 0, 0, 0}, {3, 6});
  REQUIRE(legacy.pool_positions(lids) == std::vector<int64_t>{1, 0, 0});
  CHECK(max(abs(sub(legacy.forward(lids), pooled_by_host_positions(legacy, lids)))).item() == 0.0);
  // The pooled rows' gradient reaches h at those positions only (through the one-hot product).
  models::ClipTextTransformer again(tiny_text(11));
  Tensor loss = sum(again.forward(ids));
  loss.backward();
  const Tensor g = again.embeddings->token_embedding->weight.grad();
  REQUIRE(g.defined());
  CHECK(std::isfinite(sum(abs(g)).item()));
}

namespace {
// Two identical f32 parameter sets with the same gradients (g scaled by `scale`, NaN at `nan_at`).
struct TwinParams {
  std::vector<Tensor> a, b;
  TwinParams(uint64_t seed, double scale, int nan_at = -1) {
    default_generator().manual_seed(seed);
    for (int64_t n : {int64_t(7), int64_t(70000), int64_t(3)}) {  // one tensor over the CPU kernel's 64 Ki chunk
      Tensor p = randn({n});
      Tensor g = mul(randn({n}), scale);
      if (int(a.size()) == nan_at) g.narrow(0, 1, 1).fill_(std::nan(""));
      for (auto* side : {&a, &b}) {
        Tensor q = p.clone();
        q.requires_grad_(true);
        q.set_grad(g.clone());
        side->push_back(q);
      }
    }
  }
};

bool same(const std::vector<Tensor>& x, const std::vector<Tensor>& y) {
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].to_vector() != y[i].to_vector()) return false;
  return true;
}
}  // namespace

TEST_CASE("AdamW::step_guarded: the device decision equals the host guard, clipping included") {
  const nn::AdamWOptions options{1e-2, 0.9, 0.98, 1e-6};
  SUBCASE("finite gradients, no clipping: bitwise step()") {
    TwinParams t(1, 1.0);
    nn::AdamW guarded(nn::single_group(t.a, 0.1), options), host(nn::single_group(t.b, 0.1), options);
    for (int s = 0; s < 3; ++s) {
      const Tensor d = guarded.step_guarded(scalar_tensor(1.5), 0.0);
      REQUIRE(d.defined());
      CHECK(d.to_vector()[1] == 0.0);  // not skipped
      host.step();
    }
    CHECK(same(t.a, t.b));
    CHECK(guarded.step_count() == 3);
    CHECK(guarded.state_metadata().at("step") == "3");
  }
  SUBCASE("clipping: clip_grad_norm_ then step(), and the norm it reports") {
    TwinParams t(2, 10.0);
    nn::AdamW guarded(nn::single_group(t.a), options), host(nn::single_group(t.b), options);
    const Tensor d = guarded.step_guarded(Tensor(), 1.0);
    const double norm = nn::clip_grad_norm_(t.b, 1.0);
    host.step();
    REQUIRE(norm > 1.0);
    CHECK(d.to_vector()[0] == doctest::Approx(norm).epsilon(1e-12));
    CHECK(same(t.a, t.b));
  }
  SUBCASE("a NaN gradient or a NaN loss skips: weights, moments and the step count stay") {
    TwinParams t(3, 1.0, /*nan_at=*/1);
    nn::AdamW guarded(nn::single_group(t.a), options);
    std::vector<std::vector<double>> before;
    for (const Tensor& p : t.a) before.push_back(p.to_vector());
    const Tensor d = guarded.step_guarded(scalar_tensor(0.5), 0.0);
    CHECK(std::isnan(d.to_vector()[0]));
    CHECK(d.to_vector()[1] == 1.0);
    for (size_t i = 0; i < t.a.size(); ++i) CHECK(t.a[i].to_vector() == before[i]);
    CHECK(guarded.step_count() == 0);
    for (const auto& [name, m] : guarded.state_tensors()) CHECK(max(abs(m)).item() == 0.0);
    // A finite gradient with a NaN loss skips too; then a clean step counts as the first.
    TwinParams c(4, 1.0);
    nn::AdamW g2(nn::single_group(c.a), options), h2(nn::single_group(c.b), options);
    CHECK(g2.step_guarded(scalar_tensor(std::nan("")), 0.0).to_vector()[1] == 1.0);
    CHECK(g2.step_count() == 0);
    CHECK(g2.step_guarded(scalar_tensor(0.5), 0.0).to_vector()[1] == 0.0);
    h2.step();
    CHECK(same(c.a, c.b));
    CHECK(g2.step_count() == 1);
    g2.step();  // the host path continues the count
    CHECK(g2.step_count() == 2);
  }
  SUBCASE("parameters the fused kernel cannot take: nothing done, undefined returned") {
    Tensor p = randn({4}, DType::f64);
    p.requires_grad_(true);
    p.set_grad(ones({4}, DType::f64));
    nn::AdamW opt(nn::single_group({p}), options);
    const std::vector<double> before = p.to_vector();
    CHECK_FALSE(opt.step_guarded(Tensor(), 0.0).defined());
    CHECK(p.to_vector() == before);
    CHECK(opt.step_count() == 0);
  }
}

TEST_CASE("autograd: a gradient nothing else holds becomes .grad without a copy; shared ones are copied") {
  // loss = sum(x W^T + b): forward GEMM, bias add, sum (3); backward: the seed fill, sum's
  // expanded gradient made contiguous, the bias gradient's row sum, W's GEMM (4). W's gradient is
  // made in W's layout and b's is a fresh sum: both are kept without a copy.
  nn::Linear lin(5, 3);
  Tensor x = randn({4, 5});
  const EngineCounters before = engine_counters();
  Tensor loss = sum(lin.forward(x));
  loss.backward();
  const EngineCounters used = engine_counters() - before;
  CHECK(used.launches == 7);
  CHECK(used.syncs == 0);
  // y = a + b hands the same gradient tensor to both leaves: each .grad must own its storage.
  Tensor a = randn({3}), b = randn({3});
  a.requires_grad_(true);
  b.requires_grad_(true);
  add(a, b).backward(ones({3}));
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK(a.grad().data_ptr() != b.grad().data_ptr());
  // A user's gradient tensor is never adopted either.
  Tensor c = randn({3});
  c.requires_grad_(true);
  Tensor seed = ones({3});
  mul(c, 1.0).backward(seed);
  CHECK(c.grad().data_ptr() != seed.data_ptr());
}

TEST_CASE("autocast: AdamW writes the bf16 copies of the weights it updates; autocast hands them out without a cast") {
  default_generator().manual_seed(5);
  nn::Linear a(6, 4), b(6, 4);
  {
    NoGradGuard no_grad;
    b.weight.copy_(a.weight);
    b.bias.copy_(a.bias);
  }
  const Tensor x = randn({3, 6});
  nn::AdamW opt(nn::single_group({a.weight, a.bias}), nn::AdamWOptions{1e-2, 0.9, 0.99, 1e-8});
  auto loss_of = [&](const nn::Linear& l) {
    nn::AutocastGuard amp(DType::bf16, true, /*cpu=*/true);
    return sum(l.forward(x));
  };
  auto cast_launches = [&](const Tensor& w) {
    nn::AutocastGuard amp(DType::bf16, true, true);
    const EngineCounters c0 = engine_counters();
    const Tensor low = nn::autocast(w);
    const int64_t launches = (engine_counters() - c0).launches;
    return std::make_pair(launches, low.to_vector());
  };
  loss_of(a).backward();  // the first forward casts (and asks for a copy)
  opt.step();             // the update writes the copy
  opt.zero_grad();
  auto [launches, values] = cast_launches(a.weight);
  CHECK(launches == 0);
  CHECK(values == a.weight.detach().to(DType::bf16).to_vector());  // what a cast would give, bitwise
  // The gradient through the copy is the gradient through a cast.
  {
    NoGradGuard no_grad;
    b.weight.copy_(a.weight);
    b.bias.copy_(a.bias);
  }
  loss_of(a).backward();
  loss_of(b).backward();
  CHECK(a.weight.grad().to_vector() == b.weight.grad().to_vector());
  // A skipped guarded step still leaves a valid copy; a write of the weight outside the optimizer
  // makes autocast cast again, with the new values.
  const Tensor d = opt.step_guarded(scalar_tensor(std::nan("")), 0.0);
  CHECK(d.to_vector()[1] == 1.0);
  CHECK(cast_launches(a.weight).first == 0);
  {
    NoGradGuard no_grad;
    a.weight.copy_(mul(a.weight, 2.0));
  }
  auto [relaunches, revalues] = cast_launches(a.weight);
  CHECK(relaunches == 1);
  CHECK(revalues == a.weight.detach().to(DType::bf16).to_vector());
}

TEST_CASE("sync points: item, to_vector and a copy to the host count once each; device ops none") {
  Tensor t = randn({4});
  const EngineCounters c0 = engine_counters();
  (void)t.to_vector();
  (void)sum(t).item();
  (void)scalar_tensor(2.0, DType::i64).item_int();
  const EngineCounters used = engine_counters() - c0;
  CHECK(used.syncs == 3);
  CHECK(used.host_device_bytes == 4 * 4 + 4 + 8);  // the bytes the device would have sent back
  // to_vector's conversion to f64, sum, item()'s conversion, scalar_tensor's fill (item_int of an
  // i64 tensor converts nothing).
  CHECK(used.launches == 4);
}

TEST_CASE("CUDA: embedding backward with a long run of one id equals the CPU; a bad id is reported at the next read") {
  if (!cuda_available()) {
    MINIVL_REPORT_SKIP("step counters CUDA checks: " << cuda_unavailable_reason());
    return;
  }
  default_generator().manual_seed(7);
  const int64_t V = 1000, D = 70, n = 5000;
  std::vector<int64_t> ids(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = i % 3 == 0 ? (i * 7919) % V : 0;  // id 0: a 3333-long run
  Tensor w = randn({V, D});
  w.requires_grad_(true);
  Tensor gout = randn({n, D});
  const Tensor cpu_ids = from_vector_i64(ids, {n});
  embedding(w, cpu_ids).backward(gout);
  Tensor wd = w.detach().to(Device::cuda());
  wd.requires_grad_(true);
  const EngineCounters c0 = engine_counters();
  embedding(wd, cpu_ids.to(Device::cuda())).backward(gout.to(Device::cuda()));
  CHECK((engine_counters() - c0).syncs == 0);
  CHECK(max(abs(sub(wd.grad().to(Device::cpu()), w.grad()))).item() < 1e-3);
  // Deterministic: the same bits again.
  Tensor wd2 = w.detach().to(Device::cuda());
  wd2.requires_grad_(true);
  embedding(wd2, cpu_ids.to(Device::cuda())).backward(gout.to(Device::cuda()));
  CHECK(wd2.grad().to_vector() == wd.grad().to_vector());
  // An id out of range: the op returns (zeros in its row), the next read to the host names it.
  Tensor bad = embedding(w.detach().to(Device::cuda()), from_vector_i64({1, V + 5}, {2}).to(Device::cuda()));
  bool thrown = false;
  try {
    (void)bad.to_vector();
  } catch (const Error& e) {
    thrown = std::string(e.what()).find("embedding: id " + std::to_string(V + 5) + " out of range for a vocabulary of " +
                                        std::to_string(V)) != std::string::npos;
  }
  CHECK(thrown);
  CHECK(sum(bad).item() == doctest::Approx(sum(w.detach().select(0, 1)).item()));  // cleared after the report
}
