#pragma once
#include "core/counters.h"
#include "core/error.h"

namespace minivl {

std::string missing_kernel_message(const char* op, Device device);

template <typename Fn>
Fn kernel_for(const Fn (&slots)[kNumDeviceTypes], Device device, const char* op) {
  Fn fn = slots[int(device.type)];
  if (!fn) throw Error(missing_kernel_message(op, device));
  count_launch();  // every lookup is followed by exactly one call of the kernel
  return fn;
}

}  // namespace minivl
