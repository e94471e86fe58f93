#pragma once
// minivl::Error and the MINIVL_CHECK macro. Every user-facing failure goes
// through here, with a message that names the op (or file) and the shapes,
// dtypes or devices involved.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace minivl {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace minivl

// MINIVL_CHECK(cond, "matmul: shapes ", a.shape_str(), " and ", ...);
#define MINIVL_CHECK(cond, ...)                                         \
  do {                                                                  \
    if (!(cond)) throw ::minivl::Error(::minivl::detail::concat(__VA_ARGS__)); \
  } while (0)

#define MINIVL_FAIL(...) throw ::minivl::Error(::minivl::detail::concat(__VA_ARGS__))
