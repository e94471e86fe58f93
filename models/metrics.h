#pragma once
// Zero-shot classification and retrieval with a CLIP model, and their metrics.
//
//   Tensor w = zeroshot_classifier(model, tok, {"cat", "dog"}, {"a photo of a {}."});  // (C, P)
//   Tensor logits = matmul(image_embeds, w.t());                                        // (N, C)
//   auto acc = topk_accuracy(logits, labels, {1, 5});
//
// The classifier is CLIP's prompt ensemble: each class name through every template,
// the embeddings L2-normalised, averaged, and normalised again.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/clip.h"
#include "tokenizer/clip_tokenizer.h"

namespace minivl::models {

// SOT + ids + EOT, truncated to context (the last kept id becomes EOT), unpadded.
std::vector<int32_t> tokenize_row(const tokenizer::ClipTokenizer& tok, const std::string& text, int64_t context);
// Rows padded with 0 to the longest: (N, T) i64.
Tensor pad_rows(const std::vector<std::vector<int32_t>>& rows);
// Normalised text embeddings (N, P), in batches of `batch`, under no-grad.
Tensor encode_texts(const ClipModel& model, const tokenizer::ClipTokenizer& tok, const std::vector<std::string>& texts,
                    int64_t batch = 256);
// The prompt-ensemble classifier (C, P), rows L2-normalised. No templates: the names as they are.
Tensor zeroshot_classifier(const ClipModel& model, const tokenizer::ClipTokenizer& tok,
                           const std::vector<std::string>& classes, const std::vector<std::string>& templates);

// Fraction of rows whose label is among the k highest logits, for each k: logits (N, C).
std::vector<double> topk_accuracy(const Tensor& logits, const std::vector<int64_t>& labels, const std::vector<int64_t>& ks);

struct RetrievalRecall {
  std::vector<int64_t> ks;
  std::vector<double> image_to_text, text_to_image;  // one per k
};
// similarity (I, T) images x texts; text_image[t] = the image caption t belongs to.
// Image -> text: a hit when any of the image's captions is among its top k texts.
// Text -> image: a hit when the caption's image is among its top k images.
RetrievalRecall retrieval_recall(const Tensor& similarity, const std::vector<int64_t>& text_image,
                                 const std::vector<int64_t>& ks = {1, 5, 10});

}  // namespace minivl::models
