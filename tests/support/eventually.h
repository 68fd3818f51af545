// Waits for something a background thread does: true as soon as `condition` holds, false if it
// still does not after `timeout`.
#pragma once

#include <chrono>
#include <thread>

namespace testing_support {

template <typename Condition>
bool Eventually(Condition condition, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace testing_support
