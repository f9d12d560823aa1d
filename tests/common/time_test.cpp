#include "common/time.h"

#include <catch2/catch.hpp>

#include "common/clock.h"

using dsx::Instant;
using dsx::parse_xsd_date;
using dsx::parse_xsd_date_time;

TEST_CASE("days_from_civil matches known dates", "[time]") {
  CHECK(dsx::days_from_civil(1970, 1, 1) == 0);
  CHECK(dsx::days_from_civil(2000, 3, 1) == 11017);
  CHECK(dsx::days_from_civil(1969, 12, 31) == -1);
  CHECK(dsx::days_from_civil(2024, 2, 29) == 19782);
}

TEST_CASE("xsd:dateTime honours time zones and fractions", "[time]") {
  auto utc = parse_xsd_date_time("2024-12-31T23:30:00Z");
  auto minus1 = parse_xsd_date_time("2024-12-31T23:30:00-01:00");
  auto plus2 = parse_xsd_date_time("2025-01-01T02:30:00+02:00");
  REQUIRE(utc);
  REQUIRE(minus1);
  REQUIRE(plus2);
  CHECK(minus1->seconds - utc->seconds == 3600);
  CHECK(*plus2 == *minus1);
  auto no_zone = parse_xsd_date_time("2024-12-31T23:30:00");
  REQUIRE(no_zone);
  CHECK(*no_zone == *utc);  // no zone: UTC
  auto frac = parse_xsd_date_time("2024-02-12T11:20:10.999Z");
  REQUIRE(frac);
  CHECK(frac->nanos == 999'000'000);
  auto midnight24 = parse_xsd_date_time("2024-01-01T24:00:00Z");
  REQUIRE(midnight24);
  CHECK(*midnight24 == *parse_xsd_date_time("2024-01-02T00:00:00Z"));
}

TEST_CASE("invalid dateTimes are refused", "[time]") {
  for (const char* bad :
       {"", "2024", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-01-01T25:00:00Z",
        "2024-01-01T24:00:01Z", "2024-01-01T00:60:00Z", "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00+15:00", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00ZZ",
        "02024-01-01T00:00:00Z", "2024-1-01T00:00:00Z"}) {
    INFO(bad);
    CHECK_FALSE(parse_xsd_date_time(bad));
  }
  CHECK(parse_xsd_date_time("2024-02-29T00:00:00Z"));  // a leap year
}

TEST_CASE("xsd:date is its first instant", "[time]") {
  CHECK(*parse_xsd_date("2018-01-01") == *parse_xsd_date_time("2018-01-01T00:00:00Z"));
  CHECK(*parse_xsd_date("2018-01-01+01:00") == *parse_xsd_date_time("2017-12-31T23:00:00Z"));
  CHECK_FALSE(parse_xsd_date("2018-01-01T00:00:00Z"));
}

TEST_CASE("format_rfc3339 round-trips", "[time]") {
  for (const char* s : {"2024-02-12T11:20:10.999Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                        "2038-01-19T03:14:08.000001Z", "2024-02-29T12:00:00.123456789Z"}) {
    auto t = parse_xsd_date_time(s);
    REQUIRE(t);
    CHECK(dsx::format_rfc3339(*t) == s);
  }
  // Every field at its widest and narrowest, and years RFC 3339 cannot write (kept readable).
  CHECK(dsx::format_rfc3339(Instant{253402300799, 5}) == "9999-12-31T23:59:59.000000005Z");
  CHECK(dsx::format_rfc3339(Instant{-62135596800, 10'000'000}) == "0001-01-01T00:00:00.010Z");
  CHECK(dsx::format_rfc3339(Instant{253402300800, 0}) == "10000-01-01T00:00:00Z");
  CHECK(dsx::format_rfc3339(Instant{-62167219201, 0}) == "-001-12-31T23:59:59Z");
}

TEST_CASE("ManualClock is set and advanced by hand", "[clock]") {
  dsx::ManualClock clock(*parse_xsd_date_time("2024-01-01T00:00:00Z"));
  clock.advance_seconds(90);
  CHECK(dsx::format_rfc3339(clock.now()) == "2024-01-01T00:01:30Z");
  CHECK(Instant::from_unix_nanos(-1).seconds == -1);
  CHECK(Instant::from_unix_nanos(-1).nanos == 999'999'999);
}
