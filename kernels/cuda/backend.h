#pragma once
// The CUDA backend's device entry points (kernels/cuda/device.cu), seen by core/backends.cpp,
// core/register_cuda.cpp and the benchmarks. This header includes no CUDA headers so that host
// C++ files can include it.
#include <string>

namespace minivl::cuda {

int device_count();                  // 0 when no GPU is visible (never throws)
std::string unavailable_reason();    // why device_count() is 0, empty otherwise
std::string device_name();           // the driven GPU's name (device_props().name)
// One GPU per process: the backend (its stream, allocations, cuda:0) runs on physical GPU `physical`.
// Call before the first CUDA tensor; throws cuda::CudaError (a std::runtime_error) otherwise.
void select_device(int physical);
// The backend's one stream (a cudaStream_t, non-blocking: work on it does not order with the
// legacy default stream). Host code that times kernels with CUDA events records them here.
void* stream_handle();

}  // namespace minivl::cuda
