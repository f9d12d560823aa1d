#pragma once
// Instant: a point in time (UTC, nanosecond resolution), and the parsers and formatter for the
// XML Schema / RFC 3339 lexical forms dsx reads and writes. Plain value type; all functions are
// pure and thread-safe.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsx {

struct Instant {
  int64_t seconds = 0;  // since 1970-01-01T00:00:00Z
  int32_t nanos = 0;    // 0..999'999'999

  static Instant from_unix_nanos(long long n);
  long long to_unix_nanos() const { return seconds * 1'000'000'000LL + nanos; }

  auto operator<=>(const Instant&) const = default;
};

// Days since 1970-01-01 of a proleptic Gregorian date (any year, month 1..12, day 1..31).
int64_t days_from_civil(int64_t year, unsigned month, unsigned day);
bool is_valid_date(int64_t year, unsigned month, unsigned day);

// xsd:dateTime: YYYY-MM-DDThh:mm:ss[.fraction][Z|(+|-)hh:mm]. A value without a zone is read as
// UTC. 24:00:00 is the first instant of the next day, as XML Schema allows. nullopt when the
// text is not a valid dateTime (also for impossible dates such as 2023-02-29).
std::optional<Instant> parse_xsd_date_time(std::string_view text);

// xsd:date: YYYY-MM-DD[Z|(+|-)hh:mm], read as its first instant (midnight in its zone, UTC
// without one).
std::optional<Instant> parse_xsd_date(std::string_view text);

// RFC 3339 in UTC with as many fraction digits as needed (none, 3, 6 or 9):
// 2024-02-12T11:20:10.999Z.
std::string format_rfc3339(Instant t);

}  // namespace dsx
