#include "protocol/encryption_key.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "common/hex.h"

using namespace dsx;
using namespace dsx::protocol;

namespace {

std::vector<uint8_t> hex(std::string_view text) {
  auto bytes = from_hex(text);
  REQUIRE(bytes);
  return *bytes;
}

// RFC 7748 section 6.1: Alice's and Bob's key pairs and their shared secret.
constexpr std::string_view kAlicePrivate =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr std::string_view kAlicePublic =
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
constexpr std::string_view kBobPrivate =
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr std::string_view kBobPublic =
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr std::string_view kShared =
    "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

}  // namespace

TEST_CASE("X25519 keys reproduce the RFC 7748 test vector", "[protocol][encryption_key]") {
  auto alice = X25519PrivateKey::from_raw(hex(kAlicePrivate));
  auto bob = X25519PrivateKey::from_raw(hex(kBobPrivate));
  REQUIRE(alice);
  REQUIRE(bob);
  CHECK(to_hex(alice->public_key().raw()) == kAlicePublic);
  CHECK(to_hex(bob->public_key().raw()) == kBobPublic);
  auto ab = alice->agree(bob->public_key());
  auto ba = bob->agree(alice->public_key());
  REQUIRE(ab);
  REQUIRE(ba);
  CHECK(to_hex(*ab) == kShared);
  CHECK(to_hex(*ba) == kShared);
  CHECK(to_hex(alice->to_raw()) == kAlicePrivate);
}

TEST_CASE("X25519 keys survive PEM and raw round trips", "[protocol][encryption_key]") {
  auto key = X25519PrivateKey::generate();
  REQUIRE(key);
  std::string pem = key->to_pem();
  CHECK(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
  auto again = X25519PrivateKey::from_pem(pem);
  REQUIRE(again);
  CHECK(again->to_raw() == key->to_raw());
  CHECK(again->public_key() == key->public_key());

  std::string pub_pem = key->public_key().to_pem();
  CHECK(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
  auto pub = X25519PublicKey::from_pem(pub_pem);
  REQUIRE(pub);
  CHECK(*pub == key->public_key());
  auto raw = X25519PublicKey::from_raw(key->public_key().raw());
  REQUIRE(raw);
  CHECK(*raw == key->public_key());

  auto other = X25519PrivateKey::generate();
  REQUIRE(other);
  CHECK(other->public_key() != key->public_key());
}

TEST_CASE("X25519 key readers refuse what is not an X25519 key", "[protocol][encryption_key]") {
  CHECK_FALSE(X25519PrivateKey::from_raw(std::vector<uint8_t>(31)));
  CHECK_FALSE(X25519PrivateKey::from_raw(std::vector<uint8_t>(33)));
  CHECK(X25519PublicKey::from_raw(std::vector<uint8_t>(31)).status().message() ==
        "an X25519 public key is 32 bytes, not 31");
  CHECK_FALSE(X25519PrivateKey::from_pem("not a key"));
  CHECK_FALSE(X25519PublicKey::from_pem(""));

  // RFC 8410 section 10.3: an Ed25519 private key.
  const char* ed25519 =
      "-----BEGIN PRIVATE KEY-----\n"
      "MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n"
      "-----END PRIVATE KEY-----\n";
  auto ed = X25519PrivateKey::from_pem(ed25519);
  REQUIRE_FALSE(ed);
  CHECK(ed.status().message() == "the PEM private key is not an X25519 key");

  // An X25519 key encrypted with a passphrase: refused, without asking for the passphrase.
  const char* encrypted =
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
      "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAis7Jnr4uGMFQICCAAw\n"
      "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEMrzW8Pyznb9u0C1anTAZhIEQBTA\n"
      "wrWn4/RS1CaeJXWfiPgxsRcesdrdR8EzE1nDclqtbIBgIHaxaFTRNBqYe2GkuhTQ\n"
      "LhctFdDY7TAarAGyVts=\n"
      "-----END ENCRYPTED PRIVATE KEY-----\n";
  auto enc = X25519PrivateKey::from_pem(encrypted);
  REQUIRE_FALSE(enc);
  CHECK(enc.status().message() == "not an unencrypted PEM private key (PKCS#8)");

  // A private key where a public key is expected.
  auto key = X25519PrivateKey::generate();
  REQUIRE(key);
  CHECK_FALSE(X25519PublicKey::from_pem(key->to_pem()));
}

TEST_CASE("X25519 key agreement refuses points of small order", "[protocol][encryption_key]") {
  auto key = X25519PrivateKey::generate();
  REQUIRE(key);
  // 0 and 1, and the point of order 8 from the list in Bernstein's "Curve25519" page (also in
  // libsodium's blocklist): each makes X25519 output all zeros.
  for (std::string_view point :
       {"0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"}) {
    CAPTURE(point);
    auto pub = X25519PublicKey::from_raw(hex(point));
    REQUIRE(pub);
    auto shared = key->agree(*pub);
    REQUIRE_FALSE(shared);
    CHECK(shared.status().message() ==
          "X25519 key agreement failed: the public key is a point of small order");
  }
}
