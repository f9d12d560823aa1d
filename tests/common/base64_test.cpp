// common/base64: RFC 4648's test vectors, round trips, and the strictness of decoding.

#include "common/base64.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace {

std::string text_of(const std::vector<uint8_t>& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

TEST_CASE("base64 encodes RFC 4648's vectors and decodes them back", "[common][base64]") {
  // RFC 4648 section 10.
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    CHECK(dsx::base64_encode(plain) == encoded);
    auto back = dsx::base64_decode(encoded);
    REQUIRE(back);
    CHECK(text_of(*back) == plain);
  }
  // Every byte value, in both alphabets.
  std::vector<uint8_t> all(256);
  for (size_t i = 0; i < all.size(); ++i)
    all[i] = static_cast<uint8_t>(i);
  for (size_t n = 0; n <= all.size(); n += 37) {
    const std::span<const uint8_t> bytes(all.data(), n);
    CHECK(dsx::base64_decode(dsx::base64_encode(bytes)) ==
          std::vector<uint8_t>(bytes.begin(), bytes.end()));
    CHECK(dsx::base64url_decode(dsx::base64url_encode(bytes)) ==
          std::vector<uint8_t>(bytes.begin(), bytes.end()));
  }
  CHECK(dsx::base64_encode(std::vector<uint8_t>{0xfb, 0xff}) == "+/8=");
  CHECK(dsx::base64url_encode(std::vector<uint8_t>{0xfb, 0xff}) == "-_8");
}

TEST_CASE("base64 decoding accepts only the canonical text", "[common][base64]") {
  CHECK_FALSE(dsx::base64_decode("Zm9vYg="));    // length
  CHECK_FALSE(dsx::base64_decode("Zm9vYh=="));   // bits set beyond the data
  CHECK_FALSE(dsx::base64_decode("Zm=vYg=="));   // padding inside
  CHECK_FALSE(dsx::base64_decode("Zm9vY==="));   // three padding characters
  CHECK_FALSE(dsx::base64_decode("Zm9v!g=="));   // alphabet
  CHECK_FALSE(dsx::base64_decode("Zm9v Yg=="));  // white space
  CHECK_FALSE(dsx::base64_decode("-_8="));       // the url alphabet
  CHECK_FALSE(dsx::base64url_decode("+/8"));     // the standard alphabet
  CHECK_FALSE(dsx::base64url_decode("-_8="));    // padding
  CHECK_FALSE(dsx::base64url_decode("-_9"));     // bits set beyond the data
  CHECK_FALSE(dsx::base64url_decode("Z"));       // one digit is no byte
}
