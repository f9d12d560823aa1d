#pragma once
// Documents a participant signs with its certificate's key: the encryption key binding, the
// stream manifest, the receipt (docs/api.md, "Signatures by participants"). The signed bytes are
// the document's text exactly as sent (its canonical JSON: protocol/stream_documents.h), so the
// checker never re-serialises anything. The algorithm follows the key: ES256 (ECDSA P-256 with
// SHA-256, DER signature) for P-256 keys, Ed25519 for Ed25519 keys. Plain values; the functions
// are thread-safe; untrusted input gives an error, never an exception.

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dsx::certs {

struct DocumentSignature {
  std::string algorithm;           // "ES256" or "Ed25519"
  std::string certificate_sha256;  // lowercase hex SHA-256 of the signer's DER certificate
  std::string value;               // base64 (RFC 4648, padded) of the signature
};

// Signs `text` with DIR/key.pem, naming DIR/cert.pem (a folder from `dsx certs issue`).
Result<DocumentSignature> sign_text(const std::filesystem::path& cert_dir, std::string_view text);

// OK when `sig` is a valid signature of `text` by the key of `cert_pem` (one PEM certificate)
// and names that certificate; the error says which check failed.
Status verify_text(std::string_view cert_pem, std::string_view text, const DocumentSignature& sig);

// {"algorithm": ..., "certificateSha256": ..., "value": ...}, and back (errors name the member).
nlohmann::json to_json(const DocumentSignature& sig);
Result<DocumentSignature> parse_signature(const nlohmann::json& j);

// The signed wrapper sent over the API: {"document": "<the text>", "signature": {...}}.
nlohmann::json signed_document(std::string_view text, const DocumentSignature& sig);
struct SignedText {
  std::string text;
  DocumentSignature signature;
};
Result<SignedText> parse_signed_document(const nlohmann::json& j);

}  // namespace dsx::certs
