// The "captioner" trainer (minivl train, model.name = "captioner") and its held-out evaluation (minivl
// eval --task caption). Data order: EpochCursor (models/epoch_cursor.h) over the training images; each image's caption
// for epoch e is drawn from a hash of (data.seed, e, image), so a resumed run sees exactly the batches it
// would have.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "core/ops.h"
#include "data/annotations.h"
#include "models/caption_metrics.h"
#include "models/captioner.h"
#include "models/decoding.h"
#include "models/image_store.h"
#include "models/shapes_config.h"
#include "models/vqa_caption_support.h"
#include "models/vqa_caption_train.h"

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

// The captioned images of the shapes folder `dir`: the training ones (with_train) and those of
// eval_split (at most `limit` of them; 0: all), at resolution R, with every image's captions.
CaptionData load_caption_data(const std::string& dir, int R, bool with_train, const std::string& eval_split,
                              int64_t limit) {
  CaptionData d{{}, {}, {}, ImageStore(R)};
  data::CaptionSet set = data::read_coco_captions((fs::path(dir) / "captions.json").string());
  std::unordered_map<int64_t, std::string> path_of;
  for (const auto& s : set.samples) {
    d.captions[s.image_id].push_back(s.caption);
    path_of[s.image_id] = s.image_path;
  }
  auto take = [&](const std::vector<int64_t>& ids, std::vector<int64_t>& into, int64_t at_most) {
    for (int64_t id : ids) {
      if (at_most > 0 && int64_t(into.size()) >= at_most) break;
      auto it = path_of.find(id);
      if (it == path_of.end()) continue;
      d.images.add_file(id, it->second);
      into.push_back(id);
    }
  };
  if (with_train) take(split_ids(dir, "train"), d.train_ids, 0);
  if (!eval_split.empty()) take(split_ids(dir, eval_split), d.eval_ids, limit);
  return d;
}

// Captions of `ids` (one at a time, beam search with the KV cache).
std::vector<std::string> caption_images(const CaptionerBundle& b, const std::vector<int64_t>& ids,
                                        const ImageStore& images, const DecodeOptions& o, Device device) {
  std::vector<std::string> out;
  for (int64_t id : ids) {
    const Hypothesis h = decode_caption(*b.model, images.batch({id}).to(device), o);
    out.push_back(b.vocab.decode(h.tokens));
  }
  return out;
}

// BLEU and CIDEr-D of the captions `cands` of `ids` against every reference caption of those images.
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

// <bos> w1 .. wn <eos> of each training image's first captions_per_image captions (0 = all; words
// beyond max_length - 1 cut).
std::vector<std::vector<std::vector<int64_t>>> caption_rows(const CaptionData& d, const WordVocab& vocab,
                                                            int64_t max_length, int64_t captions_per_image) {
  std::vector<std::vector<std::vector<int64_t>>> out;
  for (int64_t id : d.train_ids) {
    std::vector<std::vector<int64_t>> rows;
    for (const auto& s : d.captions.at(id)) {
      if (captions_per_image > 0 && int64_t(rows.size()) == captions_per_image) break;
      std::vector<int64_t> r = {WordVocab::kBos};
      for (int64_t w : vocab.encode(s)) r.push_back(w);
      if (int64_t(r.size()) > max_length) r.resize(size_t(max_length));
      r.push_back(WordVocab::kEos);  // targets reach max_length; the input stops one short
      rows.push_back(std::move(r));
    }
    out.push_back(std::move(rows));
  }
  return out;
}

class CaptionTrainer : public VisionLanguageTrainer<CaptionerBundle> {
 public:
  CaptionTrainer(const nn::Config& c, Device device)
      : VisionLanguageTrainer(c, device, "data.eval_images"), label_smoothing_(c.get_float("model.label_smoothing")) {
    decode_.beam = c.get_int("data.eval_beam");
    decode_.length_penalty = c.get_float("data.eval_length_penalty");
    CaptionerConfig mc;
    mc.vision = vision_tower_for_run(c);
    const std::string dir = shapes_folder(c, /*need_questions=*/true, /*quiet=*/false);
    data_ = load_caption_data(dir, int(mc.vision.image_size), true, "test", 0);
    MINIVL_CHECK(int64_t(data_.train_ids.size()) >= batch_, "captioner: fewer training images than one batch");
    std::vector<std::string> texts;
    for (int64_t id : data_.train_ids)
      for (const auto& s : data_.captions.at(id)) texts.push_back(s);
    bundle_.vocab = WordVocab::build(texts, 1);
    mc.joint = joint_encoder_from_keys(c);
    mc.max_length = c.get_int("model.max_length");
    mc.tie_embeddings = c.get_bool("model.tie_embeddings");
    mc.vocab_size = bundle_.vocab.size();
    decode_.max_length = mc.max_length;
    bundle_.model = std::make_shared<Captioner>(mc);
    start_model(c);
    tokens_ = caption_rows(data_, bundle_.vocab, mc.max_length, c.get_int("data.captions_per_image"));
    print_ready("captioner: %zu training images, %zu held out, %lld words", data_.train_ids.size(),
                data_.eval_ids.size(), (long long)bundle_.vocab.size());
  }

  Tensor train_loss() override {
    const std::vector<int64_t> idx = cursor_.next(int64_t(data_.train_ids.size()), batch_);
    std::vector<int64_t> img_ids;
    std::vector<std::vector<int64_t>> rows;
    for (int64_t i : idx) {
      img_ids.push_back(data_.train_ids[size_t(i)]);
      const auto& caps = tokens_[size_t(i)];
      rows.push_back(caps[size_t(mix(cursor_.seed, uint64_t(cursor_.epoch), uint64_t(i)) % caps.size())]);
    }
    return bundle_.model->loss(data_.images.batch(img_ids).to(device_), pad_id_rows(rows).to(device_), label_smoothing_);
  }

 private:
  int64_t held_out_size() const override { return int64_t(data_.eval_ids.size()); }
  std::map<std::string, double> evaluate_first(size_t n) override {
    std::vector<int64_t> ids(data_.eval_ids.begin(), data_.eval_ids.begin() + ptrdiff_t(n));
    const CaptionScores s = score_captions(ids, caption_images(bundle_, ids, data_.images, decode_, device_), data_.captions);
    return {{"bleu4", s.bleu.bleu[3]}, {"bleu1", s.bleu.bleu[0]}, {"cider", s.cider}};
  }

  double label_smoothing_;
  CaptionData data_;
  std::vector<std::vector<std::vector<int64_t>>> tokens_;  // per training image, per caption: its row
  DecodeOptions decode_;
};

}  // namespace

namespace train_support {
void register_caption_trainer() {
  const char* description = "Image captioner (CLIP ViT + transformer decoder) on the shapes world's COCO captions";
  register_vision_language_trainer<CaptionTrainer>("captioner", description, [](nn::ConfigSchema& s) {
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
  });
}

}  // namespace train_support

json run_eval_caption(const EvalVqaCaptionOptions& o) {
  CaptionerBundle b = CaptionerBundle::load(o.model);
  const CaptionData d = load_caption_data(o.data, int(b.model->config.vision.image_size), false, o.split, o.limit);
  MINIVL_CHECK(!d.eval_ids.empty(), "eval: no images in split '", o.split, "' of ", o.data);
  DecodeOptions dec;
  dec.beam = o.beam;
  dec.length_penalty = o.length_penalty;
  dec.max_length = std::min(o.max_length, b.model->config.max_length);
  const std::vector<std::string> caps = caption_images(b, d.eval_ids, d.images, dec, Device::cpu());
  json results = json::array();
  for (size_t i = 0; i < d.eval_ids.size(); ++i) results.push_back({{"image_id", d.eval_ids[i]}, {"caption", caps[i]}});
  const std::string path = write_eval_results(o, "caption", results);
  const CaptionScores s = score_captions(d.eval_ids, caps, d.captions);
  return {{"task", "caption"}, {"images", s.images}, {"beam", o.beam},
          {"bleu1", s.bleu.bleu[0]}, {"bleu2", s.bleu.bleu[1]}, {"bleu3", s.bleu.bleu[2]}, {"bleu4", s.bleu.bleu[3]},
          {"cider", s.cider}, {"results", path}};
}

}  // namespace minivl::models
