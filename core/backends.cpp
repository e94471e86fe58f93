// Where core/ learns whether the CUDA backend was built (with core/register_cuda.cpp, which fills
// its kernel slots). Everything else asks cuda_available() or looks in the kernel table.
#include "core/device.h"
#include "core/error.h"

#if MINIVL_CUDA
#include "kernels/cuda/backend.h"
#endif

namespace minivl {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

const char* device_type_name(DeviceType t) { return t == DeviceType::CPU ? "cpu" : "cuda"; }

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "cuda") return Device::cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    try {
      return Device::cuda(std::stoi(s.substr(5)));
    } catch (const std::exception&) {
    }
  }
  MINIVL_FAIL("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

#if MINIVL_CUDA
bool cuda_available() { return cuda::device_count() > 0; }
std::string cuda_unavailable_reason() { return cuda::unavailable_reason(); }
int cuda_device_count() { return cuda::device_count(); }
std::string cuda_device_name() { return cuda::device_count() > 0 ? cuda::device_name() : std::string(); }
void select_cuda_device(int index) {
  try {
    cuda::select_device(index);
  } catch (const std::exception& e) {
    throw Error(e.what());
  }
}
#else
bool cuda_available() { return false; }
std::string cuda_unavailable_reason() { return "built without CUDA"; }
int cuda_device_count() { return 0; }
std::string cuda_device_name() { return {}; }
void select_cuda_device(int index) { MINIVL_FAIL("select_cuda_device(", index, "): built without CUDA"); }
#endif

}  // namespace minivl
