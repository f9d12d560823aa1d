#include "common/clock.h"

#include <chrono>

namespace dsx {

Instant SystemClock::now() const {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return Instant::from_unix_nanos(ns.count());
}

}  // namespace dsx
