// owt::Error, the one exception type of owt, and OWT_CHECK for internal invariants.
// User-facing errors name the file and the line or field; internal checks name the source line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace owt {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds a message from any streamable pieces: throw Error(cat("bad ", x)).
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

}  // namespace owt

// Internal invariant: a failure is a bug in owt, reported with the source location.
#define OWT_CHECK(cond, ...)                                                        \
  do {                                                                              \
    if (!(cond))                                                                    \
      throw ::owt::Error(::owt::cat("internal error at ", __FILE__, ":", __LINE__, \
                                    ": ", #cond, " ", ##__VA_ARGS__));              \
  } while (0)
