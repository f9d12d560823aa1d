#pragma once
// The consumer's encryption key: an X25519 key pair of its own, separate from its TLS
// certificate key, registered with the broker (see key bindings in stream_documents.h) and used
// by providers to encrypt datasets for it (stream_format.h). Keys are immutable values: copies
// share one OpenSSL key object, and every member may be called from any thread. Loading and
// saving go through strings and byte arrays; reading and writing files is the caller's job
// (private keys belong in a file of mode 0600).

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace dsx::protocol {

inline constexpr size_t kX25519KeySize = 32;

// A public key: the 32-byte u-coordinate of RFC 7748. Every 32-byte string is one; the few that
// are points of small order are refused where it matters, at key agreement.
class X25519PublicKey {
 public:
  static Result<X25519PublicKey> from_raw(std::span<const uint8_t> raw);
  // SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----") holding an X25519 key.
  static Result<X25519PublicKey> from_pem(std::string_view pem);

  const std::array<uint8_t, kX25519KeySize>& raw() const { return raw_; }
  std::string to_pem() const;

  bool operator==(const X25519PublicKey&) const = default;

 private:
  X25519PublicKey() = default;
  std::array<uint8_t, kX25519KeySize> raw_{};
};

class X25519PrivateKey {
 public:
  // A fresh key from OpenSSL's random generator.
  static Result<X25519PrivateKey> generate();
  // The 32-byte scalar of RFC 7748 (clamped by X25519 itself, so any 32 bytes will do).
  static Result<X25519PrivateKey> from_raw(std::span<const uint8_t> raw);
  // Unencrypted PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----") holding an X25519 key. An encrypted
  // PEM is refused (no passphrase prompt: this library does no I/O).
  static Result<X25519PrivateKey> from_pem(std::string_view pem);

  // Secret material: for the key file, and for test vectors.
  std::string to_pem() const;
  std::array<uint8_t, kX25519KeySize> to_raw() const;

  const X25519PublicKey& public_key() const { return public_; }

  // X25519(this, peer): the 32-byte shared secret, or an error when `peer` is a point of small
  // order (the result would be all zeros, a value an attacker can force).
  Result<std::array<uint8_t, kX25519KeySize>> agree(const X25519PublicKey& peer) const;

  struct Handle;  // the EVP_PKEY, shared by copies

 private:
  X25519PrivateKey(std::shared_ptr<const Handle> key, X25519PublicKey pub)
      : key_(std::move(key)), public_(pub) {}
  static Result<X25519PrivateKey> adopt(std::shared_ptr<const Handle> key);

  std::shared_ptr<const Handle> key_;
  X25519PublicKey public_;
};

}  // namespace dsx::protocol
