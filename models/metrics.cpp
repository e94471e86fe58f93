#include "models/metrics.h"

#include <algorithm>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "data/dataset.h"

namespace minivl::models {

std::vector<int32_t> tokenize_row(const tokenizer::ClipTokenizer& tok, const std::string& text, int64_t context) {
  std::vector<int32_t> ids = tok.encode(text);
  std::vector<int32_t> row;
  row.reserve(ids.size() + 2);
  row.push_back(tok.sot_id());
  row.insert(row.end(), ids.begin(), ids.end());
  if (int64_t(row.size()) + 1 > context) row.resize(size_t(std::max<int64_t>(1, context - 1)));
  row.push_back(tok.eot_id());
  return row;
}

Tensor pad_rows(const std::vector<std::vector<int32_t>>& rows) {
  size_t T = 1;
  for (const auto& r : rows) T = std::max(T, r.size());
  std::vector<int64_t> ids(rows.size() * T, 0);
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t t = 0; t < rows[i].size(); ++t) ids[i * T + t] = rows[i][t];
  return from_vector_i64(ids, {int64_t(rows.size()), int64_t(T)});
}

Tensor encode_texts(const ClipModel& model, const tokenizer::ClipTokenizer& tok, const std::vector<std::string>& texts,
                    int64_t batch) {
  NoGradGuard no_grad;
  const Device device = model.logit_scale.device();
  std::vector<Tensor> parts;
  for (size_t i = 0; i < texts.size(); i += size_t(batch)) {
    std::vector<std::vector<int32_t>> rows;
    for (size_t j = i; j < std::min(texts.size(), i + size_t(batch)); ++j)
      rows.push_back(tokenize_row(tok, texts[j], model.config.text.max_position_embeddings));
    parts.push_back(model.encode_text(pad_rows(rows).to(device)).to(Device::cpu()));
  }
  MINIVL_CHECK(!parts.empty(), "encode_texts: no texts");
  return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

Tensor zeroshot_classifier(const ClipModel& model, const tokenizer::ClipTokenizer& tok,
                           const std::vector<std::string>& classes, const std::vector<std::string>& templates) {
  MINIVL_CHECK(!classes.empty(), "zero-shot: no class names");
  const std::vector<std::string> temps = templates.empty() ? std::vector<std::string>{"{}"} : templates;
  std::vector<std::string> prompts;
  for (const std::string& c : classes)
    for (const std::string& t : temps) prompts.push_back(data::fill_template(t, c));
  NoGradGuard no_grad;
  Tensor e = encode_texts(model, tok, prompts);  // (C * T, P), normalised
  const int64_t C = int64_t(classes.size()), T = int64_t(temps.size());
  Tensor avg = mean(e.reshape({C, T, e.size(1)}), {1});  // (C, P)
  return l2_normalize(avg);
}

std::vector<double> topk_accuracy(const Tensor& logits, const std::vector<int64_t>& labels,
                                  const std::vector<int64_t>& ks) {
  const Tensor l = logits.to(Device::cpu()).to(DType::f32).contiguous();
  MINIVL_CHECK(l.dim() == 2 && l.size(0) == int64_t(labels.size()), "topk_accuracy: logits ", l.shape_str(), " and ",
               labels.size(), " labels");
  const int64_t N = l.size(0), C = l.size(1);
  const float* p = l.data<float>();
  std::vector<double> hits(ks.size(), 0.0);
  for (int64_t i = 0; i < N; ++i) {
    const int64_t y = labels[size_t(i)];
    if (y < 0 || y >= C) continue;
    // rank = number of classes scoring strictly higher (ties count for the label)
    int64_t rank = 0;
    for (int64_t c = 0; c < C; ++c) rank += p[i * C + c] > p[i * C + y];
    for (size_t k = 0; k < ks.size(); ++k) hits[k] += rank < ks[k] ? 1.0 : 0.0;
  }
  for (double& h : hits) h = N > 0 ? h / double(N) : 0.0;
  return hits;
}

RetrievalRecall retrieval_recall(const Tensor& similarity, const std::vector<int64_t>& text_image,
                                 const std::vector<int64_t>& ks) {
  const Tensor s = similarity.to(Device::cpu()).to(DType::f32).contiguous();
  MINIVL_CHECK(s.dim() == 2 && s.size(1) == int64_t(text_image.size()), "retrieval_recall: similarity ", s.shape_str(),
               " and ", text_image.size(), " caption owners");
  const int64_t I = s.size(0), T = s.size(1);
  const float* p = s.data<float>();
  RetrievalRecall r;
  r.ks = ks;
  r.image_to_text.assign(ks.size(), 0.0);
  r.text_to_image.assign(ks.size(), 0.0);
  // image -> text: the best rank among the image's captions
  for (int64_t i = 0; i < I; ++i) {
    float best = -INFINITY;
    for (int64_t t = 0; t < T; ++t)
      if (text_image[size_t(t)] == i) best = std::max(best, p[i * T + t]);
    if (best == -INFINITY) continue;
    int64_t rank = 0;
    for (int64_t t = 0; t < T; ++t) rank += p[i * T + t] > best;
    for (size_t k = 0; k < ks.size(); ++k) r.image_to_text[k] += rank < ks[k];
  }
  // text -> image
  for (int64_t t = 0; t < T; ++t) {
    const int64_t owner = text_image[size_t(t)];
    const float v = p[owner * T + t];
    int64_t rank = 0;
    for (int64_t i = 0; i < I; ++i) rank += p[i * T + t] > v;
    for (size_t k = 0; k < ks.size(); ++k) r.text_to_image[k] += rank < ks[k];
  }
  for (size_t k = 0; k < ks.size(); ++k) {
    r.image_to_text[k] /= double(std::max<int64_t>(1, I));
    r.text_to_image[k] /= double(std::max<int64_t>(1, T));
  }
  return r;
}

}  // namespace minivl::models
