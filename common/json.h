#pragma once
// Reading JSON from untrusted text: parse without throwing, with an error that names the byte
// offset, and refuse nesting deeper than any dsx document needs before parsing (nlohmann::json's
// serializer and dsx's readers recurse; hostile input must not exhaust the stack). Pure and
// thread-safe.

#include <nlohmann/json.hpp>
#include <string_view>

#include "common/status.h"

namespace dsx {

inline constexpr size_t kMaxJsonDepth = 100;

Result<nlohmann::json> parse_json_text(std::string_view text);

}  // namespace dsx
