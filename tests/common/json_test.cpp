// parse_json_text: simdjson's fast path must give exactly what nlohmann's parser gives (the same
// value, the same number types) or fail where it fails, whatever the input.
#include "common/json.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/json_same.h"

namespace {

using json = nlohmann::json;
using dsx::testing::same_json;

}  // namespace

TEST_CASE("parse_json_text reads every input as nlohmann's parser does", "[json]") {
  const std::vector<std::string> inputs = {
      // Documents as dsx exchanges them.
      R"({"id":42,"type":"negotiation.agreed","negotiation":{"state":"AGREED","offer":{"permission":[{"action":"use","constraint":[{"leftOperand":"spatial","operator":"isAnyOf","rightOperand":["NL","DE"]}]}]}},"time":"2026-11-30T12:16:24.174158682Z"})",
      " \t\r\n[1, 2.5, -3, true, false, null, \"x\", {}, []] \n",
      // Numbers: nlohmann's types (unsigned without a sign), edges of 64 bits, doubles.
      "0", "-0", "-0.0", "-0e1", "[-0, 0, -0]", "1", "-1", "18446744073709551615",
      "18446744073709551616", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
      "-9223372036854775809", "123456789012345678901234567890", "0.1", "1E5", "1e-5",
      "2.2250738585072014e-308", "1.7976931348623157e308", "1e400", "-1e400", "1.5e-400",
      "4.9e-324", "1e-400", "-1e-400", "-4.9e-325", "-0.0e5", "01", "1.", ".5", "+1", "-", "1e",
      "0x10", "NaN", "Infinity",
      // Strings: escapes, surrogates, UTF-8, control characters.
      R"("\"\\\/\b\f\n\r\t")", R"("\u0000")", R"("\u00e9\u4e2d")", R"("\ud83d\ude00")",
      R"("\ud800")", R"("\udc00")", R"("\ud83d\u0041")", R"("\x")", "\"\xc3\xa9\"",
      "\"\xf0\x9f\x98\x80\"", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"a\x01\"",
      "\"a\x7f\"", "\"unterminated",
      // Objects: duplicate keys (the last wins), structure errors, trailing bytes.
      R"({"a":1,"a":2})", R"({"a":{"b":1},"a":[2]})", "", " ", "{", "}", "[1,]", R"({"a":1,})",
      R"({"a"})", R"({1:2})", "tru", "nul", "{}x", "[] []", "\xef\xbb\xbf{}",
      std::string("[1]\0", 4), std::string("[1]\0junk", 8), std::string("[\"a\0b\"]", 7),
      std::string(101, '[') + std::string(101, ']'), std::string(100, '[') + std::string(100, ']')};
  for (const std::string& text : inputs) {
    INFO(text);
    const auto ours = dsx::parse_json_text(text);
    const json theirs = json::parse(text, nullptr, false);
    if (theirs.is_discarded()) {
      CHECK_FALSE(ours);
      if (!ours) CHECK(ours.status().message().rfind("invalid JSON", 0) == 0);
    } else if (text.size() > 200 && text[0] == '[') {  // deeper than kMaxJsonDepth
      CHECK_FALSE(ours);
    } else {
      REQUIRE(ours);
      CHECK(same_json(*ours, theirs));
    }
  }
  // A larger document takes nlohmann's path, with the same result.
  std::string big = "[";
  for (int i = 0; i < 20000; ++i)
    big += (i ? ",\"" : "\"") + std::to_string(i) + "\"";
  big += "]";
  const auto parsed = dsx::parse_json_text(big);
  REQUIRE(parsed);
  CHECK(same_json(*parsed, json::parse(big)));
}
