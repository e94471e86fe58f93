// CLIP: HF parameter names and shapes, save/load round trips, a model folder
// written by another program (raw safetensors bytes, f16, legacy position_ids,
// legacy eos_token_id 2), the embed/zeroshot CLI on it, pooling, the logit-scale
// clamp, and the zero-shot / retrieval metrics.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "models/clip.h"
#include "models/metrics.h"
#include "nn_test_util.h"
#include "skip_report.h"
#include "tiny_models.h"

using namespace minivl;
using minivl::models::ClipConfig;
using minivl::models::ClipModel;

TEST_SUITE_BEGIN("clip");

namespace {
using testing::tiny_clip;

Tensor sample_ids() {  // two rows, end-of-text (49407) at positions 3 and 5, zero padding after
  return from_vector_i64({49406, 320, 1125, 49407, 0, 0, 0, 49406, 320, 2368, 539, 320, 49407, 0}, {2, 7});
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

const std::string kVocab = MINIVL_SHARED_DIR "/data/clip/bpe_simple_vocab_16e6.txt.gz";

// f32 -> IEEE half bits (round to nearest even), written by hand: this is "another program".
uint16_t to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = int32_t((x >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp <= 0) {  // subnormal / zero
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000u;
    const int shift = 14 - exp;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return uint16_t(sign | h);
  }
  if (exp >= 31) return uint16_t(sign | 0x7C00u);
  uint32_t h = (uint32_t(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return uint16_t(sign | h);
}
}  // namespace

TEST_CASE("clip: every ViT-B/32 parameter of Hugging Face's CLIPModel maps to a parameter of its shape") {
  // The documented architecture (openai/clip-vit-base-patch32): text 512 wide, 12 layers, 8 heads, MLP 2048,
  // 77 positions, vocabulary 49408; vision 768 wide, 12 layers, 12 heads, MLP 3072, 224 px, patch 32; projection 512.
  std::map<std::string, Shape> hf;
  auto tower = [&](const std::string& p, int64_t d, int64_t mlp) {
    for (int i = 0; i < 12; ++i) {
      const std::string l = p + ".encoder.layers." + std::to_string(i) + ".";
      for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        hf[l + "self_attn." + proj + ".weight"] = {d, d};
        hf[l + "self_attn." + proj + ".bias"] = {d};
      }
      for (const char* ln : {"layer_norm1", "layer_norm2"}) {
        hf[l + ln + ".weight"] = {d};
        hf[l + ln + ".bias"] = {d};
      }
      hf[l + "mlp.fc1.weight"] = {mlp, d};
      hf[l + "mlp.fc1.bias"] = {mlp};
      hf[l + "mlp.fc2.weight"] = {d, mlp};
      hf[l + "mlp.fc2.bias"] = {d};
    }
  };
  tower("text_model", 512, 2048);
  tower("vision_model", 768, 3072);
  hf["text_model.embeddings.token_embedding.weight"] = {49408, 512};
  hf["text_model.embeddings.position_embedding.weight"] = {77, 512};
  hf["text_model.final_layer_norm.weight"] = {512};
  hf["text_model.final_layer_norm.bias"] = {512};
  hf["vision_model.embeddings.class_embedding"] = {768};
  hf["vision_model.embeddings.patch_embedding.weight"] = {768, 3, 32, 32};
  hf["vision_model.embeddings.position_embedding.weight"] = {50, 768};
  hf["vision_model.pre_layrnorm.weight"] = {768};
  hf["vision_model.pre_layrnorm.bias"] = {768};
  hf["vision_model.post_layernorm.weight"] = {768};
  hf["vision_model.post_layernorm.bias"] = {768};
  hf["visual_projection.weight"] = {512, 768};
  hf["text_projection.weight"] = {512, 512};
  hf["logit_scale"] = {};
  CHECK(hf.size() == 398);

  ClipModel model{ClipConfig{}};  // HF's defaults are ViT-B/32
  std::map<std::string, Shape> ours;
  for (const auto& [name, t] : model.state_dict()) ours[name] = t.shape();
  for (const auto& [name, shape] : hf) {
    INFO(name);
    auto it = ours.find(name);
    REQUIRE(it != ours.end());
    CHECK(it->second == shape);
  }
  CHECK(ours.size() == hf.size());
  CHECK(model.num_parameters() == 151277313);  // the published count
  CHECK(model.logit_scale.item() == doctest::Approx(2.6592));
}

TEST_CASE("clip: a tiny model saved in the HF layout loads back with identical embeddings") {
  testing::NnTempDir dir;
  default_generator().manual_seed(7);
  ClipModel a(tiny_clip());
  a.eval();
  const std::string folder = dir.file("model");
  a.save_folder(folder);
  CHECK(std::filesystem::exists(folder + "/config.json"));
  CHECK(std::filesystem::exists(folder + "/preprocessor_config.json"));
  auto b = ClipModel::load_folder(folder);
  NoGradGuard no_grad;
  Tensor pixels = randn({3, 3, 16, 16});
  CHECK(max_abs_diff(a.encode_image(pixels), b->encode_image(pixels)) == 0.0);
  CHECK(max_abs_diff(a.encode_text(sample_ids()), b->encode_text(sample_ids())) == 0.0);
  CHECK(b->config.to_json() == a.config.to_json());
  // Rows are unit vectors.
  Tensor e = b->encode_image(pixels);
  for (int64_t i = 0; i < 3; ++i) CHECK(sum(mul(e.select(0, i), e.select(0, i))).item() == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("clip: text is pooled at the first end-of-text token; padding after it changes nothing") {
  default_generator().manual_seed(3);
  ClipModel m(tiny_clip());
  m.eval();
  NoGradGuard no_grad;
  CHECK(m.text_model->pool_positions(sample_ids()) == std::vector<int64_t>{3, 5});
  Tensor short_ids = sample_ids().slice(1, 0, 6).contiguous();  // row 0 still ends at 3, row 1 at 5
  CHECK(max_abs_diff(m.encode_text(sample_ids()), m.encode_text(short_ids)) < 1e-6);
  // Legacy configs (eos_token_id 2) pool at the arg-max id: the same place for OpenAI's vocabulary.
  ClipConfig legacy = tiny_clip();
  legacy.text.eos_token_id = 2;
  models::ClipTextTransformer t(legacy.text);
  CHECK(t.pool_positions(sample_ids()) == std::vector<int64_t>{3, 5});
}

TEST_CASE("clip: the loss trains and logit_scale is clamped to ln 100") {
  default_generator().manual_seed(5);
  ClipModel m(tiny_clip());
  Tensor loss = m.loss(randn({2, 3, 16, 16}), sample_ids());
  CHECK(std::isfinite(loss.item()));
  loss.backward();
  CHECK(m.logit_scale.grad().defined());
  CHECK(m.vision_model->embeddings->class_embedding.grad().defined());
  CHECK(m.text_model->embeddings->token_embedding->weight.grad().defined());
  {
    NoGradGuard g;
    m.logit_scale.fill_(7.0);
  }
  m.clamp_logit_scale();
  CHECK(m.logit_scale.item() == doctest::Approx(std::log(100.0)));
}

TEST_CASE("clip: a model folder written by another program (raw bytes, f16, position_ids) loads and embeds") {
  testing::NnTempDir dir;
  default_generator().manual_seed(11);
  ClipModel ref(tiny_clip());
  ref.eval();
  const std::string folder = dir.file("foreign");
  std::filesystem::create_directories(folder);
  // config.json as transformers writes it, with the legacy eos_token_id 2.
  {
    std::ofstream f(folder + "/config.json");
    f << R"({"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 20,
      "logit_scale_init_value": 2.6592, "initializer_factor": 1.0, "torch_dtype": "float16",
      "text_config": {"hidden_size": 24, "intermediate_size": 48, "num_attention_heads": 2,
        "num_hidden_layers": 2, "max_position_embeddings": 16, "vocab_size": 49408, "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-05, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1},
      "vision_config": {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,
        "num_hidden_layers": 2, "image_size": 16, "patch_size": 8, "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-05}})";
  }
  // model.safetensors by hand: F16 tensors in name order, plus an I64 position_ids buffer.
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", payload;
  std::map<std::string, Tensor> sorted;
  for (const auto& [name, t] : ref.state_dict()) sorted[name] = t;
  sorted["text_model.embeddings.position_ids"] = Tensor();
  for (const auto& [name, t] : sorted) {
    std::string bytes, dtype, shape = "[";
    if (!t.defined()) {  // position_ids (1, 16) i64
      dtype = "I64";
      shape = "[1,16";
      for (int64_t i = 0; i < 16; ++i) bytes.append(reinterpret_cast<const char*>(&i), 8);
    } else {
      dtype = "F16";
      for (size_t d = 0; d < t.shape().size(); ++d) shape += (d ? "," : "") + std::to_string(t.shape()[d]);
      for (double v : t.to_vector()) {
        const uint16_t h = to_half(float(v));
        bytes.append(reinterpret_cast<const char*>(&h), 2);
      }
    }
    shape += "]";
    header += ",\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
              std::to_string(payload.size()) + "," + std::to_string(payload.size() + bytes.size()) + "]}";
    payload += bytes;
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  {
    std::ofstream f(folder + "/model.safetensors", std::ios::binary);
    const uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << payload;
  }
  auto loaded = ClipModel::load_folder(folder);
  CHECK(loaded->config.text.eos_token_id == 2);
  NoGradGuard no_grad;
  Tensor pixels = randn({2, 3, 16, 16});
  CHECK(max_abs_diff(loaded->encode_image(pixels), ref.encode_image(pixels)) < 2e-2);  // f16 weights
  CHECK(max_abs_diff(loaded->encode_text(sample_ids()), ref.encode_text(sample_ids())) < 2e-2);

  if (!std::filesystem::exists(kVocab)) {
    MINIVL_REPORT_SKIP("the CLI part: no OpenAI vocabulary at " << kVocab);
    return;
  }
  // An image at the model's resolution: preprocessing only normalises it.
  data::Image img(16, 16);
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x)
      for (int c = 0; c < 3; ++c) img.at(x, y, c) = uint8_t((x * 16 + y * 5 + c * 80) & 255);
  data::write_png(dir.file("img.png"), img);
  auto r = testing::run_minivl("embed --model " + folder + " --vocab " + kVocab + " --image " + dir.file("img.png") +
                               " --text 'a photo of a cat' --text 'a dog'");
  REQUIRE_MESSAGE(r.exit_code == 0, r.output);
  nlohmann::json j = nlohmann::json::parse(r.output);
  REQUIRE(j["image_embeds"].size() == 1);
  REQUIRE(j["text_embeds"].size() == 2);
  REQUIRE(j["logits_per_image"].size() == 1);
  REQUIRE(j["logits_per_image"][0].size() == 2);
  double norm = 0, dot = 0;
  for (size_t k = 0; k < 20; ++k) {
    norm += std::pow(j["image_embeds"][0][k].get<double>(), 2);
    dot += j["image_embeds"][0][k].get<double>() * j["text_embeds"][1][k].get<double>();
  }
  CHECK(norm == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(j["logits_per_image"][0][1].get<double>() ==
        doctest::Approx(std::exp(loaded->logit_scale.item()) * dot).epsilon(1e-4));
  // The same pixels in-process: the JSON is the model's output.
  Tensor x = empty({1, 3, 16, 16});
  data::ClipPreprocessConfig pre;
  pre.image_size = 16;
  data::clip_preprocess_into(img, pre, x.data<float>());
  Tensor e = loaded->encode_image(x);
  CHECK(std::abs(e.select(0, 0).select(0, 3).item() - j["image_embeds"][0][3].get<double>()) < 1e-6);

  auto z = testing::run_minivl("zeroshot --model " + folder + " --vocab " + kVocab + " --image " +
                               dir.file("img.png") + " --labels 'cat,dog,car' --json");
  REQUIRE_MESSAGE(z.exit_code == 0, z.output);
  nlohmann::json zj = nlohmann::json::parse(z.output);
  double total = 0;
  for (const auto& t : zj[0]["top"]) total += t["prob"].get<double>();
  CHECK(total == doctest::Approx(1.0).epsilon(1e-4));
}

TEST_CASE("clip metrics: top-k accuracy and recall@K count what they say") {
  // 3 images x 3 classes; labels 0, 2, 1: row 0 right, row 1 second, row 2 third.
  Tensor logits = from_vector({0.9, 0.1, 0.0, 0.2, 0.0, 0.1, 0.5, 0.1, 0.3}, {3, 3});
  auto acc = models::topk_accuracy(logits, {0, 2, 1}, {1, 2, 3});
  CHECK(acc[0] == doctest::Approx(1.0 / 3));
  CHECK(acc[1] == doctest::Approx(2.0 / 3));
  CHECK(acc[2] == doctest::Approx(1.0));
  // 2 images, 3 captions: captions 0, 1 of image 0, caption 2 of image 1.
  Tensor sim = from_vector({0.1, 0.5, 0.9,    // image 0: its best caption (1) ranks 2nd
                            0.8, 0.2, 0.3},   // image 1: its caption (2) ranks 2nd
                           {2, 3});
  auto r = models::retrieval_recall(sim, {0, 0, 1}, {1, 2});
  CHECK(r.image_to_text[0] == doctest::Approx(0.0));
  CHECK(r.image_to_text[1] == doctest::Approx(1.0));
  // caption 0 -> image 1 wins (0.8 > 0.1): miss at 1; caption 1 -> image 0 (0.5 > 0.2): hit; caption 2 -> image 0: miss
  CHECK(r.text_to_image[0] == doctest::Approx(1.0 / 3));
  CHECK(r.text_to_image[1] == doctest::Approx(1.0));
}

TEST_CASE("clip train: a run stopped and resumed gives the losses of an uninterrupted one, and a model folder") {
  testing::NnTempDir dir;
  const std::string cfg = std::string(MINIVL_SOURCE_DIR) + "/configs/clip_shapes.toml";
  const std::string common =
      " --quiet --set steps=6 --set data.batch_size=16 --set data.generate_n=120 --set data.generate_size=32" +
      testing::set_flags(testing::tiny_clip_keys()) +
      " --set data.learned_vocab_size=520 --set data.eval_images=20 --set eval.every=0 --set checkpoint.every=0"
      " --set data.path=" + dir.file("shapes");
  auto a = testing::run_minivl("train " + cfg + " --run-dir " + dir.file("a") + common);
  REQUIRE_MESSAGE(a.exit_code == 0, a.output);
  auto b1 = testing::run_minivl("train " + cfg + " --run-dir " + dir.file("b") + common + " --stop-at 3");
  REQUIRE_MESSAGE(b1.exit_code == 0, b1.output);
  auto b2 = testing::run_minivl("train --quiet --resume " + dir.file("b"));
  REQUIRE_MESSAGE(b2.exit_code == 0, b2.output);
  auto losses = [](const std::string& path) {
    std::vector<double> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("loss")) out.push_back(j["loss"].get<double>());
    }
    return out;
  };
  const auto la = losses(dir.file("a/metrics.jsonl")), lb = losses(dir.file("b/metrics.jsonl"));
  REQUIRE(la.size() == 6);
  CHECK(la == lb);
  for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt"})
    CHECK(std::filesystem::exists(dir.file(std::string("b/model/") + f)));
  auto m = ClipModel::load_folder(dir.file("b/model"));
  CHECK(m->config.vision.image_size == 16);
}

TEST_SUITE_END();
