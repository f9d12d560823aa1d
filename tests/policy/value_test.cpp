#include "policy/value.h"

#include <catch2/catch.hpp>

using dsx::policy::Decimal;
using dsx::policy::Duration;
using dsx::policy::Value;

namespace {
Decimal dec(const char* s) {
  auto d = Decimal::parse(s);
  REQUIRE(d);
  return *d;
}
Duration dur(const char* s) {
  auto d = Duration::parse(s);
  REQUIRE(d);
  return *d;
}
}  // namespace

TEST_CASE("decimals compare exactly", "[value]") {
  CHECK(dec("5.00") == dec("5"));
  CHECK(dec("0.10") == dec("0.1"));
  CHECK(dec("-0") == dec("0"));
  CHECK(dec("1e3") == dec("1000"));
  CHECK(dec("+2.5E-1") == dec("0.25"));
  CHECK(dec("-2") < dec("-1"));
  CHECK(dec("0.5") < dec("1"));
  CHECK(dec("-0.5") < dec("0"));
  CHECK(dec("12") < dec("123"));
  CHECK(dec("120") > dec("12"));
  CHECK(dec("99999999999999999999.000000000000000001") > dec("99999999999999999999"));
  CHECK(dec("0.1000000000000000000000001") > dec("0.1"));
  for (const char* bad : {"", "-", ".", "1.2.3", "1e", "abc", "1,5", "0x10", "1e9999999999"}) {
    INFO(bad);
    CHECK_FALSE(Decimal::parse(bad));
  }
}

TEST_CASE("durations follow the XML Schema order", "[value]") {
  CHECK(dur("PT90M") < dur("PT2H"));
  CHECK((dur("P1D") <=> dur("PT24H")) == std::partial_ordering::equivalent);
  CHECK((dur("P1Y") <=> dur("P12M")) == std::partial_ordering::equivalent);
  CHECK(dur("P1M") < dur("P40D"));
  CHECK(dur("P1M") > dur("P27D"));
  CHECK((dur("P1M") <=> dur("P30D")) == std::partial_ordering::unordered);
  CHECK(dur("PT0.5S") < dur("PT1S"));
  CHECK(dur("-PT1H") < dur("PT0S"));
  CHECK(dur("P12DT3H") < dur("P30D"));
  for (const char* bad : {"", "P", "PT", "P1H", "PT1D", "P1.5D", "P1M1Y", "1D", "P-1D", "PT1H1H",
                          "P99999999999999999999Y"}) {
    INFO(bad);
    CHECK_FALSE(Duration::parse(bad));
  }
}

TEST_CASE("bare lexical forms are typed by their shape", "[value]") {
  CHECK(Value::infer("2024-01-01T00:00:00Z").kind() == Value::Kind::kTime);
  CHECK(Value::infer("2024-01-01").kind() == Value::Kind::kTime);
  CHECK(Value::infer("PT2H").kind() == Value::Kind::kDuration);
  CHECK(Value::infer("-P1D").kind() == Value::Kind::kDuration);
  CHECK(Value::infer("42").kind() == Value::Kind::kNumber);
  CHECK(Value::infer("http://example.org/x").kind() == Value::Kind::kIri);
  CHECK(Value::infer("urn:iso:3166:DE").kind() == Value::Kind::kIri);
  CHECK(Value::infer("Sunday").kind() == Value::Kind::kString);
  CHECK(Value::infer("high risk: no").kind() == Value::Kind::kString);
}

TEST_CASE("values of different kinds are not silently ordered", "[value]") {
  Value five = Value::infer("5");
  Value time = Value::infer("2024-01-01T00:00:00Z");
  Value iri = Value::iri("http://example.org/x");
  CHECK_FALSE(compare(five, time).has_value());
  CHECK(compare(iri, Value::string("http://example.org/x")) == std::partial_ordering::equivalent);
  CHECK(compare(iri, Value::iri("http://example.org/y")) == std::partial_ordering::unordered);
  CHECK(same_value(Value::infer("5.0"), five));
  CHECK_FALSE(same_value(five, time));
  CHECK(same_value(Value::string("5"), five));  // textual: compared as written
}

TEST_CASE("durations beyond a billion years are refused, not wrapped", "[value]") {
  CHECK_FALSE(Duration::parse("P300000000000000000Y"));
  CHECK_FALSE(Duration::parse("P1000000001Y"));
  auto far = Duration::parse("P999999999Y");
  REQUIRE(far);
  CHECK(dur("P1D") < *far);
  CHECK(*far > dur("P11M"));
}
