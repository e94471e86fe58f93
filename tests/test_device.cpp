// Devices without a GPU: asking for CUDA on a CPU-only build or machine names the reason, and
// device names parse (cuda:N) or are refused naming the accepted ones.
#include <doctest/doctest.h>

#include <functional>

#include "core/device.h"
#include "core/ops.h"
#include "tests/core_test_util.h"

using namespace minivl;
using minivl::testing::check_error;

TEST_SUITE("device") {

TEST_CASE("device cuda without a GPU says why") {
  if (cuda_available()) {
    MESSAGE("skipped: a CUDA device is available");
    return;
  }
  const std::string reason = cuda_unavailable_reason();
  CHECK((reason.find("built without CUDA") != std::string::npos || reason.find("no CUDA device") != std::string::npos));
  auto says_why = [](const std::string& m) {
    return m.find("built without CUDA") != std::string::npos || m.find("no CUDA device") != std::string::npos;
  };
  for (auto fn : std::vector<std::function<void()>>{
           [] { zeros({2}).to(Device::cuda()); },
           [] { zeros({2}, DType::f32, parse_device("cuda")); },
           [] { empty({2}, DType::f32, Device::cuda(1)); },
       }) {
    std::string message;
    try {
      fn();
    } catch (const Error& e) {
      message = e.what();
    }
    CAPTURE(message);
    CHECK(says_why(message));
  }
  CHECK(parse_device("cuda:1") == Device::cuda(1));
  check_error([] { parse_device("tpu"); }, {"tpu", "cpu", "cuda"});
}

}  // TEST_SUITE
