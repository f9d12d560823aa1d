#include "provenance/canonical_json.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/json.h"

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

namespace {

// The reference answer: parse, canonicalise, compare.
bool canonical_by_parsing(const std::string& text) {
  auto doc = dsx::parse_json_text(text);
  if (!doc) return false;
  auto c = canonical_json(*doc);
  return c && *c == text;
}

// A random JSON value with the corners of JCS: non-ASCII and supplementary-plane names, control
// characters, escapes, integers around 2^53, fractions and exponents.
nlohmann::json random_value(std::mt19937_64& rng, int depth) {
  static const std::vector<std::string> kStrings = {"",
                                                    "a",
                                                    "seq",
                                                    "Seq",
                                                    "\xc3\xa9",
                                                    "\xef\xbf\xbd",
                                                    "\xf0\x9f\x98\x80",
                                                    "\x01",
                                                    "\x1f",
                                                    "tab\there",
                                                    "quote\"",
                                                    "back\\slash",
                                                    "/",
                                                    "\x7f",
                                                    "line\nbreak",
                                                    "\xe2\x80\xa8"};
  static const std::vector<double> kDoubles = {0.5,   -1.25,  1e21,   1e-7,  123456789.125,
                                               1e300, 5e-324, 0.1,    -0.0,  9007199254740993.0,
                                               1e20,  3.0,    1.5e-6, -2e22, 333333333.33333329};
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  switch (depth > 3 ? pick(4) : pick(6)) {
    case 0:
      return kStrings[pick(kStrings.size())];
    case 1: {
      static const std::vector<int64_t> kInts = {
          0, 1, -1, 42, 9007199254740992, -9007199254740992, 9007199254740993, 1234567890123456};
      return kInts[pick(kInts.size())];
    }
    case 2:
      return kDoubles[pick(kDoubles.size())];
    case 3:
      return pick(3) == 0 ? nlohmann::json(nullptr) : nlohmann::json(pick(2) == 0);
    case 4: {
      nlohmann::json a = nlohmann::json::array();
      for (size_t i = pick(4); i > 0; --i)
        a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      for (size_t i = pick(5); i > 0; --i)
        o[kStrings[pick(kStrings.size())]] = random_value(rng, depth + 1);
      return o;
    }
  }
}

}  // namespace

TEST_CASE("the one-pass checker agrees with parsing and re-canonicalising", "[jcs]") {
  using dsx::provenance::is_canonical_json;
  const std::vector<std::string> texts = {R"({"a":1,"b":[true,false,null]})",
                                          R"({"b":1,"a":2})",
                                          R"({"a":1,"a":2})",
                                          R"({ "a":1})",
                                          R"([1,2 ])",
                                          "1",
                                          "-0",
                                          "0",
                                          "01",
                                          "1.0",
                                          "1e2",
                                          "100",
                                          "1e+21",
                                          "100000000000000000000",
                                          "9007199254740992",
                                          "9007199254740993",
                                          "-9007199254740993",
                                          "18446744073709551616",
                                          "-10000000000000000000",
                                          "18446744073709552000",
                                          "0.1",
                                          "1E2",
                                          R"("\u001f")",
                                          R"("\u001F")",
                                          R"("\n")",
                                          R"("\u000a")",
                                          R"("\/")",
                                          R"("/")",
                                          R"("\u0041")",
                                          "\"\xc3\xa9\"",
                                          "\"\xc3\"",
                                          "\"\xed\xa0\x80\"",
                                          "\"\xc0\xaf\"",
                                          "\"\x01\"",
                                          R"("a)",
                                          "",
                                          R"({"\u00e9":1,"z":2})",
                                          "{\"z\":1,\"\xc3\xa9\":2}",
                                          "{\"\xef\xbf\xbd\":1,\"\xf0\x9f\x98\x80\":2}",
                                          "{\"\xf0\x9f\x98\x80\":1,\"\xef\xbf\xbd\":2}",
                                          "[]",
                                          "{}",
                                          "[{}]",
                                          "tru",
                                          "nul",
                                          "truex"};
  for (const std::string& t : texts) {
    INFO(t);
    CHECK(is_canonical_json(t) == canonical_by_parsing(t));
  }
  std::mt19937_64 rng(20261129);
  for (int i = 0; i < 3000; ++i) {
    const nlohmann::json v = random_value(rng, 0);
    auto c = canonical_json(v);
    if (!c) continue;
    INFO(*c);
    REQUIRE(is_canonical_json(*c));
    // One-character edits: a space, a dropped or doubled character.
    for (size_t k = 0; k < 4 && !c->empty(); ++k) {
      std::string m = *c;
      const size_t at = static_cast<size_t>(rng() % m.size());
      switch (k) {
        case 0:
          m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), ' ');
          break;
        case 1:
          m.erase(at, 1);
          break;
        case 2: {
          const char doubled = m[at];
          m.insert(m.begin() + static_cast<std::ptrdiff_t>(at), doubled);
          break;
        }
        default:
          m[at] = static_cast<char>(m[at] ^ 0x20);
      }
      INFO(m);
      CHECK(is_canonical_json(m) == canonical_by_parsing(m));
    }
  }
}

TEST_CASE("numbers that would read back as integers beyond 2^53 are refused", "[jcs]") {
  // Found by the fuzzer: -77777777777777797.77 is written as -77777777777777800, which a reader
  // takes for an integer that a double cannot hold; the canonical text must read back as itself.
  for (const char* text : {"-77777777777777797.77", "1e17", "9007199254740994.0", "1e19"}) {
    INFO(text);
    CHECK_FALSE(canonical_json(nlohmann::json::parse(text)));
  }
  for (const char* text : {"9007199254740992.0", "2e19", "1e300", "-1e19"}) {
    INFO(text);
    auto c = canonical_json(nlohmann::json::parse(text));
    REQUIRE(c);
    CHECK(dsx::provenance::is_canonical_json(*c));
  }
}

TEST_CASE("the one-pass checker finds the top-level seq", "[jcs]") {
  using dsx::provenance::is_canonical_json;
  std::optional<uint64_t> seq;
  CHECK(is_canonical_json(R"({"a":{"seq":7},"seq":12,"z":1})", &seq));
  CHECK(seq == 12u);
  CHECK(is_canonical_json(R"({"seq":"12"})", &seq));
  CHECK_FALSE(seq);
  CHECK(is_canonical_json(R"({"seq":-3})", &seq));
  CHECK_FALSE(seq);
  CHECK(is_canonical_json(R"({"seq":1.5})", &seq));
  CHECK_FALSE(seq);
  CHECK_FALSE(is_canonical_json(R"({"seq":012})", &seq));
}

TEST_CASE("strings are checked and written alike wherever their special characters fall", "[jcs]") {
  // The checker and the writer test many bytes at once (16 with SSE2, else 8) and the last few
  // one by one: put each kind of character that is not plain at every offset of a run of plain
  // ones, inside and at the end of the text, and compare with parsing and re-canonicalising.
  using dsx::provenance::append_canonical_string;
  using dsx::provenance::is_canonical_json;
  const std::vector<std::string> specials = {"\"",       "\\",           "\x01",
                                             "\x1f",     "\n",           "\x7f",
                                             "\xc3\xa9", "\xef\xbf\xbd", "\xf0\x9f\x98\x80",
                                             "\xc3",     "\xed\xa0\x80", "\xff"};
  for (const std::string& special : specials) {
    for (size_t at = 0; at < 40; ++at) {
      const std::string value = std::string(at, 'a') + special + std::string(40 - at, 'b');
      INFO("special character " << &special - specials.data() << " at " << at);
      std::string written = "[";
      const auto status = append_canonical_string(value, written);
      auto expected = canonical_json(nlohmann::json(value));
      REQUIRE(bool(status) == bool(expected));  // refused exactly when not valid UTF-8
      if (!expected) {
        CHECK(written == "[");  // left as it was
        continue;
      }
      CHECK(written.substr(1) == *expected);
      CHECK(is_canonical_json(*expected));
      // The same text, unescaped, in the document: canonical only if it needs no escape.
      for (const std::string& text :
           {"\"" + value + "\"", "{\"k\":\"" + value + "\"}", "{\"" + value + "\":1}"}) {
        INFO(text);
        CHECK(is_canonical_json(text) == canonical_by_parsing(text));
      }
    }
  }
}
