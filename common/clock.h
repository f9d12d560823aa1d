#pragma once
// Clock: where dsx components get "now". Pure libraries never read a clock; they take the time
// as a parameter, and the component that calls them asks a Clock. SystemClock reads the real
// clock; ManualClock is set by hand (tests, replays). Both are safe to call from any thread.

#include <atomic>

#include "common/time.h"

namespace dsx {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Instant now() const = 0;
};

class SystemClock final : public Clock {
 public:
  Instant now() const override;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(Instant start) : nanos_(start.to_unix_nanos()) {}
  Instant now() const override { return Instant::from_unix_nanos(nanos_.load()); }
  void set(Instant t) { nanos_.store(t.to_unix_nanos()); }
  void advance_seconds(long long s) { nanos_.fetch_add(s * 1'000'000'000LL); }

 private:
  std::atomic<long long> nanos_;
};

}  // namespace dsx
