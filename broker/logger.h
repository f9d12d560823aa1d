#pragma once
// Structured logs: one JSON object per line ({"time": ..., "level": ..., "event": ..., ...}) on
// a stream the logger does not own (stderr by default). Thread-safe: lines never interleave.

#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/clock.h"

namespace dsx::broker {

class Logger {
 public:
  enum class Level { kDebug, kInfo, kWarn, kError };
  // `out` may be nullptr: log nothing (tests, benchmarks).
  Logger(std::FILE* out, const Clock& clock, Level min = Level::kInfo)
      : out_(out), clock_(clock), min_(min) {}

  void log(Level level, std::string_view event, nlohmann::json fields = nlohmann::json::object());
  void info(std::string_view event, nlohmann::json fields = nlohmann::json::object()) {
    log(Level::kInfo, event, std::move(fields));
  }
  void warn(std::string_view event, nlohmann::json fields = nlohmann::json::object()) {
    log(Level::kWarn, event, std::move(fields));
  }
  void error(std::string_view event, nlohmann::json fields = nlohmann::json::object()) {
    log(Level::kError, event, std::move(fields));
  }

 private:
  std::FILE* const out_;
  const Clock& clock_;
  const Level min_;
  std::mutex mutex_;  // one line at a time
};

}  // namespace dsx::broker
