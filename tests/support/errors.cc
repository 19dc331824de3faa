#include "support/errors.h"

#include <exception>

#include "attend/error.h"

namespace attend::testing {

std::string ThrownMessage(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("(threw a non-attend exception: ") + e.what() + ")";
  }
  return "(no exception was thrown)";
}

}  // namespace attend::testing
