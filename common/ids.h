#pragma once
// Random identifiers (RFC 9562 UUIDs) from OpenSSL's CSPRNG. Thread-safe.

#include <string>

namespace dsx {

// A version 4 UUID, "6f1d2c3b-...": 36 characters, lower-case hex, 122 random bits. For
// dataset and offer ids.
std::string random_uuid();

// A version 7 UUID (RFC 9562, section 5.7): the Unix time in milliseconds in the first 48 bits,
// then 74 random bits. Ids minted one after another sort (as text too) by the time they were
// made, so rows keyed by them are appended to the end of an SQLite index instead of landing on
// a random page of it: each such write costs the WAL a page of its own (docs/performance.md).
// For negotiation, agreement and transfer ids; they say when they were minted, which the
// records holding them say anyway.
std::string time_ordered_uuid();

}  // namespace dsx
