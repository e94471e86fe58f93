// clip_loss and siglip_loss: the tiled kernels against the naive materialised reference
// (matmul + cross_entropy / sigmoid through public ops), f64 gradchecks across tile edges,
// determinism across thread counts, and the O(N d) peak memory at N = 65536.
#include <doctest/doctest.h>
#include <omp.h>

#include <chrono>
#include <cmath>

#include "core/allocator.h"
#include "core/ops.h"
#include "kernels/cpu/fused_cpu.h"
#include "tests/core_test_util.h"
#include "tests/gradcheck.h"

using namespace minivl;
using namespace minivl::testing;

namespace {

// Rows L2-normalised, as the loss expects; a leaf requiring grad.
Tensor features(int64_t n, int64_t d, uint64_t seed, DType dtype = DType::f64) {
  Tensor f;
  {
    NoGradGuard no_grad;
    Tensor x = random_input({n, d}, seed, false);
    f = div(x, sqrt(sum(mul(x, x), {-1}, true))).to(dtype);
  }
  return f.requires_grad_();
}

Tensor scalar_leaf(double v, DType dtype = DType::f64) { return scalar_tensor(v, dtype).requires_grad_(); }

Tensor naive_logits(const Tensor& image, const Tensor& text, const Tensor& logit_scale) {
  return mul(matmul(image, text.t()), exp(logit_scale));
}

Tensor naive_clip(const Tensor& image, const Tensor& text, const Tensor& logit_scale) {
  const int64_t n = image.size(0);
  Tensor logits = naive_logits(image, text, logit_scale);
  Tensor target = arange(0, double(n), 1, DType::i64);
  return mul(add(cross_entropy(logits, target), cross_entropy(logits.t(), target)), 0.5);
}

Tensor naive_siglip(const Tensor& image, const Tensor& text, const Tensor& logit_scale, const Tensor& logit_bias) {
  const int64_t n = image.size(0);
  Tensor z;
  {
    NoGradGuard no_grad;
    Tensor idx = arange(0, double(n), 1, image.dtype());
    z = sub(mul(equal_mask(idx.unsqueeze(1), idx.unsqueeze(0)), 2.0), ones({n, n}, image.dtype()));
  }
  Tensor u = add(naive_logits(image, text, logit_scale), logit_bias);
  return mul(sum(log(sigmoid(mul(z, u)))), -1.0 / double(n));
}

double rel_err(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = got.to_vector(), w = want.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num = std::max(num, std::abs(g[i] - w[i]));
    den = std::max(den, std::abs(w[i]));
  }
  return num / std::max(den, 1e-30);
}

struct LossAndGrads {
  Tensor loss, dimage, dtext, dscale, dbias;
};

template <typename Fn>
LossAndGrads run(Fn fn, int64_t n, int64_t d, DType dtype, bool siglip) {
  Tensor image = features(n, d, 100 + uint64_t(n), dtype), text = features(n, d, 200 + uint64_t(n), dtype);
  Tensor scale = scalar_leaf(std::log(siglip ? 10.0 : 20.0), dtype), bias = scalar_leaf(-5.0, dtype);
  Tensor loss = fn(image, text, scale, bias);
  loss.backward();
  return {loss.detach(), image.grad(), text.grad(), scale.grad(), bias.grad()};
}

void check_against_naive(bool siglip, int64_t n, int64_t d, DType dtype, double tol) {
  CAPTURE(siglip);
  CAPTURE(n);
  CAPTURE(d);
  CAPTURE(dtype_name(dtype));
  auto fused = [&](const Tensor& i, const Tensor& t, const Tensor& s, const Tensor& b) {
    return siglip ? siglip_loss(i, t, s, b) : clip_loss(i, t, s);
  };
  auto naive = [&](const Tensor& i, const Tensor& t, const Tensor& s, const Tensor& b) {
    return siglip ? naive_siglip(i, t, s, b) : naive_clip(i, t, s);
  };
  LossAndGrads a = run(fused, n, d, dtype, siglip), b = run(naive, n, d, dtype, siglip);
  CHECK(rel_err(a.loss, b.loss) <= tol);
  CHECK(rel_err(a.dimage, b.dimage) <= tol);
  CHECK(rel_err(a.dtext, b.dtext) <= tol);
  CHECK(rel_err(a.dscale, b.dscale) <= tol);
  if (siglip) CHECK(rel_err(a.dbias, b.dbias) <= tol);
}

}  // namespace

namespace {
// Reference CLIP and SigLIP losses from their definitions, over naive logits.
std::vector<double> ref_logits(const std::vector<double>& img, const std::vector<double>& txt, int64_t n, int64_t d,
                               double scale) {
  std::vector<double> txt_t(size_t(d * n));  // (d, n)
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) txt_t[size_t(k * n + i)] = txt[size_t(i * d + k)];
  std::vector<double> l = naive_matmul(img, txt_t, n, d, n);  // (n, n)
  for (double& v : l) v *= scale;
  return l;
}
double ref_clip(const std::vector<double>& l, int64_t n) {
  double rows = 0, cols = 0;
  for (int64_t i = 0; i < n; ++i) {
    double sr = 0, sc = 0;
    for (int64_t j = 0; j < n; ++j) {
      sr += std::exp(l[size_t(i * n + j)]);
      sc += std::exp(l[size_t(j * n + i)]);
    }
    rows += std::log(sr) - l[size_t(i * n + i)];
    cols += std::log(sc) - l[size_t(i * n + i)];
  }
  return (rows / double(n) + cols / double(n)) / 2;
}
double ref_siglip(const std::vector<double>& l, int64_t n, double bias) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double z = i == j ? 1.0 : -1.0;
      total += std::log1p(std::exp(-z * (l[size_t(i * n + j)] + bias)));  // -log sigmoid(z (L + b))
    }
  return total / double(n);
}
}  // namespace

TEST_SUITE("contrastive") {

TEST_CASE("clip_loss and siglip_loss equal the naive materialised reference, f64 to 1e-6, f32 to 1e-5") {
  for (bool siglip : {false, true}) {
    for (int64_t n : {1, 5, 128, 129, 300}) check_against_naive(siglip, n, 16, DType::f64, 1e-6);
    check_against_naive(siglip, 2048, 32, DType::f64, 1e-6);
    for (int64_t n : {7, 257, 2048}) check_against_naive(siglip, n, 64, DType::f32, 1e-5);
  }
}

TEST_CASE("clip_loss matches OpenAI CLIP's loss on a hand-sized example") {
  // N = 2, identical pairs and scale 1: L = [[1, c], [c, 1]], loss = log(1 + e^(c - 1)).
  Tensor image = from_vector({1, 0, 0.6, 0.8}, {2, 2}, DType::f64);
  Tensor text = from_vector({1, 0, 0.6, 0.8}, {2, 2}, DType::f64);
  CHECK(clip_loss(image, text, scalar_tensor(0.0, DType::f64)).item() ==
        doctest::Approx(std::log(1 + std::exp(0.6 - 1.0))).epsilon(1e-12));
}

TEST_CASE("gradcheck (f64) of both losses, N across the tile edge") {
  const int64_t tile = cpu::kContrastiveTile;
  for (int64_t n : {int64_t(3), tile + 2}) {
    CAPTURE(n);
    std::string r = gradcheck([](const std::vector<Tensor>& in) { return clip_loss(in[0], in[1], in[2]); },
                              {features(n, 3, 1), features(n, 3, 2), scalar_leaf(std::log(5.0))});
    CHECK_MESSAGE(r.empty(), r);
    r = gradcheck([](const std::vector<Tensor>& in) { return siglip_loss(in[0], in[1], in[2], in[3]); },
                  {features(n, 3, 3), features(n, 3, 4), scalar_leaf(std::log(5.0)), scalar_leaf(-2.0)});
    CHECK_MESSAGE(r.empty(), r);
  }
}

TEST_CASE("the losses reject mismatched shapes and non-scalar scales, naming the op") {
  Tensor a = features(4, 3, 5), b = features(5, 3, 6);
  minivl::testing::check_error([&] { clip_loss(a, b, scalar_tensor(0.0, DType::f64)); }, {"clip_loss", "text"});
  minivl::testing::check_error([&] { clip_loss(a, a, zeros({2}, DType::f64)); }, {"clip_loss", "logit_scale"});
  minivl::testing::check_error([&] { siglip_loss(a, a, scalar_tensor(0.0, DType::f64), Tensor()); },
                               {"siglip_loss", "logit_bias"});
}

TEST_CASE("clip_loss gradients are bitwise identical with 1 and 2 threads") {
  auto grads = [&](int threads) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    LossAndGrads g = run([](const Tensor& i, const Tensor& t, const Tensor& s, const Tensor&) { return clip_loss(i, t, s); },
                         600, 48, DType::f32, false);
    omp_set_num_threads(saved);
    return std::vector<std::vector<double>>{g.loss.to_vector(), g.dimage.to_vector(), g.dtext.to_vector(),
                                            g.dscale.to_vector()};
  };
  auto one = grads(1), two = grads(2);
  for (size_t i = 0; i < one.size(); ++i) CHECK(one[i] == two[i]);
}

// The naive path would hold the (N, N) f32 logits (16 GiB) and its softmax. Forward only at
// N = 65536: forward + backward is 4 x 2 N^2 d = 2.2 TFLOP, too slow for CI on two cores; the
// backward's O(N d) bound is checked at N = 8192 below (same code path, same buffers).
TEST_CASE("clip_loss at N = 65536, d = 64 peaks under 64 N d bytes (forward)") {
  const int64_t n = 65536, d = 64;
  Tensor image = features(n, d, 7, DType::f32).detach(), text = features(n, d, 8, DType::f32).detach();
  Allocator* alloc = cpu_allocator();
  alloc->reset_peak();
  const auto start = std::chrono::steady_clock::now();
  Tensor loss = clip_loss(image, text, scalar_tensor(std::log(100.0)));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t peak = alloc->stats().peak_allocated;
  MESSAGE("clip_loss forward N=65536 d=64: ", seconds, " s, peak ", double(peak) / (1 << 20), " MiB (bound ",
          double(64 * n * d) / (1 << 20), " MiB)");
  CHECK(std::isfinite(loss.item()));
  CHECK(peak < 64 * n * d);
}

TEST_CASE("clip_loss forward + backward at N = 8192, d = 64 peaks under 64 N d bytes") {
  const int64_t n = 8192, d = 64;
  Tensor image = features(n, d, 9, DType::f32), text = features(n, d, 10, DType::f32);
  Tensor scale = scalar_leaf(std::log(100.0), DType::f32);
  Allocator* alloc = cpu_allocator();
  alloc->reset_peak();
  clip_loss(image, text, scale).backward();
  const int64_t peak = alloc->stats().peak_allocated;
  MESSAGE("clip_loss fwd+bwd N=8192 d=64: peak ", double(peak) / (1 << 20), " MiB (bound ",
          double(64 * n * d) / (1 << 20), " MiB; the logits alone would be ", double(n * n * 4) / (1 << 20),
          " MiB)");
  CHECK(peak < 64 * n * d);
  CHECK(image.grad().defined());
}

TEST_CASE("clip_loss and siglip_loss match their definitions") {
  // N = 2, d = 2, scale 2: logits [[2, 1.2], [0, 1.6]].
  std::vector<double> img = {1, 0, 0, 1}, txt = {1, 0, 0.6, 0.8};
  Tensor image = tensor_f64(img, {2, 2}), text = tensor_f64(txt, {2, 2});
  Tensor log_scale = tensor_f64({std::log(2.0)}, {});
  std::vector<double> l = ref_logits(img, txt, 2, 2, 2.0);
  check_values(l, {2, 1.2, 0, 1.6}, 1e-12, 1e-12);
  // rows: log(1 + e^-0.8), log(1 + e^-1.6); columns: log(1 + e^-2), log(1 + e^-0.4)
  const double by_hand = ((std::log1p(std::exp(-0.8)) + std::log1p(std::exp(-1.6))) / 2 +
                          (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-0.4))) / 2) / 2;
  CHECK(ref_clip(l, 2) == doctest::Approx(by_hand).epsilon(1e-12));
  Tensor c = clip_loss(image, text, log_scale);
  CHECK(c.dim() == 0);
  CHECK(c.dtype() == DType::f64);
  CHECK(c.item() == doctest::Approx(by_hand).epsilon(1e-12));
  // SigLIP with bias -1: arguments z (L + b) = 1, -0.2, 1, 0.6.
  const double sig_hand =
      (2 * std::log1p(std::exp(-1.0)) + std::log1p(std::exp(0.2)) + std::log1p(std::exp(-0.6))) / 2;
  CHECK(ref_siglip(l, 2, -1.0) == doctest::Approx(sig_hand).epsilon(1e-12));
  CHECK(siglip_loss(image, text, log_scale, tensor_f64({-1.0}, {})).item() == doctest::Approx(sig_hand).epsilon(1e-12));
  // A larger random case, f64 and f32, against the reference.
  const int64_t n = 7, d = 5;
  Tensor ri = randn({n, d}, DType::f64) * 0.5, rt = randn({n, d}, DType::f64) * 0.5;
  std::vector<double> L = ref_logits(ri.to_vector(), rt.to_vector(), n, d, std::exp(1.5));
  Tensor s15 = tensor_f64({1.5}, {});
  CHECK(clip_loss(ri, rt, s15).item() == doctest::Approx(ref_clip(L, n)).epsilon(1e-10));
  CHECK(siglip_loss(ri, rt, s15, tensor_f64({-2.0}, {})).item() == doctest::Approx(ref_siglip(L, n, -2.0)).epsilon(1e-10));
  Tensor f = clip_loss(ri.to(DType::f32), rt.to(DType::f32), s15.to(DType::f32));
  CHECK(f.dtype() == DType::f32);
  CHECK(f.item() == doctest::Approx(ref_clip(L, n)).epsilon(1e-4));
}

}  // TEST_SUITE
