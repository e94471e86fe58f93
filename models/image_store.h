#pragma once
// Images kept in memory at a model's resolution, for the trainers whose data fit (clip, vqa, the
// captioner): each image is decoded, resized (short side) and centre-cropped to R x R once and kept
// as u8 (R, R, 3); a batch normalises its images with CLIP's mean and std.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"
#include "data/image.h"
#include "data/preprocess.h"

namespace minivl::models {

class ImageStore {
 public:
  explicit ImageStore(int resolution = 0);
  int resolution() const { return preprocess_.image_size; }
  int64_t size() const { return size_; }
  // Adds `image` at the store's resolution; returns its row.
  int64_t add(const data::Image& image);
  // Reads the file of image `id` and adds it, once: a known id is skipped. Returns its row.
  int64_t add_file(int64_t id, const std::string& path);
  bool contains(int64_t id) const { return row_of_.count(id) != 0; }
  // (B, 3, R, R) f32, normalised: the images of these rows, or of these ids (add_file's).
  Tensor batch_rows(const std::vector<int64_t>& rows) const;
  Tensor batch(const std::vector<int64_t>& ids) const;

 private:
  data::ClipPreprocessConfig preprocess_;
  int64_t size_ = 0;
  std::vector<uint8_t> pixels_;                  // (size, R, R, 3)
  std::unordered_map<int64_t, int64_t> row_of_;  // image id -> row
};

}  // namespace minivl::models
