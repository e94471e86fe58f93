// A small encoder-decoder transformer built from nn layers overfits one batch
// on the CPU: the end-to-end check that layers, attention masks, autograd and
// AdamW work together.
#include <doctest/doctest.h>

#include "core/generator.h"
#include "core/ops.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "nn/transformer.h"

TEST_SUITE_BEGIN("nn_transformer");

using namespace minivl;
using namespace minivl::nn;

namespace {
struct TinySeq2Seq : Module {
  static constexpr int64_t V = 16, D = 16, T = 8, L = 2;
  TinySeq2Seq() {
    TransformerLayerOptions o{D, 2, 32};
    src_embed = register_module("src_embed", std::make_shared<Embedding>(V, D, 0.5));
    tgt_embed = register_module("tgt_embed", std::make_shared<Embedding>(V + 1, D, 0.5));  // + BOS
    pos = register_module("pos", std::make_shared<Embedding>(T, D, 0.5));
    for (int i = 0; i < L; ++i) {
      enc.push_back(register_module("encoder_" + std::to_string(i), std::make_shared<TransformerEncoderLayer>(o)));
      dec.push_back(register_module("decoder_" + std::to_string(i), std::make_shared<TransformerDecoderLayer>(o)));
    }
    final_norm = register_module("final_norm", std::make_shared<LayerNorm>(D));
    head = register_module("head", std::make_shared<Linear>(D, V));
  }
  // src, tgt_in (B, T) -> logits (B * T, V)
  Tensor forward(const Tensor& src, const Tensor& tgt_in, const Tensor& src_pad) const {
    Tensor positions = pos->forward(arange(0, T, 1, DType::i64));  // (T, D)
    Tensor m = add(src_embed->forward(src), positions);
    for (auto& layer : enc) m = layer->forward(m, src_pad);
    Tensor h = add(tgt_embed->forward(tgt_in), positions);
    for (auto& layer : dec) h = layer->forward(h, m, Tensor(), src_pad);
    return head->forward(final_norm->forward(h)).reshape({-1, V});
  }
  std::shared_ptr<Embedding> src_embed, tgt_embed, pos;
  std::vector<std::shared_ptr<TransformerEncoderLayer>> enc;
  std::vector<std::shared_ptr<TransformerDecoderLayer>> dec;
  std::shared_ptr<LayerNorm> final_norm;
  std::shared_ptr<Linear> head;
};
}  // namespace

TEST_CASE("nn transformer: encoder + decoder layers overfit one batch (reverse the sequence) on the CPU") {
  default_generator().manual_seed(17);
  TinySeq2Seq model;
  const int64_t B = 4, T = TinySeq2Seq::T;
  std::vector<int64_t> src, tgt_in, tgt;
  uint64_t state = 12345;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> row;
    for (int64_t t = 0; t < T; ++t) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      row.push_back(int64_t((state >> 33) % TinySeq2Seq::V));
    }
    src.insert(src.end(), row.begin(), row.end());
    tgt_in.push_back(TinySeq2Seq::V);  // BOS
    for (int64_t t = 0; t < T; ++t) {
      tgt.push_back(row[size_t(T - 1 - t)]);
      if (t + 1 < T) tgt_in.push_back(row[size_t(T - 1 - t)]);
    }
  }
  Tensor src_t = from_vector_i64(src, {B, T}), tgt_in_t = from_vector_i64(tgt_in, {B, T}),
         tgt_t = from_vector_i64(tgt, {B * T});
  // The last source token of row 3 is padding: the model must do without it.
  Tensor src_pad = zeros({B, T}, DType::boolean);
  {
    std::vector<double> pad(size_t(B * T), 0.0);
    pad[size_t(3 * T + T - 1)] = 1.0;
    src_pad = from_vector(pad, {B, T}, DType::boolean);
  }
  AdamW opt(make_param_groups(model, {0.0}), {1e-2});
  double first = 0, loss_value = 0;
  int steps = 0;
  for (; steps < 400; ++steps) {
    Tensor loss = cross_entropy(model.forward(src_t, tgt_in_t, src_pad), tgt_t);
    loss_value = loss.item();
    if (steps == 0) first = loss_value;
    if (loss_value < 0.02) break;
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  MESSAGE("loss " << first << " -> " << loss_value << " after " << steps << " steps");
  CHECK(first > 2.0);
  CHECK(loss_value < 0.02);
}

TEST_SUITE_END();
