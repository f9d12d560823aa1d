#include "certs/pem.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <vector>

#include "certs/atomic_file.h"
#include "common/hex.h"

namespace dsx::certs {
namespace {

struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr mem_bio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len > 0 ? len : 0));
}

// A failed parse leaves errors in OpenSSL's per-thread queue; a later TLS call on the same thread
// (SSL_get_error) would see them, so they are dropped here.
Status parse_failure(std::string message) {
  ERR_clear_error();
  return Status::invalid_argument(std::move(message));
}

}  // namespace

void X509Free::operator()(X509* p) const {
  X509_free(p);
}
void X509CrlFree::operator()(X509_CRL* p) const {
  X509_CRL_free(p);
}
void EvpPkeyFree::operator()(EVP_PKEY* p) const {
  EVP_PKEY_free(p);
}

Result<X509Ptr> parse_certificate_pem(std::string_view pem) {
  BioPtr bio = mem_bio(pem);
  X509Ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!cert) return parse_failure("not a PEM certificate");
  return cert;
}

Result<X509Ptr> load_certificate(const std::filesystem::path& path) {
  Result<std::string> text = read_text_file(path);
  if (!text) return text.status();
  Result<X509Ptr> cert = parse_certificate_pem(*text);
  if (!cert) return Status::invalid_argument(path.string() + ": not a PEM certificate");
  return cert;
}

Result<X509CrlPtr> load_crl(const std::filesystem::path& path) {
  Result<std::string> text = read_text_file(path);
  if (!text) return text.status();
  BioPtr bio = mem_bio(*text);
  X509CrlPtr crl(bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!crl) return parse_failure(path.string() + ": not a PEM CRL");
  return crl;
}

Result<EvpPkeyPtr> load_private_key(const std::filesystem::path& path) {
  Result<std::string> text = read_text_file(path);
  if (!text) return text.status();
  BioPtr bio = mem_bio(*text);
  EvpPkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  OPENSSL_cleanse(text->data(), text->size());
  if (!key) return parse_failure(path.string() + ": not an unencrypted PEM private key");
  return key;
}

std::string to_pem(const X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  std::string out;
  if (bio && PEM_write_bio_X509(bio.get(), cert) == 1) out = bio_text(bio.get());
  return out;
}

std::string to_pem(const X509_CRL* crl) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  std::string out;
  if (bio && PEM_write_bio_X509_CRL(bio.get(), crl) == 1) out = bio_text(bio.get());
  return out;
}

std::string serial_hex(const X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (!bn) return {};
  std::vector<uint8_t> bytes(static_cast<size_t>(BN_num_bytes(bn)));
  BN_bn2bin(bn, bytes.data());
  BN_free(bn);
  return bytes.empty() ? "00" : to_hex(bytes);
}

std::string fingerprint_sha256_hex(const X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  return to_hex(std::span<const uint8_t>(md, len));
}

}  // namespace dsx::certs
