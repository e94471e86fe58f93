// VQA model and captioner: shapes, masking, the loss, loading a CLIP vision tower, freezing it, the
// tower's config keys, the model folders (old ones included), and decoding (cached = full
// recomputation token for token; beam width 1 = greedy).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/autograd.h"
#include "core/generator.h"
#include "core/ops.h"
#include "core/tensor_io.h"
#include "models/captioner.h"
#include "models/clip.h"
#include "models/decoding.h"
#include "models/trainers.h"
#include "models/vision_tower.h"
#include "models/vqa.h"
#include "models/vqa_caption_train.h"
#include "nn/trainer.h"
#include "nn_test_util.h"
#include "tiny_models.h"

using namespace minivl;
using namespace minivl::models;

namespace {

using testing::tiny_captioner;
using testing::tiny_vqa;

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  REQUIRE(x.size() == y.size());
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace

TEST_CASE("vqa model: logits shape, question padding is masked, loss and gradients") {
  default_generator().manual_seed(3);
  VqaConfig c = tiny_vqa();
  VqaModel m(c);
  m.eval();
  Tensor pixels = randn({2, 3, 16, 16});
  Tensor q = from_vector_i64({1, 5, 6, 7, 1, 8, 9, 0}, {2, 4});  // row 1 has one <pad>
  Tensor logits = m.forward(pixels, q);
  CHECK(logits.shape() == Shape{2, 5});
  // Extra padding must not change the answer logits.
  Tensor q_more = from_vector_i64({1, 5, 6, 7, 0, 0, 1, 8, 9, 0, 0, 0}, {2, 6});
  CHECK(max_abs_diff(m.forward(pixels, q_more), logits) < 1e-5);
  // BCE with logits by hand: logit x, target y -> log(1 + e^x) - x y.
  Tensor x = from_vector({0.5, -1.0, 2.0, 0.0}, {2, 2});
  Tensor y = from_vector({1.0, 0.0, 0.3333333, 1.0}, {2, 2});
  double expect = 0;
  const double xs[] = {0.5, -1.0, 2.0, 0.0}, ys[] = {1.0, 0.0, 0.3333333, 1.0};
  for (int i = 0; i < 4; ++i) expect += std::log1p(std::exp(xs[i])) - xs[i] * ys[i];
  CHECK(VqaModel::loss(x, y).item() == doctest::Approx(expect / 2).epsilon(1e-5));
  m.train();
  Tensor loss = VqaModel::loss(m.forward(pixels, q), zeros({2, 5}));
  loss.backward();
  CHECK(m.head_fc2->weight.grad().defined());
  CHECK(m.vision_model->embeddings->patch_embedding->weight.grad().defined());
  // A frozen tower: the same logits, gradients only outside the vision tower.
  default_generator().manual_seed(3);
  VqaModel frozen(c);
  frozen.vision_model->set_frozen(true);
  frozen.eval();
  CHECK(max_abs_diff(frozen.forward(pixels, q), logits) == 0);
  VqaModel::loss(frozen.forward(pixels, q), zeros({2, 5})).backward();
  CHECK(frozen.head_fc2->weight.grad().defined());
  CHECK(frozen.image_proj->weight.grad().defined());
  CHECK_FALSE(frozen.vision_model->embeddings->patch_embedding->weight.grad().defined());
  CHECK_FALSE(frozen.vision_model->post_layernorm->weight.grad().defined());
}

// text_embedding_norm: the question's embedding sum goes through a LayerNorm, so scaling every part of
// it (word, position, the text row of the type table) leaves the logits as they were; without the norm
// the same scaling moves them. Folders saved before the option load without it.
TEST_CASE("vqa model: text_embedding_norm normalises the question embeddings") {
  VqaConfig c = tiny_vqa();
  Tensor pixels = randn({2, 3, 16, 16});
  Tensor q = from_vector_i64({1, 5, 6, 7, 1, 8, 9, 0}, {2, 4});
  auto logit_change = [&](bool norm) {
    c.text_embedding_norm = norm;
    default_generator().manual_seed(5);
    VqaModel m(c);
    m.eval();
    bool has_norm = false;
    for (const auto& [name, t] : m.state_dict()) has_norm = has_norm || name == "text_embedding_norm.weight";
    CHECK(has_norm == norm);
    const Tensor row_scale = from_vector({1.0, 0.0}, {2, 1});  // the text row (type 0) only
    auto scale_text = [&](double k) {
      m.word_embeddings->weight.detach().copy_(m.word_embeddings->weight.detach() * k);
      m.text_position->weight.detach().copy_(m.text_position->weight.detach() * k);
      m.token_type->weight.detach().copy_(m.token_type->weight.detach() * (row_scale * (k - 1.0) + 1.0));
    };
    scale_text(100.0);  // variance far above the LayerNorm's eps, which would otherwise show
    const Tensor before = m.forward(pixels, q);
    scale_text(10.0);
    return max_abs_diff(m.forward(pixels, q), before);
  };
  CHECK(logit_change(true) < 1e-4);
  CHECK(logit_change(false) > 1e-3);
  c.text_embedding_norm = true;
  CHECK(VqaConfig::from_json(c.to_json()).text_embedding_norm);
  nlohmann::json old = c.to_json();
  old.erase("text_embedding_norm");
  CHECK_FALSE(VqaConfig::from_json(old).text_embedding_norm);
}

TEST_CASE("sincos_2d_positions: the class row is zero, rows and columns each in their half") {
  const int64_t grid = 3, dim = 8;  // quarter = 2: frequencies 1 and 1/100
  const Tensor t = sincos_2d_positions(grid, dim);
  REQUIRE(t.shape() == Shape{1 + grid * grid, dim});
  const std::vector<double> v = t.to_vector();
  auto at = [&](int64_t token, int64_t col) { return v[size_t(token * dim + col)]; };
  for (int64_t col = 0; col < dim; ++col) CHECK(at(0, col) == 0.0);
  // Patch (r, c) = (2, 1) is token 1 + 2 * 3 + 1 = 8.
  const double r = 2, c = 1, w1 = 0.01;
  CHECK(at(8, 0) == doctest::Approx(std::sin(r)));
  CHECK(at(8, 1) == doctest::Approx(std::sin(r * w1)));
  CHECK(at(8, 2) == doctest::Approx(std::cos(r)));
  CHECK(at(8, 3) == doctest::Approx(std::cos(r * w1)));
  CHECK(at(8, 4) == doctest::Approx(std::sin(c)));
  CHECK(at(8, 6) == doctest::Approx(std::cos(c)));
  // The first half depends on the row only, the second on the column only.
  for (int64_t col = 0; col < dim / 2; ++col) CHECK(at(1 + 3 * 1 + 0, col) == at(1 + 3 * 1 + 2, col));
  for (int64_t col = dim / 2; col < dim; ++col) CHECK(at(1 + 0 * 3 + 2, col) == at(1 + 2 * 3 + 2, col));
  CHECK_THROWS_WITH(sincos_2d_positions(3, 6), doctest::Contains("dim a multiple of 4"));
}

TEST_CASE("answer vocabulary and soft scores") {
  // "Two" and "2" normalise to "2" (3 + 1 = 4 votes), "yes" 2 votes, "no" 1.
  const std::vector<std::vector<std::string>> lists = {{"2", "2", "Two", "yes"}, {"2", "yes", "no"}};
  auto vocab = build_answer_vocab(lists, 2);
  REQUIRE(vocab == std::vector<std::string>{"2", "yes"});
  std::unordered_map<std::string, int64_t> index = {{"2", 0}, {"yes", 1}};
  // 2 of 10 say "two": 2/3; 4 say "yes": capped at 1.
  auto t = vqa_soft_targets({"two", "two", "yes", "yes", "yes", "yes", "no", "no", "no", "no"}, index, 2);
  CHECK(t[0] == doctest::Approx(2.0 / 3));
  CHECK(t[1] == doctest::Approx(1.0));
}

TEST_CASE("vision_init: a CLIP checkpoint's vision_model tensors load into both models") {
  default_generator().manual_seed(5);
  testing::NnTempDir dir;
  ClipConfig cc = testing::tiny_clip();
  cc.vision = testing::tiny_vision_tower();
  ClipModel clip(cc);
  clip.save_folder(dir.file("model"));  // a run dir: RUN_DIR/model
  CHECK(clip_vision_config(dir.path.string()).hidden_size == 32);
  Captioner cap(tiny_captioner());
  cap.vision_model->load_clip(dir.path.string());
  CHECK(max_abs_diff(cap.vision_model->embeddings->patch_embedding->weight,
                     clip.vision_model->embeddings->patch_embedding->weight) == 0);
  CHECK(max_abs_diff(cap.vision_model->post_layernorm->weight, clip.vision_model->post_layernorm->weight) == 0);
}

TEST_CASE("captioner: incremental decoding with the KV cache equals full recomputation") {
  default_generator().manual_seed(7);
  Captioner m(tiny_captioner());
  m.eval();
  NoGradGuard no_grad;
  Tensor memory = m.encode_image(randn({2, 3, 16, 16}));
  Tensor ids = from_vector_i64({1, 4, 5, 6, 7, 8, 1, 9, 10, 11, 12, 4}, {2, 6});
  Tensor full = m.decode(ids, memory);  // (2, 6, V)
  DecoderCache cache = m.new_cache();
  std::vector<Tensor> steps;
  steps.push_back(m.decode(ids.slice(1, 0, 2).contiguous(), memory, &cache));  // two tokens at once
  for (int64_t t = 2; t < 6; ++t) steps.push_back(m.decode(ids.slice(1, t, t + 1).contiguous(), memory, &cache));
  CHECK(cache[0].self_attn.length() == 6);
  CHECK(max_abs_diff(cat(steps, 1), full) < 1e-5);
}

TEST_CASE("decoding: cached = uncached token for token; beam 1 = greedy; beam search") {
  default_generator().manual_seed(11);
  CaptionerConfig c = tiny_captioner();
  Captioner m(c);
  // Sharper logits, so that the search has real choices to make.
  { NoGradGuard g; nn::set_data(m.token_embedding->weight, m.token_embedding->weight * 40.0); }
  m.eval();
  for (int img = 0; img < 4; ++img) {
    Tensor pixels = randn({1, 3, 16, 16});
    DecodeOptions o;
    o.max_length = 10;
    o.min_length = 2;
    o.use_cache = true;
    const Hypothesis g = greedy_decode(m, pixels, o);
    o.use_cache = false;
    const Hypothesis g_full = greedy_decode(m, pixels, o);
    CHECK(g.tokens == g_full.tokens);
    CHECK(g.tokens.size() >= 2);
    CHECK(g.tokens.size() <= 10);
    if (g.tokens.size() < 10) CHECK(g.tokens.back() == WordVocab::kEos);
    for (size_t i = 0; i + 1 < g.tokens.size() && i < 2; ++i) CHECK(g.tokens[i] != WordVocab::kEos);
    o.use_cache = true;
    o.beam = 1;
    const Hypothesis b1 = beam_search(m, pixels, o);
    CHECK(b1.tokens == g.tokens);
    CHECK(b1.log_prob == doctest::Approx(g.log_prob).epsilon(1e-9));
    o.beam = 3;
    o.length_penalty = 0.0;  // raw sum of log-probs: beam search can only do as well or better
    const Hypothesis b3 = beam_search(m, pixels, o);
    o.use_cache = false;
    const Hypothesis b3_full = beam_search(m, pixels, o);
    CHECK(b3.tokens == b3_full.tokens);
    CHECK(b3.tokens.size() <= 10);
    if (g.tokens.back() == WordVocab::kEos && b3.tokens.back() == WordVocab::kEos)
      CHECK(b3.log_prob >= g.log_prob - 1e-9);
  }
}

TEST_CASE("captioner: the teacher-forcing loss ignores padding and trains") {
  default_generator().manual_seed(13);
  CaptionerConfig c = tiny_captioner();
  c.tie_embeddings = false;
  Captioner m(c);
  Tensor pixels = randn({2, 3, 16, 16});
  Tensor ids = from_vector_i64({1, 4, 5, 2, 0, 1, 6, 7, 8, 2}, {2, 5});
  Tensor l1 = m.loss(pixels, ids, 0.1);
  Tensor ids_more = from_vector_i64({1, 4, 5, 2, 0, 0, 1, 6, 7, 8, 2, 0}, {2, 6});
  CHECK(m.loss(pixels, ids_more, 0.1).item() == doctest::Approx(l1.item()).epsilon(1e-5));
  l1.backward();
  CHECK(m.lm_head->weight.grad().defined());
  CHECK(m.memory_proj->weight.grad().defined());
}

namespace {

// A tiny VQA config on a 40-image shapes world in `dir`, with `model_keys` added to [model].
std::string tiny_vqa_config(testing::NnTempDir& dir, const std::string& model_keys) {
  const std::string cfg = dir.file("vqa.toml");
  std::ofstream(cfg) << "steps = 3\nseed = 1\n[model]\nname = \"vqa\"\n"
                     << testing::toml_lines(testing::tiny_vision_language_keys(), "model") << model_keys
                     << "[data]\ndataset = \"shapes\"\npath = \"" << dir.file("shapes") << "\"\n"
                     << "generate_n = 40\ngenerate_size = 16\nanswer_min_count = 1\nbatch_size = 8\neval_questions = 8\n"
                        "[optim]\nname = \"adamw\"\nlr = 1e-2\n[eval]\nevery = 0\n[checkpoint]\nevery = 1\n";
  return cfg;
}

std::map<std::string, std::vector<double>> checkpoint_weights(const std::string& run_dir) {
  std::map<std::string, std::vector<double>> w;
  for (const auto& [name, t] : load_safetensors(run_dir + "/checkpoint/model.safetensors")) w[name] = t.to_vector();
  return w;
}

const std::string kTowerWeight = "vision_model.encoder.layers.0.mlp.fc1.weight", kJointWeight = "layers.0.mlp.fc1.weight";

}  // namespace

// A 3-step VQA run in three resumed pieces on a tiny shapes world: with unfreeze_vision_at = 2 the
// tower stays as initialised through steps 0 and 1 and is trained from step 2, also after a resume.
TEST_CASE("vqa trainer: model.unfreeze_vision_at trains the tower from that step on") {
  testing::NnTempDir dir;
  register_vqa_caption_trainers();
  const std::string cfg = tiny_vqa_config(dir, "freeze_vision = true\nunfreeze_vision_at = 2\n");
  nn::TrainOptions o;
  o.config_path = cfg;
  o.run_dir = dir.file("run");
  o.quiet = true;
  auto weights_after = [&](int64_t stop_at) {
    o.stop_at = stop_at;
    nn::run_training(o);
    o.resume = true;
    return checkpoint_weights(o.run_dir);
  };
  const auto w1 = weights_after(1), w2 = weights_after(2), w3 = weights_after(3);
  const std::string &tower = kTowerWeight, &joint = kJointWeight;
  REQUIRE(w1.count(tower) == 1);
  REQUIRE(w1.count(joint) == 1);
  CHECK(w1.at(tower) == w2.at(tower));  // step 1: frozen
  CHECK(w2.at(tower) != w3.at(tower));  // step 2: trained, after a resume
  CHECK(w1.at(joint) != w2.at(joint));

  // Without freeze_vision the key means nothing: an error, not a silent no-op.
  nn::TrainOptions bad;
  bad.config_path = cfg;
  bad.overrides = {"model.freeze_vision=false"};
  bad.run_dir = dir.file("bad");
  bad.quiet = true;
  CHECK_THROWS_WITH(nn::run_training(bad), doctest::Contains("model.unfreeze_vision_at = 2 needs model.freeze_vision = true"));
}

// One step from the same init and batch with model.vision_lr_scale = 0, 0.5 and 1: the tower
// does not move, moves half as far, moves the whole step; the joint encoder moves the same.
TEST_CASE("vqa trainer: model.vision_lr_scale scales the tower's step only") {
  testing::NnTempDir dir;
  register_vqa_caption_trainers();
  const std::string cfg = tiny_vqa_config(dir, "");
  auto one_step = [&](const std::string& scale) {
    nn::TrainOptions o;
    o.config_path = cfg;
    o.run_dir = dir.file("run" + scale);
    o.overrides = {"model.vision_lr_scale=" + scale};
    o.stop_at = 1;
    o.quiet = true;
    nn::run_training(o);
    return checkpoint_weights(o.run_dir);
  };
  const auto w0 = one_step("0"), half = one_step("0.5"), full = one_step("1");
  REQUIRE(w0.count(kTowerWeight) == 1);
  const std::vector<double>&t0 = w0.at(kTowerWeight), &th = half.at(kTowerWeight), &tf = full.at(kTowerWeight);
  int64_t moved = 0;
  for (size_t i = 0; i < t0.size(); ++i) {
    CAPTURE(i);
    moved += tf[i] != t0[i];
    CHECK(th[i] - t0[i] == doctest::Approx(0.5 * (tf[i] - t0[i])).epsilon(1e-3).scale(1e-7));
  }
  CHECK(moved > int64_t(t0.size()) / 2);
  CHECK(half.at(kJointWeight) == full.at(kJointWeight));
  CHECK(w0.at(kJointWeight) == full.at(kJointWeight));
}

// image_position_init = "sincos": after one AdamW step (lr 1e-2: each element moves by about the lr)
// the image position embeddings are still the scaled table, where N(0, 0.02^2) would be far from it.
TEST_CASE("vqa trainer: model.image_position_init = sincos starts from the scaled 2-d table") {
  testing::NnTempDir dir;
  register_vqa_caption_trainers();
  nn::TrainOptions o;
  o.config_path = tiny_vqa_config(dir, "image_position_init = \"sincos\"\nimage_position_scale = 0.5\n");
  o.run_dir = dir.file("run");
  o.stop_at = 1;
  o.quiet = true;
  nn::run_training(o);
  const auto w = checkpoint_weights(o.run_dir);
  REQUIRE(w.count("image_position.weight") == 1);
  const std::vector<double> want = (sincos_2d_positions(2, 16) * 0.5).to_vector();  // 16 px / 8 px patches, hidden 16
  const std::vector<double>& got = w.at("image_position.weight");
  REQUIRE(got.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  CHECK(worst < 0.025);
}

TEST_CASE("model folders: a corrupt or missing config.json is an error naming the file") {
  testing::NnTempDir dir;
  const std::string cfg = dir.file("config.json");
  const std::string corrupt = "'" + cfg + "': invalid JSON", missing = "'" + cfg + "': cannot open it (no such file)";
  std::ofstream(cfg) << "{\"architecture\": ";
  CHECK_THROWS_WITH(VqaBundle::load(dir.path.string()), doctest::Contains(corrupt.c_str()));
  CHECK_THROWS_WITH(CaptionerBundle::load(dir.path.string()), doctest::Contains(corrupt.c_str()));
  // Valid JSON with a key missing or of the wrong type still names the file.
  std::ofstream(cfg, std::ios::trunc) << "{\"architecture\": \"minivl-vqa\", \"vision_config\": {}}";
  CHECK_THROWS_WITH(VqaBundle::load(dir.path.string()), doctest::Contains(("'" + cfg + "': ").c_str()));
  std::ofstream(cfg, std::ios::trunc) << "{\"architecture\": 7}";
  CHECK_THROWS_WITH(CaptionerBundle::load(dir.path.string()), doctest::Contains(("'" + cfg + "': ").c_str()));
  std::filesystem::remove(cfg);
  CHECK_THROWS_WITH(CaptionerBundle::load(dir.path.string()), doctest::Contains(missing.c_str()));
}


namespace {

// config.json of tiny folders as the code before models/vision_tower.h and models/joint_encoder.h wrote
// them (`minivl train` of a 16 px tower, one joint layer of width 16; the VQA tower frozen).
const char* kOldVqaConfig =
    R"({"architecture": "minivl-vqa", "dropout": 0.0, "freeze_vision": true, "heads": 2, "hidden": 16, "layers": 1,
    "max_question_len": 16, "mlp": 32, "num_answers": 21, "text_embedding_norm": true, "vision_config": {
    "attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "quick_gelu", "hidden_size": 16, "image_size": 16,
    "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 32, "layer_norm_eps": 1e-05,
    "model_type": "clip_vision_model", "num_attention_heads": 2, "num_channels": 3, "num_hidden_layers": 1,
    "patch_size": 8, "projection_dim": 512}, "vocab_size": 44})";
const char* kOldCaptionerConfig =
    R"({"architecture": "minivl-captioner", "dropout": 0.0, "freeze_vision": false, "heads": 2, "hidden": 16,
    "layers": 1, "max_length": 12, "mlp": 32, "tie_embeddings": false, "vision_config": {"attention_dropout": 0.0,
    "dropout": 0.0, "hidden_act": "quick_gelu", "hidden_size": 16, "image_size": 16, "initializer_factor": 1.0,
    "initializer_range": 0.02, "intermediate_size": 32, "layer_norm_eps": 1e-05, "model_type": "clip_vision_model",
    "num_attention_heads": 2, "num_channels": 3, "num_hidden_layers": 1, "patch_size": 8, "projection_dim": 512},
    "vocab_size": 63})";

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "w7": a made-up word (appended, not "w" + ...: GCC 12 warns about that with -Wrestrict).
std::string made_up_word(char letter, int64_t i) {
  std::string w(1, letter);
  w += std::to_string(i);
  return w;
}

// A folder of `config_text` with `model`'s weights and a vocabulary of `words` ids.
void write_old_folder(const std::string& dir, const std::string& config_text, const nn::Module& model, int64_t words) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << nlohmann::json::parse(config_text).dump(2) << "\n";
  save_safetensors(dir + "/model.safetensors", model.state_dict());
  nlohmann::json vocab = {"<pad>", "<bos>", "<eos>", "<unk>"};
  for (int64_t i = 4; i < words; ++i) vocab.push_back(made_up_word('w', i));
  std::ofstream(dir + "/vocab.json") << vocab.dump() << "\n";
}

bool has_tensor(const nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.state_dict())
    if (n == name) return true;
  return false;
}

}  // namespace

// The parameter names, the config.json keys and the tower's frozen state of folders saved before the
// redesign: they load, predict as the model they were saved from, and save back the same config.json.
TEST_CASE("model folders: folders written by the code before the shared tower load and save the same config.json") {
  testing::NnTempDir dir;
  const std::string old_vqa = nlohmann::json::parse(kOldVqaConfig).dump(2) + "\n";
  const std::string old_captioner = nlohmann::json::parse(kOldCaptionerConfig).dump(2) + "\n";
  Tensor pixels = randn({2, 3, 16, 16});
  {
    default_generator().manual_seed(17);
    VqaModel source(VqaConfig::from_json(nlohmann::json::parse(kOldVqaConfig)));
    source.eval();
    write_old_folder(dir.file("vqa"), kOldVqaConfig, source, 44);
    nlohmann::json answers = nlohmann::json::array();
    for (int i = 0; i < 21; ++i) answers.push_back(made_up_word('a', i));
    std::ofstream(dir.file("vqa/answers.json")) << answers.dump() << "\n";
    const VqaBundle b = VqaBundle::load(dir.file("vqa"));
    CHECK(b.model->vision_model->frozen());
    CHECK(b.model->config.joint.hidden == 16);
    CHECK(b.model->config.text_embedding_norm);
    CHECK(b.model->state_dict().size() == 57);  // as the old code's model.safetensors
    for (const char* name : {"vision_model.pre_layrnorm.weight", "vision_model.encoder.layers.0.mlp.fc1.weight",
                             "vision_model.embeddings.class_embedding", "layers.0.self_attn.q_proj.weight",
                             "text_embedding_norm.weight", "image_position.weight", "head_fc2.bias"})
      CHECK_MESSAGE(has_tensor(*b.model, name), name);
    Tensor q = from_vector_i64({1, 5, 6, 0, 1, 7, 8, 9}, {2, 4});
    CHECK(max_abs_diff(b.model->forward(pixels, q), source.forward(pixels, q)) == 0);
    b.save(dir.file("vqa_again"));
    CHECK(read_text(dir.file("vqa_again/config.json")) == old_vqa);
  }
  {
    default_generator().manual_seed(19);
    Captioner source(CaptionerConfig::from_json(nlohmann::json::parse(kOldCaptionerConfig)));
    source.eval();
    write_old_folder(dir.file("cap"), kOldCaptionerConfig, source, 63);
    CaptionerBundle b = CaptionerBundle::load(dir.file("cap"));
    CHECK_FALSE(b.model->vision_model->frozen());
    CHECK(b.model->config.joint.layers == 1);
    CHECK(b.vocab.size() == 63);
    CHECK(b.model->state_dict().size() == 56);
    for (const char* name : {"vision_model.post_layernorm.bias", "layers.0.cross_attn.k_proj.weight",
                             "layers.0.layer_norm3.weight", "lm_head.weight", "memory_proj.weight"})
      CHECK_MESSAGE(has_tensor(*b.model, name), name);
    CHECK(max_abs_diff(b.model->encode_image(pixels), source.encode_image(pixels)) == 0);
    b.save(dir.file("cap_again"));
    CHECK(read_text(dir.file("cap_again/config.json")) == old_captioner);
    // The tower's state is the folder's: frozen before saving, frozen after loading.
    b.model->vision_model->set_frozen(true);
    b.save(dir.file("cap_frozen"));
    CHECK(nlohmann::json::parse(read_text(dir.file("cap_frozen/config.json"))).at("freeze_vision") == true);
    CHECK(CaptionerBundle::load(dir.file("cap_frozen")).model->vision_model->frozen());
  }
}

// The tower's keys are declared once: clip, vqa and the captioner have the same keys with the same
// help and ranges; the defaults are each trainer's (clip: 4 px patches, width 128; the others: 8 px, 64).
TEST_CASE("vision tower keys: one declaration, each trainer's defaults, the same tower from the same values") {
  models::register_all_trainers();
  const nn::ConfigSchema clip = nn::trainer_schema(*nn::find_trainer("clip"));
  const nn::ConfigSchema vqa = nn::trainer_schema(*nn::find_trainer("vqa"));
  const nn::ConfigSchema cap = nn::trainer_schema(*nn::find_trainer("captioner"));
  auto int_default = [](const nn::ConfigSchema& s, const std::string& key) {
    REQUIRE(s.find(key) != nullptr);
    return std::get<int64_t>(*s.find(key)->default_value);
  };
  for (const char* key : {"model.image_size", "model.patch_size", "model.vision_width", "model.vision_layers",
                          "model.vision_heads", "model.vision_mlp", "model.hidden_act"}) {
    CAPTURE(key);
    REQUIRE(clip.find(key));
    REQUIRE(vqa.find(key));
    CHECK(clip.find(key)->help == vqa.find(key)->help);
    CHECK(clip.find(key)->min == vqa.find(key)->min);
    CHECK(nn::same_spec(*vqa.find(key), *cap.find(key)));
  }
  CHECK(int_default(clip, "model.patch_size") == 4);
  CHECK(int_default(clip, "model.vision_width") == 128);
  CHECK(int_default(vqa, "model.patch_size") == 8);
  CHECK(int_default(vqa, "model.vision_width") == 64);
  // The same values give the same tower through either trainer's schema; a bad grid is named.
  const std::vector<std::string> keys = testing::tiny_vision_keys();
  const std::string toml = "steps = 1\n[model]\nname = \"clip\"\n";
  const ClipTowerConfig from_clip = vision_tower_from_keys(nn::Config::parse(toml, "t", clip, keys));
  const ClipTowerConfig from_vqa =
      vision_tower_from_keys(nn::Config::parse("steps = 1\n[model]\nname = \"vqa\"\n", "t", vqa, keys));
  CHECK(vision_config_to_json(from_clip) == vision_config_to_json(from_vqa));
  CHECK(from_clip.image_size == 16);
  CHECK(from_clip.hidden_size == 16);
  CHECK_THROWS_WITH(vision_tower_from_keys(nn::Config::parse(toml, "t", clip, {"model.image_size=18"})),
                    doctest::Contains("model.image_size 18 is not a multiple of model.patch_size 4"));
}
