#pragma once
// The log's signing key and checkpoint signatures: Ed25519 through OpenSSL 3's EVP interface.
// The private key lives in a PEM file (PKCS#8, mode 0600) next to the log; auditors get the
// public key (SubjectPublicKeyInfo PEM) and need nothing else to verify checkpoints.
// A SigningKey is immutable after loading; sign() and verify may be called from any thread.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dsx::provenance {

class PublicKey {
 public:
  // From SubjectPublicKeyInfo PEM text.
  static Result<PublicKey> from_pem(std::string_view pem);
  std::string pem() const;
  // Hex SHA-256 of the DER public key: names the key in checkpoints.
  const std::string& key_id() const;
  bool verify(std::string_view message, const std::vector<uint8_t>& signature) const;

  struct Handle;  // EVP_PKEY, shared

 private:
  std::shared_ptr<Handle> key_;
};

class SigningKey {
 public:
  // Loads the key at `path`, or creates one there (mode 0600) when no file exists.
  static Result<SigningKey> load_or_create(const std::string& path);
  std::vector<uint8_t> sign(std::string_view message) const;
  const PublicKey& public_key() const { return public_; }

 private:
  std::shared_ptr<PublicKey::Handle> key_;
  PublicKey public_;
};

}  // namespace dsx::provenance
