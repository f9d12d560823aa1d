#include "common/json.h"

#include <optional>
#include <string>

namespace dsx {
namespace {

using json = nlohmann::json;

// The byte offset where `text` nests deeper than kMaxJsonDepth, if it does. Brackets inside
// strings do not count.
std::optional<size_t> too_deep(std::string_view text) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

}  // namespace

Result<nlohmann::json> parse_json_text(std::string_view text) {
  if (auto at = too_deep(text))
    return Status::invalid_argument("invalid JSON at byte " + std::to_string(*at) +
                                    ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                                    " levels");
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    return Status::invalid_argument(
        "invalid JSON at byte " + std::to_string(e.byte) + ": " +
        std::string(e.what()).substr(std::string(e.what()).find(':') + 2));
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace dsx
