#include "provenance/audit.h"

#include <sqlite3.h>

#include <bit>
#include <nlohmann/json.hpp>

#include "common/hex.h"
#include "common/json.h"
#include "provenance/canonical_json.h"
#include "provenance/checkpoint.h"
#include "provenance/merkle.h"

namespace dsx::provenance {
namespace {

constexpr size_t kMaxListed = 100;

class Reader {
 public:
  ~Reader() {
    sqlite3_finalize(stmt_);
    sqlite3_close_v2(db_);
  }
  Status open(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
      return Status::invalid_argument(path + ": cannot open: " + sqlite3_errmsg(db_));
    return Status::ok();
  }
  // Prepares `sql` for step(); an error names the file as not a dsx log.
  Status query(const char* sql) {
    sqlite3_finalize(stmt_);
    stmt_ = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      return Status::invalid_argument(std::string("not a dsx provenance log (") +
                                      sqlite3_errmsg(db_) + ")");
    return Status::ok();
  }
  bool step() { return sqlite3_step(stmt_) == SQLITE_ROW; }
  void bind(int i, uint64_t v) { sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v)); }
  int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }
  std::string text(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }
  std::optional<Hash> hash(int i) const {
    Hash h{};
    if (sqlite3_column_bytes(stmt_, i) != static_cast<int>(h.size())) return std::nullopt;
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, i));
    std::copy(p, p + h.size(), h.begin());
    return h;
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class Auditor {
 public:
  explicit Auditor(AuditReport& report) : report_(report) {}

  void problem(std::string text) {
    if (report_.problems.size() < kMaxListed)
      report_.problems.push_back(std::move(text));
    else
      ++report_.problems_not_listed;
  }

  // Entries: contiguous, canonical, numbered as stored, leaf hash matching content.
  Status entries(Reader& r) {
    if (Status s = r.query("SELECT idx, body, leaf FROM entries ORDER BY idx"); !s) return s;
    uint64_t expected = 0;
    while (r.step()) {
      const auto idx = static_cast<uint64_t>(r.integer(0));
      if (idx != expected) {
        problem(idx == expected + 1 ? "entry " + std::to_string(expected) + " is missing (deleted)"
                                    : "entries " + std::to_string(expected) + " to " +
                                          std::to_string(idx - 1) + " are missing (deleted)");
        // The tree over what is there no longer matches any checkpoint; keep numbering as stored.
        while (expected < idx) {
          tree_.append(Hash{});
          ++expected;
        }
      }
      const std::string body = r.text(1);
      const Hash leaf = leaf_hash(body);
      check_entry(idx, body);
      auto stored = r.hash(2);
      if (!stored || *stored != leaf)
        problem("entry " + std::to_string(idx) +
                ": its content does not match its stored leaf hash (the entry was edited)");
      tree_.append(leaf);
      ++expected;
    }
    report_.entries = expected;
    return Status::ok();
  }

  void check_entry(uint64_t idx, const std::string& body) {
    auto doc = parse_json_text(body);
    if (!doc) {
      problem("entry " + std::to_string(idx) + ": not JSON (" + doc.status().message() + ")");
      return;
    }
    auto canon = canonical_json(*doc);
    if (!canon || *canon != body)
      problem("entry " + std::to_string(idx) + ": not in canonical form (the entry was edited)");
    auto seq = doc->is_object() ? doc->find("seq") : doc->end();
    if (seq == doc->end() || !seq->is_number_unsigned() || seq->get<uint64_t>() != idx)
      problem("entry " + std::to_string(idx) + " says it is entry " +
              (seq != doc->end() ? seq->dump() : std::string("(none)")) +
              " (entries were moved or reordered)");
  }

  // Stored subtree hashes: each as recomputed, none missing.
  Status nodes(Reader& r) {
    if (Status s = r.query("SELECT level, idx, hash FROM nodes ORDER BY level, idx"); !s) return s;
    const uint64_t n = tree_.size();
    std::vector<uint64_t> seen(64, 0);
    while (r.step()) {
      const auto level = static_cast<uint64_t>(r.integer(0));
      const auto idx = static_cast<uint64_t>(r.integer(1));
      ++report_.nodes;
      const std::string name =
          "tree node level " + std::to_string(level) + " index " + std::to_string(idx);
      if (level == 0 || level >= 64 || idx >= (n >> level)) {
        problem(name + " covers entries the log does not have (inserted)");
        continue;
      }
      ++seen[level];
      const uint64_t width = uint64_t{1} << level;
      auto stored = r.hash(2);
      if (!stored || *stored != tree_.range_hash(idx * width, (idx + 1) * width))
        problem(name + " (entries " + std::to_string(idx * width) + " to " +
                std::to_string((idx + 1) * width - 1) + ") differs from the entries' hashes");
    }
    for (uint64_t level = 1; level < 64 && (n >> level) > 0; ++level)
      if (seen[level] < (n >> level))
        problem(std::to_string((n >> level) - seen[level]) + " tree node(s) of level " +
                std::to_string(level) + " are missing");
    return Status::ok();
  }

  // Checkpoints: signed by the key, with the root of the entries they cover.
  Status checkpoints(Reader& r, const PublicKey& key) {
    if (Status s = r.query("SELECT size, body FROM checkpoints ORDER BY size"); !s) return s;
    uint64_t covered = 0, previous = 0;
    bool first_bad = true;
    while (r.step()) {
      ++report_.checkpoints;
      const auto size = static_cast<uint64_t>(r.integer(0));
      const std::string name = "checkpoint at size " + std::to_string(size);
      auto c = parse_checkpoint(nlohmann::json::parse(r.text(1), nullptr, false));
      if (!c) {
        problem(name + ": unreadable (" + c.status().message() + ")");
        continue;
      }
      if (c->tree_size != size) problem(name + ": it signs size " + std::to_string(c->tree_size));
      if (Status s = verify_checkpoint(*c, key); !s) problem(name + ": " + s.message());
      if (c->tree_size > tree_.size()) {
        problem(name + ": the log has only " + std::to_string(tree_.size()) +
                " entries (entries at the end were deleted)");
      } else if (root(tree_, c->tree_size) != c->root && first_bad) {
        first_bad = false;  // later checkpoints differ too; the first one locates the change
        problem(name + ": the entries do not have the root it signs: an entry from " +
                std::to_string(previous) + " to " + std::to_string(c->tree_size - 1) +
                " was changed, inserted or removed");
      }
      covered = std::max(covered, c->tree_size);
      previous = c->tree_size;
    }
    if (covered < tree_.size())
      problem("entries " + std::to_string(covered) + " to " + std::to_string(tree_.size() - 1) +
              " are not covered by any signed checkpoint (inserted)");
    return Status::ok();
  }

 private:
  AuditReport& report_;
  MemoryTree tree_;
};

}  // namespace

Result<AuditReport> audit_log_file(const std::string& path,
                                   const std::optional<PublicKey>& pubkey) {
  Reader r;
  if (Status s = r.open(path); !s) return s;
  AuditReport report;
  std::optional<PublicKey> key = pubkey;
  if (key) {
    report.key_source = "the public key given";
  } else {
    if (Status s = r.query("SELECT value FROM meta WHERE key = 'public_key'"); !s)
      return Status::invalid_argument(path + ": " + s.message());
    if (!r.step())
      return Status::invalid_argument(path + ": no public key in the log; give --pubkey");
    auto stored = PublicKey::from_pem(r.text(0));
    if (!stored) return Status::invalid_argument(path + ": the stored public key is unreadable");
    key = *stored;
    report.key_source =
        "the key stored in the log file (give --pubkey to check it is the broker's)";
  }
  Auditor auditor(report);
  for (Status s : {auditor.entries(r), auditor.nodes(r), auditor.checkpoints(r, *key)})
    if (!s) return Status::invalid_argument(path + ": " + s.message());
  return report;
}

Status for_each_entry(const std::string& path, uint64_t from, uint64_t to,
                      const std::function<void(const Entry&, const std::string&)>& fn) {
  Reader r;
  if (Status s = r.open(path); !s) return s;
  if (Status s = r.query("SELECT idx, body FROM entries WHERE idx BETWEEN ? AND ? ORDER BY idx");
      !s)
    return Status::invalid_argument(path + ": " + s.message());
  // SQLite integers are signed: clamp the range to what it can hold.
  constexpr uint64_t kMax = static_cast<uint64_t>(INT64_MAX);
  r.bind(1, std::min(from, kMax));
  r.bind(2, std::min(to, kMax));
  while (r.step()) {
    const std::string body = r.text(1);
    auto e = parse_entry(body);
    if (e) {
      fn(*e, body);
    } else {
      Entry bad;
      bad.seq = static_cast<uint64_t>(r.integer(0));
      bad.action = "(unreadable)";
      fn(bad, body);
    }
  }
  return Status::ok();
}

}  // namespace dsx::provenance
