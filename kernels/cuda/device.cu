// Device basics: discovery (how many GPUs, or why none), error formatting, the backend's stream,
// device properties (read once, for grid sizing and shared-memory limits).
#include <cstdio>
#include <mutex>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/common.cuh"

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
      r.reason = "no CUDA device: none visible";
    }
    return r;
  }();
  return d;
}
}  // namespace

int device_count() { return discovery().count; }
std::string unavailable_reason() { return discovery().reason; }

void throw_cuda_error(cudaError_t err, const char* call, const char* file, int line) {
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw CudaError(std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ") in " +
                  call + " at " + file + ":" + std::to_string(line));
}

void throw_cublas_error(cublasStatus_t st, const char* call, const char* file, int line) {
  throw CudaError(std::string("cuBLAS error ") + std::to_string(int(st)) + " in " + call + " at " + file + ":" +
                  std::to_string(line));
}

namespace {
// The physical GPU this process drives (what cuda:0 means here; select_device sets it before the first use).
int g_device = 0;
bool g_device_used = false;
}  // namespace

void select_device(int physical) {
  if (g_device_used && physical == g_device) return;
  if (g_device_used)
    throw CudaError("select_device(" + std::to_string(physical) + "): the CUDA backend already runs on GPU " +
                    std::to_string(g_device) + "; choose the GPU before the first CUDA tensor");
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  if (physical < 0 || physical >= count)
    throw CudaError("select_device(" + std::to_string(physical) + "): " + std::to_string(count) +
                    " GPU(s) visible");
  CUDA_CHECK(cudaSetDevice(physical));  // this thread's allocations go there from now on
  g_device = physical;
  g_device_used = true;
}

const DeviceProps& device_props() {
  static const DeviceProps props = [] {
    DeviceProps p;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError();
      return p;  // zeros: grid_for falls back to a default SM count
    }
    cudaDeviceProp d{};
    g_device_used = true;
    if (cudaGetDeviceProperties(&d, g_device) != cudaSuccess) {
      cudaGetLastError();
      return p;
    }
    p.device = g_device;
    p.sm_count = d.multiProcessorCount;
    p.l2_bytes = d.l2CacheSize;
    p.max_smem_per_block = int(d.sharedMemPerBlock);
    p.max_smem_per_block_optin = int(d.sharedMemPerBlockOptin);
    p.max_threads_per_sm = d.maxThreadsPerMultiProcessor;
    p.cc_major = d.major;
    p.cc_minor = d.minor;
    std::snprintf(p.name, sizeof(p.name), "%s", d.name);
    return p;
  }();
  return props;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    CUDA_CHECK(cudaSetDevice(g_device));
    g_device_used = true;
    CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

void* stream_handle() { return stream(); }

std::string device_name() { return device_props().name; }

}  // namespace minivl::cuda
