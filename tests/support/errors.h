// What a piece of code throws, as text for EXPECT_THAT(..., HasSubstr(...)).
#pragma once

#include <functional>
#include <string>

namespace attend::testing {

// The message of the attend::Error that `body` throws; a note saying it threw something else or
// nothing, so that a failed expectation shows what happened.
std::string ThrownMessage(const std::function<void()>& body);

}  // namespace attend::testing
