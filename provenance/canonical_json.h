#pragma once
// RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string a JSON value hashes as, so
// that anyone can recompute a provenance entry's leaf hash from its content. Object members are
// sorted by the UTF-16 code units of their names, there is no insignificant white space,
// strings use the minimal escapes, and numbers are written as ECMAScript writes an IEEE double.
// Pure functions; thread-safe.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dsx::provenance {

// The canonical form; an error for values JCS cannot represent (NaN, infinities, integers beyond
// 2^53 that a double would round, invalid UTF-8).
Result<std::string> canonical_json(const nlohmann::json& value);
// The same, appended to `out` (left as it was on an error).
Status append_canonical_json(const nlohmann::json& value, std::string& out);
// The canonical form of the JSON string `text`, appended to `out` (left as it was when `text` is
// not valid UTF-8): what append_canonical_json writes for a string, without building a value.
Status append_canonical_string(std::string_view text, std::string& out);

// Whether `text` is exactly what canonical_json writes for some JSON value (so equivalent to
// parsing it with parse_json_text and comparing canonical_json's output), checked in one pass
// without building the value: auditing millions of entries cannot afford a parse and a rewrite
// of each. If it is and `top_seq` is given, *top_seq is the top-level object's "seq" member
// when that is an unsigned integer, else nullopt.
bool is_canonical_json(std::string_view text, std::optional<uint64_t>* top_seq = nullptr);

// ECMAScript's Number.prototype.toString for a finite double (RFC 8785 section 3.2.2.3).
std::string es_number(double v);

}  // namespace dsx::provenance
