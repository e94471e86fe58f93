#pragma once
// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) from the gzipped IDX files that
// Debian's dataset-fashion-mnist package installs in /usr/share/datasets/fashion-mnist:
//   train-images-idx3-ubyte.gz (60000 x 28 x 28), train-labels-idx1-ubyte.gz,
//   t10k-images-idx3-ubyte.gz  (10000 x 28 x 28), t10k-labels-idx1-ubyte.gz.
// Grey images are expanded to RGB (the model's preprocessing then resizes them);
// class names and caption templates give zero-shot prompts.
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace minivl::data {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistClasses = 10;

struct FashionMnist {
  int64_t count = 0;
  int rows = 28, cols = 28;
  std::vector<uint8_t> pixels;  // (count, rows, cols) grey, 0 = background
  std::vector<uint8_t> labels;  // (count) in 0..9

  Image image(int64_t i) const;  // RGB (rows, cols, 3)
};

// split: "train" or "test". Errors name the file (missing, not gzip, bad magic, truncated, label out of range).
FashionMnist load_fashion_mnist(const std::string& dir = kFashionMnistDir, const std::string& split = "train");
bool fashion_mnist_available(const std::string& dir = kFashionMnistDir);

// The 10 class names in label order, as the data set's README gives them ("T-shirt/top", ...).
const std::vector<std::string>& fashion_mnist_classes();
// Lower-case names for prompts ("t-shirt", "trouser", ... "ankle boot").
const std::vector<std::string>& fashion_mnist_prompt_names();
// "a photo of a {}." and friends; "{}" is a prompt name.
const std::vector<std::string>& fashion_mnist_templates();
// Template t with class c filled in.
std::string fashion_mnist_caption(int label, int template_index = 0);

// Reads a gzipped IDX file: its dimension sizes and its u8 payload. Errors name the file.
std::vector<uint8_t> read_idx_gz(const std::string& path, std::vector<int64_t>& dims);

}  // namespace minivl::data
