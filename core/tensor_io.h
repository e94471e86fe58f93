#pragma once
// Tensors <-> safetensors files (core/safetensors.h does the format and its
// validation; this file maps its dtypes onto minivl's and copies the bytes).
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace minivl {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Every tensor in the file, in file order, as CPU tensors. Errors name the
// file and the tensor (an unsupported dtype included).
NamedTensors load_safetensors(const std::string& path);
// Writes atomically (temp file + rename); tensors may live on any device.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace minivl
