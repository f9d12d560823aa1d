#include "provenance/signing.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/hex.h"
#include "provenance/merkle.h"

namespace dsx::provenance {

namespace {

// Hex SHA-256 of the DER SubjectPublicKeyInfo.
std::string der_key_id(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(k, &der);
  if (len <= 0) return {};
  Hash h = sha256(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  return to_hex(h);
}

}  // namespace

struct PublicKey::Handle {
  EVP_PKEY* pkey = nullptr;
  std::string key_id;  // computed once: checkpoints name and compare it on every check
  explicit Handle(EVP_PKEY* k) : pkey(k), key_id(der_key_id(k)) {}
  ~Handle() { EVP_PKEY_free(pkey); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

namespace {

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len > 0 ? len : 0));
}

}  // namespace

Result<PublicKey> PublicKey::from_pem(std::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (!k) return Status::invalid_argument("not a PEM public key");
  if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(k);
    return Status::invalid_argument("not an Ed25519 public key");
  }
  PublicKey p;
  p.key_ = std::make_shared<Handle>(k);
  return p;
}

std::string PublicKey::pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  std::string out;
  if (bio && PEM_write_bio_PUBKEY(bio, key_->pkey) == 1) out = bio_text(bio);
  BIO_free(bio);
  return out;
}

const std::string& PublicKey::key_id() const {
  static const std::string kNone;
  return key_ ? key_->key_id : kNone;
}

bool PublicKey::verify(std::string_view message, const std::vector<uint8_t>& signature) const {
  if (!key_) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      ctx && EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, key_->pkey) == 1 &&
      EVP_DigestVerify(ctx, signature.data(), signature.size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

Result<SigningKey> SigningKey::load_or_create(const std::string& path) {
  EVP_PKEY* k = nullptr;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return Status::failed_precondition(path + ": " + std::strerror(errno));
    k = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
      EVP_PKEY_free(k);
      return Status::failed_precondition(path + ": not an Ed25519 private key in PEM");
    }
  } else {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    if (!k) return Status::internal("generating an Ed25519 key failed");
    // Created 0600 from the start: the key is never readable by others, not even briefly.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    FILE* f = fd >= 0 ? fdopen(fd, "w") : nullptr;
    bool ok = f && PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    ok = f && std::fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    if (f)
      std::fclose(f);
    else if (fd >= 0)
      ::close(fd);
    if (!ok) {
      EVP_PKEY_free(k);
      return Status::failed_precondition(path +
                                         ": cannot write the log's key: " + std::strerror(errno));
    }
  }
  SigningKey key;
  key.key_ = std::make_shared<PublicKey::Handle>(k);
  BIO* bio = BIO_new(BIO_s_mem());
  std::string pem;
  if (bio && PEM_write_bio_PUBKEY(bio, k) == 1) pem = bio_text(bio);
  BIO_free(bio);
  auto pub = PublicKey::from_pem(pem);
  if (!pub) return pub.status();
  key.public_ = *pub;
  return key;
}

std::vector<uint8_t> SigningKey::sign(std::string_view message) const {
  std::vector<uint8_t> sig(64);
  size_t len = sig.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      ctx && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_->pkey) == 1 &&
      EVP_DigestSign(ctx, sig.data(), &len, reinterpret_cast<const unsigned char*>(message.data()),
                     message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) std::abort();  // signing with a loaded Ed25519 key cannot fail short of a broken OpenSSL
  sig.resize(len);
  return sig;
}

}  // namespace dsx::provenance
