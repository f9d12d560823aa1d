#include "broker/logger.h"

#include "common/time.h"

namespace dsx::broker {

void Logger::log(Level level, std::string_view event, nlohmann::json fields) {
  if (!out_ || level < min_) return;
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  nlohmann::json line = nlohmann::json::object();
  line["time"] = format_rfc3339(clock_.now());
  line["level"] = kNames[static_cast<int>(level)];
  line["event"] = event;
  if (fields.is_object())
    for (auto& [k, v] : fields.items())
      line[k] = std::move(v);
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mutex_);
  std::fwrite(text.data(), 1, text.size(), out_);
  std::fflush(out_);
}

}  // namespace dsx::broker
