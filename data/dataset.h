#pragma once
// Datasets the loader draws from: index -> (image, text, label / answers).
// Every method is const and thread-safe (the loader calls them from its workers).
//
//   auto coco = std::make_shared<CaptionDataset>(read_coco_captions("shapes/captions.json"));
//   auto vqa  = std::make_shared<VqaDataset>(read_vqa("shapes/vqa/questions.json", "shapes/vqa/annotations.json"));
//   auto fm   = std::make_shared<FashionMnistDataset>(load_fashion_mnist());
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/annotations.h"
#include "data/fashion_mnist.h"
#include "data/image.h"

namespace minivl::data {

struct SampleInfo {
  std::string text;                  // caption, question or class prompt
  int64_t label = -1;                // class id, or answer id when the VQA set has an answer vocabulary
  int64_t image_id = -1;
  std::string answer;                // VQA: multiple_choice_answer
  std::vector<std::string> answers;  // VQA: all (usually 10) answers
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Image image(int64_t index) const = 0;
  // `epoch` lets a set vary what it returns per epoch (one random caption per image, say).
  virtual SampleInfo info(int64_t index, int64_t epoch) const = 0;
};

// Image-caption pairs (COCO captions or JSONL). By default one sample per caption; with
// one_per_image, one sample per image whose caption is drawn per epoch from `seed`.
class CaptionDataset : public Dataset {
 public:
  explicit CaptionDataset(CaptionSet set, DecodeOptions decode = {}, bool one_per_image = false, uint64_t seed = 0);
  int64_t size() const override;
  Image image(int64_t index) const override;
  SampleInfo info(int64_t index, int64_t epoch) const override;
  const CaptionSet& set() const { return set_; }

 private:
  CaptionSet set_;
  DecodeOptions decode_;
  bool one_per_image_;
  uint64_t seed_;
  std::vector<std::vector<int64_t>> by_image_;  // image order of first appearance -> caption indices
};

// VQA questions. With an answer vocabulary, info().label is the answer's id (-1 when it is not in it).
class VqaDataset : public Dataset {
 public:
  explicit VqaDataset(VqaSet set, DecodeOptions decode = {});
  int64_t size() const override;
  Image image(int64_t index) const override;
  SampleInfo info(int64_t index, int64_t epoch) const override;
  const VqaSet& set() const { return set_; }

  // The `top_k` most frequent multiple-choice answers, most frequent first (ties: alphabetical).
  std::vector<std::string> frequent_answers(int64_t top_k) const;
  void set_answer_vocab(const std::vector<std::string>& answers);

 private:
  VqaSet set_;
  DecodeOptions decode_;
  std::unordered_map<std::string, int64_t> answer_ids_;
};

// Fashion-MNIST: grey expanded to RGB; text is the class caption from template `template_index`.
class FashionMnistDataset : public Dataset {
 public:
  explicit FashionMnistDataset(FashionMnist data, int template_index = 0);
  int64_t size() const override { return data_.count; }
  Image image(int64_t index) const override { return data_.image(index); }
  SampleInfo info(int64_t index, int64_t epoch) const override;
  const FashionMnist& data() const { return data_; }

 private:
  FashionMnist data_;
  int template_index_;
};

// Labelled image files, e.g. the shapes world's classes.json.
struct ClassList {
  std::vector<std::string> classes;    // label -> name
  std::vector<std::string> templates;  // prompt templates with "{}" (may be empty)
  std::vector<std::string> image_paths;
  std::vector<int64_t> labels, image_ids;
};
// {"classes": [...], "templates": [...], "images": [{"image_id", "file_name", "label"}]}, file names
// relative to the file (or options.image_root). Errors name the file and the entry.
ClassList read_class_list(const std::string& path, const AnnotationOptions& options = {});

class ClassificationDataset : public Dataset {
 public:
  explicit ClassificationDataset(ClassList list, DecodeOptions decode = {});
  int64_t size() const override { return int64_t(list_.image_paths.size()); }
  Image image(int64_t index) const override;
  SampleInfo info(int64_t index, int64_t epoch) const override;  // text: first template with the class name
  const ClassList& list() const { return list_; }

 private:
  ClassList list_;
  DecodeOptions decode_;
};

// "{}" in `templ` replaced by `name`.
std::string fill_template(const std::string& templ, const std::string& name);

}  // namespace minivl::data
