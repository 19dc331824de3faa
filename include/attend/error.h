// Errors in three tiers: ATTEND_CHECK (user-caused, throws attend::Error naming the op and what was
// wrong), ATTEND_ASSERT (broken invariant inside the library, also throws but says it is a bug),
// ATTEND_DASSERT (debug-only, for hot loops).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace attend {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// strerror(errno), for messages about a failed system call.
std::string ErrnoText();

namespace detail {
inline void StreamAll(std::ostringstream&) {}
template <typename T, typename... Rest>
void StreamAll(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  StreamAll(os, rest...);
}
template <typename... Args>
[[noreturn]] void Throw(const char* file, int line, bool is_bug, const Args&... args) {
  std::ostringstream os;
  StreamAll(os, args...);
  if (is_bug) os << " (internal error at " << file << ":" << line << "; please report it)";
  throw Error(os.str());
}
}  // namespace detail

}  // namespace attend

// User-caused problems: the message should name the op and the shapes or the input at fault.
#define ATTEND_CHECK(cond, ...)                                                   \
  do {                                                                            \
    if (!(cond)) ::attend::detail::Throw(__FILE__, __LINE__, false, __VA_ARGS__); \
  } while (0)

// Invariants the library itself must keep.
#define ATTEND_ASSERT(cond, ...)                                                        \
  do {                                                                                  \
    if (!(cond))                                                                        \
      ::attend::detail::Throw(__FILE__, __LINE__, true, "assertion failed: " #cond " ", \
                              ##__VA_ARGS__);                                           \
  } while (0)

#ifndef NDEBUG
#define ATTEND_DASSERT(cond) ATTEND_ASSERT(cond)
#else
#define ATTEND_DASSERT(cond) \
  do {                       \
  } while (0)
#endif
