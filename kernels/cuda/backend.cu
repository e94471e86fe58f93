// CUDA backend registration: device discovery and the kernel table's CUDA slots.
#include <cuda_runtime.h>

#include "core/dispatch.h"
#include "kernels/cuda/backend.h"

namespace minivl::cuda {

namespace {
struct Discovery {
  int count = 0;
  std::string reason;
};
const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery r;
    cudaError_t err = cudaGetDeviceCount(&r.count);
    if (err != cudaSuccess) {
      r.count = 0;
      r.reason = std::string("no CUDA device: ") + cudaGetErrorString(err);
      cudaGetLastError();  // clear the sticky error
    } else if (r.count == 0) {
      r.reason = "no CUDA device visible";
    }
    return r;
  }();
  return d;
}
}  // namespace

int device_count() { return discovery().count; }
std::string unavailable_reason() { return discovery().reason; }

void register_kernels(KernelTable& table) { (void)table; }

}  // namespace minivl::cuda
