#pragma once
// Reader and writer for the safetensors format, on raw bytes (no Tensor).
//
// Layout of a file:
//   [8 bytes]  N, little-endian u64: length of the header
//   [N bytes]  UTF-8 JSON object, possibly padded with trailing spaces:
//                {"__metadata__": {"k": "v", ...},            (optional)
//                 "<name>": {"dtype": "F32", "shape": [2, 3],
//                            "data_offsets": [begin, end]}, ...}
//   [rest]     the data section; offsets are relative to its start, tensors
//              are row-major, little-endian, and cover it exactly (no gaps,
//              no overlap, no trailing bytes).
//
// SafetensorsFile::open validates all of the above and maps the file
// read-only; SafetensorsEntry::data points into the mapping and stays valid
// for the life of the SafetensorsFile (even if the file on disk is replaced,
// since write_safetensors renames a new inode over the path).
// Data pointers are only as aligned as the file makes them: files written by
// write_safetensors (and by Python's safetensors) start the data section at a
// multiple of 8 from a page-aligned base, but a foreign file may not; copy
// with memcpy rather than casting when alignment matters.
// See docs/safetensors.md.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace minivl {

// Names as the format spells them: "F64", "F32", ..., "BOOL", "F8_E4M3".
// U16/U32/U64 and the two F8 types are beyond what minivl computes with; they
// are here so that a file holding such a tensor still opens.
enum class SafetensorsDType {
  F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, U64, U32, U16, F8_E4M3, F8_E5M2
};

size_t safetensors_dtype_size(SafetensorsDType dtype);               // bytes per element
const char* safetensors_dtype_name(SafetensorsDType dtype);          // "F32"
std::optional<SafetensorsDType> parse_safetensors_dtype(std::string_view name);

// One tensor of an open file. data points into the file's mapping.
struct SafetensorsEntry {
  std::string name;
  SafetensorsDType dtype;
  std::vector<int64_t> shape;   // empty for a 0-d scalar
  const uint8_t* data;          // nbytes bytes; never null (points at the section even when nbytes == 0)
  size_t nbytes;
  size_t numel() const;         // product of shape (1 for a scalar)
};

// A validated, read-only safetensors file. Move-only; unmaps in the destructor.
class SafetensorsFile {
 public:
  // Opens, maps (or reads, where mmap fails) and validates PATH. Throws
  // minivl::Error naming the file (and the tensor) on any problem.
  static SafetensorsFile open(const std::string& path);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // By data offset; zero-size tensors sharing an offset keep their header order.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const SafetensorsEntry* find(const std::string& name) const;               // nullptr if absent
  // Error names the file, the missing tensor and (up to 20 of) the names present.
  const SafetensorsEntry& at(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  size_t header_size() const { return header_size_; }   // N, the JSON length
  size_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  void release() noexcept;

  std::string path_;
  const uint8_t* base_ = nullptr;    // the whole file
  size_t size_ = 0;
  bool mapped_ = false;              // base_ from mmap (else from owned_)
  std::vector<uint8_t> owned_;       // fallback copy when mmap is unavailable
  size_t header_size_ = 0;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;   // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// One tensor to write. data must hold nbytes == prod(shape) * dtype size bytes.
struct SafetensorsWriteEntry {
  std::string name;
  SafetensorsDType dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t nbytes;
};

// Writes PATH atomically: everything is validated first (unique non-empty
// names other than "__metadata__", dims >= 0, nbytes == prod(shape) * size),
// then written to PATH.tmp.<pid> in the same folder, fsync'd, and renamed over
// PATH (the folder is fsync'd too). On any failure the temporary file is
// removed and PATH is left as it was. Tensors are laid out in the given
// order; the header is padded with spaces so the data section starts at a
// multiple of 8.
void write_safetensors(const std::string& path,
                       const std::vector<SafetensorsWriteEntry>& entries,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace minivl
