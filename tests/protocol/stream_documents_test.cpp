#include "protocol/stream_documents.h"

#include <catch2/catch.hpp>
#include <string>

#include "common/hex.h"

using namespace dsx;
using namespace dsx::protocol;

namespace {

std::array<uint8_t, 32> digest(uint8_t fill) {
  std::array<uint8_t, 32> d{};
  d.fill(fill);
  return d;
}

EncryptionKeyBinding example_binding() {
  // RFC 7748 section 6.1, Bob's public key.
  auto raw = from_hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  REQUIRE(raw);
  auto key = X25519PublicKey::from_raw(*raw);
  REQUIRE(key);
  auto created = parse_xsd_date_time("2026-11-29T12:00:00Z");
  REQUIRE(created);
  return {.participant = "urn:participant:consumer-1",
          .certificate_sha256 = digest(0xab),
          .encryption_key = *key,
          .created = *created};
}

constexpr std::string_view kBindingJson =
    R"({"certificateSha256":"abababababababababababababababababababababababababababababababab",)"
    R"("created":"2026-11-29T12:00:00Z",)"
    R"("encryptionKey":{"crv":"X25519","kty":"OKP","x":"3p7bfXt9wbTTW2HC7OQ1Nz-DQ8hbeGdNrfx-FG-IK08"},)"
    R"("participant":"urn:participant:consumer-1","type":"dsx.EncryptionKeyBinding","version":1})";

}  // namespace

TEST_CASE("a key binding has one canonical JSON text", "[protocol][stream_documents]") {
  auto text = key_binding_json(example_binding());
  REQUIRE(text);
  CHECK(*text == kBindingJson);
  auto back = parse_key_binding(*text);
  REQUIRE(back);
  CHECK(*back == example_binding());
}

TEST_CASE("key binding readers refuse what is not exactly a key binding",
          "[protocol][stream_documents]") {
  auto refuse = [](std::string text) {
    auto r = parse_key_binding(text);
    REQUIRE_FALSE(r);
    return r.status().message();
  };
  auto with = [](std::string_view from, std::string_view to) {
    std::string text(kBindingJson);
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  CHECK(refuse("[]") == "key binding: not a JSON object");
  CHECK(refuse("{").starts_with("invalid JSON"));
  CHECK(refuse(with("\"version\":1", "\"version\":2")) == "version: 2 is not supported");
  CHECK(refuse(with("dsx.EncryptionKeyBinding", "dsx.StreamManifest")) ==
        "type: \"dsx.StreamManifest\", expected \"dsx.EncryptionKeyBinding\"");
  CHECK(refuse(with("\"version\":1", "\"version\":1,\"z\":0")) ==
        "unknown members: a dsx.EncryptionKeyBinding has 6");
  CHECK(refuse(with("abab\",", "ABAB\",")) == "certificateSha256: not 64 lower-case hex digits");
  CHECK(refuse(with("12:00:00Z", "12:00:00.000Z")) ==
        "created: not an RFC 3339 time in UTC (2026-01-31T12:00:00Z)");
  CHECK(refuse(with("\"X25519\"", "\"Ed25519\"")) ==
        "encryptionKey: not an X25519 JSON Web Key {\"crv\":\"X25519\",\"kty\":\"OKP\",\"x\":...}");
  // 43 characters hold 258 bits: the last two must be zero in the canonical encoding.
  CHECK(refuse(with("IK08", "IK09")) == "encryptionKey.x: not 32 bytes in unpadded base64url");
  CHECK(refuse(with("IK08", "IK08=")) == "encryptionKey.x: not 32 bytes in unpadded base64url");
  CHECK(refuse(with("IK08", "IK0")) == "encryptionKey.x: not 32 bytes in unpadded base64url");
  CHECK(refuse(with("{\"certificateSha256\"", "{ \"certificateSha256\"")) ==
        "key binding: not in canonical form (RFC 8785: sorted members, no white space, minimal "
        "escapes)");
  CHECK(refuse(with("\"participant\":\"urn:participant:consumer-1\",",
                    "\"participant\":\"urn:participant:consumer-1\",\"participant\":\"x\",")) ==
        "key binding: not in canonical form (RFC 8785: sorted members, no white space, minimal "
        "escapes)");  // a repeated member
}

TEST_CASE("a stream manifest has one canonical JSON text", "[protocol][stream_documents]") {
  StreamManifest m{.dataset_id = "urn:uuid:da7a5e70-0000-4000-8000-000000000001",
                   .agreement_id = "urn:uuid:5a3e0c1e-0000-4000-8000-000000000001",
                   .transfer_id = "urn:uuid:7f1e0000-0000-4000-8000-000000000002",
                   .plaintext_size = 2147483648,
                   .plaintext_sha256 = digest(0x01),
                   .ciphertext_sha256 = digest(0x02)};
  auto text = stream_manifest_json(m);
  REQUIRE(text);
  CHECK(
      *text ==
      R"({"agreementId":"urn:uuid:5a3e0c1e-0000-4000-8000-000000000001",)"
      R"("ciphertextSha256":"0202020202020202020202020202020202020202020202020202020202020202",)"
      R"("datasetId":"urn:uuid:da7a5e70-0000-4000-8000-000000000001",)"
      R"("plaintextSha256":"0101010101010101010101010101010101010101010101010101010101010101",)"
      R"("plaintextSize":2147483648,"transferId":"urn:uuid:7f1e0000-0000-4000-8000-000000000002",)"
      R"("type":"dsx.StreamManifest","version":1})");
  auto back = parse_stream_manifest(*text);
  REQUIRE(back);
  CHECK(*back == m);

  std::string bad = *text;
  bad.replace(bad.find("2147483648"), 10, "2147483648.0");
  CHECK(parse_stream_manifest(bad).status().message() ==
        "plaintextSize: not an integer from 0 to 2^53");
  m.dataset_id = "caf\xc3\xa9";  // UTF-8 is written as it is
  auto utf8 = stream_manifest_json(m);
  REQUIRE(utf8);
  CHECK(utf8->find("\"datasetId\":\"caf\xc3\xa9\"") != std::string::npos);
  REQUIRE(parse_stream_manifest(*utf8));
  m.dataset_id = "\xff";
  CHECK(stream_manifest_json(m).status().message() == "a text field is not valid UTF-8");
  m.dataset_id = "";
  auto empty = stream_manifest_json(m);
  REQUIRE(empty);
  CHECK(parse_stream_manifest(*empty).status().message() == "datasetId: not a non-empty string");
  m.dataset_id = "d";
  m.plaintext_size = (uint64_t{1} << 53) + 1;
  CHECK_FALSE(stream_manifest_json(m));
}
