#pragma once
// The data space CA: a folder holding ca.pem, ca.key (0600), index.json and crl.pem
// (docs/certs.md). These functions create the CA, issue participant and broker certificates,
// revoke them and write the CRL. Each call loads what it needs from the folder and writes its
// results atomically; calls on one CA folder, from any threads or processes, are serialized by an
// exclusive lock on DIR/index.lock. The time comes from a Clock, so tests can issue certificates
// that are not yet valid or already expired.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "certs/identity.h"
#include "common/clock.h"
#include "common/status.h"

namespace dsx::certs {

enum class KeyType { kP256, kEd25519 };
// "p256" or "ed25519".
Result<KeyType> parse_key_type(std::string_view text);
std::string_view to_string(KeyType type);

inline constexpr int kDefaultCaDays = 3650;
inline constexpr int kDefaultCertificateDays = 365;
inline constexpr int kDefaultCrlDays = 30;
inline constexpr int kMaxDays = 36500;

struct CaOptions {
  std::string name = "dsx data space CA";  // the CA certificate's CN
  KeyType key_type = KeyType::kP256;
  int days = kDefaultCaDays;
  int crl_days = kDefaultCrlDays;  // of the initial, empty CRL
  bool force = false;              // replace an existing CA (its certificates stop verifying)
};

struct CaFiles {
  std::filesystem::path ca_pem, ca_key, crl_pem, index;
  std::string serial_hex;
  Instant not_before, not_after;
};

// Creates DIR (and its parents) when needed. Refuses an existing DIR/ca.key unless force.
Result<CaFiles> init_ca(const std::filesystem::path& dir, const CaOptions& options,
                        const Clock& clock);
Result<CaFiles> init_ca(const std::filesystem::path& dir, const CaOptions& options);

struct IssueRequest {
  std::string name;                // participant name, or the broker's host name or IP
  std::vector<std::string> roles;  // from kRoles; any order, duplicates ignored
  std::optional<std::string> country;
  Attributes attributes;  // one value, or a list for repeated attributes
  KeyType key_type = KeyType::kP256;
  int days = kDefaultCertificateDays;
  // An explicit validity window; each defaults from the clock and `days`
  // (not_before = now, not_after = not_before + days).
  std::optional<Instant> not_before, not_after;
  bool force = false;  // replace an existing OUT/key.pem and OUT/cert.pem
};

struct Issued {
  std::filesystem::path cert_pem, key_pem, ca_pem;
  Identity identity;
  Instant not_before, not_after;
};

// Writes OUT/cert.pem, OUT/key.pem (0600) and OUT/ca.pem (a copy of the CA's), creating OUT when
// needed, and records the certificate in CA_DIR/index.json.
Result<Issued> issue(const std::filesystem::path& ca_dir, const IssueRequest& request,
                     const std::filesystem::path& out_dir, const Clock& clock);
Result<Issued> issue(const std::filesystem::path& ca_dir, const IssueRequest& request,
                     const std::filesystem::path& out_dir);

// RFC 5280 CRLReason names: unspecified (the default), keyCompromise, affiliationChanged,
// superseded, cessationOfOperation, privilegeWithdrawn.
Status check_revocation_reason(std::string_view reason);

struct RevokeOptions {
  std::string reason = "unspecified";
  int crl_days = kDefaultCrlDays;
};

struct CrlInfo {
  std::filesystem::path crl_pem;
  uint64_t number = 0;  // the CRL number extension, one more on every write
  size_t revoked = 0;   // entries in the CRL
  Instant this_update, next_update;
};

struct Revoked {
  std::string serial_hex, name;
  bool already_revoked = false;  // revoking twice changes nothing but the CRL's number
  Instant revoked_at;
  std::string reason;
  CrlInfo crl;
};

// Revokes the certificate in `cert_file` and rewrites CA_DIR/crl.pem. Refuses a certificate whose
// signature does not verify with this CA's key.
Result<Revoked> revoke(const std::filesystem::path& ca_dir, const std::filesystem::path& cert_file,
                       const RevokeOptions& options, const Clock& clock);
Result<Revoked> revoke(const std::filesystem::path& ca_dir, const std::filesystem::path& cert_file,
                       const RevokeOptions& options = {});

// Writes CA_DIR/crl.pem: every revoked certificate, valid from now for `days`.
Result<CrlInfo> write_crl(const std::filesystem::path& ca_dir, int days, const Clock& clock);
Result<CrlInfo> write_crl(const std::filesystem::path& ca_dir, int days = kDefaultCrlDays);

}  // namespace dsx::certs
