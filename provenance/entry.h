#pragma once
// One provenance entry: who did what to which subjects, when, with what details (for a policy
// decision: the decision and its reasons). Its bytes in the log are its RFC 8785 canonical JSON,
//   {"action":"policy.decided","actor":"...","details":{...},"seq":12,"subjects":[...],
//    "time":"2026-11-29T10:00:00Z"}
// and its leaf hash is SHA-256(0x00 || those bytes). Plain value; functions are pure.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"

namespace dsx::provenance {

struct Entry {
  uint64_t seq = 0;                   // its index in the log, assigned by the log
  Instant time;                       // RFC 3339 UTC in the canonical form
  std::string actor;                  // participant id
  std::string action;                 // e.g. offer.published, policy.decided, transfer.completed
  std::vector<std::string> subjects;  // ids of datasets, offers, agreements, transfers, ...
  nlohmann::json details = nlohmann::json::object();
};

// An entry serialised except for its seq, so that the costly part (canonicalising the details)
// runs in the appending thread and the log's writer only splices in the number: the canonical
// members sort as action, actor, details, seq, subjects, time, so the bytes are
// text[0, seq_at) + seq + text[seq_at, end) with text[0, seq_at) =
// {"action":..,"actor":..,"details":{..},"seq":  and the rest ,"subjects":[..],"time":".."}.
// One string rather than two: one allocation per append.
struct PreparedEntry {
  std::string text;
  size_t seq_at = 0;
  std::string with_seq(uint64_t seq) const;
  // The same into `out` (its old content replaced), so a writer can reuse one buffer.
  void with_seq(uint64_t seq, std::string& out) const;
  // The canonical JSON of the entry without its "seq" member (the log assigns it): what a
  // caller keeps, e.g. in an outbox, until the log has the entry. Empty for a PreparedEntry that
  // prepare() did not make.
  std::string without_seq() const;
};

// The canonical bytes; an error when details hold what JCS cannot (NaN, huge integers).
Result<PreparedEntry> prepare(const Entry& e);
Result<std::string> canonical(const Entry& e);  // prepare(e)->with_seq(e.seq)
// Reads canonical (or any JSON) entry text back; an error names the field.
Result<Entry> parse_entry(std::string_view text);

}  // namespace dsx::provenance
