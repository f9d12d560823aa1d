#pragma once
// Owning handles for the OpenSSL objects dsx::certs hands out (certificates, CRLs, keys), reading
// and writing them as PEM, and the two names a certificate goes by (serial, fingerprint). A handle
// owns its object alone (std::unique_ptr); nothing here modifies a loaded object, so a const one
// may be read from several threads.

#include <openssl/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dsx::certs {

struct X509Free {
  void operator()(X509* p) const;
};
struct X509CrlFree {
  void operator()(X509_CRL* p) const;
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const;
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509CrlPtr = std::unique_ptr<X509_CRL, X509CrlFree>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// The first certificate in PEM text / a PEM file; the error names the file.
Result<X509Ptr> parse_certificate_pem(std::string_view pem);
Result<X509Ptr> load_certificate(const std::filesystem::path& path);
Result<X509CrlPtr> load_crl(const std::filesystem::path& path);
// An unencrypted PKCS#8 private key.
Result<EvpPkeyPtr> load_private_key(const std::filesystem::path& path);

std::string to_pem(const X509* cert);
std::string to_pem(const X509_CRL* crl);

// The serial number as lowercase hex of its bytes (40 digits for a dsx serial), as index.json
// and Identity write it.
std::string serial_hex(const X509* cert);
// Lowercase hex SHA-256 of the DER certificate (what `openssl x509 -fingerprint -sha256` shows).
std::string fingerprint_sha256_hex(const X509* cert);

}  // namespace dsx::certs
