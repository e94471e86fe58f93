// The "vqa" trainer (minivl train, model.name = "vqa") and its held-out evaluation (minivl eval --task
// vqa). Data order: EpochCursor (models/epoch_cursor.h) over the training questions, so a resumed run sees exactly the
// batches it would have.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/annotations.h"
#include "models/image_store.h"
#include "models/shapes_config.h"
#include "models/vqa.h"
#include "models/vqa_caption_support.h"
#include "models/vqa_caption_train.h"
#include "models/vqa_metrics.h"

namespace minivl::models {
namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace train_support;

namespace {
struct VqaData {
  std::vector<data::VqaSample> train, eval;
  ImageStore images;
};

// The questions of the shapes folder `dir` on the training images (with_train) and on the images of
// eval_split (at most `limit` of them; 0: all), with their images at resolution R.
VqaData load_vqa_data(const std::string& dir, int R, bool with_train, const std::string& eval_split, int64_t limit) {
  VqaData d{{}, {}, ImageStore(R)};
  data::VqaSet set = data::read_vqa((fs::path(dir) / "vqa" / "questions.json").string(),
                                    (fs::path(dir) / "vqa" / "annotations.json").string());
  std::unordered_map<int64_t, int> which;
  if (with_train)
    for (int64_t id : split_ids(dir, "train")) which[id] = 1;
  if (!eval_split.empty())
    for (int64_t id : split_ids(dir, eval_split)) which[id] = 2;
  for (auto& s : set.samples) {
    auto it = which.find(s.image_id);
    if (it == which.end()) continue;
    if (it->second == 2 && limit > 0 && int64_t(d.eval.size()) >= limit) continue;
    d.images.add_file(s.image_id, s.image_path);
    (it->second == 1 ? d.train : d.eval).push_back(std::move(s));
  }
  return d;
}

// Predicted answers of `samples` (batched), as strings.
std::vector<std::string> vqa_predict(const VqaBundle& b, const std::vector<const data::VqaSample*>& samples,
                                     const ImageStore& images, Device device) {
  NoGradGuard no_grad;
  std::vector<std::string> out;
  for (size_t i = 0; i < samples.size(); i += 256) {
    const size_t e = std::min(samples.size(), i + 256);
    std::vector<int64_t> img_ids;
    std::vector<std::vector<int64_t>> rows;
    for (size_t j = i; j < e; ++j) {
      img_ids.push_back(samples[j]->image_id);
      rows.push_back(b.question_ids(samples[j]->question));
    }
    Tensor logits = b.model->forward(images.batch(img_ids).to(device), pad_id_rows(rows).to(device));
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

std::vector<const data::VqaSample*> first_samples(const std::vector<data::VqaSample>& samples, size_t n) {
  std::vector<const data::VqaSample*> out;
  for (size_t i = 0; i < n; ++i) out.push_back(&samples[i]);
  return out;
}

class VqaTrainer : public VisionLanguageTrainer<VqaBundle> {
 public:
  VqaTrainer(const nn::Config& c, Device device) : VisionLanguageTrainer(c, device, "data.eval_questions") {
    VqaConfig mc;
    mc.vision = vision_tower_for_run(c);
    const std::string dir = shapes_folder(c, /*need_questions=*/true, /*quiet=*/false);
    data_ = load_vqa_data(dir, int(mc.vision.image_size), true, "test", 0);
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
    mc.joint = joint_encoder_from_keys(c);
    mc.text_embedding_norm = c.get_bool("model.text_embedding_norm");
    mc.max_question_len = c.get_int("model.max_question_len");
    mc.vocab_size = bundle_.vocab.size();
    mc.num_answers = int64_t(bundle_.answers.size());
    bundle_.model = std::make_shared<VqaModel>(mc);
    if (c.get_string("model.image_position_init") == "sincos") {
      const int64_t grid = mc.vision.image_size / mc.vision.patch_size;
      const Tensor table = sincos_2d_positions(grid, mc.joint.hidden) * c.get_float("model.image_position_scale");
      bundle_.model->image_position->weight.detach().copy_(table);
    }
    start_model(c);
    print_ready("vqa: %zu training questions, %zu held out, %zu answers, %lld question words", data_.train.size(),
                data_.eval.size(), bundle_.answers.size(), (long long)bundle_.vocab.size());
  }

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
    Tensor logits = bundle_.model->forward(data_.images.batch(img_ids).to(device_), pad_id_rows(rows).to(device_));
    return VqaModel::loss(logits, y.to(device_));
  }

 private:
  int64_t held_out_size() const override { return int64_t(data_.eval.size()); }
  std::map<std::string, double> evaluate_first(size_t n) override {
    const std::vector<const data::VqaSample*> s = first_samples(data_.eval, n);
    const VqaScores sc = score_predictions(s, vqa_predict(bundle_, s, data_.images, device_));
    std::map<std::string, double> m = {{"vqa_accuracy", sc.overall}};
    for (const auto& [k, v] : sc.per_answer_type) m["vqa_" + k] = v;
    return m;
  }

  VqaData data_;
  std::unordered_map<std::string, int64_t> answer_index_;
};

}  // namespace

namespace train_support {
void register_vqa_trainer() {
  const char* description = "ViLT-style VQA classifier (CLIP ViT + joint encoder) on the shapes world's VQA v2 files";
  register_vision_language_trainer<VqaTrainer>("vqa", description, [](nn::ConfigSchema& s) {
    s.add_int("model.max_question_len", 16, "question tokens, [CLS] included", 2);
    s.add_string("model.image_position_init", "normal",
                 "the joint encoder's image position embeddings start as N(0, 0.02^2) (normal) or as a 2-d sine-cosine "
                 "table (sincos: position as a smooth function of row and column)", {"normal", "sincos"});
    s.add_float("model.image_position_scale", 1.0, "with image_position_init = sincos: the table's scale", 0.0, 100.0);
    s.add_bool("model.text_embedding_norm", false, "LayerNorm over the question's embedding sum (BERT's, as in ViLT)");
    s.add_int("data.answer_min_count", 9, "answers seen at least this often form the vocabulary (VQA v2: 9)", 1);
    s.add_int("data.eval_questions", 4000, "held-out questions per evaluation (0 = all)", 0);
    s.add_int("eval.batches", 0,
              "evaluate on at most this many batches of data.batch_size held-out questions (0 = data.eval_questions "
              "of them)", 0);
  });
}

}  // namespace train_support

json run_eval_vqa(const EvalVqaCaptionOptions& o) {
  VqaBundle b = VqaBundle::load(o.model);
  const VqaData d = load_vqa_data(o.data, int(b.model->config.vision.image_size), false, o.split, o.limit);
  MINIVL_CHECK(!d.eval.empty(), "eval: no questions in split '", o.split, "' of ", o.data);
  const std::vector<const data::VqaSample*> ptrs = first_samples(d.eval, d.eval.size());
  const std::vector<std::string> pred = vqa_predict(b, ptrs, d.images, Device::cpu());
  json results = json::array();
  for (size_t i = 0; i < ptrs.size(); ++i) results.push_back({{"question_id", ptrs[i]->question_id}, {"answer", pred[i]}});
  const std::string path = write_eval_results(o, "vqa", results);
  const VqaScores s = score_predictions(ptrs, pred);
  json j = {{"task", "vqa"}, {"questions", s.questions}, {"overall", s.overall}, {"results", path}};
  j["per_answer_type"] = json::object();
  for (const auto& [k, v] : s.per_answer_type) j["per_answer_type"][k] = v;
  return j;
}

}  // namespace minivl::models
