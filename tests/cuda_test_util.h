#pragma once
// What the CUDA tests share: the skip on a machine without a GPU (visible in the test output and,
// once per suite, on stdout for CI logs) and the poisoning of every CUDA allocation.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "core/device.h"
#include "core/dispatch.h"

namespace minivl::testing {

// True, after a MESSAGE "<suite>: skipped: <why> (<test>)" and a first-time line on stdout for
// `suite`, when there is no CUDA device; false on a GPU. Registers the backends (and the CUDA
// allocator) first, so that the test's first CUDA allocation goes through them.
inline bool skip_without_cuda(const std::string& suite, const std::string& test) {
  (void)kernels();
  if (cuda_available()) return false;
  const std::string why = suite + ": skipped: " + cuda_unavailable_reason();
  static std::set<std::string> printed;
  if (printed.insert(suite).second) {
    std::printf("%s\n", why.c_str());
    std::fflush(stdout);
  }
  MESSAGE(why << " (" << test << ")");
  return true;
}

// Asks the caching allocator to fill every CUDA allocation with 0xFF bytes (NaN in
// f32, bf16 and f16) (it reads MINIVL_CUDA_POISON on its
// first allocation), so that a kernel reading memory it did not write
// shows in the outputs. Call it from a namespace-scope initialiser; an explicit setting wins.
inline bool poison_cuda_allocations() { return setenv("MINIVL_CUDA_POISON", "1", 0) == 0; }

}  // namespace minivl::testing
