#pragma once
// RFC 8785 JSON Canonicalization Scheme (JCS): the one byte string a JSON value hashes as, so
// that anyone can recompute a provenance entry's leaf hash from its content. Object members are
// sorted by the UTF-16 code units of their names, there is no insignificant white space,
// strings use the minimal escapes, and numbers are written as ECMAScript writes an IEEE double.
// Pure functions; thread-safe.

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace dsx::provenance {

// The canonical form; an error for values JCS cannot represent (NaN, infinities, integers beyond
// 2^53 that a double would round, invalid UTF-8).
Result<std::string> canonical_json(const nlohmann::json& value);

// ECMAScript's Number.prototype.toString for a finite double (RFC 8785 section 3.2.2.3).
std::string es_number(double v);

}  // namespace dsx::provenance
