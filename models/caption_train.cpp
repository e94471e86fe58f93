// The "captioner" trainer (minivl train, model.name = "captioner") and its held-out evaluation (minivl
// eval --task caption). Data order: EpochCursor (models/epoch_cursor.h) over the training images; each image's caption
// for epoch e is drawn from a hash of (data.seed, e, image), so a resumed run sees exactly the batches it
// would have.
#include "models/vqa_caption_train.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <unordered_map>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/annotations.h"
#include "data/preprocess.h"
#include "models/caption_metrics.h"
#include "models/captioner.h"
#include "models/decoding.h"
#include "models/shapes_config.h"
#include "models/vqa_caption_support.h"
#include "nn/trainer.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace train_support;

namespace {
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
      : device_(device),
        batch_(c.get_int("data.batch_size")),
        eval_images_(c.get_int("data.eval_images")),
        label_smoothing_(c.get_float("model.label_smoothing")),
        freeze_(c) {
    const auto t0 = std::chrono::steady_clock::now();
    cursor_.seed = uint64_t(c.get_int("data.seed"));
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
    read_joint_keys(c, mc);
    mc.max_length = c.get_int("model.max_length");
    mc.tie_embeddings = c.get_bool("model.tie_embeddings");
    mc.freeze_vision = freeze_.at(0);
    mc.vocab_size = bundle_.vocab.size();
    decode_.max_length = mc.max_length;
    bundle_.model = std::make_shared<Captioner>(mc);
    if (!c.get_string("model.vision_init").empty()) load_clip_vision(*bundle_.model->vision_model, c.get_string("model.vision_init"));
    bundle_.model->to(device);
    pre_.image_size = int(mc.vision.image_size);
    const int64_t captions_per_image = c.get_int("data.captions_per_image");
    for (int64_t id : data_.train_ids) {
      std::vector<std::vector<int64_t>> rows;
      for (const auto& s : data_.captions.at(id)) {
        if (captions_per_image > 0 && int64_t(rows.size()) == captions_per_image) break;
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
  // The first data.eval_images held-out images (0: all), at most `batches` batches of them (0: no limit).
  std::map<std::string, double> evaluate(int64_t batches) override {
    const int64_t held_out = int64_t(data_.eval_ids.size());
    const size_t n = size_t(
        nn::eval_example_limit(eval_images_ > 0 ? std::min(eval_images_, held_out) : held_out, batches, batch_));
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
  int64_t batch_, eval_images_;
  double label_smoothing_;
  VisionFreeze freeze_;
  EpochCursor cursor_;
  CaptionData data_;
  CaptionerBundle bundle_;
  std::vector<std::vector<std::vector<int64_t>>> tokens_;
  data::ClipPreprocessConfig pre_;
  DecodeOptions decode_;
};

}  // namespace

namespace train_support {
void register_caption_trainer() {
  nn::TrainerInfo cap;
  cap.name = "captioner";
  cap.description = "Image captioner (CLIP ViT + transformer decoder) on the shapes world's COCO captions";
  cap.extend_schema = [](nn::ConfigSchema& s) {
    add_vision_keys(s);
    s.add_int("model.max_length", 32, "decoder positions (<bos> included)", 4);
    s.add_bool("model.tie_embeddings", true, "tie the token embedding to the output projection");
    s.add_float("model.label_smoothing", 0.1, "label smoothing of the teacher-forcing loss", 0.0, 0.9);
    s.add_int("data.captions_per_image", 0, "train on each image's first K captions only (0 = all)", 0);
    s.add_int("data.eval_images", 300, "held-out images captioned per evaluation (0 = all)", 0);
    s.add_int("eval.batches", 0,
              "caption at most this many batches of data.batch_size held-out images per evaluation (0 = "
              "data.eval_images of them)", 0);
    s.add_int("data.eval_beam", 3, "beam width of the evaluation captions", 1);
    s.add_float("data.eval_length_penalty", 0.5, "beam score / length^penalty of the evaluation captions", 0.0, 5.0);
  };
  cap.create = [](const nn::Config& c, Device device) -> std::unique_ptr<nn::Trainer> {
    return std::make_unique<CaptionTrainer>(c, device);
  };
  nn::register_trainer(std::move(cap));
}

}  // namespace train_support

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
