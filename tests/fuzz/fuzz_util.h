#pragma once
// Shared helpers for the libFuzzer targets in tests/fuzz (docs/hardening.md).
// The parsers read files, so each input is written to a per-process scratch file
// (in /dev/shm when it exists) and the real file-reading entry point is called.
// minivl::Error (any std::exception) is the expected way to reject an input;
// anything else (a sanitizer report, a crash, a timeout, a huge allocation) is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace minivl::fuzz {

inline std::filesystem::path scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("minivl_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  // Registered after dir is built, so it runs before dir's destructor: the folder goes at exit.
  static const bool cleanup = (std::atexit([] {
                                 std::error_code ec;
                                 std::filesystem::remove_all(scratch_dir(), ec);
                               }),
                               true);
  (void)cleanup;
  return dir;
}

// Writes bytes to scratch_dir()/name and returns the path.
inline std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path full = scratch_dir() / name;
  if (name.find('/') != std::string::npos) std::filesystem::create_directories(full.parent_path());
  const std::string path = full.string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}
inline std::string write_scratch(const std::string& name, std::string_view text) {
  return write_scratch(name, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

// Splits an input at the first occurrence of sep: (before, after); no sep: (all, "").
inline std::pair<std::string_view, std::string_view> split_at(std::string_view s, std::string_view sep) {
  size_t at = s.find(sep);
  if (at == std::string_view::npos) return {s, {}};
  return {s.substr(0, at), s.substr(at + sep.size())};
}

}  // namespace minivl::fuzz
