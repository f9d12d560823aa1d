#pragma once
// The connector's part in transfers (docs/api.md, "Transfers (Dataspace Protocol 2025-1) and the
// encrypted relay"): typed calls to the transfer routes; the consumer's X25519 encryption key,
// kept in its state folder, and its registration as a signed key binding; the checks of what a
// peer signed (key bindings, manifests: the certificate must chain to the data space CA and be
// the expected participant's). Free functions over the caller's Client, so the Client's rule
// holds: one thread at a time. The provider's upload and the consumer's download are in
// transfer_stream.h.

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"
#include "connectors/client.h"
#include "connectors/negotiation.h"
#include "protocol/encryption_key.h"
#include "protocol/stream_documents.h"
#include "protocol/transfer_messages.h"

namespace dsx::connectors {

// The only format the broker relays (docs/api.md).
inline constexpr std::string_view kTransferFormat = "dsx-stream-v1";
// The consumer's X25519 private key, in its state folder.
inline constexpr std::string_view kEncryptionKeyFile = "encryption-key.pem";

using TransferAnswer = Result<Answer<protocol::TransferProcess>>;

struct TransferRequest {
  std::string agreement_id;
  std::string consumer_pid;  // empty: new_process_id()
};
// The TransferRequestMessage: format dsx-stream-v1, callbackAddress urn:dsx:channel.
nlohmann::json transfer_request_message(const TransferRequest& r);

// Consumer: POST /transfers/request (201 REQUESTED, or 403 policy-refused with the reasons).
TransferAnswer request_transfer(Client& client, const TransferRequest& r);
TransferAnswer get_transfer(Client& client, std::string_view provider_pid);
// GET /transfers/{pid} as the broker sends it, dsx: extras included.
JsonAnswer get_transfer_record(Client& client, std::string_view provider_pid);
// POST .../start: the provider starts a REQUESTED transfer; either party resumes a SUSPENDED one.
// `from_chunk` (a resume by the consumer) goes along as "dsx:fromChunk".
TransferAnswer start_transfer(Client& client, const protocol::TransferProcess& t,
                              std::optional<uint64_t> from_chunk = std::nullopt);
TransferAnswer suspend_transfer(Client& client, const protocol::TransferProcess& t,
                                const std::string& reason);
// Consumer: COMPLETED, with the receipt (a signed_document of the manifest) as "dsx:receipt".
// The broker's reply body, which may say where it logged the receipt.
JsonAnswer complete_transfer(Client& client, const protocol::TransferProcess& t,
                             const nlohmann::json& receipt);
// `code` (may be empty) names the cause, e.g. "verification-failed".
TransferAnswer terminate_transfer(Client& client, const protocol::TransferProcess& t,
                                  const std::string& reason, const std::string& code = {});
JsonAnswer list_transfers(Client& client);
// PUT /management/keys/encryption with a signed key binding (signed_key_binding).
JsonAnswer register_encryption_key(Client& client, const nlohmann::json& signed_binding);
// GET /management/keys/encryption/{participantId}.
JsonAnswer get_encryption_key(Client& client, std::string_view participant_id);

// STATE_DIR/encryption-key.pem (PKCS#8 PEM, mode 0600), created on first use.
Result<protocol::X25519PrivateKey> load_or_create_encryption_key(
    const std::filesystem::path& state_dir);

// The key binding for `key` under CERT_DIR/cert.pem, signed with CERT_DIR/key.pem:
// {"document": "<canonical binding>", "signature": {...}}.
Result<nlohmann::json> signed_key_binding(const std::filesystem::path& cert_dir,
                                          const protocol::X25519PublicKey& key, Instant created);

// Registers `key` unless the broker already holds a binding of this key to this certificate.
// True when a registration was sent; a refusal of the registration is the Answer's Refusal.
Result<Answer<bool>> ensure_key_registered(Client& client, const std::filesystem::path& cert_dir,
                                           const protocol::X25519PublicKey& key, Instant now);

// What a peer signed, checked: its certificate (PEM) chains to CERT_DIR/ca.pem, is valid now,
// is the participant `expected_participant` (when not empty), is not revoked when CERT_DIR/crl.pem
// exists (the data space's CRL, which the operator publishes; the broker also refuses revoked
// certificates at every handshake), and the signature over the text is by that certificate's
// key. The document's text on success. Errors: kInvalidArgument for the document's faults,
// kInternal for this side's (a crl.pem that cannot be read, is out of date or not the CA's).
Result<std::string> check_signed_text(const std::filesystem::path& cert_dir,
                                      const nlohmann::json& signed_doc,
                                      std::string_view certificate_pem,
                                      std::string_view expected_participant);

// A key binding as a transfer.requested or transfer.resumed event carries it (or GET
// /management/keys/encryption/{id} answers it): {"document", "signature", and the consumer's
// certificate PEM as "certificate"}. Checked with check_signed_text for `consumer`, and the
// binding must name that participant and certificate. The consumer's public key on success.
// Errors: kInvalidArgument when the binding or its certificate is at fault; kInternal when this
// side is (CERT_DIR/crl.pem unreadable or out of date): worth a retry once that is mended.
Result<protocol::X25519PublicKey> check_key_binding(const std::filesystem::path& cert_dir,
                                                    const nlohmann::json& encryption_key,
                                                    std::string_view consumer);

// The manifest in the X-Dsx-Manifest header: base64 (RFC 4648, padded) of the JSON of
// {"document": "<canonical manifest>", "signature": {...}, "certificate": "<signer's PEM>"}.
std::string encode_manifest_header(const nlohmann::json& signed_manifest);
Result<nlohmann::json> decode_manifest_header(std::string_view header);
// A signed manifest (as decoded) checked for `provider`: the manifest and its canonical text.
// Errors as check_signed_text's.
struct CheckedManifest {
  protocol::StreamManifest manifest;
  std::string text;
};
Result<CheckedManifest> check_signed_manifest(const std::filesystem::path& cert_dir,
                                              const nlohmann::json& signed_manifest,
                                              std::string_view provider);

// The receipt: the manifest text, signed by the consumer (CERT_DIR).
Result<nlohmann::json> sign_receipt(const std::filesystem::path& cert_dir,
                                    std::string_view manifest_text);

}  // namespace dsx::connectors
