// minivl score / vqa / caption, and the vqa and caption tasks of `minivl eval`.
//   minivl score --metric vqa|bleu|cider --refs FILE --cands FILE   -> JSON
//   minivl vqa --model DIR --image P --question Q                      -> answer + top 5
//   minivl caption --model DIR --image P [--beam K]                    -> caption
//   minivl vqa|caption --model DIR --data SHAPES_DIR [--split test]   -> results file + scores (JSON);
//     the same as `minivl eval --task vqa|caption` (models::run_eval_vqa / run_eval_caption).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "data/image.h"
#include "data/preprocess.h"
#include "models/caption_metrics.h"
#include "models/captioner.h"
#include "models/decoding.h"
#include "models/vqa.h"
#include "models/vqa_caption_train.h"
#include "models/vqa_metrics.h"
#include "tools/numeric_option.h"

namespace minivl::tools {

namespace {

struct ScoreOptions {
  std::string metric, refs, cands;
};

void run_score(const ScoreOptions& o) {
  nlohmann::json j;
  if (o.metric == "vqa") {
    const models::VqaScores s = models::score_vqa_files(o.refs, o.cands);
    j["overall"] = s.overall;
    j["per_answer_type"] = nlohmann::json::object();
    for (const auto& [k, v] : s.per_answer_type) j["per_answer_type"][k] = v;
    j["per_question_type"] = nlohmann::json::object();
    for (const auto& [k, v] : s.per_question_type) j["per_question_type"][k] = v;
    j["questions"] = s.questions;
  } else if (o.metric == "bleu" || o.metric == "cider") {
    const models::CaptionScores s = models::score_caption_files(o.refs, o.cands);
    if (o.metric == "bleu") {
      for (int k = 0; k < 4; ++k) j["bleu" + std::to_string(k + 1)] = s.bleu.bleu[size_t(k)];
      j["testlen"] = s.bleu.test_len;
      j["reflen"] = s.bleu.ref_len;
    } else {
      j["cider"] = s.cider;
    }
    j["images"] = s.images;
  } else {
    MINIVL_FAIL("score: --metric must be vqa, bleu or cider, got '", o.metric, "'");
  }
  std::printf("%s\n", j.dump(2).c_str());
}

struct AskOptions {
  std::string model, image, question, data;
  int top = 5;
  models::EvalVqaCaptionOptions eval;
};

Tensor load_pixels(const std::string& path, int64_t R) {
  data::ClipPreprocessConfig pre;
  pre.image_size = int(R);
  return data::clip_preprocess(data::read_image(path), pre).reshape({1, 3, R, R});
}

// With --data: the options `minivl eval --task vqa|caption` would get (o.eval, on o.model and o.data).
models::EvalVqaCaptionOptions eval_options(const AskOptions& o) {
  models::EvalVqaCaptionOptions e = o.eval;
  e.model = o.model;
  e.data = o.data;
  return e;
}

void run_vqa(const AskOptions& o) {
  if (!o.data.empty()) {
    std::printf("%s\n", models::run_eval_vqa(eval_options(o)).dump(2).c_str());
    return;
  }
  MINIVL_CHECK(!o.image.empty() && !o.question.empty(), "vqa: give --image and --question (or --data to evaluate)");
  models::VqaBundle b = models::VqaBundle::load(o.model);
  NoGradGuard no_grad;
  const std::vector<int64_t> q = b.question_ids(o.question);
  Tensor logits = b.model->forward(load_pixels(o.image, b.model->config.vision.image_size),
                                   from_vector_i64(q, {1, int64_t(q.size())}));
  Tensor probs = sigmoid(logits).reshape({logits.size(1)});
  const int64_t k = std::min<int64_t>(o.top, probs.size(0));
  auto [vals, idx] = topk(probs, k, 0);
  const auto v = vals.to_vector(), ix = idx.to_vector();
  std::printf("%s\n", b.answers[size_t(ix[0])].c_str());
  for (int64_t i = 0; i < k; ++i) std::printf("  %.4f  %s\n", v[size_t(i)], b.answers[size_t(ix[size_t(i)])].c_str());
}

void run_caption(const AskOptions& o) {
  if (!o.data.empty()) {
    std::printf("%s\n", models::run_eval_caption(eval_options(o)).dump(2).c_str());
    return;
  }
  MINIVL_CHECK(!o.image.empty(), "caption: give --image (or --data to evaluate)");
  models::CaptionerBundle b = models::CaptionerBundle::load(o.model);
  models::DecodeOptions d;
  d.beam = o.eval.beam;
  d.length_penalty = o.eval.length_penalty;
  d.max_length = std::min(o.eval.max_length, b.model->config.max_length);
  const models::Hypothesis h =
      models::decode_caption(*b.model, load_pixels(o.image, b.model->config.vision.image_size), d);
  std::printf("%s\n", b.vocab.decode(h.tokens).c_str());
}

void add_eval_options(CLI::App* c, AskOptions& o) {
  c->add_option("--data", o.data, "evaluate on a shapes folder instead (writes the results file, prints scores)");
  c->add_option("--split", o.eval.split, "with --data: test (val + test images, default), val, train or all");
  c->add_option("--results", o.eval.results, "with --data: results file (default MODEL/results_<task>.json)");
  add_numeric_option(c, "--limit", o.eval.limit, Bounds<int64_t>{0, 1'000'000'000},
                     "with --data: at most this many questions / images (0 = all, default)");
}

}  // namespace

void register_vqa_caption_commands(CLI::App& app) {
  auto v = std::make_shared<AskOptions>();
  CLI::App* vq = app.add_subcommand("vqa", "Answer a question about an image with a trained VQA model");
  vq->add_option("--model", v->model, "VQA model folder (RUN_DIR/model)")->required();
  vq->add_option("--image", v->image, "image file");
  vq->add_option("--question", v->question, "the question");
  add_numeric_option(vq, "--top", v->top, Bounds<int>{1, 1'000'000}, "answers listed with their scores (default 5)");
  add_eval_options(vq, *v);
  vq->callback([v] { run_vqa(*v); });

  auto c = std::make_shared<AskOptions>();
  CLI::App* cp = app.add_subcommand("caption", "Describe an image with a trained captioner");
  cp->add_option("--model", c->model, "captioner model folder (RUN_DIR/model)")->required();
  cp->add_option("--image", c->image, "image file");
  add_numeric_option(cp, "--beam", c->eval.beam, Bounds<int64_t>{1, 256}, "beam width (1 = greedy; default 3)");
  add_numeric_option(cp, "--length-penalty", c->eval.length_penalty, Bounds<double>{-10, 10},
                     "beam score / length^penalty (default 0.5; 0: no length normalisation)");
  add_numeric_option(cp, "--max-length", c->eval.max_length, Bounds<int64_t>{1, 4096},
                     "at most this many tokens, end token included (default 30; the model's own cap applies)");
  add_eval_options(cp, *c);
  cp->callback([c] { run_caption(*c); });

  auto s = std::make_shared<ScoreOptions>();
  CLI::App* sc = app.add_subcommand(
      "score", "VQA accuracy (official vqaEval) or BLEU-1..4 / CIDEr-D (coco-caption) of a results file, as JSON");
  sc->add_option("--metric", s->metric, "vqa, bleu or cider")->required();
  sc->add_option("--refs", s->refs, "VQA v2 annotations file (vqa) or COCO captions file (bleu, cider)")->required();
  sc->add_option("--cands", s->cands,
                 "results list: [{\"question_id\", \"answer\"}] (vqa) or [{\"image_id\", \"caption\"}]")
      ->required();
  sc->callback([s] { run_score(*s); });
}

}  // namespace minivl::tools
