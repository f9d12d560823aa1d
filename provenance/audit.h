#pragma once
// Offline verification of a whole log file (a copy an auditor holds): recompute every leaf from
// its entry, the whole tree from the leaves, compare every stored subtree hash, and check every
// checkpoint's signature and root. Every problem is named: which entry or node, and what
// differs. Reads the file only (read-only SQLite connection); no Log, no writer thread.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "provenance/entry.h"
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

// Calls `fn(entry, canonical_text)` for the entries [from, to] of a log file, in order (reading
// it only). An entry that does not parse is reported through `fn` with an empty Entry whose
// action is "(unreadable)"; `dsx audit verify` says why.
Status for_each_entry(const std::string& path, uint64_t from, uint64_t to,
                      const std::function<void(const Entry&, const std::string&)>& fn);

}  // namespace dsx::provenance
