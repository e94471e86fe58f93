// CLIP commands on a model folder (HF layout: config.json, model.safetensors,
// vocab.json + merges.txt, optional preprocessor_config.json):
//   minivl embed     --model DIR [--vocab PATH] [--image P]... [--text T]...   -> one JSON object
//   minivl zeroshot  --model DIR --image P... --labels "cat,dog" [--templates FILE]
//   minivl eval      --model DIR --task zeroshot|retrieval|vqa|caption --data DIR|fashion-mnist
//   minivl bench-step --config CONFIG [--steps N]      -> JSON: step time, MFU, memory, per-step counters
// and registers the "clip" trainer for `minivl train`.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/allocator.h"
#include "core/autograd.h"
#include "core/counters.h"
#include "core/error.h"
#include "core/generator.h"
#include "core/ops.h"
#include "data/annotations.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "models/clip.h"
#include "models/clip_train.h"
#include "models/metrics.h"
#include "models/vqa_caption_train.h"
#include "nn/amp.h"
#include "nn/optim.h"
#include "tokenizer/clip_tokenizer.h"
#include "tools/commands.h"
#include "tools/numeric_option.h"

namespace minivl::tools {
namespace {
namespace fs = std::filesystem;
using models::ClipModel;
using tokenizer::ClipTokenizer;

struct LoadedModel {
  std::shared_ptr<ClipModel> model;
  std::unique_ptr<ClipTokenizer> tok;
  data::ClipPreprocessConfig pre;
};

LoadedModel load_model(const std::string& dir, const std::string& vocab, bool need_tokenizer) {
  LoadedModel m;
  m.model = ClipModel::load_folder(dir);
  const fs::path d(dir);
  if (fs::exists(d / "preprocessor_config.json"))
    m.pre = data::ClipPreprocessConfig::from_json_file((d / "preprocessor_config.json").string());
  m.pre.image_size = int(m.model->config.vision.image_size);
  if (need_tokenizer) {
    const std::string path = !vocab.empty() ? vocab : dir;
    try {
      m.tok = std::make_unique<ClipTokenizer>(ClipTokenizer::load(path));
    } catch (const Error& e) {
      MINIVL_FAIL(e.what(), vocab.empty() ? " (pass --vocab PATH for the tokenizer)" : "");
    }
  }
  return m;
}

// (N, 3, R, R) from image files: CLIP's resize + center crop (a no-op at the model's size) + normalise.
Tensor load_pixels(const std::vector<std::string>& paths, const data::ClipPreprocessConfig& pre) {
  const int64_t R = pre.image_size;
  Tensor x = empty({int64_t(paths.size()), 3, R, R});
  for (size_t i = 0; i < paths.size(); ++i)
    data::clip_preprocess_into(data::read_image(paths[i]), pre, x.data<float>() + i * 3 * R * R);
  return x;
}

nlohmann::json rows_json(const Tensor& t) {
  const Tensor c = t.to(DType::f32).contiguous();
  nlohmann::json out = nlohmann::json::array();
  const int64_t n = c.size(0), d = c.size(1);
  for (int64_t i = 0; i < n; ++i) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t j = 0; j < d; ++j) row.push_back(double(c.data<float>()[i * d + j]));
    out.push_back(row);
  }
  return out;
}

// ---- embed ----
struct EmbedOptions {
  std::string model, vocab;
  std::vector<std::string> images, texts;
};

void run_embed(const EmbedOptions& o) {
  MINIVL_CHECK(!o.images.empty() || !o.texts.empty(), "embed: give at least one --image or --text");
  LoadedModel m = load_model(o.model, o.vocab, !o.texts.empty());
  NoGradGuard no_grad;
  Tensor img = o.images.empty() ? Tensor() : m.model->encode_image(load_pixels(o.images, m.pre));
  Tensor txt = o.texts.empty() ? Tensor() : models::encode_texts(*m.model, *m.tok, o.texts);
  nlohmann::json j;
  j["image_embeds"] = img.defined() ? rows_json(img) : nlohmann::json::array();
  j["text_embeds"] = txt.defined() ? rows_json(txt) : nlohmann::json::array();
  if (img.defined() && txt.defined()) {
    j["logits_per_image"] = rows_json(mul(matmul(img, txt.t()), std::exp(m.model->logit_scale_value())));
  } else {
    j["logits_per_image"] = nlohmann::json::array();
  }
  std::printf("%s\n", j.dump().c_str());
}

// ---- zeroshot ----
std::vector<std::string> split_labels(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
  }
  return out;
}

std::vector<std::string> read_templates(const std::string& path) {
  if (path.empty()) return {"a photo of a {}."};
  std::ifstream in(path);
  MINIVL_CHECK(in.good(), "zeroshot: cannot open the templates file ", path);
  std::vector<std::string> t;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] != '#') t.push_back(line);
  MINIVL_CHECK(!t.empty(), path, ": no templates (one per line, {} for the label)");
  return t;
}

struct ZeroshotOptions {
  std::string model, vocab, labels, templates;
  std::vector<std::string> images;
  int top = 5;
  bool json = false;
};

void run_zeroshot(const ZeroshotOptions& o) {
  const std::vector<std::string> labels = split_labels(o.labels);
  MINIVL_CHECK(labels.size() >= 1, "zeroshot: --labels needs at least one label");
  LoadedModel m = load_model(o.model, o.vocab, true);
  NoGradGuard no_grad;
  Tensor w = models::zeroshot_classifier(*m.model, *m.tok, labels, read_templates(o.templates));  // (C, P)
  Tensor img = m.model->encode_image(load_pixels(o.images, m.pre));                               // (N, P)
  Tensor probs = softmax(mul(matmul(img, w.t()), std::exp(m.model->logit_scale_value())), 1);     // (N, C)
  const int64_t C = probs.size(1), k = std::min<int64_t>(o.top, C);
  auto [vals, idx] = topk(probs, k, 1);
  nlohmann::json all = nlohmann::json::array();
  for (size_t i = 0; i < o.images.size(); ++i) {
    nlohmann::json top = nlohmann::json::array();
    if (!o.json) std::printf("%s\n", o.images[i].c_str());
    for (int64_t j = 0; j < k; ++j) {
      const int64_t c = idx.select(0, int64_t(i)).select(0, j).item_int();
      const double p = vals.select(0, int64_t(i)).select(0, j).item();
      top.push_back({{"label", labels[size_t(c)]}, {"prob", p}});
      if (!o.json) std::printf("  %6.2f%%  %s\n", 100.0 * p, labels[size_t(c)].c_str());
    }
    all.push_back({{"image", o.images[i]}, {"top", top}});
  }
  if (o.json) std::printf("%s\n", all.dump().c_str());
}

// ---- eval ----
struct EvalOptions {
  std::string model, vocab, task = "zeroshot", data, split = "test";
  int64_t limit = 0;
};

Tensor encode_images(const ClipModel& model, const std::function<data::Image(int64_t)>& get, int64_t n,
                     const data::ClipPreprocessConfig& pre) {
  NoGradGuard no_grad;
  const int64_t R = pre.image_size;
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t b = std::min<int64_t>(256, n - i);
    Tensor x = empty({b, 3, R, R});
    for (int64_t j = 0; j < b; ++j) data::clip_preprocess_into(get(i + j), pre, x.data<float>() + j * 3 * R * R);
    parts.push_back(model.encode_image(x));
  }
  return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

void run_eval(const EvalOptions& o) {
  if (o.task == "vqa" || o.task == "caption") {  // the VQA and captioning models have their own folders
    models::EvalVqaCaptionOptions e;
    e.model = o.model;
    e.data = o.data;
    e.split = o.split;
    e.limit = o.limit;
    nlohmann::json r = o.task == "vqa" ? models::run_eval_vqa(e) : models::run_eval_caption(e);
    std::printf("%s\n", r.dump(2).c_str());
    return;
  }
  const bool fashion = o.task == "zeroshot" && (o.data == "fashion-mnist" || (fs::is_directory(o.data) &&
                                                fs::exists(fs::path(o.data) / "t10k-labels-idx1-ubyte.gz")));
  if (fashion) {
    MINIVL_CHECK(o.split == "test" || o.split == "train", "eval: --split for Fashion-MNIST is test or train, got '",
                 o.split, "'");
  } else {
    MINIVL_CHECK(o.split == "test" || o.split == "all", "eval: --split for --task ", o.task,
                 " is test (held-out images) or all, got '", o.split, "'");
  }
  LoadedModel m = load_model(o.model, o.vocab, true);
  NoGradGuard no_grad;
  nlohmann::json j;
  if (o.task == "zeroshot") {
    std::vector<std::string> classes, templates;
    std::vector<int64_t> labels;
    Tensor img;
    if (fashion) {
      const std::string dir = o.data == "fashion-mnist" ? data::kFashionMnistDir : o.data;
      data::FashionMnist fm = data::load_fashion_mnist(dir, o.split);
      const int64_t n = o.limit > 0 ? std::min(o.limit, fm.count) : fm.count;
      classes = data::fashion_mnist_prompt_names();
      templates = data::fashion_mnist_templates();
      for (int64_t i = 0; i < n; ++i) labels.push_back(fm.labels[size_t(i)]);
      img = encode_images(*m.model, [&](int64_t i) { return fm.image(i); }, n, m.pre);
    } else {
      // A classes.json (the shapes world's, or any {"classes", "templates", "images"} file).
      const fs::path p = fs::is_directory(o.data) ? fs::path(o.data) / "classes.json" : fs::path(o.data);
      data::ClassList list = data::read_class_list(p.string());
      std::vector<int64_t> keep;
      const fs::path splits = p.parent_path() / "splits.json";
      if (fs::exists(splits) && o.split != "all") {  // held-out (val + test) images only
        std::ifstream sf(splits);
        nlohmann::json s = nlohmann::json::parse(sf);
        std::set<int64_t> ids;
        for (const char* name : {"val", "test"})
          for (const auto& id : s.at(name)) ids.insert(id.get<int64_t>());
        for (size_t i = 0; i < list.image_ids.size(); ++i)
          if (ids.count(list.image_ids[i])) keep.push_back(int64_t(i));
      } else {
        for (size_t i = 0; i < list.image_ids.size(); ++i) keep.push_back(int64_t(i));
      }
      if (o.limit > 0 && int64_t(keep.size()) > o.limit) keep.resize(size_t(o.limit));
      classes = list.classes;
      templates = list.templates;
      for (int64_t i : keep) labels.push_back(list.labels[size_t(i)]);
      img = encode_images(*m.model, [&](int64_t i) { return data::read_image(list.image_paths[size_t(keep[size_t(i)])]); },
                          int64_t(keep.size()), m.pre);
    }
    Tensor w = models::zeroshot_classifier(*m.model, *m.tok, classes, templates);
    auto acc = models::topk_accuracy(matmul(img, w.t()), labels, {1, 5});
    j = {{"task", "zeroshot"}, {"images", labels.size()}, {"classes", classes.size()}, {"top1", acc[0]}, {"top5", acc[1]}};
  } else if (o.task == "retrieval") {
    // COCO-captions JSON (a folder: its captions.json), held-out split when splits.json is beside it.
    const fs::path p = fs::is_directory(o.data) ? fs::path(o.data) / "captions.json" : fs::path(o.data);
    data::CaptionSet set = data::read_coco_captions(p.string());
    std::map<int64_t, int64_t> image_index;  // image_id -> row
    std::vector<std::string> paths, texts;
    std::vector<int64_t> owner;
    std::set<int64_t> allowed;
    const fs::path splits = p.parent_path() / "splits.json";
    const bool use_split = fs::exists(splits) && o.split != "all";
    if (use_split) {
      std::ifstream sf(splits);
      nlohmann::json s = nlohmann::json::parse(sf);
      for (const char* name : {"val", "test"})
        for (const auto& id : s.at(name)) allowed.insert(id.get<int64_t>());
    }
    for (const auto& s : set.samples) {
      if (use_split && !allowed.count(s.image_id)) continue;
      auto it = image_index.find(s.image_id);
      if (it == image_index.end()) {
        if (o.limit > 0 && int64_t(paths.size()) >= o.limit) continue;
        it = image_index.emplace(s.image_id, int64_t(paths.size())).first;
        paths.push_back(s.image_path);
      }
      texts.push_back(s.caption);
      owner.push_back(it->second);
    }
    MINIVL_CHECK(!paths.empty(), "eval: no images in ", p.string());
    Tensor img = encode_images(*m.model, [&](int64_t i) { return data::read_image(paths[size_t(i)]); },
                               int64_t(paths.size()), m.pre);
    Tensor txt = models::encode_texts(*m.model, *m.tok, texts);
    models::RetrievalRecall r = models::retrieval_recall(matmul(img, txt.t()), owner);
    j = {{"task", "retrieval"},  {"images", paths.size()},       {"texts", texts.size()},
         {"i2t_r1", r.image_to_text[0]}, {"i2t_r5", r.image_to_text[1]}, {"i2t_r10", r.image_to_text[2]},
         {"t2i_r1", r.text_to_image[0]}, {"t2i_r5", r.text_to_image[1]}, {"t2i_r10", r.text_to_image[2]}};
  } else {
    MINIVL_FAIL("eval: --task must be zeroshot, retrieval, vqa or caption, got '", o.task, "'");
  }
  std::printf("%s\n", j.dump().c_str());
}

// ---- bench-step ----
struct BenchOptions {
  std::string config;
  std::vector<std::string> overrides;
  int64_t steps = 20, warmup = 3, phase_steps = 5;
  double peak_tflops = 0.0;
  bool flops_only = false;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : (v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]));
}

// FLOPs of one CLIP training step (forward + backward), the count bench/torch_clip_step.py uses
// too (its docstring derives it; tests/test_step_counters.cpp checks the two agree): every matrix
// multiply once forward and twice backward, attention's two products at the full T x T extent.
double clip_step_flops(const models::ClipConfig& c, int64_t batch) {
  const double B = double(batch);
  const double P = double(c.vision.patch_size), n_patches = std::pow(double(c.vision.image_size / c.vision.patch_size), 2);
  double flops = 0;
  for (const auto& [t, tokens] : {std::pair{c.vision, n_patches + 1}, std::pair{c.text, double(c.text.max_position_embeddings)}}) {
    const double L = double(t.num_hidden_layers), D = double(t.hidden_size), M = double(t.intermediate_size);
    flops += 6 * B * tokens * L * (4 * D * D + 2 * D * M);  // q, k, v, out projections and the MLP
    flops += 12 * B * L * tokens * tokens * D;              // q k^T and probs @ v
  }
  const double E = double(c.projection_dim);
  flops += 6 * B * n_patches * 3 * P * P * double(c.vision.hidden_size);          // patch embedding
  flops += 6 * B * double(c.vision.hidden_size + c.text.hidden_size) * E;          // projections
  flops += 6 * B * B * E;                                                          // logits in the loss
  return flops;
}

// Dense bf16 tensor-core peaks by a substring of the device name (as bench/torch_clip_step.py).
double peak_bf16_tflops(const std::string& name) {
  for (const auto& [key, peak] : {std::pair<const char*, double>{"H200", 989.4}, {"H100 NVL", 835.5},
                                  {"H100 PCIe", 756.5}, {"H100", 989.4}, {"A100", 312.0}})
    if (name.find(key) != std::string::npos) return peak;
  return 0.0;
}

void run_bench_step(const BenchOptions& o) {
  MINIVL_CHECK(o.steps >= 1 && o.warmup >= 1 && o.phase_steps >= 0,
               "bench-step: need --steps >= 1, --warmup >= 1 (the counted step follows it) and --phase-steps >= 0");
  const nn::ConfigSchema schema = models::clip_training_schema();
  const nn::Config c = nn::Config::load(o.config, schema, o.overrides);
  const Device device = parse_device(c.get_string("device"));
  const std::string precision = c.get_string("precision");
  default_generator().manual_seed(uint64_t(c.get_int("seed")));
  models::ClipConfig mc = models::clip_config_from_toml(c);
  if (o.flops_only) {  // the count alone: no model, no device
    const nlohmann::json j = {{"config", o.config}, {"batch_size", c.get_int("data.batch_size")},
                              {"flops_per_step", clip_step_flops(mc, c.get_int("data.batch_size"))}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  ClipModel model(mc);
  model.to(device);
  model.train();
  nn::DecayPolicy policy{c.get_float("optim.weight_decay")};
  nn::AdamW opt(nn::make_param_groups(model, policy),
                nn::AdamWOptions{c.get_float("optim.lr"), c.get_float("optim.beta1"), c.get_float("optim.beta2"),
                                 c.get_float("optim.eps")});
  const int64_t B = c.get_int("data.batch_size"), R = mc.vision.image_size, T = mc.text.max_position_embeddings;
  // Random pixels, and captions of random ids filling the whole context, end-of-text last.
  Tensor pixels = randn({B, 3, R, R}).to(device);
  std::vector<int64_t> ids(size_t(B * T), 0);
  for (int64_t b = 0; b < B; ++b) {
    ids[size_t(b * T)] = 49406 % mc.text.vocab_size;
    for (int64_t t = 1; t < T - 1; ++t) ids[size_t(b * T + t)] = (b * 7919 + t * 104729) % (mc.text.vocab_size - 2);
    ids[size_t(b * T + T - 1)] = mc.text.eos_token_id % mc.text.vocab_size;
  }
  Tensor input_ids = from_vector_i64(ids, {B, T}).to(device);
  const bool amp = precision != "f32";
  const DType amp_dtype = precision == "f16" ? DType::f16 : DType::bf16;
  // The host waits for the device (a one-element read after everything queued): between steps
  // only, never inside the step that is counted or timed.
  auto wait_for_device = [&]() { (void)model.logit_scale.item(); };
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  auto forward = [&]() {
    nn::AutocastGuard g(amp_dtype, amp);
    return model.loss(pixels, input_ids);
  };
  auto finish_step = [&]() {  // after the backward: the update and what a training step does after it
    opt.step();
    opt.zero_grad();
    model.clamp_logit_scale();
  };
  for (int64_t s = 0; s < o.warmup; ++s) {
    forward().backward();
    finish_step();
  }
  wait_for_device();
  // One steady-state step, counted (core/counters.h).
  const EngineCounters before = engine_counters();
  forward().backward();
  finish_step();
  const EngineCounters per_step = engine_counters() - before;
  wait_for_device();
  // Timed steps: the host runs ahead of the device inside a step, as in training.
  allocator_for(device)->reset_peak();
  std::vector<double> total;
  for (int64_t s = 0; s < o.steps; ++s) {
    const auto t0 = clock::now();
    forward().backward();
    finish_step();
    wait_for_device();
    total.push_back(ms(t0, clock::now()));
  }
  const int64_t peak_bytes = allocator_for(device)->stats().peak_allocated;
  // Phases, from separate steps that wait for the device after each phase (so they add up to more).
  std::vector<double> fwd, bwd, optim;
  for (int64_t s = 0; s < o.phase_steps; ++s) {
    const auto t0 = clock::now();
    Tensor loss = forward();
    wait_for_device();
    const auto t1 = clock::now();
    loss.backward();
    wait_for_device();
    const auto t2 = clock::now();
    finish_step();
    wait_for_device();
    const auto t3 = clock::now();
    fwd.push_back(ms(t0, t1));
    bwd.push_back(ms(t1, t2));
    optim.push_back(ms(t2, t3));
  }
  const double med = median(total), flops = clip_step_flops(mc, B);
  const std::string device_name = device.is_cuda() ? cuda_device_name() : "cpu";
  const double peak = o.peak_tflops > 0 ? o.peak_tflops : device.is_cuda() ? peak_bf16_tflops(device_name) : 0.0;
  const double tflops = med > 0 ? flops / (med * 1e-3) / 1e12 : 0.0;
  nlohmann::json j = {{"config", o.config},
                      {"device", c.get_string("device")},
                      {"device_name", device_name},
                      {"precision", precision},
                      {"batch_size", B},
                      {"parameters", model.num_parameters()},
                      {"steps", o.steps},
                      {"step_ms_median", med},
                      {"step_ms_min", *std::min_element(total.begin(), total.end())},
                      {"images_per_s", med > 0 ? 1000.0 * double(B) / med : 0.0},
                      {"flops_per_step", flops},
                      {"tflops_per_s", tflops},
                      {"peak_tflops", peak > 0 ? nlohmann::json(peak) : nlohmann::json()},
                      {"mfu", peak > 0 ? nlohmann::json(tflops / peak) : nlohmann::json()},
                      {"peak_memory_bytes", peak_bytes},
                      {"launches_per_step", per_step.launches},
                      {"syncs_per_step", per_step.syncs},
                      {"device_allocs_per_step", per_step.device_allocs},
                      {"host_device_bytes_per_step", per_step.host_device_bytes},
                      {"forward_ms_median", median(fwd)},
                      {"backward_ms_median", median(bwd)},
                      {"optimizer_ms_median", median(optim)}};
  std::printf("%s\n", j.dump().c_str());
}

// --model (required) and --vocab: what every subcommand that loads a CLIP model folder takes.
void add_model_folder_options(CLI::App* cmd, std::string& model, std::string& vocab,
                              const std::string& model_help = "Model folder") {
  cmd->add_option("--model", model, model_help)->required();
  cmd->add_option("--vocab", vocab, "Tokenizer files (overrides the folder's)");
}

}  // namespace

void register_clip_commands(CLI::App& app) {
  auto e = std::make_shared<EmbedOptions>();
  CLI::App* embed = app.add_subcommand("embed", "CLIP embeddings of images and texts as one JSON object");
  add_model_folder_options(embed, e->model, e->vocab,
                           "Model folder (config.json, model.safetensors, vocab.json, merges.txt)");
  embed->add_option("--image", e->images, "An image (repeatable)");
  embed->add_option("--text", e->texts, "A text (repeatable)");
  embed->callback([e] { run_embed(*e); });

  auto z = std::make_shared<ZeroshotOptions>();
  CLI::App* zs = app.add_subcommand("zeroshot", "Zero-shot classification of images over label names");
  add_model_folder_options(zs, z->model, z->vocab);
  zs->add_option("--image", z->images, "An image (repeatable)")->required();
  zs->add_option("--labels", z->labels, "Comma-separated class names")->required();
  zs->add_option("--templates", z->templates, "Prompt templates, one per line with {} (default 'a photo of a {}.')");
  add_numeric_option(zs, "--top", z->top, Bounds<int>{1, 1'000'000}, "Classes shown per image (default 5)");
  zs->add_flag("--json", z->json, "Print JSON instead of text");
  zs->callback([z] { run_zeroshot(*z); });

  auto v = std::make_shared<EvalOptions>();
  CLI::App* ev = app.add_subcommand("eval", "Zero-shot accuracy or retrieval recall of a model, as JSON");
  add_model_folder_options(ev, v->model, v->vocab);
  ev->add_option("--task", v->task, "zeroshot, retrieval, vqa or caption");
  ev->add_option("--data", v->data,
                 "fashion-mnist, a shapes folder (classes.json / captions.json), or a classes/captions JSON")
      ->required();
  ev->add_option("--split", v->split, "test (held-out val+test images, default), all, or train (Fashion-MNIST)");
  add_numeric_option(ev, "--limit", v->limit, Bounds<int64_t>{0, 1'000'000'000},
                     "At most this many images (zeroshot, retrieval, caption) or questions (vqa); 0 = all (default)");
  ev->callback([v] { run_eval(*v); });

  auto b = std::make_shared<BenchOptions>();
  CLI::App* bs = app.add_subcommand("bench-step", "Time full CLIP training steps (forward, backward, AdamW)");
  bs->add_option("--config", b->config, "Training config (TOML), e.g. configs/clip_tiny.toml")->required();
  bs->add_option("--set", b->overrides, "Override a config key: section.key=value (repeatable)");
  add_numeric_option(bs, "--steps", b->steps, Bounds<int64_t>{1, 1'000'000}, "Timed steps (default 20)");
  add_numeric_option(bs, "--warmup", b->warmup, Bounds<int64_t>{1, 1'000'000},
                     "Untimed steps first (default 3); the counted step follows them");
  add_numeric_option(bs, "--phase-steps", b->phase_steps, Bounds<int64_t>{0, 1'000'000},
                     "Extra steps timed per phase (forward, backward, optimizer; default 5, 0 = none)");
  bs->add_flag("--flops-only", b->flops_only, "Print the FLOP count of one step (bench/torch_clip_step.py's) and exit");
  add_numeric_option(bs, "--peak-tflops", b->peak_tflops, Bounds<double>{0.001, 10'000},
                     "The device's dense bf16 peak for the MFU (default: by GPU name; none on the CPU)");
  bs->callback([b] { run_bench_step(*b); });
}

}  // namespace minivl::tools
