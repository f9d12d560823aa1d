#pragma once
// CA_DIR/index.json: every certificate a CA issued, the revocations, and the number of the last
// CRL it wrote. It is the CA's memory: crl.pem is rebuilt from it, so it is written atomically
// and a CA folder without it is refused. The CA functions (ca.h) read and rewrite it under the
// folder's lock; tools and tests may read it. Plain values; the functions are thread-safe.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace dsx::certs {

struct IndexEntry {
  std::string serial_hex;  // lowercase, as serial_hex() writes it
  std::string name;
  std::vector<std::string> roles;
  Instant not_before, not_after;
  std::optional<Instant> revoked;
  std::string reason;  // an RFC 5280 CRLReason name, when revoked
};

struct CaIndex {
  uint64_t crl_number = 0;               // of the last CRL written; 0 before the first
  std::vector<IndexEntry> certificates;  // in the order issued

  IndexEntry* find(std::string_view serial_hex);
};

// {"certificates":[{"name":..,"notAfter":..,"notBefore":..,"reason":..,"revoked":..,"roles":[..],
//   "serial":..}],"crlNumber":N,"version":1}, times in RFC 3339.
std::string index_json(const CaIndex& index);
Result<CaIndex> parse_index(std::string_view text);

inline constexpr std::string_view kIndexFile = "index.json";
Result<CaIndex> load_index(const std::filesystem::path& ca_dir);
Status save_index(const std::filesystem::path& ca_dir, const CaIndex& index);

}  // namespace dsx::certs
