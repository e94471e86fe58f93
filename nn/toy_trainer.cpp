// The built-in "mlp" trainer: a small classifier learning a random linear
// teacher (labels = argmax(x @ teacher)) on Gaussian inputs. Batch i of the
// stream is drawn at a fixed position of its own Philox stream, so the data
// cursor is just the batch index and a resumed run sees exactly the batches an
// uninterrupted one would. Dropout draws from the default generator, whose
// state the checkpoint carries.
#include <memory>

#include "core/autograd.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "nn/layers.h"
#include "nn/trainer.h"

namespace minivl::nn {
namespace {

class ToyMLP : public Module {
 public:
  ToyMLP(int64_t in, int64_t hidden, int64_t classes, double p) {
    fc1 = register_module("fc1", std::make_shared<Linear>(in, hidden));
    norm = register_module("norm", std::make_shared<LayerNorm>(hidden));
    drop = register_module("dropout", std::make_shared<Dropout>(p));
    fc2 = register_module("fc2", std::make_shared<Linear>(hidden, classes));
  }
  // x (B, in) -> logits (B, classes)
  Tensor forward(const Tensor& x) const { return fc2->forward(drop->forward(gelu(norm->forward(fc1->forward(x))))); }
  std::shared_ptr<Linear> fc1, fc2;
  std::shared_ptr<LayerNorm> norm;
  std::shared_ptr<Dropout> drop;
};

// randn(shape) at (seed, offset) of the Philox stream, leaving the default generator as it was.
Tensor randn_at(const Shape& shape, uint64_t seed, uint64_t offset) {
  Generator& gen = default_generator();
  const GeneratorState saved = gen.state();
  gen.set_state({seed, offset});
  Tensor t = randn(shape);
  gen.set_state(saved);
  return t;
}

class ToyTrainer : public Trainer {
 public:
  ToyTrainer(const Config& c, Device device)
      : device_(device),
        batch_(c.get_int("data.batch_size")),
        in_(c.get_int("model.in_features")),
        classes_(c.get_int("model.classes")),
        data_seed_(uint64_t(c.get_int("data.seed"))) {
    model_ = std::make_shared<ToyMLP>(in_, c.get_int("model.hidden"), classes_, c.get_float("model.dropout"));
    model_->to(device);
    teacher_ = randn_at({in_, classes_}, data_seed_ ^ 0x7465616368ull, 0).to(device);  // "teach"
  }

  Module& model() override { return *model_; }

  Tensor train_loss() override {
    auto [x, y] = batch(data_seed_, uint64_t(cursor_++));
    return cross_entropy(model_->forward(x).to(DType::f32), y);
  }

  std::map<std::string, double> evaluate(int64_t batches) override {
    double loss = 0, correct = 0, n = 0;
    for (int64_t i = 0; i < batches; ++i) {
      auto [x, y] = batch(data_seed_ ^ 0x6576616cull, uint64_t(i));  // "eval": a held-out stream
      Tensor logits = model_->forward(x).to(DType::f32);
      loss += cross_entropy(logits, y).item();
      correct += sum(equal_mask(argmax(logits, 1).to(DType::f32), y.to(DType::f32))).item();
      n += double(batch_);
    }
    return {{"loss", loss / double(batches)}, {"accuracy", correct / n}};
  }

  nlohmann::json data_cursor() const override { return {{"batch", cursor_}}; }
  void set_data_cursor(const nlohmann::json& c) override { cursor_ = c.at("batch").get<int64_t>(); }

 private:
  // Batch i of a stream: x (B, in), y (B) = argmax(x @ teacher).
  std::pair<Tensor, Tensor> batch(uint64_t seed, uint64_t i) const {
    const uint64_t per_batch = 2 * uint64_t(batch_ * in_) + 2;  // what randn reserves
    Tensor x = randn_at({batch_, in_}, seed, i * per_batch).to(device_);
    Tensor y;
    {
      NoGradGuard no_grad;
      y = argmax(matmul(x, teacher_), 1);
    }
    return {x, y};
  }

  Device device_;
  int64_t batch_, in_, classes_;
  uint64_t data_seed_;
  std::shared_ptr<ToyMLP> model_;
  Tensor teacher_;  // (in, classes)
  int64_t cursor_ = 0;
};

}  // namespace

void register_toy_trainers() {
  TrainerInfo info;
  info.name = "mlp";
  info.description = "toy MLP classifier on a synthetic linear-teacher task";
  info.extend_schema = [](ConfigSchema& s) {
    s.add_int("model.in_features", 16, "input features", 1);
    s.add_int("model.hidden", 64, "hidden width", 1);
    s.add_int("model.classes", 8, "classes", 2);
    s.add_float("model.dropout", 0.1, "dropout after the hidden layer", 0.0, 0.99);
    s.add_int("data.seed", 1234, "seed of the synthetic data streams", 0);
    // The held-out stream never ends, so "all of it" means nothing: at least one batch.
    s.add_int("eval.batches", 1, "held-out batches of data.batch_size per evaluation (the stream is endless)", 1);
  };
  info.create = [](const Config& c, Device device) -> std::unique_ptr<Trainer> {
    return std::make_unique<ToyTrainer>(c, device);
  };
  register_trainer(std::move(info));
}

}  // namespace minivl::nn
