#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/philox.h"

namespace minivl::data {
namespace {

void check_index(int64_t index, int64_t size, const char* what) {
  MINIVL_CHECK(index >= 0 && index < size, what, ": index ", index, " out of range 0..", size - 1);
}

}  // namespace

std::string fill_template(const std::string& templ, const std::string& name) {
  std::string s = templ;
  size_t p = s.find("{}");
  if (p != std::string::npos) s.replace(p, 2, name);
  return s;
}

// ---- CaptionDataset ----

CaptionDataset::CaptionDataset(CaptionSet set, DecodeOptions decode, bool one_per_image, uint64_t seed)
    : set_(std::move(set)), decode_(decode), one_per_image_(one_per_image), seed_(seed) {
  if (!one_per_image_) return;
  std::unordered_map<std::string, size_t> slot;
  for (size_t i = 0; i < set_.samples.size(); ++i) {
    auto [it, added] = slot.emplace(set_.samples[i].image_path, by_image_.size());
    if (added) by_image_.emplace_back();
    by_image_[it->second].push_back(int64_t(i));
  }
}

int64_t CaptionDataset::size() const {
  return one_per_image_ ? int64_t(by_image_.size()) : int64_t(set_.samples.size());
}

Image CaptionDataset::image(int64_t index) const {
  check_index(index, size(), "CaptionDataset");
  const int64_t s = one_per_image_ ? by_image_[index][0] : index;
  return read_image(set_.samples[s].image_path, decode_);
}

SampleInfo CaptionDataset::info(int64_t index, int64_t epoch) const {
  check_index(index, size(), "CaptionDataset");
  int64_t s = index;
  if (one_per_image_) {
    const auto& caps = by_image_[index];
    // One Philox word per (epoch, image): stream offset epoch << 40.
    const uint32_t u = philox_uint32(seed_, uint64_t(epoch) << 40, uint64_t(index));
    s = caps[size_t((uint64_t(u) * caps.size()) >> 32)];
  }
  const CaptionSample& c = set_.samples[s];
  SampleInfo info;
  info.text = c.caption;
  info.image_id = c.image_id;
  return info;
}

// ---- VqaDataset ----

VqaDataset::VqaDataset(VqaSet set, DecodeOptions decode) : set_(std::move(set)), decode_(decode) {}

int64_t VqaDataset::size() const { return int64_t(set_.samples.size()); }

Image VqaDataset::image(int64_t index) const {
  check_index(index, size(), "VqaDataset");
  return read_image(set_.samples[index].image_path, decode_);
}

SampleInfo VqaDataset::info(int64_t index, int64_t) const {
  check_index(index, size(), "VqaDataset");
  const VqaSample& s = set_.samples[index];
  SampleInfo info;
  info.text = s.question;
  info.image_id = s.image_id;
  info.answer = s.multiple_choice_answer;
  info.answers = s.answers;
  if (!answer_ids_.empty()) {
    auto it = answer_ids_.find(s.multiple_choice_answer);
    info.label = it == answer_ids_.end() ? -1 : it->second;
  }
  return info;
}

std::vector<std::string> VqaDataset::frequent_answers(int64_t top_k) const {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& s : set_.samples) ++counts[s.multiple_choice_answer];
  std::vector<std::pair<std::string, int64_t>> v(counts.begin(), counts.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::string> out;
  for (int64_t i = 0; i < std::min<int64_t>(top_k, int64_t(v.size())); ++i) out.push_back(v[i].first);
  return out;
}

void VqaDataset::set_answer_vocab(const std::vector<std::string>& answers) {
  answer_ids_.clear();
  for (size_t i = 0; i < answers.size(); ++i) answer_ids_.emplace(answers[i], int64_t(i));
}

// ---- FashionMnistDataset ----

FashionMnistDataset::FashionMnistDataset(FashionMnist data, int template_index)
    : data_(std::move(data)), template_index_(template_index) {
  MINIVL_CHECK(template_index >= 0 && template_index < int(fashion_mnist_templates().size()),
               "FashionMnistDataset: template ", template_index, " out of range");
}

SampleInfo FashionMnistDataset::info(int64_t index, int64_t) const {
  check_index(index, data_.count, "FashionMnistDataset");
  SampleInfo info;
  info.label = data_.labels[index];
  info.text = fashion_mnist_caption(int(info.label), template_index_);
  info.image_id = index;
  return info;
}

// ---- class lists ----

ClassList read_class_list(const std::string& path, const AnnotationOptions& options) {
  namespace fs = std::filesystem;
  const nlohmann::json j = read_json_file(path, "class list");
  MINIVL_CHECK(j.is_object() && j.contains("classes") && j["classes"].is_array(), "class list '", path,
               "': no 'classes' list");
  MINIVL_CHECK(j.contains("images") && j["images"].is_array(), "class list '", path, "': no 'images' list");
  ClassList list;
  for (size_t i = 0; i < j["classes"].size(); ++i) {
    MINIVL_CHECK(j["classes"][i].is_string(), "class list '", path, "': classes[", i, "] is not a string");
    list.classes.push_back(j["classes"][i].get<std::string>());
  }
  if (j.contains("templates") && j["templates"].is_array())
    for (const auto& t : j["templates"])
      if (t.is_string()) list.templates.push_back(t.get<std::string>());
  const fs::path root = options.image_root.empty() ? fs::path(path).parent_path() : fs::path(options.image_root);
  int64_t skipped = 0;
  for (size_t i = 0; i < j["images"].size(); ++i) {
    const auto& e = j["images"][i];
    const std::string entry = "images[" + std::to_string(i) + "]";
    MINIVL_CHECK(e.is_object() && e.contains("file_name") && e["file_name"].is_string(), "class list '", path, "': ",
                 entry, ": missing 'file_name' (string)");
    MINIVL_CHECK(e.contains("label") && e["label"].is_number_integer(), "class list '", path, "': ", entry,
                 ": missing 'label' (integer)");
    const int64_t label = e["label"].get<int64_t>();
    MINIVL_CHECK(label >= 0 && label < int64_t(list.classes.size()), "class list '", path, "': ", entry, ": label ",
                 label, " is not in 0..", list.classes.size() - 1);
    fs::path p(e["file_name"].get<std::string>());
    if (p.is_relative()) p = root / p;
    const std::string image = p.lexically_normal().string();
    if (options.check_images_exist && !fs::is_regular_file(image)) {
      MINIVL_CHECK(options.skip_missing_images, "class list '", path, "': ", entry, ": image file '", image,
                   "' does not exist");
      ++skipped;
      continue;
    }
    list.image_paths.push_back(image);
    list.labels.push_back(label);
    list.image_ids.push_back(e.contains("image_id") && e["image_id"].is_number_integer() ? e["image_id"].get<int64_t>()
                                                                                         : int64_t(i));
  }
  if (skipped > 0 && !options.quiet)
    std::fprintf(stderr, "warning: class list '%s': skipped %lld image(s) whose file is missing\n", path.c_str(),
                 static_cast<long long>(skipped));
  return list;
}

ClassificationDataset::ClassificationDataset(ClassList list, DecodeOptions decode)
    : list_(std::move(list)), decode_(decode) {}

Image ClassificationDataset::image(int64_t index) const {
  check_index(index, size(), "ClassificationDataset");
  return read_image(list_.image_paths[index], decode_);
}

SampleInfo ClassificationDataset::info(int64_t index, int64_t) const {
  check_index(index, size(), "ClassificationDataset");
  SampleInfo info;
  info.label = list_.labels[index];
  info.image_id = list_.image_ids[index];
  const std::string& name = list_.classes[info.label];
  info.text = list_.templates.empty() ? name : fill_template(list_.templates[0], name);
  return info;
}

}  // namespace minivl::data
