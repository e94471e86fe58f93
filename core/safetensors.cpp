// safetensors reader (validate, then mmap) and atomic writer. See safetensors.h.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace minivl {
namespace {

using Json = nlohmann::ordered_json;   // keeps the header's key order

constexpr uint64_t kMaxHeaderBytes = 100'000'000;   // same cap as Python's safetensors
constexpr size_t kMaxNamesListed = 20;              // in at()'s "available:" list

struct DTypeInfo {
  SafetensorsDType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {SafetensorsDType::F64, "F64", 8},         {SafetensorsDType::F32, "F32", 4},
    {SafetensorsDType::F16, "F16", 2},         {SafetensorsDType::BF16, "BF16", 2},
    {SafetensorsDType::I64, "I64", 8},         {SafetensorsDType::I32, "I32", 4},
    {SafetensorsDType::I16, "I16", 2},         {SafetensorsDType::I8, "I8", 1},
    {SafetensorsDType::U8, "U8", 1},           {SafetensorsDType::BOOL, "BOOL", 1},
    {SafetensorsDType::U64, "U64", 8},         {SafetensorsDType::U32, "U32", 4},
    {SafetensorsDType::U16, "U16", 2},         {SafetensorsDType::F8_E4M3, "F8_E4M3", 1},
    {SafetensorsDType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeInfo& dtype_info(SafetensorsDType dtype) {
  for (const DTypeInfo& info : kDTypes)
    if (info.dtype == dtype) return info;
  MINIVL_FAIL("safetensors: invalid SafetensorsDType value ", static_cast<int>(dtype));
}

std::string errno_text() { return std::strerror(errno); }

// Product of dims times element size, or nullopt on overflow.
std::optional<size_t> checked_nbytes(const std::vector<int64_t>& shape, size_t elem_size) {
  size_t total = elem_size;
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(total, static_cast<size_t>(d), &total)) return std::nullopt;
  }
  return total;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Reads the whole of fd (size bytes) into out; false with errno set on failure.
bool read_all(int fd, uint8_t* out, size_t size) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd, out + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;   // file shrank under us
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

bool write_all(int fd, const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The header keeps its text order (ordered_json), so ties in offset sort stably.
// Parses the header, noting the first duplicate key in any object (nlohmann
// keeps the last one silently, so a callback tracks the keys of each open object).
Json parse_header(const std::string& path, const char* begin, const char* end) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    using E = Json::parse_event_t;
    if (event == E::object_start) {
      open_objects.emplace_back();
    } else if (event == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == E::key && !open_objects.empty() && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  };
  Json header;
  try {
    header = Json::parse(begin, end, callback);
  } catch (const Json::exception& e) {
    MINIVL_FAIL("safetensors: ", path, ": header is not valid JSON/UTF-8: ", e.what());
  }
  MINIVL_CHECK(duplicate.empty(), "safetensors: ", path, ": duplicate key '", duplicate,
               "' in the header");
  MINIVL_CHECK(header.is_object(), "safetensors: ", path,
               ": header is not a JSON object (it is ", header.type_name(), ")");
  return header;
}

// Checks one header entry and fills everything but data.
struct ParsedEntry {
  SafetensorsEntry entry;
  uint64_t begin, end;
};

ParsedEntry parse_entry(const std::string& path, const std::string& name, const Json& j,
                        uint64_t data_size) {
  const std::string where = "safetensors: " + path + ": tensor '" + name + "'";
  MINIVL_CHECK(j.is_object(), where, ": entry is not a JSON object (it is ", j.type_name(), ")");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    MINIVL_CHECK(j.contains(key), where, ": missing key \"", key, "\"");

  const Json& jd = j["dtype"];
  MINIVL_CHECK(jd.is_string(), where, ": \"dtype\" is not a string (it is ", jd.type_name(), ")");
  std::optional<SafetensorsDType> dtype = parse_safetensors_dtype(jd.get_ref<const std::string&>());
  MINIVL_CHECK(dtype.has_value(), where, ": unknown dtype \"", jd.get_ref<const std::string&>(), "\"");

  const Json& js = j["shape"];
  MINIVL_CHECK(js.is_array(), where, ": \"shape\" is not an array (it is ", js.type_name(), ")");
  std::vector<int64_t> shape;
  for (const Json& d : js) {
    MINIVL_CHECK(d.is_number_integer(), where, ": shape ", js.dump(),
                 " has a non-integer dimension ", d.dump());
    MINIVL_CHECK(d.is_number_unsigned(), where, ": shape ", js.dump(), " has a negative dimension ",
                 d.dump());
    uint64_t v = d.get<uint64_t>();
    MINIVL_CHECK(v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": shape ",
                 js.dump(), " has a dimension too large for int64");
    shape.push_back(static_cast<int64_t>(v));
  }

  const Json& jo = j["data_offsets"];
  MINIVL_CHECK(jo.is_array() && jo.size() == 2, where,
               ": \"data_offsets\" is not an array of two integers: ", jo.dump());
  for (const Json& o : jo)
    MINIVL_CHECK(o.is_number_unsigned(), where,
                 ": \"data_offsets\" must hold non-negative integers: ", jo.dump());
  uint64_t begin = jo[0].get<uint64_t>(), end = jo[1].get<uint64_t>();
  MINIVL_CHECK(begin <= end, where, ": data_offsets [", begin, ", ", end, "] have begin > end");
  MINIVL_CHECK(end <= data_size, where, ": data_offsets [", begin, ", ", end,
               "] are out of range: the data section is ", data_size, " bytes");

  size_t elem = safetensors_dtype_size(*dtype);
  std::optional<size_t> nbytes = checked_nbytes(shape, elem);
  MINIVL_CHECK(nbytes.has_value(), where, ": shape ", shape_str(shape), " x ", elem,
               " bytes overflows size_t");
  MINIVL_CHECK(*nbytes == end - begin, where, ": shape ", shape_str(shape), " ",
               safetensors_dtype_name(*dtype), " needs ", *nbytes,
               " bytes but data_offsets [", begin, ", ", end, "] span ", end - begin,
               " (size mismatch)");
  return {SafetensorsEntry{name, *dtype, std::move(shape), nullptr, *nbytes}, begin, end};
}

}  // namespace

size_t safetensors_dtype_size(SafetensorsDType dtype) { return dtype_info(dtype).size; }
const char* safetensors_dtype_name(SafetensorsDType dtype) { return dtype_info(dtype).name; }

std::optional<SafetensorsDType> parse_safetensors_dtype(std::string_view name) {
  for (const DTypeInfo& info : kDTypes)
    if (name == info.name) return info.dtype;
  return std::nullopt;
}

size_t SafetensorsEntry::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

// ---- SafetensorsFile ----

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;

  // Map (or read) the whole file.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MINIVL_CHECK(fd >= 0, "safetensors: cannot open ", path, ": ", errno_text());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    std::string why = errno_text();
    ::close(fd);
    MINIVL_FAIL("safetensors: cannot stat ", path, ": ", why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    MINIVL_FAIL("safetensors: ", path, " is ", S_ISDIR(st.st_mode) ? "a directory" : "not a regular file",
                ", not a safetensors file");
  }
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ < 8) {
    ::close(fd);
    MINIVL_FAIL("safetensors: ", path, ": file is ", file.size_,
                " bytes, shorter than the 8-byte header length (empty or truncated file)");
  }
  void* map = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map != MAP_FAILED) {
    file.base_ = static_cast<const uint8_t*>(map);
    file.mapped_ = true;
  } else {
    file.owned_.resize(file.size_);
    if (!read_all(fd, file.owned_.data(), file.size_)) {
      std::string why = errno_text();
      ::close(fd);
      MINIVL_FAIL("safetensors: cannot read ", path, ": ", why);
    }
    file.base_ = file.owned_.data();
  }
  ::close(fd);   // the mapping (if any) outlives the descriptor

  // Header length.
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | file.base_[i];
  MINIVL_CHECK(n <= kMaxHeaderBytes, "safetensors: ", path, ": header length ", n,
               " exceeds the ", kMaxHeaderBytes, "-byte limit (corrupt or not a safetensors file)");
  MINIVL_CHECK(n <= file.size_ - 8, "safetensors: ", path, ": header length ", n,
               " runs past the end of the file (", file.size_, " bytes; truncated file?)");
  file.header_size_ = static_cast<size_t>(n);
  const char* hbegin = reinterpret_cast<const char*>(file.base_ + 8);
  Json header = parse_header(path, hbegin, hbegin + n);

  const uint8_t* data = file.base_ + 8 + n;
  const uint64_t data_size = file.size_ - 8 - n;

  // Entries.
  std::vector<ParsedEntry> parsed;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      const Json& meta = it.value();
      MINIVL_CHECK(meta.is_object(), "safetensors: ", path,
                   ": __metadata__ is not an object of strings (it is ", meta.type_name(), ")");
      for (auto m = meta.begin(); m != meta.end(); ++m) {
        MINIVL_CHECK(m.value().is_string(), "safetensors: ", path, ": __metadata__ value for '",
                     m.key(), "' is not a string (it is ", m.value().type_name(), ")");
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    parsed.push_back(parse_entry(path, it.key(), it.value(), data_size));
  }

  // The tensors must tile the data section exactly.
  // Ties (zero-size tensors at one offset) keep their header order.
  std::stable_sort(parsed.begin(), parsed.end(), [](const ParsedEntry& a, const ParsedEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const std::string* previous = nullptr;
  for (const ParsedEntry& p : parsed) {
    MINIVL_CHECK(p.begin >= expected, "safetensors: ", path, ": tensor '", p.entry.name,
                 "' at [", p.begin, ", ", p.end, ") overlaps tensor '", previous ? *previous : "",
                 "' which ends at ", expected);
    MINIVL_CHECK(p.begin == expected, "safetensors: ", path, ": gap of ", p.begin - expected,
                 " unused bytes in the data section before tensor '", p.entry.name, "' (at [",
                 expected, ", ", p.begin, "))");
    expected = p.end;
    previous = &p.entry.name;
  }
  MINIVL_CHECK(expected == data_size, "safetensors: ", path, ": ", data_size - expected,
               " trailing bytes after the last tensor (data section is ", data_size,
               " bytes, tensors cover ", expected, ")");

  for (ParsedEntry& p : parsed) {
    p.entry.data = data + p.begin;
    file.index_[p.entry.name] = file.entries_.size();
    file.entries_.push_back(std::move(p.entry));
  }
  return file;
}

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept { *this = std::move(other); }

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this == &other) return *this;
  release();
  path_ = std::move(other.path_);
  base_ = other.base_;
  size_ = other.size_;
  mapped_ = other.mapped_;
  owned_ = std::move(other.owned_);   // a moved vector keeps its buffer, so data pointers stay valid
  header_size_ = other.header_size_;
  entries_ = std::move(other.entries_);
  index_ = std::move(other.index_);
  metadata_ = std::move(other.metadata_);
  other.base_ = nullptr;
  other.size_ = 0;
  other.mapped_ = false;
  other.entries_.clear();
  other.index_.clear();
  return *this;
}

SafetensorsFile::~SafetensorsFile() { release(); }

void SafetensorsFile::release() noexcept {
  if (mapped_ && base_) ::munmap(const_cast<uint8_t*>(base_), size_);
  base_ = nullptr;
  mapped_ = false;
  owned_.clear();
  owned_.shrink_to_fit();
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const SafetensorsEntry& SafetensorsFile::at(const std::string& name) const {
  if (const SafetensorsEntry* e = find(name)) return *e;
  std::string available;
  size_t listed = 0;
  for (const auto& [n, i] : index_) {
    if (listed == kMaxNamesListed) {
      available += ", ... and " + std::to_string(index_.size() - listed) + " more";
      break;
    }
    available += (listed++ ? ", " : "") + n;
  }
  MINIVL_FAIL("safetensors: ", path_, ": no tensor named '", name, "' (", entries_.size(),
              " tensors available: ", available.empty() ? "none" : available, ")");
}

// ---- writer ----

void write_safetensors(const std::string& path, const std::vector<SafetensorsWriteEntry>& entries,
                       const std::map<std::string, std::string>& metadata) {
  // Validate everything and build the header before touching the disk.
  Json header = Json::object();
  if (!metadata.empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const SafetensorsWriteEntry& e : entries) {
    const std::string where = "write_safetensors: " + path + ": tensor '" + e.name + "'";
    MINIVL_CHECK(!e.name.empty(), "write_safetensors: ", path, ": a tensor has an empty name");
    MINIVL_CHECK(e.name != "__metadata__", where, ": the name is reserved for metadata");
    MINIVL_CHECK(names.insert(e.name).second, where, ": duplicate name");
    for (int64_t d : e.shape)
      MINIVL_CHECK(d >= 0, where, ": shape ", shape_str(e.shape), " has a negative dimension");
    size_t elem = safetensors_dtype_size(e.dtype);
    std::optional<size_t> nbytes = checked_nbytes(e.shape, elem);
    MINIVL_CHECK(nbytes.has_value(), where, ": shape ", shape_str(e.shape), " overflows size_t");
    MINIVL_CHECK(*nbytes == e.nbytes, where, ": shape ", shape_str(e.shape), " ",
                 safetensors_dtype_name(e.dtype), " needs ", *nbytes, " bytes but ", e.nbytes,
                 " were given");
    MINIVL_CHECK(e.data != nullptr || e.nbytes == 0, where, ": data is null");
    Json j;
    j["dtype"] = safetensors_dtype_name(e.dtype);
    j["shape"] = e.shape;
    j["data_offsets"] = {offset, offset + e.nbytes};
    header[e.name] = std::move(j);
    offset += e.nbytes;
  }
  std::string text = header.dump();
  text.append((8 - (8 + text.size()) % 8) % 8, ' ');   // data section starts at a multiple of 8
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(uint64_t(text.size()) >> (8 * i));

  // Write the temporary file next to PATH, then rename it over PATH.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MINIVL_CHECK(fd >= 0, "write_safetensors: cannot create ", tmp, ": ", errno_text());
  auto fail = [&](const char* what) {
    std::string why = errno_text();
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    MINIVL_FAIL("write_safetensors: ", what, " ", tmp, " (for ", path, "): ", why);
  };
  if (!write_all(fd, len_bytes, 8) || !write_all(fd, text.data(), text.size())) fail("cannot write");
  for (const SafetensorsWriteEntry& e : entries)
    if (e.nbytes > 0 && !write_all(fd, e.data, e.nbytes)) fail("cannot write");
  if (::fsync(fd) != 0) fail("cannot fsync");
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0) fail("cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename");

  // Make the rename itself durable.
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);   // best effort: some filesystems refuse fsync on a directory
    ::close(dfd);
  }
}

}  // namespace minivl
