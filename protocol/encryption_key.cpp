#include "protocol/encryption_key.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace dsx::protocol {

struct X25519PrivateKey::Handle {
  explicit Handle(EVP_PKEY* k) : pkey(k) {}
  ~Handle() { EVP_PKEY_free(pkey); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  EVP_PKEY* pkey;
};

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

// OpenSSL leaves its reasons in a thread-local queue; a failure here is reported through the
// Status, so the queue is emptied for the next caller.
template <typename T>
T fail(T status) {
  ERR_clear_error();
  return status;
}

BioPtr read_bio(std::string_view text) {
  if (text.size() > static_cast<size_t>(INT32_MAX)) return nullptr;
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

// No passphrase: an encrypted PEM fails to load instead of prompting on a terminal.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

}  // namespace

Result<X25519PublicKey> X25519PublicKey::from_raw(std::span<const uint8_t> raw) {
  if (raw.size() != kX25519KeySize)
    return Status::invalid_argument("an X25519 public key is 32 bytes, not " +
                                    std::to_string(raw.size()));
  X25519PublicKey key;
  std::copy(raw.begin(), raw.end(), key.raw_.begin());
  return key;
}

Result<X25519PublicKey> X25519PublicKey::from_pem(std::string_view pem) {
  BioPtr bio = read_bio(pem);
  PkeyPtr k(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  if (!k) return fail(Status::invalid_argument("not a PEM public key"));
  if (EVP_PKEY_get_id(k.get()) != EVP_PKEY_X25519)
    return Status::invalid_argument("the PEM public key is not an X25519 key");
  X25519PublicKey key;
  size_t len = key.raw_.size();
  if (EVP_PKEY_get_raw_public_key(k.get(), key.raw_.data(), &len) != 1 || len != kX25519KeySize)
    return fail(Status::internal("cannot read the raw X25519 public key"));
  return key;
}

std::string X25519PublicKey::to_pem() const {
  PkeyPtr k(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, raw_.data(), raw_.size()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  // Only an allocation failure can make these fail; broken invariants abort (style.md).
  if (!k || !bio || PEM_write_bio_PUBKEY(bio.get(), k.get()) != 1) std::abort();
  return bio_text(bio.get());
}

Result<X25519PrivateKey> X25519PrivateKey::adopt(std::shared_ptr<const Handle> key) {
  std::array<uint8_t, kX25519KeySize> raw{};
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key->pkey, raw.data(), &len) != 1 || len != raw.size())
    return fail(Status::internal("cannot compute the X25519 public key"));
  auto pub = X25519PublicKey::from_raw(raw);
  if (!pub) return pub.status();
  return X25519PrivateKey(std::move(key), *pub);
}

Result<X25519PrivateKey> X25519PrivateKey::generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
  if (!k) return fail(Status::internal("cannot generate an X25519 key"));
  return adopt(std::make_shared<const Handle>(k));
}

Result<X25519PrivateKey> X25519PrivateKey::from_raw(std::span<const uint8_t> raw) {
  if (raw.size() != kX25519KeySize)
    return Status::invalid_argument("an X25519 private key is 32 bytes, not " +
                                    std::to_string(raw.size()));
  EVP_PKEY* k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, raw.data(), raw.size());
  if (!k) return fail(Status::internal("cannot load the raw X25519 private key"));
  return adopt(std::make_shared<const Handle>(k));
}

Result<X25519PrivateKey> X25519PrivateKey::from_pem(std::string_view pem) {
  BioPtr bio = read_bio(pem);
  PkeyPtr k(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr) : nullptr);
  if (!k) return fail(Status::invalid_argument("not an unencrypted PEM private key (PKCS#8)"));
  if (EVP_PKEY_get_id(k.get()) != EVP_PKEY_X25519)
    return Status::invalid_argument("the PEM private key is not an X25519 key");
  return adopt(std::make_shared<const Handle>(k.release()));
}

std::string X25519PrivateKey::to_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_->pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    std::abort();
  return bio_text(bio.get());
}

std::array<uint8_t, kX25519KeySize> X25519PrivateKey::to_raw() const {
  std::array<uint8_t, kX25519KeySize> raw{};
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_private_key(key_->pkey, raw.data(), &len) != 1 || len != raw.size())
    std::abort();
  return raw;
}

Result<std::array<uint8_t, kX25519KeySize>> X25519PrivateKey::agree(
    const X25519PublicKey& peer) const {
  PkeyPtr peer_key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.raw().data(), peer.raw().size()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key_->pkey, nullptr));
  std::array<uint8_t, kX25519KeySize> shared{};
  size_t len = shared.size();
  // OpenSSL refuses an all-zero result itself (RFC 7748 section 6.1); the check after it does
  // not depend on that.
  bool ok = peer_key && ctx && EVP_PKEY_derive_init(ctx.get()) == 1 &&
            EVP_PKEY_derive_set_peer(ctx.get(), peer_key.get()) == 1 &&
            EVP_PKEY_derive(ctx.get(), shared.data(), &len) == 1 && len == shared.size();
  static constexpr std::array<uint8_t, kX25519KeySize> kZero{};
  if (!ok || CRYPTO_memcmp(shared.data(), kZero.data(), shared.size()) == 0) {
    OPENSSL_cleanse(shared.data(), shared.size());
    return fail(Status::invalid_argument(
        "X25519 key agreement failed: the public key is a point of small order"));
  }
  return shared;
}

}  // namespace dsx::protocol
