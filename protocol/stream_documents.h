#pragma once
// The two small signed documents around an encrypted stream (docs/stream-format.md): the key
// binding, by which a consumer registers its X25519 encryption key under its certificate, and
// the stream manifest, which a provider signs for what it sent and a consumer signs as its
// receipt. Each has one canonical JSON text (RFC 8785: sorted members, no white space), and
// signatures are over exactly those bytes; signing and checking them against a certificate is
// the caller's job. Readers take untrusted text, refuse anything but the canonical form, and
// never throw. Pure functions; thread-safe.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"
#include "protocol/encryption_key.h"

namespace dsx::protocol {

// "This X25519 key is mine, for datasets sent to me": signed with the key of the certificate
// whose SHA-256 it names, so it is bound to that one certificate (a renewed certificate needs a
// new binding).
//
// {"certificateSha256":"<64 hex>","created":"<RFC 3339 UTC>",
//  "encryptionKey":{"crv":"X25519","kty":"OKP","x":"<base64url>"},
//  "participant":"<id>","type":"dsx.EncryptionKeyBinding","version":1}
//
// encryptionKey is an RFC 8037 JSON Web Key.
struct EncryptionKeyBinding {
  std::string participant;                       // the certificate's participant id
  std::array<uint8_t, 32> certificate_sha256{};  // SHA-256 of the certificate's DER
  X25519PublicKey encryption_key;
  Instant created;  // the caller's clock
  bool operator==(const EncryptionKeyBinding&) const = default;
};
Result<std::string> key_binding_json(const EncryptionKeyBinding& binding);
Result<EncryptionKeyBinding> parse_key_binding(std::string_view text);

// What one stream carried.
//
// {"agreementId":"<id>","ciphertextSha256":"<64 hex>","datasetId":"<id>",
//  "plaintextSha256":"<64 hex>","plaintextSize":<n>,"transferId":"<id>",
//  "type":"dsx.StreamManifest","version":1}
//
// ciphertextSha256 is over the whole stream, header included: the bytes the broker relayed.
struct StreamManifest {
  std::string dataset_id;
  std::string agreement_id;
  std::string transfer_id;
  uint64_t plaintext_size = 0;  // at most 2^53 (JSON numbers)
  std::array<uint8_t, 32> plaintext_sha256{};
  std::array<uint8_t, 32> ciphertext_sha256{};
  bool operator==(const StreamManifest&) const = default;
};
Result<std::string> stream_manifest_json(const StreamManifest& manifest);
Result<StreamManifest> parse_stream_manifest(std::string_view text);

}  // namespace dsx::protocol
