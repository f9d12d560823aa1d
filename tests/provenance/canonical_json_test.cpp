#include "provenance/canonical_json.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

using dsx::provenance::canonical_json;
using dsx::provenance::es_number;

namespace {
std::string jcs(const char* text) {
  auto r = canonical_json(nlohmann::json::parse(text));
  INFO(r.status().message());
  REQUIRE(r);
  return *r;
}
}  // namespace

TEST_CASE("RFC 8785 section 3.2.3 example", "[jcs]") {
  const char* input = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  CHECK(jcs(input) ==
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
        "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

TEST_CASE("members are sorted by UTF-16 code units", "[jcs]") {
  const char* input =
      R"({"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\ud83d\ude00": 5, "\u0080": 6, "\u00f6": 7})";
  // \r, 1, U+0080, U+00F6, U+20AC, U+1F600 (as D83D DE00), U+FB33: the emoji sorts before
  // U+FB33 in UTF-16 although its UTF-8 bytes sort after.
  CHECK(jcs(input) ==
        "{\"\\r\":2,\"1\":4,\"\xc2\x80\":6,\"\xc3\xb6\":7,\"\xe2\x82\xac\":1,"
        "\"\xf0\x9f\x98\x80\":5,\"\xef\xac\xb3\":3}");
}

TEST_CASE("numbers are written as ECMAScript writes doubles", "[jcs]") {
  CHECK(es_number(0.0) == "0");
  CHECK(es_number(-0.0) == "0");
  CHECK(es_number(5e-324) == "5e-324");
  CHECK(es_number(1.7976931348623157e308) == "1.7976931348623157e+308");
  CHECK(es_number(1e21) == "1e+21");
  CHECK(es_number(1e20) == "100000000000000000000");
  CHECK(es_number(295147905179352825856.0) == "295147905179352830000");
  CHECK(es_number(1e-7) == "1e-7");
  CHECK(es_number(0.000001) == "0.000001");
  CHECK(es_number(123.456) == "123.456");
  CHECK(es_number(-1.5) == "-1.5");
  CHECK(es_number(9007199254740992.0) == "9007199254740992");
  CHECK(jcs("[1, -7, 9007199254740992]") == "[1,-7,9007199254740992]");
}

TEST_CASE("values JCS cannot hold are refused", "[jcs]") {
  CHECK_FALSE(canonical_json(nlohmann::json(std::numeric_limits<double>::quiet_NaN())));
  CHECK_FALSE(canonical_json(nlohmann::json(uint64_t{1} << 60)));
  CHECK_FALSE(canonical_json(nlohmann::json(std::string("\xff\xfe"))));
  CHECK(canonical_json(nlohmann::json(int64_t{-9007199254740992})));
}
