#include "models/image_store.h"

#include "core/error.h"
#include "core/ops.h"

namespace minivl::models {

ImageStore::ImageStore(int resolution) { preprocess_.image_size = resolution; }

int64_t ImageStore::add(const data::Image& image) {
  const int R = resolution();
  MINIVL_CHECK(R > 0, "ImageStore: no resolution set");
  data::Image x = data::center_crop(data::resize_short_side(image, R), R, R);
  pixels_.insert(pixels_.end(), x.pixels.begin(), x.pixels.end());
  return size_++;
}

int64_t ImageStore::add_file(int64_t id, const std::string& path) {
  auto it = row_of_.find(id);
  if (it != row_of_.end()) return it->second;
  const int64_t row = add(data::read_image(path));
  row_of_[id] = row;
  return row;
}

Tensor ImageStore::batch_rows(const std::vector<int64_t>& rows) const {
  const int R = resolution();
  Tensor out = empty({int64_t(rows.size()), 3, R, R});
  const size_t per = size_t(R) * R * 3;
  for (size_t b = 0; b < rows.size(); ++b) {
    MINIVL_CHECK(rows[b] >= 0 && rows[b] < size_, "ImageStore: row ", rows[b], " of ", size_);
    data::Image img;
    img.width = img.height = R;
    img.pixels.assign(pixels_.begin() + ptrdiff_t(size_t(rows[b]) * per),
                      pixels_.begin() + ptrdiff_t(size_t(rows[b] + 1) * per));
    data::normalize_to_chw(img, preprocess_, out.data<float>() + b * per);
  }
  return out;
}

Tensor ImageStore::batch(const std::vector<int64_t>& ids) const {
  std::vector<int64_t> rows;
  rows.reserve(ids.size());
  for (int64_t id : ids) {
    auto it = row_of_.find(id);
    MINIVL_CHECK(it != row_of_.end(), "ImageStore: image id ", id, " was never added");
    rows.push_back(it->second);
  }
  return batch_rows(rows);
}

}  // namespace minivl::models
