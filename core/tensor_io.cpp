#include "core/tensor_io.h"

#include <cstring>

#include "core/error.h"
#include "core/safetensors.h"

namespace minivl {
namespace {

std::optional<DType> to_dtype(SafetensorsDType d) {
  switch (d) {
    case SafetensorsDType::F64: return DType::f64;
    case SafetensorsDType::F32: return DType::f32;
    case SafetensorsDType::F16: return DType::f16;
    case SafetensorsDType::BF16: return DType::bf16;
    case SafetensorsDType::I64: return DType::i64;
    case SafetensorsDType::I32: return DType::i32;
    case SafetensorsDType::U8: return DType::u8;
    case SafetensorsDType::BOOL: return DType::boolean;
    default: return std::nullopt;
  }
}

SafetensorsDType from_dtype(DType d) {
  switch (d) {
    case DType::f64: return SafetensorsDType::F64;
    case DType::f32: return SafetensorsDType::F32;
    case DType::f16: return SafetensorsDType::F16;
    case DType::bf16: return SafetensorsDType::BF16;
    case DType::i64: return SafetensorsDType::I64;
    case DType::i32: return SafetensorsDType::I32;
    case DType::u8: return SafetensorsDType::U8;
    case DType::boolean: return SafetensorsDType::BOOL;
  }
  MINIVL_FAIL("save_safetensors: invalid dtype");
}

}  // namespace

NamedTensors load_safetensors(const std::string& path) {
  SafetensorsFile file = SafetensorsFile::open(path);
  NamedTensors out;
  for (const SafetensorsEntry& e : file.entries()) {
    auto dtype = to_dtype(e.dtype);
    MINIVL_CHECK(dtype.has_value(), path, ": tensor '", e.name, "' has dtype ", safetensors_dtype_name(e.dtype),
                 ", which minivl does not support (F64, F32, F16, BF16, I64, I32, U8, BOOL)");
    MINIVL_CHECK(e.shape.size() <= size_t(kMaxDims), path, ": tensor '", e.name, "' has ", e.shape.size(),
                 " dims; minivl supports at most ", kMaxDims);
    Tensor t = make_tensor(Shape(e.shape.begin(), e.shape.end()), *dtype, Device::cpu());
    if (e.nbytes) std::memcpy(t.data_ptr(), e.data, e.nbytes);  // the file's data may be unaligned
    out.emplace_back(e.name, t);
  }
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> keep;  // contiguous CPU copies, alive until written
  std::vector<SafetensorsWriteEntry> entries;
  keep.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    MINIVL_CHECK(t.defined(), path, ": tensor '", name, "' is undefined");
    Tensor c = t.detach();
    if (!c.device().is_cpu()) c = c.to(Device::cpu());
    c = c.contiguous();
    keep.push_back(c);
    entries.push_back({name, from_dtype(c.dtype()), std::vector<int64_t>(c.shape().begin(), c.shape().end()),
                       c.numel() ? c.data_ptr() : nullptr, c.nbytes()});
  }
  write_safetensors(path, entries, metadata);
}

}  // namespace minivl
