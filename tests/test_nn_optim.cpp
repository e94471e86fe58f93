// Optimisers against hand-computed steps, the fused AdamW kernel against the
// public-op path, state save/load, schedules, clipping, accumulation, loss scaling.
#include <doctest/doctest.h>

#include <cmath>

#include "core_test_util.h"
#include "core/generator.h"
#include "nn/amp.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "nn_test_util.h"

TEST_SUITE_BEGIN("nn_optim");

using namespace minivl;
using namespace minivl::nn;
using minivl::testing::check_values;

namespace {
Tensor param(const std::vector<double>& v, DType dtype = DType::f32) {
  Tensor p = from_vector(v, {int64_t(v.size())}, dtype);
  p.requires_grad_();
  return p;
}
void set_grad(Tensor p, const std::vector<double>& g) { p.set_grad(from_vector(g, p.shape(), p.dtype())); }

// PyTorch's AdamW for one scalar, in double.
struct AdamRef {
  double p, m = 0, v = 0;
  int t = 0;
  void step(double g, double lr, double b1, double b2, double eps, double wd) {
    ++t;
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    p -= lr * (m / (1 - std::pow(b1, t))) / (std::sqrt(v / (1 - std::pow(b2, t))) + eps);
  }
};
}  // namespace

TEST_CASE("nn AdamW: hand-computed steps with decoupled weight decay, fused kernel and op path") {
  for (bool fused : {true, false}) {
    CAPTURE(fused);
    Tensor p = param({1.0, -2.0});
    AdamW opt(single_group({p}, 0.1), {0.1, 0.9, 0.999, 1e-8});
    opt.use_fused = fused;
    set_grad(p, {0.5, -1.0});
    opt.step();
    // p * (1 - 0.1 * 0.1) - 0.1 * mhat / (sqrt(vhat) + eps), mhat = g, vhat = g^2 on step 1
    check_values(p, {0.99 - 0.1 * 0.5 / (0.5 + 1e-8), -1.98 + 0.1 * 1.0 / (1.0 + 1e-8)}, 1e-6, 1e-6);
    set_grad(p, {-0.25, 0.5});
    opt.step();
    AdamRef a{1.0}, b{-2.0};
    a.step(0.5, 0.1, 0.9, 0.999, 1e-8, 0.1);
    b.step(-1.0, 0.1, 0.9, 0.999, 1e-8, 0.1);
    a.step(-0.25, 0.1, 0.9, 0.999, 1e-8, 0.1);
    b.step(0.5, 0.1, 0.9, 0.999, 1e-8, 0.1);
    check_values(p, {a.p, b.p}, 1e-6, 1e-6);
    CHECK(opt.step_count() == 2);
  }
}

TEST_CASE("nn AdamW: f64 parameters take the op path exactly; groups keep their own decay; no grad, no step") {
  Tensor p = param({0.3}, DType::f64), q = param({0.3}, DType::f64), r = param({5.0}, DType::f64);
  std::vector<ParamGroup> groups = {{"decay", {"p"}, {p}, 0.5}, {"no_decay", {"q", "r"}, {q, r}, 0.0}};
  AdamW opt(groups, {0.01, 0.8, 0.99, 1e-6});
  AdamRef a{0.3}, b{0.3};
  for (double g : {0.2, -0.7, 1.5}) {
    set_grad(p, {g});
    set_grad(q, {g});
    opt.step();
    a.step(g, 0.01, 0.8, 0.99, 1e-6, 0.5);
    b.step(g, 0.01, 0.8, 0.99, 1e-6, 0.0);
  }
  CHECK(p.item() == doctest::Approx(a.p).epsilon(1e-14));
  CHECK(q.item() == doctest::Approx(b.p).epsilon(1e-14));
  CHECK(r.item() == 5.0);  // never had a gradient
}

TEST_CASE("nn optimisers: a group's lr_scale multiplies the lr (and so the decoupled decay), fused or not") {
  for (bool fused : {true, false}) {
    CAPTURE(fused);
    const DType dt = fused ? DType::f32 : DType::f64;  // f64 parameters always take the op path
    Tensor p = param({0.3, -1.0}, dt), q = param({0.3, -1.0}, dt);
    AdamW opt({{"decay", {"p"}, {p}, 0.5}, {"decay*0.25", {"q"}, {q}, 0.5, 0.25}}, {0.01, 0.8, 0.99, 1e-6});
    opt.use_fused = fused;
    AdamRef ap{0.3}, bp{-1.0}, aq{0.3}, bq{-1.0};
    for (double g : {0.2, -0.7, 1.5}) {
      set_grad(p, {g, -g});
      set_grad(q, {g, -g});
      opt.step();
      ap.step(g, 0.01, 0.8, 0.99, 1e-6, 0.5);
      bp.step(-g, 0.01, 0.8, 0.99, 1e-6, 0.5);
      aq.step(g, 0.0025, 0.8, 0.99, 1e-6, 0.5);
      bq.step(-g, 0.0025, 0.8, 0.99, 1e-6, 0.5);
    }
    check_values(p, {ap.p, bp.p}, 1e-7, 1e-7);
    check_values(q, {aq.p, bq.p}, 1e-7, 1e-7);
  }
  Tensor s = param({1.0});
  SGD sgd({{"params*0.5", {"s"}, {s}, 0.0, 0.5}}, {0.1, 0.0});
  set_grad(s, {1.0});
  sgd.step();
  CHECK(s.item() == doctest::Approx(0.95));
}

TEST_CASE("nn split_by_lr_scale: scaled parameters move to their own group, decay kept; bad scales named") {
  Tensor a = param({1.0}), b = param({2.0}), c = param({3.0}), d = param({4.0});
  std::vector<ParamGroup> groups = {{"decay", {"tower.w", "head.w", "tower.v"}, {a, b, c}, 0.1},
                                    {"no_decay", {"tower.b"}, {d}, 0.0}};
  auto scale = [](const std::string& name) { return name.rfind("tower.", 0) == 0 ? 0.1 : 1.0; };
  std::vector<ParamGroup> out = split_by_lr_scale(groups, scale);
  REQUIRE(out.size() == 3);
  CHECK(out[0].name == "decay");
  CHECK(out[0].names == std::vector<std::string>{"head.w"});
  CHECK(out[0].lr_scale == 1.0);
  CHECK(out[1].name == "decay*0.1");
  CHECK(out[1].names == std::vector<std::string>{"tower.w", "tower.v"});
  CHECK(out[1].weight_decay == 0.1);
  CHECK(out[1].lr_scale == 0.1);
  CHECK(out[2].name == "no_decay*0.1");
  CHECK(out[2].names == std::vector<std::string>{"tower.b"});
  CHECK(out[2].weight_decay == 0.0);
  CHECK(split_by_lr_scale(groups, [](const std::string&) { return 1.0; }).size() == 2);
  minivl::testing::check_error([&] { split_by_lr_scale(groups, [](const std::string&) { return -1.0; }); },
                               {"lr scale -1", "parameter 'tower.w'", "finite and >= 0"});
}

TEST_CASE("nn AdamW: the fused kernel agrees with the op path on many tensors") {
  default_generator().manual_seed(9);
  std::vector<Tensor> a, b;
  for (int64_t n : {1, 7, 70000, 130}) {  // one tensor spans two kernel chunks
    Tensor x = randn({n});
    a.push_back(x.clone().requires_grad_());
    b.push_back(x.clone().requires_grad_());
  }
  AdamW fa(single_group(a, 0.05), {1e-2}), fb(single_group(b, 0.05), {1e-2});
  fb.use_fused = false;
  for (int s = 0; s < 3; ++s) {
    for (size_t i = 0; i < a.size(); ++i) {
      Tensor g = randn(a[i].shape());
      a[i].set_grad(g);
      b[i].set_grad(g);
    }
    fa.step(0.5);
    fb.step(0.5);
  }
  for (size_t i = 0; i < a.size(); ++i) check_values(a[i], b[i].to_vector(), 1e-6, 1e-5);
}

TEST_CASE("nn SGD: momentum, Nesterov and coupled weight decay by hand") {
  Tensor p = param({1.0});
  SGD sgd(single_group({p}), {0.1, 0.9});
  set_grad(p, {1.0});
  sgd.step();
  CHECK(p.item() == doctest::Approx(0.9));  // buf = g
  set_grad(p, {2.0});
  sgd.step();
  CHECK(p.item() == doctest::Approx(0.61));  // buf = 0.9 * 1 + 2

  Tensor n = param({1.0});
  SGD nest(single_group({n}), {0.1, 0.9, true});
  set_grad(n, {1.0});
  nest.step();
  CHECK(n.item() == doctest::Approx(0.81));  // g + 0.9 * buf = 1.9
  set_grad(n, {2.0});
  nest.step();
  CHECK(n.item() == doctest::Approx(0.349));  // 2 + 0.9 * 2.9 = 4.61

  Tensor w = param({1.0});
  SGD decay(single_group({w}, 0.1), {0.1, 0.0});
  set_grad(w, {1.0});
  decay.step();
  CHECK(w.item() == doctest::Approx(0.89));
}

TEST_CASE("nn optimiser state: save, load into fresh parameters, identical next steps; mismatches named") {
  minivl::testing::NnTempDir dir;
  Tensor p = param({0.5, -0.25, 2.0});
  AdamW a(single_group({p}, 0.01), {0.05});
  for (double g : {0.3, -0.1}) {
    set_grad(p, {g, g * 2, -g});
    a.step();
  }
  a.save(dir.file("opt.safetensors"));
  Tensor q = param(p.to_vector());
  AdamW b(single_group({q}, 0.01), {0.05});
  b.load(dir.file("opt.safetensors"));
  CHECK(b.step_count() == 2);
  set_grad(p, {0.7, 0.1, 0.2});
  set_grad(q, {0.7, 0.1, 0.2});
  a.step();
  b.step();
  CHECK(p.to_vector() == q.to_vector());

  Tensor wrong = param({1.0, 2.0});
  AdamW c(single_group({wrong}), {0.05});
  minivl::testing::check_error([&] { c.load(dir.file("opt.safetensors")); },
                               {"opt.safetensors", "param.0.exp_avg", "shape (3,)"});
  SGD s(single_group({q}), {0.1, 0.9});
  minivl::testing::check_error([&] { s.load(dir.file("opt.safetensors")); }, {"expected 'sgd' state, got 'adamw'"});
}

TEST_CASE("nn LRSchedule: linear warm-up, then constant or cosine to min_lr") {
  LRSchedule cos{LRSchedule::Kind::cosine, 1.0, 0.1, 10, 110};
  CHECK(cos.lr_at(0) == doctest::Approx(0.1));
  CHECK(cos.lr_at(4) == doctest::Approx(0.5));
  CHECK(cos.lr_at(9) == doctest::Approx(1.0));
  CHECK(cos.lr_at(10) == doctest::Approx(1.0));
  CHECK(cos.lr_at(35) == doctest::Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI / 4))));
  CHECK(cos.lr_at(60) == doctest::Approx(0.55));
  CHECK(cos.lr_at(110) == doctest::Approx(0.1));
  CHECK(cos.lr_at(500) == doctest::Approx(0.1));
  LRSchedule c{LRSchedule::Kind::constant, 2.0, 0.0, 4, 100};
  CHECK(c.lr_at(0) == doctest::Approx(0.5));
  CHECK(c.lr_at(3) == doctest::Approx(2.0));
  CHECK(c.lr_at(99) == doctest::Approx(2.0));
  CHECK(LRSchedule{}.lr_at(0) == 1e-3);
  minivl::testing::check_error([] { LRSchedule::kind_from_name("linear"); }, {"unknown schedule 'linear'"});
}

TEST_CASE("nn clip_grad_norm_: scales to max_norm over all tensors, leaves small gradients alone") {
  Tensor a = param({0, 0}), b = param({0});
  set_grad(a, {3, 4});
  set_grad(b, {12});
  CHECK(clip_grad_norm_({a, b}, 6.5) == doctest::Approx(13.0));
  const double coef = 6.5 / (13.0 + 1e-6);
  check_values(a.grad(), {3 * coef, 4 * coef}, 1e-6, 1e-6);
  check_values(b.grad(), {12 * coef}, 1e-6, 1e-6);
  CHECK(global_grad_norm({a, b}) == doctest::Approx(6.5).epsilon(1e-6));
  CHECK(clip_grad_norm_({a, b}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
  check_values(a.grad(), {3 * coef, 4 * coef}, 1e-6, 1e-6);
}

TEST_CASE("nn GradAccumulator: two half batches give the full batch's gradient") {
  default_generator().manual_seed(4);
  Linear lin(3, 2);
  Tensor x = randn({4, 3}), t = from_vector_i64({0, 1, 1, 0}, {4});
  cross_entropy(lin.forward(x), t).backward();
  const std::vector<double> full = lin.weight.grad().to_vector();
  lin.zero_grad();
  GradAccumulator acc(2);
  CHECK(acc.loss_scale() == 0.5);
  bool stepped = false;
  for (int64_t m = 0; m < 2; ++m) {
    mul(cross_entropy(lin.forward(x.narrow(0, 2 * m, 2)), t.narrow(0, 2 * m, 2)), acc.loss_scale()).backward();
    stepped = acc.micro_step();
    CHECK(stepped == (m == 1));
  }
  check_values(lin.weight.grad(), full, 1e-6, 1e-5);
}

TEST_CASE("nn GradScaler: scales the loss, skips and backs off on overflow, grows after clean steps") {
  GradScaler scaler({8.0, 2.0, 0.5, 2});
  Tensor p = param({1.0, 1.0});
  CHECK(scaler.scale_loss(scalar_tensor(1.5)).item() == 12.0);
  set_grad(p, {8.0, 16.0});
  CHECK(scaler.unscale_({p}));
  check_values(p.grad(), {1.0, 2.0}, 0, 0);
  scaler.update(false);
  CHECK(scaler.scale() == 8.0);
  set_grad(p, {8.0, INFINITY});
  CHECK_FALSE(scaler.unscale_({p}));
  scaler.update(true);
  CHECK(scaler.scale() == 4.0);
  set_grad(p, {NAN, 1.0});
  CHECK_FALSE(grads_finite({p}));
  scaler.update(false);
  scaler.update(false);
  CHECK(scaler.scale() == 8.0);
  GradScaler restored;
  restored.load_state(scaler.state());
  CHECK(restored.scale() == 8.0);
  GradScaler off({}, false);
  Tensor l = scalar_tensor(2.0);
  CHECK(off.scale_loss(l).same(l));
}

TEST_SUITE_END();
