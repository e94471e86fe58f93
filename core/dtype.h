#pragma once
// DType (defined beside the kernels in kernels/scalar_types.h) and its facts.
#include <cstddef>
#include <string>

#include "kernels/scalar_types.h"

namespace minivl {

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "f32", "bf16", "bool", ...
bool is_floating(DType dtype);
DType dtype_from_name(const std::string& name);  // throws on an unknown name

}  // namespace minivl
