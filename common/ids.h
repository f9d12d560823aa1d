#pragma once
// Random identifiers: RFC 9562 version 4 UUIDs from OpenSSL's CSPRNG, for dataset, offer,
// negotiation and agreement ids. Thread-safe.

#include <string>

namespace dsx {

// "6f1d2c3b-...": 36 characters, lower-case hex.
std::string random_uuid();

}  // namespace dsx
