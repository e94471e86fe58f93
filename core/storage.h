#pragma once
// Storage: refcounted bytes on one device (shared by a tensor and its views).
// The version counter lives here because views share it: an in-place write
// through any view bumps it, and autograd's saved-tensor check sees that.
#include <cstdint>
#include <memory>

#include "core/allocator.h"
#include "core/device.h"

namespace minivl {

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere (kept alive by `owner`), e.g. an mmap'd file.
  Storage(void* data, size_t nbytes, Device device, std::shared_ptr<void> owner);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;  // null for wrapped memory
  std::shared_ptr<void> owner_;
  uint64_t version_ = 0;
};

}  // namespace minivl
