#pragma once
// A participant's identity as the broker sees it: read from a certificate the data space CA
// issued (after the TLS handshake verified it), never from anything the participant says. The
// roles, country and attributes travel in one non-critical X.509 extension (docs/certs.md); the
// participant id is derived from the subject's CN. Identity is a plain value; the functions are
// pure and thread-safe.

#include <openssl/types.h>

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "certs/subject.h"
#include "common/status.h"

namespace dsx::certs {

// The extension's OID: 2.25.<UUID as a decimal integer> (ITU-T X.667, no registration needed).
// UUID 3a4c2773-2e10-4d89-8442-2dd3bac1f362, generated once for dsx; never change it.
inline constexpr std::string_view kIdentityExtensionOid =
    "2.25.77490638456243018507583540855524422498";
inline constexpr std::string_view kParticipantIdPrefix = "urn:dsx:participant:";

struct Identity {
  std::string participant_id;  // urn:dsx:participant:NAME
  std::string name;            // the subject's CN
  std::vector<std::string> roles;
  std::optional<std::string> country;
  Attributes attributes;
  std::string serial_hex;              // lowercase, as in index.json
  std::string fingerprint_sha256_hex;  // of the DER certificate, lowercase
};

// urn:dsx:participant:NAME: the same for every certificate issued to NAME.
std::string participant_id(std::string_view name);

// The extension's value: the canonical JSON text (keys sorted, no spaces, country left out when
// absent, a one-valued attribute as a string and a repeated one as a list). The subject must be
// canonical (canonical_subject).
Result<std::string> identity_json(const Subject& subject);
// The inverse, strict: an error names what is wrong.
Result<Subject> parse_identity_json(std::string_view text, std::string name);

// From a certificate the caller has verified (chain, validity, revocation): an error when the
// dsx extension is missing, repeated or malformed, or the CN is missing or not a valid name.
Result<Identity> read_identity(const X509* cert);
// The same for the first certificate in a PEM file (not verified: for tools and tests).
Result<Identity> load_identity(const std::filesystem::path& cert_pem);

// {"attributes":{...},"country":"DE","fingerprintSha256":"..","name":"..","participantId":"..",
//  "roles":[..],"serial":".."}
nlohmann::json to_json(const Identity& identity);
// The inverse of to_json, for identities the broker stored itself; an error names the member.
Result<Identity> identity_from_json(const nlohmann::json& doc);

}  // namespace dsx::certs
