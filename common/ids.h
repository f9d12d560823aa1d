#pragma once
// Random identifiers (RFC 9562 UUIDs) from OpenSSL's CSPRNG. Thread-safe.

#include <string>

namespace dsx {

// A version 4 UUID, "6f1d2c3b-...": 36 characters, lower-case hex, 122 random bits. For
// dataset and offer ids.
std::string random_uuid();

// A version 7 UUID (RFC 9562, section 5.7): the Unix time in milliseconds in the first 48 bits,
// then 74 random bits. Ids sort (as text too) by the millisecond they were minted in (within
// one millisecond, or after the clock steps back, in no particular order), so rows keyed by
// them are appended near the end of an SQLite index instead of landing on a random page of it:
// each such write costs the WAL a page of its own (docs/performance.md). For negotiation,
// agreement, transfer and connector process ids; they say when they were minted, which the
// records holding them say anyway, and 74 random bits keep them unguessable.
std::string time_ordered_uuid();

}  // namespace dsx
