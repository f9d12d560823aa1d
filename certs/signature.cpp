#include "certs/signature.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "certs/pem.h"
#include "common/base64.h"

namespace dsx::certs {

namespace {

// A signature's value: canonical base64 of at least one byte.
std::optional<std::vector<uint8_t>> signature_bytes(std::string_view value) {
  auto bytes = base64_decode(value);
  if (!bytes || bytes->empty()) return std::nullopt;
  return bytes;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

// The algorithm name for a certificate key, or an error for any other kind of key.
Result<std::string> algorithm_of(EVP_PKEY* key) {
  if (EVP_PKEY_get_id(key) == EVP_PKEY_ED25519) return std::string("Ed25519");
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = {};
    size_t len = 0;
    if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) == 1 &&
        (std::string_view(group) == "prime256v1" || std::string_view(group) == "P-256"))
      return std::string("ES256");
    return Status::invalid_argument(std::string("unsupported EC curve ") + group +
                                    " (only P-256 signs documents)");
  }
  return Status::invalid_argument("unsupported key type (P-256 or Ed25519 sign documents)");
}

// Ed25519 signs the message itself (no digest); ES256 hashes it with SHA-256.
const EVP_MD* digest_for(const std::string& algorithm) {
  return algorithm == "ES256" ? EVP_sha256() : nullptr;
}

}  // namespace

Result<DocumentSignature> sign_text(const std::filesystem::path& cert_dir, std::string_view text) {
  auto cert = load_certificate(cert_dir / "cert.pem");
  if (!cert) return cert.status();
  auto key = load_private_key(cert_dir / "key.pem");
  if (!key) return key.status();
  auto algorithm = algorithm_of(key->get());
  if (!algorithm) return algorithm.status();
  // The key must be the certificate's, or nobody could verify what we sign.
  if (EVP_PKEY_eq(X509_get0_pubkey(cert->get()), key->get()) != 1)
    return Status::invalid_argument((cert_dir / "key.pem").string() + " is not the key of " +
                                    (cert_dir / "cert.pem").string());
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Status::internal("out of memory");
  size_t len = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(text.data());
  if (EVP_DigestSignInit_ex(ctx.get(), nullptr, digest_for(*algorithm) ? "SHA256" : nullptr,
                            nullptr, nullptr, key->get(), nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, data, text.size()) != 1)
    return Status::internal("cannot sign with " + (cert_dir / "key.pem").string());
  std::vector<unsigned char> sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data, text.size()) != 1)
    return Status::internal("cannot sign with " + (cert_dir / "key.pem").string());
  sig.resize(len);
  return DocumentSignature{*algorithm, fingerprint_sha256_hex(cert->get()), base64_encode(sig)};
}

Status verify_text(std::string_view cert_pem, std::string_view text, const DocumentSignature& sig) {
  auto cert = parse_certificate_pem(cert_pem);
  if (!cert) return Status::invalid_argument("certificate: " + cert.status().message());
  if (sig.certificate_sha256 != fingerprint_sha256_hex(cert->get()))
    return Status::invalid_argument("signature.certificateSha256: " + sig.certificate_sha256 +
                                    " is not the signer's certificate (" +
                                    fingerprint_sha256_hex(cert->get()) + ")");
  EVP_PKEY* key = X509_get0_pubkey(cert->get());
  if (!key) return Status::invalid_argument("certificate: no readable public key");
  auto algorithm = algorithm_of(key);
  if (!algorithm) return Status::invalid_argument("certificate: " + algorithm.status().message());
  if (sig.algorithm != *algorithm)
    return Status::invalid_argument("signature.algorithm: " + sig.algorithm +
                                    " does not fit the certificate's key (" + *algorithm + ")");
  auto bytes = signature_bytes(sig.value);
  if (!bytes) return Status::invalid_argument("signature.value: not base64");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return Status::internal("out of memory");
  if (EVP_DigestVerifyInit_ex(ctx.get(), nullptr, digest_for(*algorithm) ? "SHA256" : nullptr,
                              nullptr, nullptr, key, nullptr) != 1)
    return Status::internal("cannot set up signature verification");
  const int ok = EVP_DigestVerify(ctx.get(), bytes->data(), bytes->size(),
                                  reinterpret_cast<const unsigned char*>(text.data()), text.size());
  if (ok != 1)
    return Status::invalid_argument("signature.value: not a valid " + *algorithm +
                                    " signature of the document by the certificate's key");
  return Status::ok();
}

nlohmann::json to_json(const DocumentSignature& sig) {
  return {{"algorithm", sig.algorithm},
          {"certificateSha256", sig.certificate_sha256},
          {"value", sig.value}};
}

Result<DocumentSignature> parse_signature(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("signature: expected an object");
  DocumentSignature sig;
  auto member = [&](const char* name, std::string& out) -> Status {
    auto it = j.find(name);
    if (it == j.end())
      return Status::invalid_argument(std::string("signature.") + name + ": missing");
    if (!it->is_string() || it->get<std::string>().empty())
      return Status::invalid_argument(std::string("signature.") + name +
                                      ": expected a non-empty string");
    out = it->get<std::string>();
    return Status::ok();
  };
  if (Status s = member("algorithm", sig.algorithm); !s) return s;
  if (Status s = member("certificateSha256", sig.certificate_sha256); !s) return s;
  if (Status s = member("value", sig.value); !s) return s;
  if (sig.algorithm != "ES256" && sig.algorithm != "Ed25519")
    return Status::invalid_argument("signature.algorithm: " + sig.algorithm +
                                    " (expected ES256 or Ed25519)");
  if (sig.certificate_sha256.size() != 64 ||
      sig.certificate_sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
    return Status::invalid_argument(
        "signature.certificateSha256: expected 64 lowercase hex digits");
  if (!signature_bytes(sig.value)) return Status::invalid_argument("signature.value: not base64");
  return sig;
}

nlohmann::json signed_document(std::string_view text, const DocumentSignature& sig) {
  return {{"document", std::string(text)}, {"signature", to_json(sig)}};
}

Result<SignedText> parse_signed_document(const nlohmann::json& j) {
  if (!j.is_object())
    return Status::invalid_argument("expected a signed document {\"document\", \"signature\"}");
  auto doc = j.find("document");
  if (doc == j.end()) return Status::invalid_argument("document: missing");
  if (!doc->is_string() || doc->get<std::string>().empty())
    return Status::invalid_argument("document: expected the document's JSON text (a string)");
  auto sig = j.find("signature");
  if (sig == j.end()) return Status::invalid_argument("signature: missing");
  auto parsed = parse_signature(*sig);
  if (!parsed) return parsed.status();
  return SignedText{doc->get<std::string>(), std::move(*parsed)};
}

}  // namespace dsx::certs
