// The "vqa" and "captioner" trainers and their held-out evaluation. Data cursor {epoch, position}:
// batch p of epoch e holds order(e)[p B, (p + 1) B), order(e) a shuffle seeded by (data.seed, e); the
// captioner draws each image's caption for epoch e from a hash of (data.seed, e, image), so a resumed
// run sees exactly the batches it would have.
#include "models/vqa_caption_train.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <unordered_map>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/annotations.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "models/caption_metrics.h"
#include "models/captioner.h"
#include "models/decoding.h"
#include "models/shapes_config.h"
#include "models/vqa.h"
#include "models/vqa_metrics.h"
#include "nn/trainer.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

uint64_t mix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull ^ c * 0x94D049BB133111EBull;
  h ^= h >> 31;
  h *= 0xD6E8FEB86659FD93ull;
  return h ^ (h >> 32);
}

// Images at the model's resolution, u8 (N, R, R, 3), by image id.
struct ImageStore {
  int R = 0;
  std::vector<uint8_t> pixels;
  std::unordered_map<int64_t, int64_t> row_of;  // image id -> row
  void add(int64_t id, const std::string& path) {
    if (row_of.count(id)) return;
    data::Image x = data::center_crop(data::resize_short_side(data::read_image(path), R), R, R);
    row_of[id] = int64_t(row_of.size());
    pixels.insert(pixels.end(), x.pixels.begin(), x.pixels.end());
  }
  Tensor batch(const std::vector<int64_t>& ids, const data::ClipPreprocessConfig& pre) const {
    Tensor out = empty({int64_t(ids.size()), 3, R, R});
    const size_t per = size_t(R) * R * 3;
    for (size_t b = 0; b < ids.size(); ++b) {
      const int64_t row = row_of.at(ids[b]);
      data::Image img;
      img.width = img.height = R;
      img.pixels.assign(pixels.begin() + ptrdiff_t(size_t(row) * per), pixels.begin() + ptrdiff_t(size_t(row + 1) * per));
      data::normalize_to_chw(img, pre, out.data<float>() + b * per);
    }
    return out;
  }
};

// Image ids of a split of a shapes folder: "train", "val", "test" (val + test, the held-out images), "all".
std::vector<int64_t> split_ids(const std::string& dir, const std::string& split) {
  std::ifstream in(fs::path(dir) / "splits.json");
  MINIVL_CHECK(in.good(), dir, ": no splits.json");
  const json s = json::parse(in);
  std::vector<int64_t> ids;
  std::vector<std::string> parts;
  if (split == "test") parts = {"val", "test"};
  else if (split == "all") parts = {"train", "val", "test"};
  else parts = {split};
  for (const auto& p : parts) {
    MINIVL_CHECK(s.contains(p), dir, "/splits.json has no '", p, "' split");
    for (const auto& id : s.at(p)) ids.push_back(id.get<int64_t>());
  }
  return ids;
}

// How the vision tower trains. model.freeze_vision and model.unfreeze_vision_at: a tower frozen for the
// whole run, or only for its first steps, while the new layers learn to read it (then fine-tuned, it is
// changed less); model.vision_lr_scale: its lr as a multiple of the schedule's while it trains.
struct VisionFreeze {
  bool frozen = false;
  int64_t unfreeze_at = 0;  // 0: never
  double lr_scale = 1.0;    // model.vision_lr_scale: the tower's lr multiplier while it trains
  explicit VisionFreeze(const nn::Config& c)
      : frozen(c.get_bool("model.freeze_vision")),
        unfreeze_at(c.get_int("model.unfreeze_vision_at")),
        lr_scale(c.get_float("model.vision_lr_scale")) {
    MINIVL_CHECK(unfreeze_at == 0 || frozen, "model.unfreeze_vision_at = ", unfreeze_at,
                 " needs model.freeze_vision = true (the tower is trained from the start otherwise)");
  }
  bool at(int64_t step) const { return frozen && (unfreeze_at == 0 || step < unfreeze_at); }
  double lr_scale_of(const std::string& parameter) const {
    return parameter.rfind("vision_model.", 0) == 0 ? lr_scale : 1.0;
  }
};

void add_vision_keys(nn::ConfigSchema& s) {
  s.add_int("model.image_size", 32, "input resolution R", 8);
  s.add_int("model.patch_size", 8, "ViT patch size", 1);
  s.add_int("model.vision_width", 64, "vision hidden size", 8);
  s.add_int("model.vision_layers", 3, "vision encoder layers", 0);
  s.add_int("model.vision_heads", 2, "vision attention heads", 1);
  s.add_int("model.vision_mlp", 256, "vision MLP hidden size", 1);
  s.add_string("model.hidden_act", "quick_gelu", "vision MLP activation", {"quick_gelu", "gelu"});
  s.add_string("model.vision_init", "", "a CLIP run dir or model folder to start the vision tower from");
  s.add_bool("model.freeze_vision", false, "keep the vision tower fixed (with vision_init)");
  s.add_int("model.unfreeze_vision_at", 0, "with freeze_vision: train the tower too from this step on (0 = never)", 0);
  s.add_float("model.vision_lr_scale", 1.0, "the vision tower's lr as a multiple of the schedule's", 0.0, 100.0);
  s.add_int("model.hidden", 128, "hidden size of the joint encoder / decoder", 8);
  s.add_int("model.layers", 2, "joint encoder / decoder layers", 1);
  s.add_int("model.heads", 4, "attention heads", 1);
  s.add_int("model.mlp", 512, "MLP hidden size", 1);
  s.add_float("model.dropout", 0.0, "dropout on residual branches", 0.0, 0.9);
  s.add_string("data.dataset", "shapes", "the data", {"shapes"});
  s.add_string("data.path", "datasets/shapes", "shapes folder (generated when missing)");
  add_shapes_generate_keys(s);
  s.add_int("data.seed", 1234, "seed of the data order", 0);
}

ClipTowerConfig vision_from_config(const nn::Config& c) {
  const std::string init = c.get_string("model.vision_init");
  if (!init.empty()) return clip_vision_config(init);
  ClipTowerConfig v;
  v.image_size = c.get_int("model.image_size");
  v.patch_size = c.get_int("model.patch_size");
  v.hidden_size = c.get_int("model.vision_width");
  v.num_hidden_layers = c.get_int("model.vision_layers");
  v.num_attention_heads = c.get_int("model.vision_heads");
  v.intermediate_size = c.get_int("model.vision_mlp");
  v.hidden_act = c.get_string("model.hidden_act");
  MINIVL_CHECK(v.image_size % v.patch_size == 0, "model.image_size ", v.image_size, " is not a multiple of model.patch_size ",
               v.patch_size);
  return vision_config_from_json(vision_config_to_json(v));
}

// Shuffled order per epoch and the cursor.
struct Cursor {
  uint64_t seed = 0;
  int64_t epoch = 0, position = 0, order_epoch = -1;
  std::vector<int64_t> order;
  std::vector<int64_t> next(int64_t n, int64_t batch) {
    const int64_t per_epoch = n / batch;
    if (position >= per_epoch) {
      ++epoch;
      position = 0;
    }
    if (order_epoch != epoch) {
      order.resize(size_t(n));
      std::iota(order.begin(), order.end(), 0);
      std::mt19937_64 rng(mix(seed, uint64_t(epoch), 0x5EED));
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[size_t(rng() % i)]);
      order_epoch = epoch;
    }
    std::vector<int64_t> idx(order.begin() + position * batch, order.begin() + (position + 1) * batch);
    ++position;
    return idx;
  }
  json to_json() const { return {{"epoch", epoch}, {"position", position}}; }
  void from_json(const json& j) {
    epoch = j.at("epoch").get<int64_t>();
    position = j.at("position").get<int64_t>();
  }
};

void write_summary(const std::string& run_dir, const std::string& model_dir, const std::map<std::string, double>& ev) {
  json s = json::object();
  for (const auto& [k, v] : ev) s[k] = v;
  s["model"] = model_dir;
  std::ofstream(fs::path(run_dir) / "summary.json", std::ios::trunc) << s.dump(2) << "\n";
}

// The end of a run: the model folder (saved from the CPU), then the summary.
template <typename Bundle>
void export_model_folder(Bundle& bundle, Device device, const std::string& run_dir,
                         const std::map<std::string, double>& final_eval) {
  const std::string dir = (fs::path(run_dir) / "model").string();
  bundle.model->to(Device::cpu());
  bundle.save(dir);
  bundle.model->to(device);
  write_summary(run_dir, dir, final_eval);
  std::printf("model folder: %s\n", dir.c_str());
}

// ---------------- VQA ----------------

struct VqaData {
  std::vector<data::VqaSample> train, eval;
  ImageStore images;
};

VqaData load_vqa_data(const std::string& dir, int R, const std::string& eval_split) {
  VqaData d;
  d.images.R = R;
  data::VqaSet set = data::read_vqa((fs::path(dir) / "vqa" / "questions.json").string(),
                                    (fs::path(dir) / "vqa" / "annotations.json").string());
  std::unordered_map<int64_t, int> which;
  for (int64_t id : split_ids(dir, "train")) which[id] = 1;
  if (!eval_split.empty())
    for (int64_t id : split_ids(dir, eval_split)) which[id] = 2;
  for (auto& s : set.samples) {
    auto it = which.find(s.image_id);
    if (it == which.end()) continue;
    d.images.add(s.image_id, s.image_path);
    (it->second == 1 ? d.train : d.eval).push_back(std::move(s));
  }
  return d;
}

// Predicted answers of `samples` (batched), as strings.
std::vector<std::string> vqa_predict(const VqaBundle& b, const std::vector<const data::VqaSample*>& samples,
                                     const ImageStore& images, Device device) {
  NoGradGuard no_grad;
  data::ClipPreprocessConfig pre;
  pre.image_size = images.R;
  std::vector<std::string> out;
  for (size_t i = 0; i < samples.size(); i += 256) {
    const size_t e = std::min(samples.size(), i + 256);
    std::vector<int64_t> img_ids;
    std::vector<std::vector<int64_t>> rows;
    for (size_t j = i; j < e; ++j) {
      img_ids.push_back(samples[j]->image_id);
      rows.push_back(b.question_ids(samples[j]->question));
    }
    Tensor logits = b.model->forward(images.batch(img_ids, pre).to(device), pad_id_rows(rows, WordVocab::kPad).to(device));
    const std::vector<double> best = argmax(logits, 1).to_vector();
    for (double a : best) out.push_back(b.answers[size_t(a)]);
  }
  return out;
}

VqaScores score_predictions(const std::vector<const data::VqaSample*>& samples, const std::vector<std::string>& pred) {
  std::vector<VqaEvalItem> items;
  for (size_t i = 0; i < samples.size(); ++i)
    items.push_back({samples[i]->answers, {}, samples[i]->answer_type, samples[i]->question_type, pred[i]});
  return vqa_evaluate(items);
}

class VqaTrainer : public nn::Trainer {
 public:
  VqaTrainer(const nn::Config& c, Device device)
      : device_(device), batch_(c.get_int("data.batch_size")), freeze_(c) {
    const auto t0 = std::chrono::steady_clock::now();
    cursor_.seed = uint64_t(c.get_int("data.seed"));
    eval_questions_ = c.get_int("data.eval_questions");
    VqaConfig mc;
    mc.vision = vision_from_config(c);
    const std::string dir = shapes_folder(c, /*need_questions=*/true, /*quiet=*/false);
    data_ = load_vqa_data(dir, int(mc.vision.image_size), "test");
    MINIVL_CHECK(int64_t(data_.train.size()) >= batch_, "vqa: fewer training questions than one batch");
    std::vector<std::vector<std::string>> answer_lists;
    std::vector<std::string> questions;
    for (const auto& s : data_.train) {
      answer_lists.push_back(s.answers);
      questions.push_back(s.question);
    }
    bundle_.answers = build_answer_vocab(answer_lists, c.get_int("data.answer_min_count"));
    for (size_t i = 0; i < bundle_.answers.size(); ++i) answer_index_[bundle_.answers[i]] = int64_t(i);
    bundle_.vocab = WordVocab::build(questions, 1);
    mc.hidden = c.get_int("model.hidden");
    mc.layers = c.get_int("model.layers");
    mc.heads = c.get_int("model.heads");
    mc.mlp = c.get_int("model.mlp");
    mc.dropout = c.get_float("model.dropout");
    mc.freeze_vision = freeze_.at(0);
    mc.max_question_len = c.get_int("model.max_question_len");
    mc.vocab_size = bundle_.vocab.size();
    mc.num_answers = int64_t(bundle_.answers.size());
    bundle_.model = std::make_shared<VqaModel>(mc);
    if (c.get_string("model.image_position_init") == "sincos") {
      const int64_t grid = mc.vision.image_size / mc.vision.patch_size;
      const Tensor table = sincos_2d_positions(grid, mc.hidden) * c.get_float("model.image_position_scale");
      bundle_.model->image_position->weight.detach().copy_(table);
    }
    if (!c.get_string("model.vision_init").empty()) load_clip_vision(*bundle_.model->vision_model, c.get_string("model.vision_init"));
    bundle_.model->to(device);
    pre_.image_size = int(mc.vision.image_size);
    std::printf("vqa: %zu training questions, %zu held out, %zu answers, %lld question words, %.2fM parameters "
                "(data ready in %.1fs)\n", data_.train.size(), data_.eval.size(), bundle_.answers.size(),
                (long long)bundle_.vocab.size(), double(bundle_.model->num_parameters()) / 1e6,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fflush(stdout);
  }
  nn::Module& model() override { return *bundle_.model; }
  void before_step(int64_t step) override { bundle_.model->config.freeze_vision = freeze_.at(step); }
  double lr_scale(const std::string& parameter) const override { return freeze_.lr_scale_of(parameter); }
  int64_t examples_per_batch() const override { return batch_; }
  Tensor train_loss() override {
    const std::vector<int64_t> idx = cursor_.next(int64_t(data_.train.size()), batch_);
    std::vector<int64_t> img_ids;
    std::vector<std::vector<int64_t>> rows;
    std::vector<float> targets;
    const int64_t A = int64_t(bundle_.answers.size());
    for (int64_t i : idx) {
      const auto& s = data_.train[size_t(i)];
      img_ids.push_back(s.image_id);
      rows.push_back(bundle_.question_ids(s.question));
      auto t = vqa_soft_targets(s.answers, answer_index_, A);
      targets.insert(targets.end(), t.begin(), t.end());
    }
    Tensor y = empty({int64_t(idx.size()), A});
    std::copy(targets.begin(), targets.end(), y.data<float>());
    Tensor logits = bundle_.model->forward(data_.images.batch(img_ids, pre_).to(device_),
                                           pad_id_rows(rows, WordVocab::kPad).to(device_));
    return VqaModel::loss(logits, y.to(device_));
  }
  std::map<std::string, double> evaluate(int64_t) override {
    std::vector<const data::VqaSample*> s;
    const size_t n = eval_questions_ > 0 ? std::min(size_t(eval_questions_), data_.eval.size()) : data_.eval.size();
    for (size_t i = 0; i < n; ++i) s.push_back(&data_.eval[i]);
    const VqaScores sc = score_predictions(s, vqa_predict(bundle_, s, data_.images, device_));
    std::map<std::string, double> m = {{"vqa_accuracy", sc.overall}};
    for (const auto& [k, v] : sc.per_answer_type) m["vqa_" + k] = v;
    return m;
  }
  json data_cursor() const override { return cursor_.to_json(); }
  void set_data_cursor(const json& j) override { cursor_.from_json(j); }
  void finish(const std::string& run_dir, const std::map<std::string, double>& final_eval) override {
    export_model_folder(bundle_, device_, run_dir, final_eval);
  }

 private:
  Device device_;
  int64_t batch_, eval_questions_ = 0;
  VisionFreeze freeze_;
  Cursor cursor_;
  VqaData data_;
  VqaBundle bundle_;
  std::unordered_map<std::string, int64_t> answer_index_;
  data::ClipPreprocessConfig pre_;
};

// ---------------- captioning ----------------

struct CaptionData {
  std::vector<int64_t> train_ids, eval_ids;                      // image ids
  std::unordered_map<int64_t, std::vector<std::string>> captions;  // raw, per image
  ImageStore images;
};

CaptionData load_caption_data(const std::string& dir, int R, const std::string& eval_split) {
  CaptionData d;
  d.images.R = R;
  data::CaptionSet set = data::read_coco_captions((fs::path(dir) / "captions.json").string());
  std::unordered_map<int64_t, std::string> path_of;
  for (const auto& s : set.samples) {
    d.captions[s.image_id].push_back(s.caption);
    path_of[s.image_id] = s.image_path;
  }
  auto take = [&](const std::vector<int64_t>& ids, std::vector<int64_t>& into) {
    for (int64_t id : ids) {
      auto it = path_of.find(id);
      if (it == path_of.end()) continue;
      d.images.add(id, it->second);
      into.push_back(id);
    }
  };
  take(split_ids(dir, "train"), d.train_ids);
  if (!eval_split.empty()) take(split_ids(dir, eval_split), d.eval_ids);
  return d;
}

// Captions of `ids` (one at a time, beam search with the KV cache) and their BLEU / CIDEr-D.
std::vector<std::string> caption_images(const CaptionerBundle& b, const std::vector<int64_t>& ids,
                                        const ImageStore& images, const DecodeOptions& o, Device device) {
  data::ClipPreprocessConfig pre;
  pre.image_size = images.R;
  std::vector<std::string> out;
  for (int64_t id : ids) {
    const Hypothesis h = decode_caption(*b.model, images.batch({id}, pre).to(device), o);
    out.push_back(b.vocab.decode(h.tokens));
  }
  return out;
}

CaptionScores score_captions(const std::vector<int64_t>& ids, const std::vector<std::string>& cands,
                             const std::unordered_map<int64_t, std::vector<std::string>>& captions) {
  std::vector<std::vector<std::string>> refs;
  std::vector<std::string> c;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<std::string> r;
    for (const auto& s : captions.at(ids[i])) r.push_back(caption_tokenize(s));
    refs.push_back(std::move(r));
    c.push_back(caption_tokenize(cands[i]));
  }
  CaptionScores s;
  s.bleu = corpus_bleu(refs, c);
  s.cider = cider_d(refs, c);
  s.images = int64_t(ids.size());
  return s;
}

class CaptionTrainer : public nn::Trainer {
 public:
  CaptionTrainer(const nn::Config& c, Device device)
      : device_(device), batch_(c.get_int("data.batch_size")), freeze_(c) {
    const auto t0 = std::chrono::steady_clock::now();
    cursor_.seed = uint64_t(c.get_int("data.seed"));
    eval_images_ = c.get_int("data.eval_images");
    label_smoothing_ = c.get_float("model.label_smoothing");
    decode_.beam = c.get_int("data.eval_beam");
    decode_.length_penalty = c.get_float("data.eval_length_penalty");
    CaptionerConfig mc;
    mc.vision = vision_from_config(c);
    const std::string dir = shapes_folder(c, /*need_questions=*/true, /*quiet=*/false);
    data_ = load_caption_data(dir, int(mc.vision.image_size), "test");
    MINIVL_CHECK(int64_t(data_.train_ids.size()) >= batch_, "captioner: fewer training images than one batch");
    std::vector<std::string> texts;
    for (int64_t id : data_.train_ids)
      for (const auto& s : data_.captions.at(id)) texts.push_back(s);
    bundle_.vocab = WordVocab::build(texts, 1);
    mc.hidden = c.get_int("model.hidden");
    mc.layers = c.get_int("model.layers");
    mc.heads = c.get_int("model.heads");
    mc.mlp = c.get_int("model.mlp");
    mc.dropout = c.get_float("model.dropout");
    mc.max_length = c.get_int("model.max_length");
    mc.tie_embeddings = c.get_bool("model.tie_embeddings");
    mc.freeze_vision = freeze_.at(0);
    mc.vocab_size = bundle_.vocab.size();
    decode_.max_length = mc.max_length;
    bundle_.model = std::make_shared<Captioner>(mc);
    if (!c.get_string("model.vision_init").empty()) load_clip_vision(*bundle_.model->vision_model, c.get_string("model.vision_init"));
    bundle_.model->to(device);
    pre_.image_size = int(mc.vision.image_size);
    for (int64_t id : data_.train_ids) {
      std::vector<std::vector<int64_t>> rows;
      for (const auto& s : data_.captions.at(id)) {
        std::vector<int64_t> r = {WordVocab::kBos};
        for (int64_t w : bundle_.vocab.encode(s)) r.push_back(w);
        if (int64_t(r.size()) > mc.max_length) r.resize(size_t(mc.max_length));
        r.push_back(WordVocab::kEos);  // targets reach max_length; the input stops one short
        rows.push_back(std::move(r));
      }
      tokens_.push_back(std::move(rows));
    }
    std::printf("captioner: %zu training images, %zu held out, %lld words, %.2fM parameters (data ready in %.1fs)\n",
                data_.train_ids.size(), data_.eval_ids.size(), (long long)bundle_.vocab.size(),
                double(bundle_.model->num_parameters()) / 1e6,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    std::fflush(stdout);
  }
  nn::Module& model() override { return *bundle_.model; }
  void before_step(int64_t step) override { bundle_.model->config.freeze_vision = freeze_.at(step); }
  double lr_scale(const std::string& parameter) const override { return freeze_.lr_scale_of(parameter); }
  int64_t examples_per_batch() const override { return batch_; }
  Tensor train_loss() override {
    const std::vector<int64_t> idx = cursor_.next(int64_t(data_.train_ids.size()), batch_);
    std::vector<int64_t> img_ids;
    std::vector<std::vector<int64_t>> rows;
    for (int64_t i : idx) {
      img_ids.push_back(data_.train_ids[size_t(i)]);
      const auto& caps = tokens_[size_t(i)];
      rows.push_back(caps[size_t(mix(cursor_.seed, uint64_t(cursor_.epoch), uint64_t(i)) % caps.size())]);
    }
    return bundle_.model->loss(data_.images.batch(img_ids, pre_).to(device_), pad_id_rows(rows, WordVocab::kPad).to(device_),
                               label_smoothing_);
  }
  std::map<std::string, double> evaluate(int64_t) override {
    const size_t n = eval_images_ > 0 ? std::min(size_t(eval_images_), data_.eval_ids.size()) : data_.eval_ids.size();
    std::vector<int64_t> ids(data_.eval_ids.begin(), data_.eval_ids.begin() + ptrdiff_t(n));
    const CaptionScores s = score_captions(ids, caption_images(bundle_, ids, data_.images, decode_, device_), data_.captions);
    return {{"bleu4", s.bleu.bleu[3]}, {"bleu1", s.bleu.bleu[0]}, {"cider", s.cider}};
  }
  json data_cursor() const override { return cursor_.to_json(); }
  void set_data_cursor(const json& j) override { cursor_.from_json(j); }
  void finish(const std::string& run_dir, const std::map<std::string, double>& final_eval) override {
    export_model_folder(bundle_, device_, run_dir, final_eval);
  }

 private:
  Device device_;
  int64_t batch_, eval_images_ = 0;
  double label_smoothing_ = 0.1;
  VisionFreeze freeze_;
  Cursor cursor_;
  CaptionData data_;
  CaptionerBundle bundle_;
  std::vector<std::vector<std::vector<int64_t>>> tokens_;
  data::ClipPreprocessConfig pre_;
  DecodeOptions decode_;
};

}  // namespace

void register_vqa_caption_trainers() {
  nn::TrainerInfo vqa;
  vqa.name = "vqa";
  vqa.description = "ViLT-style VQA classifier (CLIP ViT + joint encoder) on the shapes world's VQA v2 files";
  vqa.extend_schema = [](nn::ConfigSchema& s) {
    add_vision_keys(s);
    s.add_int("model.max_question_len", 16, "question tokens, [CLS] included", 2);
    s.add_string("model.image_position_init", "normal",
                 "the joint encoder's image position embeddings start as N(0, 0.02^2) (normal) or as a 2-d sine-cosine "
                 "table (sincos: position as a smooth function of row and column)", {"normal", "sincos"});
    s.add_float("model.image_position_scale", 1.0, "with image_position_init = sincos: the table's scale", 0.0, 100.0);
    s.add_int("data.answer_min_count", 9, "answers seen at least this often form the vocabulary (VQA v2: 9)", 1);
    s.add_int("data.eval_questions", 4000, "held-out questions per evaluation (0 = all)", 0);
  };
  vqa.create = [](const nn::Config& c, Device device) -> std::unique_ptr<nn::Trainer> {
    return std::make_unique<VqaTrainer>(c, device);
  };
  nn::register_trainer(std::move(vqa));

  nn::TrainerInfo cap;
  cap.name = "captioner";
  cap.description = "Image captioner (CLIP ViT + transformer decoder) on the shapes world's COCO captions";
  cap.extend_schema = [](nn::ConfigSchema& s) {
    add_vision_keys(s);
    s.add_int("model.max_length", 32, "decoder positions (<bos> included)", 4);
    s.add_bool("model.tie_embeddings", true, "tie the token embedding to the output projection");
    s.add_float("model.label_smoothing", 0.1, "label smoothing of the teacher-forcing loss", 0.0, 0.9);
    s.add_int("data.eval_images", 300, "held-out images captioned per evaluation (0 = all)", 0);
    s.add_int("data.eval_beam", 3, "beam width of the evaluation captions", 1);
    s.add_float("data.eval_length_penalty", 0.5, "beam score / length^penalty of the evaluation captions", 0.0, 5.0);
  };
  cap.create = [](const nn::Config& c, Device device) -> std::unique_ptr<nn::Trainer> {
    return std::make_unique<CaptionTrainer>(c, device);
  };
  nn::register_trainer(std::move(cap));
}

// ---------------- minivl eval --task vqa|caption ----------------

json run_eval_vqa(const EvalVqaCaptionOptions& o) {
  VqaBundle b = VqaBundle::load(o.model);
  VqaData d;
  d.images.R = int(b.model->config.vision.image_size);
  std::vector<int64_t> ids = split_ids(o.data, o.split);
  std::unordered_map<int64_t, bool> want;
  for (int64_t id : ids) want[id] = true;
  data::VqaSet set = data::read_vqa((fs::path(o.data) / "vqa" / "questions.json").string(),
                                    (fs::path(o.data) / "vqa" / "annotations.json").string());
  std::vector<data::VqaSample> samples;
  for (auto& s : set.samples)
    if (want.count(s.image_id)) {
      d.images.add(s.image_id, s.image_path);
      samples.push_back(std::move(s));
      if (o.limit > 0 && int64_t(samples.size()) >= o.limit) break;
    }
  MINIVL_CHECK(!samples.empty(), "eval: no questions in split '", o.split, "' of ", o.data);
  std::vector<const data::VqaSample*> ptrs;
  for (const auto& s : samples) ptrs.push_back(&s);
  const std::vector<std::string> pred = vqa_predict(b, ptrs, d.images, Device::cpu());
  json results = json::array();
  for (size_t i = 0; i < samples.size(); ++i) {
    results.push_back({{"question_id", samples[i].question_id}, {"answer", pred[i]}});
  }
  const std::string path = o.results.empty() ? (fs::path(o.model) / "results_vqa.json").string() : o.results;
  std::ofstream(path, std::ios::trunc) << results.dump() << "\n";
  const VqaScores s = score_predictions(ptrs, pred);
  json j = {{"task", "vqa"}, {"questions", s.questions}, {"overall", s.overall}, {"results", path}};
  j["per_answer_type"] = json::object();
  for (const auto& [k, v] : s.per_answer_type) j["per_answer_type"][k] = v;
  return j;
}

json run_eval_caption(const EvalVqaCaptionOptions& o) {
  CaptionerBundle b = CaptionerBundle::load(o.model);
  CaptionData d;
  d.images.R = int(b.model->config.vision.image_size);
  data::CaptionSet set = data::read_coco_captions((fs::path(o.data) / "captions.json").string());
  std::unordered_map<int64_t, std::string> path_of;
  for (const auto& s : set.samples) {
    d.captions[s.image_id].push_back(s.caption);
    path_of[s.image_id] = s.image_path;
  }
  std::vector<int64_t> ids;
  for (int64_t id : split_ids(o.data, o.split)) {
    if (!d.captions.count(id)) continue;
    ids.push_back(id);
    if (o.limit > 0 && int64_t(ids.size()) >= o.limit) break;
  }
  MINIVL_CHECK(!ids.empty(), "eval: no images in split '", o.split, "' of ", o.data);
  for (int64_t id : ids) d.images.add(id, path_of.at(id));
  DecodeOptions dec;
  dec.beam = o.beam;
  dec.length_penalty = o.length_penalty;
  dec.max_length = std::min(o.max_length, b.model->config.max_length);
  const std::vector<std::string> caps = caption_images(b, ids, d.images, dec, Device::cpu());
  json results = json::array();
  for (size_t i = 0; i < ids.size(); ++i) results.push_back({{"image_id", ids[i]}, {"caption", caps[i]}});
  const std::string path = o.results.empty() ? (fs::path(o.model) / "results_caption.json").string() : o.results;
  std::ofstream(path, std::ios::trunc) << results.dump() << "\n";
  const CaptionScores s = score_captions(ids, caps, d.captions);
  return {{"task", "caption"}, {"images", s.images}, {"beam", o.beam},
          {"bleu1", s.bleu.bleu[0]}, {"bleu2", s.bleu.bleu[1]}, {"bleu3", s.bleu.bleu[2]}, {"bleu4", s.bleu.bleu[3]},
          {"cider", s.cider}, {"results", path}};
}

}  // namespace minivl::models
