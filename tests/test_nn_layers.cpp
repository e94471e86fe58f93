// nn layers: Linear, PatchEmbed against a direct convolution, LayerNorm,
// Embedding, MLP, the initialisers, attention against a loop reference
// (causal, padding, fully masked rows), gradients, the KV cache, and autocast.
#include <doctest/doctest.h>

#include <array>
#include <cmath>

#include "core/generator.h"
#include "core_test_util.h"
#include "gradcheck.h"
#include "nn/amp.h"
#include "nn/attention.h"
#include "nn/attention_fallback.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/transformer.h"

TEST_SUITE_BEGIN("nn_layers");

using namespace minivl;
using namespace minivl::nn;
using minivl::testing::check_values;
using minivl::testing::gradcheck;
using minivl::testing::random_input;

TEST_CASE("nn Linear: y = x W^T + b over leading batch dims, no-bias option") {
  Linear lin(3, 2);
  {
    NoGradGuard g;
    lin.weight.copy_(from_vector({1, 2, 3, 4, 5, 6}, {2, 3}));
    lin.bias.copy_(from_vector({0.5, -1}, {2}));
  }
  Tensor x = from_vector({1, 0, -1, 2, 1, 0}, {1, 2, 3});
  Tensor y = lin.forward(x);
  CHECK(y.shape() == Shape{1, 2, 2});
  check_values(y, {1 - 3 + 0.5, 4 - 6 - 1, 2 + 2 + 0.5, 8 + 5 - 1});
  Linear nb(3, 2, false);
  CHECK_FALSE(nb.bias.defined());
  CHECK(nb.named_parameters().size() == 1);
  minivl::testing::check_error([&] { lin.forward(ones({2, 4})); }, {"linear", "(2, 4)", "in_features = 3"});
}

TEST_CASE("nn linear: gradients match finite differences") {
  auto fn = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  CHECK(gradcheck(fn, {random_input({2, 3, 4}, 1), random_input({5, 4}, 2), random_input({5}, 3)}) == "");
}

TEST_CASE("nn PatchEmbed equals the strided convolution, dropping partial patches") {
  PatchEmbed pe(2, 3, 2, /*bias=*/true);
  pe.to(DType::f64);
  Tensor img = random_input({2, 2, 5, 4}, 7, false);  // H = 5: the last row is dropped
  Tensor out = pe.forward(img);
  REQUIRE(out.shape() == Shape{2, 4, 3});
  const auto x = img.to_vector(), w = pe.weight.to_vector(), b = pe.bias.to_vector(), got = out.to_vector();
  std::vector<double> want;
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t ph = 0; ph < 2; ++ph)
      for (int64_t pw = 0; pw < 2; ++pw)
        for (int64_t d = 0; d < 3; ++d) {
          double s = b[size_t(d)];
          for (int64_t c = 0; c < 2; ++c)
            for (int64_t i = 0; i < 2; ++i)
              for (int64_t j = 0; j < 2; ++j)
                s += w[size_t(((d * 2 + c) * 2 + i) * 2 + j)] * x[size_t(((n * 2 + c) * 5 + ph * 2 + i) * 4 + pw * 2 + j)];
          want.push_back(s);
        }
  check_values(got, want, 1e-12, 1e-12);
  CHECK_FALSE(PatchEmbed(3, 8, 4).bias.defined());  // no bias by default (CLIP)
  auto fn = [&](const std::vector<Tensor>& in) { return pe.forward(in[0]); };
  CHECK(gradcheck(fn, {random_input({1, 2, 4, 4}, 8)}) == "");
}

TEST_CASE("nn LayerNorm, Embedding, MLP, Dropout") {
  LayerNorm ln(4);
  Tensor y = ln.forward(from_vector({1, 2, 3, 4}, {1, 4}));
  const double m = 2.5, sd = std::sqrt(1.25 + 1e-5);
  check_values(y, {(1 - m) / sd, (2 - m) / sd, (3 - m) / sd, (4 - m) / sd}, 1e-5, 1e-5);

  Embedding emb(5, 3);
  Tensor e = emb.forward(from_vector_i64({4, 0, 4}, {3}));
  CHECK(e.shape() == Shape{3, 3});
  auto w = emb.weight.to_vector(), ev = e.to_vector();
  for (int k = 0; k < 3; ++k) {
    CHECK(ev[size_t(k)] == w[size_t(12 + k)]);
    CHECK(ev[size_t(3 + k)] == w[size_t(k)]);
  }

  // MLP against plain loops over its weights: y = W2 qg(W1 x + b1) + b2, qg(h) = h sigmoid(1.702 h).
  MLP mlp(4, 8, Activation::quick_gelu);
  {
    NoGradGuard g;   // non-zero biases, so a dropped bias shows
    mlp.fc1->bias.copy_(randn({8}));
    mlp.fc2->bias.copy_(randn({4}));
  }
  Tensor x = randn({2, 4});
  const auto w1 = mlp.fc1->weight.to_vector(), b1 = mlp.fc1->bias.to_vector();   // w1: (8, 4)
  const auto w2 = mlp.fc2->weight.to_vector(), b2 = mlp.fc2->bias.to_vector();   // w2: (4, 8)
  const auto xv = x.to_vector();
  std::vector<double> want;
  for (int n = 0; n < 2; ++n) {
    std::array<double, 8> h{};
    for (int j = 0; j < 8; ++j) {
      double a = b1[size_t(j)];
      for (int k = 0; k < 4; ++k) a += w1[size_t(j * 4 + k)] * xv[size_t(n * 4 + k)];
      h[size_t(j)] = a / (1.0 + std::exp(-1.702 * a));
    }
    for (int i = 0; i < 4; ++i) {
      double y = b2[size_t(i)];
      for (int j = 0; j < 8; ++j) y += w2[size_t(i * 8 + j)] * h[size_t(j)];
      want.push_back(y);
    }
  }
  check_values(mlp.forward(x), want, 1e-5, 1e-5);
  CHECK(activation_from_name("gelu_new") == Activation::gelu_tanh);

  Dropout drop(0.5);
  Tensor ones4 = ones({1000});
  auto kept = drop.forward(ones4).to_vector();
  int zeros_count = 0;
  for (double v : kept) zeros_count += v == 0.0;
  CHECK(zeros_count > 400);
  CHECK(zeros_count < 600);
  drop.eval();
  CHECK(drop.forward(ones4).same(ones4));
}

TEST_CASE("nn init: moments, bounds and the normal quantile") {
  default_generator().manual_seed(3);
  CHECK(init::normal_quantile(0.5) == doctest::Approx(0.0).epsilon(1e-14));
  CHECK(init::normal_quantile(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-12));
  CHECK(init::normal_quantile(1e-10) == doctest::Approx(-6.361340902404056).epsilon(1e-10));

  Tensor t = empty({200, 100});
  auto stats = [](const Tensor& x) {
    auto v = x.to_vector();
    double mean = 0, sq = 0, lo = 1e300, hi = -1e300;
    for (double a : v) { mean += a; lo = std::min(lo, a); hi = std::max(hi, a); }
    mean /= double(v.size());
    for (double a : v) sq += (a - mean) * (a - mean);
    return std::array<double, 4>{mean, std::sqrt(sq / double(v.size())), lo, hi};
  };
  auto s = stats(init::normal_(t, 1.0, 0.5));
  CHECK(s[0] == doctest::Approx(1.0).epsilon(0.01));
  CHECK(s[1] == doctest::Approx(0.5).epsilon(0.02));
  s = stats(init::trunc_normal_(t, 0.0, 1.0, -2.0, 2.0));
  CHECK(s[2] >= -2.0);
  CHECK(s[3] <= 2.0);
  CHECK(s[1] == doctest::Approx(0.8796).epsilon(0.02));  // std of N(0,1) truncated to [-2, 2]
  s = stats(init::xavier_uniform_(t));
  const double bound = std::sqrt(6.0 / 300.0);
  CHECK(s[2] >= -bound);
  CHECK(s[3] <= bound);
  CHECK(s[1] == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.02));
  s = stats(init::kaiming_normal_(t));
  CHECK(s[1] == doctest::Approx(std::sqrt(2.0 / 100.0)).epsilon(0.02));
  CHECK(stats(init::zeros_(t))[3] == 0.0);
  CHECK(stats(init::ones_(t))[2] == 1.0);
}

namespace {
// Attention in plain loops (f64): q (B, H, Tq, D), k/v (B, H, Tk, D), pad (B, Tk) 1 = padding.
std::vector<double> attention_loops(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    const std::vector<int>& pad, double scale) {
  const int64_t B = q.size(0), H = q.size(1), Tq = q.size(2), Tk = k.size(2), D = q.size(3);
  auto qv = q.to_vector(), kv = k.to_vector(), vv = v.to_vector();
  std::vector<double> out(size_t(B * H * Tq * D), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < Tq; ++i) {
        std::vector<double> s(static_cast<size_t>(Tk));
        std::vector<bool> ok(static_cast<size_t>(Tk));
        double mx = -1e300;
        for (int64_t j = 0; j < Tk; ++j) {
          ok[size_t(j)] = !(causal && j > i + Tk - Tq) && !(pad.size() && pad[size_t(b * Tk + j)]);
          double dot = 0;
          for (int64_t d = 0; d < D; ++d)
            dot += qv[size_t(((b * H + h) * Tq + i) * D + d)] * kv[size_t(((b * H + h) * Tk + j) * D + d)];
          s[size_t(j)] = dot * scale;
          if (ok[size_t(j)]) mx = std::max(mx, s[size_t(j)]);
        }
        double z = 0;
        for (int64_t j = 0; j < Tk; ++j) z += ok[size_t(j)] ? std::exp(s[size_t(j)] - mx) : 0.0;
        for (int64_t j = 0; j < Tk; ++j) {
          if (!ok[size_t(j)]) continue;
          double p = std::exp(s[size_t(j)] - mx) / z;
          for (int64_t d = 0; d < D; ++d)
            out[size_t(((b * H + h) * Tq + i) * D + d)] += p * vv[size_t(((b * H + h) * Tk + j) * D + d)];
        }
      }
  return out;
}
}  // namespace

TEST_CASE("nn attention_reference matches loops: plain, causal (aligned to the last key), key padding") {
  Tensor q = random_input({2, 2, 3, 4}, 11, false), k = random_input({2, 2, 5, 4}, 12, false),
         v = random_input({2, 2, 5, 4}, 13, false);
  const std::vector<int> pad = {0, 0, 0, 1, 1, 1, 0, 0, 0, 0};
  Tensor pad_t = from_vector({0, 0, 0, 1, 1, 1, 0, 0, 0, 0}, {2, 5}, DType::boolean);
  for (bool causal : {false, true})
    for (bool padded : {false, true}) {
      CAPTURE(causal);
      CAPTURE(padded);
      Tensor out = attention_reference(q, k, v, causal, padded ? pad_t : Tensor(), 0.5);
      check_values(out, attention_loops(q, k, v, causal, padded ? pad : std::vector<int>{}, 0.5), 1e-12, 1e-10);
    }
}

TEST_CASE("nn attention_reference: a row with every key masked gives zeros, and finite gradients") {
  Tensor q = random_input({1, 1, 2, 3}, 21), k = random_input({1, 1, 2, 3}, 22), v = random_input({1, 1, 2, 3}, 23);
  Tensor pad = from_vector({1, 1}, {1, 2}, DType::boolean);  // both keys are padding
  Tensor out = attention_reference(q, k, v, false, pad, 1.0);
  check_values(out, std::vector<double>(6, 0.0), 0, 0);
  sum(out).backward();
  for (const Tensor& t : {q, k, v})
    for (double g : t.grad().to_vector()) CHECK(g == 0.0);

  // Causal with more queries than keys: the first query sees no key.
  Tensor q3 = random_input({1, 1, 3, 2}, 24, false), k2 = random_input({1, 1, 2, 2}, 25, false),
         v2 = random_input({1, 1, 2, 2}, 26, false);
  auto o = attention_reference(q3, k2, v2, true, Tensor(), 1.0).to_vector();
  CHECK(o[0] == 0.0);
  CHECK(o[1] == 0.0);
  CHECK(std::isfinite(o[2]));
}

TEST_CASE("nn attention_reference: gradients match finite differences (causal + padding)") {
  Tensor pad = from_vector({0, 0, 1, 0, 0, 0}, {2, 3}, DType::boolean);
  auto fn = [&](const std::vector<Tensor>& in) { return attention_reference(in[0], in[1], in[2], true, pad, 0.7); };
  CHECK(gradcheck(fn, {random_input({2, 2, 3, 2}, 31), random_input({2, 2, 3, 2}, 32),
                       random_input({2, 2, 3, 2}, 33)}) == "");
}

TEST_CASE("nn MultiHeadAttention: self and cross shapes, padding mask checked") {
  MultiHeadAttention mha(8, 2);
  Tensor x = randn({2, 3, 8}), mem = randn({2, 5, 8});
  CHECK(mha.forward(x).shape() == Shape{2, 3, 8});
  AttentionArgs cross;
  cross.key_value = mem;
  cross.key_padding_mask = zeros({2, 5}, DType::boolean);
  CHECK(mha.forward(x, cross).shape() == Shape{2, 3, 8});
  cross.key_padding_mask = zeros({2, 3}, DType::boolean);
  minivl::testing::check_error([&] { mha.forward(x, cross); }, {"key_padding_mask", "(2, 5)"});
}

TEST_CASE("nn KV cache: incremental decoding equals full recomputation") {
  default_generator().manual_seed(5);
  TransformerLayerOptions o{16, 2, 32};
  TransformerDecoderLayer dec(o);
  TransformerEncoderLayer enc(o);
  dec.eval();
  enc.eval();
  const int64_t T = 6;
  Tensor tokens = randn({2, T, 16}), memory = randn({2, 4, 16});
  Tensor mem_pad = from_vector({0, 0, 0, 1, 0, 0, 0, 0}, {2, 4}, DType::boolean);
  NoGradGuard no_grad;
  Tensor full_dec = dec.forward(tokens, memory, Tensor(), mem_pad);
  Tensor full_enc = enc.forward(tokens, Tensor(), /*causal=*/true);
  DecoderLayerCache dcache;
  KVCache ecache;
  // First a 2-token prefix, then one token at a time.
  std::vector<Tensor> dec_steps = {dec.forward(tokens.narrow(1, 0, 2), memory, Tensor(), mem_pad, &dcache)};
  std::vector<Tensor> enc_steps = {enc.forward(tokens.narrow(1, 0, 2), Tensor(), true, &ecache)};
  for (int64_t t = 2; t < T; ++t) {
    dec_steps.push_back(dec.forward(tokens.narrow(1, t, 1), memory, Tensor(), mem_pad, &dcache));
    enc_steps.push_back(enc.forward(tokens.narrow(1, t, 1), Tensor(), true, &ecache));
  }
  CHECK(dcache.self_attn.length() == T);
  CHECK(dcache.cross_attn.length() == 4);
  CHECK(ecache.length() == T);
  check_values(cat(dec_steps, 1), full_dec.to_vector(), 1e-5, 1e-5);
  check_values(cat(enc_steps, 1), full_enc.to_vector(), 1e-5, 1e-5);
}

TEST_CASE("nn MultiHeadAttention: the fused attention op and the public-op reference agree (values, gradients)") {
  default_generator().manual_seed(6);
  TransformerDecoderLayer dec({16, 4, 32});
  Tensor x = randn({2, 5, 16}), mem = randn({2, 7, 16});
  Tensor mem_pad = from_vector({0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {2, 7}, DType::boolean);  // row 1: all padding
  auto run = [&](bool reference) {
    set_use_attention_reference(reference);
    dec.zero_grad();
    Tensor y = dec.forward(x, mem, Tensor(), mem_pad);
    sum(mul(y, y)).backward();
    set_use_attention_reference(false);
    return std::make_pair(y.to_vector(), dec.self_attn->q_proj->weight.grad().to_vector());
  };
  auto fused = run(false), ref = run(true);
  check_values(fused.first, ref.first, 1e-5, 1e-4);
  check_values(fused.second, ref.second, 1e-4, 1e-3);
}

TEST_CASE("nn autocast: off on the CPU unless forced; forced, GEMMs run in bf16 with f32 in and out") {
  Linear lin(32, 16);
  Tensor x = randn({4, 32}, DType::f32).requires_grad_();
  Tensor y32 = lin.forward(x);
  {
    AutocastGuard amp(DType::bf16);
    CHECK_FALSE(autocast_active(Device::cpu()));
    CHECK(autocast_active(Device::cuda()));
    CHECK(lin.forward(x).to_vector() == y32.to_vector());
  }
  AutocastGuard amp(DType::bf16, true, /*cpu=*/true);
  CHECK(autocast(x).dtype() == DType::bf16);
  Tensor y16 = lin.forward(x);
  CHECK(y16.dtype() == DType::f32);
  CHECK(y16.to_vector() != y32.to_vector());  // really rounded through bf16
  check_values(y16, y32.to_vector(), 5e-2, 2e-2);
  sum(y16).backward();
  CHECK(lin.weight.grad().dtype() == DType::f32);  // f32 master weights get f32 gradients
  CHECK(x.grad().dtype() == DType::f32);
  MultiHeadAttention mha(16, 2);
  CHECK(mha.forward(randn({1, 3, 16})).dtype() == DType::f32);
}

TEST_SUITE_END();
