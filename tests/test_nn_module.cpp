// nn::Module: dotted names, state_dict round trips through safetensors, strict
// loading that lists every problem at once, modes, dtype moves, param kinds.
#include <doctest/doctest.h>

#include <algorithm>

#include "core/tensor_io.h"
#include "core_test_util.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "nn/transformer.h"
#include "nn_test_util.h"

TEST_SUITE_BEGIN("nn_module");

using namespace minivl;
using namespace minivl::nn;
using minivl::testing::check_error;

namespace {
struct Block : Module {
  Block() {
    proj = register_module("proj", std::make_shared<Linear>(4, 3));
    norm = register_module("norm", std::make_shared<LayerNorm>(3));
    scale = register_parameter("scale", ones({1}), ParamKind::norm);
    steps = register_buffer("steps", zeros({2}, DType::i64));
  }
  std::shared_ptr<Linear> proj;
  std::shared_ptr<LayerNorm> norm;
  Tensor scale, steps;
};

struct Net : Module {
  Net() {
    embed = register_module("embed", std::make_shared<Embedding>(10, 4));
    layers.push_back(register_module("layers_0", std::make_shared<Block>()));
    head = register_module("head", std::make_shared<Linear>(3, 2, false));
  }
  std::shared_ptr<Embedding> embed;
  std::vector<std::shared_ptr<Block>> layers;
  std::shared_ptr<Linear> head;
};

std::vector<std::string> names_of(const NamedTensors& t) {
  std::vector<std::string> out;
  for (const auto& [n, x] : t) out.push_back(n);
  return out;
}
}  // namespace

TEST_CASE("nn Module: dotted names in registration order, parameters before buffers") {
  Net net;
  std::vector<std::string> params;
  for (const auto& p : net.named_parameters()) params.push_back(p.name);
  // a module's own parameters first, then its children's
  CHECK(params == std::vector<std::string>{"embed.weight", "layers_0.scale", "layers_0.proj.weight",
                                           "layers_0.proj.bias", "layers_0.norm.weight", "layers_0.norm.bias",
                                           "head.weight"});
  CHECK(names_of(net.state_dict()) ==
        std::vector<std::string>{"embed.weight", "layers_0.scale", "layers_0.steps", "layers_0.proj.weight",
                                 "layers_0.proj.bias", "layers_0.norm.weight", "layers_0.norm.bias", "head.weight"});
  CHECK(net.num_parameters() == 40 + 12 + 3 + 3 + 3 + 1 + 6);
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
  check_error([&] { net.register_parameter("head", zeros({1})); }, {"'head'", "already a child"});
  check_error([&] { net.register_parameter("a.b", zeros({1})); }, {"without '.'"});
}

TEST_CASE("nn Module: HF CLIP-style names for the transformer layers") {
  TransformerEncoderLayer layer({8, 2, 16});
  std::vector<std::string> names;
  for (const auto& p : layer.named_parameters()) names.push_back(p.name);
  CHECK(names.front() == "self_attn.q_proj.weight");
  CHECK(std::find(names.begin(), names.end(), "self_attn.out_proj.bias") != names.end());
  CHECK(std::find(names.begin(), names.end(), "layer_norm1.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "mlp.fc1.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "layer_norm2.bias") != names.end());
}

TEST_CASE("nn Module: state_dict round trip through a safetensors file is exact") {
  minivl::testing::NnTempDir dir;
  Net a, b;
  {
    NoGradGuard g;
    a.layers[0]->steps.copy_(from_vector_i64({7, 9}, {2}));
  }
  save_safetensors(dir.file("m.safetensors"), a.state_dict());
  auto report = b.load_state_dict(load_safetensors(dir.file("m.safetensors")));
  CHECK(report.ok());
  auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    CAPTURE(sa[i].first);
    CHECK(sa[i].second.to_vector() == sb[i].second.to_vector());
  }
  // The handles the layers hold see the loaded values (in place, same TensorImpl).
  CHECK(b.head->weight.to_vector() == a.head->weight.to_vector());
  CHECK(b.layers[0]->steps.to_vector() == std::vector<double>{7, 9});
}

TEST_CASE("nn Module: a strict load lists every missing, unexpected and mis-shaped name in one error") {
  Net net;
  NamedTensors state = net.state_dict();
  const std::vector<double> before = net.head->weight.to_vector();
  NamedTensors bad;
  for (auto& [n, t] : state) {
    if (n == "layers_0.proj.bias" || n == "layers_0.steps") continue;                 // missing
    if (n == "head.weight") { bad.emplace_back(n, zeros({3, 2})); continue; }          // transposed
    if (n == "embed.weight") { bad.emplace_back(n, zeros({11, 4})); continue; }        // wrong vocab
    bad.emplace_back(n, t);
  }
  bad.emplace_back("layers_0.proj.weight_extra", zeros({1}));  // unexpected
  bad.emplace_back("decoder.weight", zeros({1}));
  check_error([&] { net.load_state_dict(bad); },
              {"missing 2: layers_0.steps, layers_0.proj.bias", "unexpected 2: layers_0.proj.weight_extra, decoder.weight",
               "wrong shape or dtype 2", "embed.weight (expected (10, 4), got (11, 4))",
               "head.weight (expected (2, 3), got (3, 2))"});
  CHECK(net.head->weight.to_vector() == before);  // nothing was changed

  auto report = net.load_state_dict(bad, /*strict=*/false);
  CHECK(report.missing.size() == 2);
  CHECK(report.unexpected.size() == 2);
  CHECK(report.mismatched.size() == 2);
}

TEST_CASE("nn Module: train/eval recurse, to(dtype) keeps handles and integer buffers") {
  Net net;
  net.eval();
  CHECK_FALSE(net.layers[0]->norm->is_training());
  net.train();
  CHECK(net.layers[0]->proj->is_training());
  Tensor w = net.head->weight;
  const std::vector<double> v = w.to_vector();
  net.to(DType::f64);
  CHECK(w.dtype() == DType::f64);  // the same handle, rewritten in place
  CHECK(w.to_vector() == v);
  CHECK(w.requires_grad());
  CHECK(net.layers[0]->steps.dtype() == DType::i64);
  Tensor y = net.head->forward(ones({1, 3}, DType::f64));
  CHECK(y.dtype() == DType::f64);
}

TEST_CASE("nn make_param_groups: weights decay; biases, norms and embeddings only when asked") {
  Net net;
  auto groups = make_param_groups(net, {0.1});
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].name == "decay");
  CHECK(groups[0].weight_decay == 0.1);
  CHECK(groups[0].names == std::vector<std::string>{"layers_0.proj.weight", "head.weight"});
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[1].names.size() == 5);
  auto all = make_param_groups(net, {0.1, true, true, true});
  REQUIRE(all.size() == 1);
  CHECK(all[0].names.size() == 7);
}

TEST_SUITE_END();
