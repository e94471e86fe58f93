#pragma once
#include <string>

namespace minivl {

enum class DeviceType : unsigned char { CPU = 0, CUDA = 1 };
inline constexpr int kNumDeviceTypes = 2;

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0"
};

Device parse_device(const std::string& s);  // "cpu", "cuda", "cuda:1"
const char* device_type_name(DeviceType t);

// True when built with CUDA and at least one GPU is visible at run time.
bool cuda_available();
// Why CUDA is unavailable ("built without CUDA", "no CUDA device: ..."), empty when available.
std::string cuda_unavailable_reason();
// GPUs visible to this process (0 without CUDA).
int cuda_device_count();
// The name of the GPU this process drives ("NVIDIA H100 80GB HBM3"); empty without one.
std::string cuda_device_name();
// One GPU per process (data parallelism, docs/distributed.md): the CUDA backend runs on physical
// GPU `index`, which this process then calls cuda:0 (as CUDA_VISIBLE_DEVICES=index would). Call
// before the first CUDA tensor; fails afterwards for another GPU, and without CUDA.
void select_cuda_device(int index);

}  // namespace minivl
