// `minivl demo`: trains a small MLP on a toy problem (three interleaved spiral
// arms, one class each) on the CPU in seconds and prints the loss falling. It
// exercises the engine alone: factories, matmul, broadcasting, activations, the
// fused cross-entropy, autograd and in-place parameter updates.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/generator.h"
#include "core/ops.h"
#include "tools/commands.h"
#include "tools/numeric_option.h"

namespace minivl::tools {
namespace {

constexpr int kClasses = 3;

// Points on `kClasses` spiral arms with a little noise; label = arm.
void make_spirals(int64_t per_class, uint64_t seed, Tensor& x, Tensor& y) {
  std::vector<double> xs;
  std::vector<int64_t> ys;
  uint64_t i = 0;
  for (int c = 0; c < kClasses; ++c) {
    for (int64_t k = 0; k < per_class; ++k, ++i) {
      double r = double(k) / double(per_class);
      double theta = 4.0 * r + 2.0 * M_PI * c / kClasses + 0.15 * philox_normal(seed, 0, i);
      xs.push_back(r * std::sin(theta));
      xs.push_back(r * std::cos(theta));
      ys.push_back(c);
    }
  }
  x = from_vector(xs, {int64_t(ys.size()), 2});
  y = from_vector_i64(ys, {int64_t(ys.size())});
}

struct Mlp {
  std::vector<Tensor> params;  // w1, b1, w2, b2, w3, b3
  explicit Mlp(int64_t hidden) {
    manual_seed_default(7);
    auto layer = [&](int64_t in, int64_t out) {
      params.push_back(mul(randn({in, out}), std::sqrt(2.0 / double(in))).detach().requires_grad_());
      params.push_back(zeros({out}).requires_grad_());
    };
    layer(2, hidden);
    layer(hidden, hidden);
    layer(hidden, kClasses);
  }
  static void manual_seed_default(uint64_t seed) { default_generator().manual_seed(seed); }
  Tensor forward(const Tensor& x) const {
    Tensor h = relu(add(matmul(x, params[0]), params[1]));
    h = relu(add(matmul(h, params[2]), params[3]));
    return add(matmul(h, params[4]), params[5]);
  }
};

void run_demo(int steps) {
  Tensor x, y, x_test, y_test;
  make_spirals(200, 1, x, y);
  make_spirals(100, 2, x_test, y_test);
  Mlp model(64);
  // Adam written out in public ops, so that the demo needs nothing above core/ (nn::AdamW is the
  // trainers' optimiser).
  std::vector<Tensor> m, v;
  for (const Tensor& p : model.params) {
    m.push_back(zeros_like(p));
    v.push_back(zeros_like(p));
  }
  const double lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::printf("minivl demo: a 2-64-64-3 MLP learns three spirals (%lld training points) on the CPU\n",
              (long long)x.size(0));
  auto start = std::chrono::steady_clock::now();
  double first_loss = 0, last_loss = 0;
  for (int step = 1; step <= steps; ++step) {
    Tensor loss = cross_entropy(model.forward(x), y);
    for (Tensor& p : model.params) p.zero_grad();
    loss.backward();
    {
      NoGradGuard no_grad;
      const double c1 = 1 - std::pow(beta1, step), c2 = 1 - std::pow(beta2, step);
      for (size_t i = 0; i < model.params.size(); ++i) {
        Tensor g = model.params[i].grad();
        m[i].copy_(add(mul(m[i], beta1), mul(g, 1 - beta1)));
        v[i].copy_(add(mul(v[i], beta2), mul(mul(g, g), 1 - beta2)));
        Tensor update = div(mul(m[i], lr / c1), add(sqrt(mul(v[i], 1 / c2)), eps));
        model.params[i].copy_(sub(model.params[i], update));
      }
    }
    last_loss = loss.item();
    if (step == 1) first_loss = last_loss;
    if (step == 1 || step % (steps / 10) == 0) std::printf("  step %4d  loss %.4f\n", step, last_loss);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  NoGradGuard no_grad;
  Tensor pred = argmax(model.forward(x_test), 1);
  double acc = mean(equal_mask(pred.to(DType::f32), y_test.to(DType::f32))).item();
  std::printf("trained %d steps in %.2f s: loss %.4f -> %.4f, held-out accuracy %.1f%%\n", steps, seconds,
              first_loss, last_loss, 100 * acc);
}

}  // namespace

void register_demo_commands(CLI::App& app) {
  auto steps = std::make_shared<int>(500);
  CLI::App* demo = app.add_subcommand("demo", "Train a small MLP on a toy problem and print the loss falling");
  add_numeric_option(demo, "--steps", *steps, Bounds<int>{10, 1'000'000}, "Training steps (default 500)");
  demo->callback([steps] { run_demo(*steps); });
}

}  // namespace minivl::tools
