#pragma once
// Offline verification of a whole log file (a copy an auditor holds): recompute every leaf from
// its entry, the whole tree from the leaves, compare every stored subtree hash, and check every
// checkpoint's signature and root. Every problem is named: which entry or node, and what
// differs. Reads the file only (read-only SQLite connection); no Log, no writer thread.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "provenance/signing.h"

namespace dsx::provenance {

struct AuditReport {
  uint64_t entries = 0;
  uint64_t nodes = 0;
  uint64_t checkpoints = 0;
  std::string key_source;             // where the public key came from
  std::vector<std::string> problems;  // empty: the log verifies
  uint64_t problems_not_listed = 0;   // beyond the first kMaxListed
};

// An error Status only when the file cannot be read as a dsx log at all (not SQLite, not a
// provenance log, an unreadable key). `pubkey` is the key the auditor trusts; without it the
// key stored in the file is used, and the report says so.
Result<AuditReport> audit_log_file(const std::string& path, const std::optional<PublicKey>& pubkey);

}  // namespace dsx::provenance
