#include "provenance/audit.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/hex.h"
#include "common/json.h"
#include "provenance/canonical_json.h"
#include "provenance/checkpoint.h"
#include "provenance/log.h"
#include "provenance/merkle.h"
#include "provenance/sqlite_setup.h"

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
    // One thread per connection: no per-connection mutex.
    configure_sqlite();
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK)
      return Status::invalid_argument(path + ": cannot open: " + sqlite3_errmsg(db_));
    // No mmap: with the 16 KB pages of the log files dsx writes, reading each page through the
    // connection's page cache scanned faster than mapping the file (docs/performance.md).
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
  void reset() { sqlite3_reset(stmt_); }
  void bind(int i, uint64_t v) { sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v)); }
  int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }
  std::string text(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : std::string();
  }
  // Valid until the next step().
  std::string_view text_view(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string_view();
  }
  std::string_view blob_view(int i) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string_view();
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// The audit runs in parallel: the entries are cut into chunks of 2^kChunkLevel leaves (each a
// perfect subtree), and each of a few threads, on its own read-only connection, takes chunks:
// reads the rows, checks each entry (canonical form, seq, leaf hash), computes the chunk's
// subtrees and compares those stored. The levels above the chunks, the checkpoints' roots and
// the report are done by the calling thread afterwards; checkpoint signatures are verified by
// the same threads as further tasks. Problems are collected per chunk and reported in log order.
constexpr size_t kChunkLevel = 16;
constexpr uint64_t kChunk = uint64_t{1} << kChunkLevel;
constexpr uint64_t kSignaturesPerTask = 256;
// Rows numbered further than this beyond the largest signed size are insertions, not a log with
// gaps (and must not make the audit allocate a tree for them).
constexpr uint64_t kMaxGap = uint64_t{1} << 20;

// What one chunk found.
struct ChunkResult {
  struct Stored {  // a stored subtree hash above the chunk level, checked afterwards
    uint64_t entry;
    size_t level;
    Hash hash;
  };
  std::vector<std::string> problems;
  std::vector<Stored> above;
  uint64_t nodes = 0;
};

// The subtree hashes stored in a chunk's rows, kept until the chunk's tree is computed: all the
// bytes in one buffer, and where each row's are.
struct StoredSubtrees {
  struct Row {
    uint64_t entry;
    size_t offset, size;
  };
  std::string bytes;
  std::vector<Row> rows;
};

std::string_view hash_view(const Hash& h) {
  return std::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

std::string node_name(size_t level, uint64_t index) {
  const uint64_t width = uint64_t{1} << level;
  return "tree node level " + std::to_string(level) + " index " + std::to_string(index) +
         " (entries " + std::to_string(index * width) + " to " +
         std::to_string((index + 1) * width - 1) + ")";
}

class Auditor {
 public:
  Auditor(std::string path, AuditReport& report) : path_(std::move(path)), report_(report) {}

  void problem(std::string text) {
    if (report_.problems.size() < kMaxListed)
      report_.problems.push_back(std::move(text));
    else
      ++report_.problems_not_listed;
  }

  Status run(Reader& r, const PublicKey& key) {
    if (Status s = read_checkpoints(r); !s) return s;
    if (Status s = size_up(r); !s) return s;
    tree_ = MemoryTree(n_);
    chunks_.resize(static_cast<size_t>((n_ + kChunk - 1) / kChunk));
    signatures_.assign(checkpoints_.size(), Status::ok());
    const size_t tasks =
        chunks_.size() +
        static_cast<size_t>((checkpoints_.size() + kSignaturesPerTask - 1) / kSignaturesPerTask);
    const size_t threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 8);
    std::vector<std::thread> pool;
    std::vector<Status> failures(std::min(threads, tasks));
    for (size_t t = 0; t < failures.size(); ++t)
      pool.emplace_back([&, t] { failures[t] = work(tasks, key); });
    for (auto& th : pool)
      th.join();
    for (const Status& s : failures)
      if (!s) return s;
    for (ChunkResult& c : chunks_) {
      for (std::string& p : c.problems)
        problem(std::move(p));
      report_.nodes += c.nodes;
    }
    upper_levels();
    check_checkpoints();
    report_.entries = n_;
    return Status::ok();
  }

 private:
  // The tree's size (one past the highest entry index) and rows that lie outside the log: below
  // zero, or further beyond the largest signed size than any gap could explain. Range queries on
  // the primary key only: a COUNT(*) would read the whole table once more.
  Status size_up(Reader& r) {
    uint64_t signed_size = 0;
    for (const auto& c : checkpoints_)
      signed_size = std::max(signed_size, c.size);
    limit_ = signed_size + kMaxGap;
    if (Status s = r.query("SELECT idx FROM entries WHERE idx < 0 ORDER BY idx LIMIT 100"); !s)
      return s;
    while (r.step())
      problem("an entry numbered " + std::to_string(r.integer(0)) +
              " lies outside the log (inserted)");
    if (Status s = r.query("SELECT idx FROM entries WHERE idx >= ? ORDER BY idx LIMIT 100"); !s)
      return s;
    r.bind(1, limit_);
    while (r.step())
      problem("an entry numbered " + std::to_string(r.integer(0)) +
              " lies outside the log (inserted)");
    if (Status s = r.query("SELECT COALESCE(MAX(idx) + 1, 0) FROM entries WHERE idx >= 0 AND "
                           "idx < ?");
        !s)
      return s;
    r.bind(1, limit_);
    n_ = r.step() ? static_cast<uint64_t>(r.integer(0)) : 0;
    return Status::ok();
  }

  Status read_checkpoints(Reader& r) {
    if (Status s = r.query("SELECT value FROM meta WHERE key = 'format'"); !s) return s;
    const std::string format = r.step() ? r.text(0) : std::string("(none)");
    if (format != kLogFormat)
      return Status::invalid_argument("a log of format \"" + format + "\"; this dsx reads " +
                                      kLogFormat);
    if (Status s = r.query("SELECT size, body FROM checkpoints ORDER BY size"); !s) return s;
    while (r.step()) {
      auto c = parse_checkpoint(nlohmann::json::parse(r.text(1), nullptr, false));
      checkpoints_.push_back({static_cast<uint64_t>(r.integer(0)), std::move(c)});
    }
    report_.checkpoints = checkpoints_.size();
    return Status::ok();
  }

  // A worker: takes tasks until none are left.
  Status work(size_t tasks, const PublicKey& key) {
    Reader r;
    if (Status s = r.open(path_); !s) return s;
    if (Status s = r.query("SELECT idx, body, leaf, subtrees FROM entries WHERE idx >= ? AND "
                           "idx < ? ORDER BY idx");
        !s)
      return s;
    StoredSubtrees stored;  // reused from chunk to chunk
    for (size_t task; (task = next_task_.fetch_add(1)) < tasks;) {
      if (task < chunks_.size()) {
        chunk(r, task, stored);
        continue;
      }
      const size_t first = (task - chunks_.size()) * kSignaturesPerTask;
      for (size_t i = first; i < std::min(checkpoints_.size(), first + kSignaturesPerTask); ++i)
        if (checkpoints_[i].checkpoint)
          signatures_[i] = verify_checkpoint(*checkpoints_[i].checkpoint, key);
    }
    return Status::ok();
  }

  // Entries [c * kChunk, (c + 1) * kChunk): contiguous, canonical, numbered as stored, leaf hash
  // matching content; then the chunk's subtrees, computed and compared with those stored.
  void chunk(Reader& r, size_t c, StoredSubtrees& stored) {
    ChunkResult& out = chunks_[c];
    const uint64_t begin = c * kChunk, end = std::min(n_, begin + kChunk);
    r.reset();
    r.bind(1, begin);
    r.bind(2, end);
    stored.bytes.clear();
    stored.rows.clear();
    uint64_t expected = begin;
    auto missing = [&](uint64_t upto) {
      if (upto == expected + 1)
        out.problems.push_back("entry " + std::to_string(expected) + " is missing (deleted)");
      else if (upto > expected)
        out.problems.push_back("entries " + std::to_string(expected) + " to " +
                               std::to_string(upto - 1) + " are missing (deleted)");
      // Their leaves stay zero: the tree over what is there matches no checkpoint.
      expected = upto;
    };
    while (r.step()) {
      const auto idx = static_cast<uint64_t>(r.integer(0));
      missing(idx);
      const std::string_view body = r.text_view(1);
      check_entry(idx, body, out);
      const Hash leaf = leaf_hash(body);
      if (r.blob_view(2) != hash_view(leaf))
        out.problems.push_back(
            "entry " + std::to_string(idx) +
            ": its content does not match its stored leaf hash (the entry was edited)");
      tree_.at(0, idx) = leaf;
      if (std::string_view blob = r.blob_view(3); !blob.empty() || (idx & 1)) {
        stored.rows.push_back({idx, stored.bytes.size(), blob.size()});
        stored.bytes += blob;
      }
      expected = idx + 1;
    }
    missing(end);
    // The chunk's own subtrees, level by level.
    for (size_t k = 1; k <= kChunkLevel && k < tree_.levels(); ++k)
      for (uint64_t j = begin >> k; j < (end >> k); ++j)
        tree_.at(k, j) = node_hash(tree_.at(k - 1, 2 * j), tree_.at(k - 1, 2 * j + 1));
    // Leaf i stores the subtrees it completes: levels 1 to (trailing one bits of i).
    for (const auto& [idx, offset, size] : stored.rows) {
      const std::string_view blob(stored.bytes.data() + offset, size);
      const auto levels = static_cast<size_t>(std::countr_one(idx));
      if (blob.size() != levels * sizeof(Hash))
        out.problems.push_back("entry " + std::to_string(idx) + ": " + std::to_string(blob.size()) +
                               " bytes of subtree hashes, not " +
                               std::to_string(levels * sizeof(Hash)) + " (edited)");
      for (size_t k = 1; k <= levels && k * sizeof(Hash) <= blob.size(); ++k) {
        Hash h{};
        std::copy_n(blob.data() + (k - 1) * sizeof(Hash), h.size(), h.begin());
        ++out.nodes;
        if (k > kChunkLevel)
          out.above.push_back({idx, k, h});
        else if (h != tree_.at(k, idx >> k))
          out.problems.push_back(node_name(k, idx >> k) + " differs from the entries' hashes");
      }
    }
  }

  void check_entry(uint64_t idx, std::string_view body, ChunkResult& out) {
    std::optional<uint64_t> seq;
    if (is_canonical_json(body, &seq) && seq == idx) return;  // the usual case, without a parse
    const std::string name = "entry " + std::to_string(idx);
    auto doc = parse_json_text(body);
    if (!doc) {
      out.problems.push_back(name + ": not JSON (" + doc.status().message() + ")");
      return;
    }
    auto canon = canonical_json(*doc);
    if (!canon || *canon != body)
      out.problems.push_back(name + ": not in canonical form (the entry was edited)");
    auto s = doc->is_object() ? doc->find("seq") : doc->end();
    if (s == doc->end() || !s->is_number_unsigned() || s->get<uint64_t>() != idx)
      out.problems.push_back(name + " says it is entry " +
                             (s != doc->end() ? s->dump() : std::string("(none)")) +
                             " (entries were moved or reordered)");
  }

  // The levels above the chunks, and the stored hashes there.
  void upper_levels() {
    for (size_t k = kChunkLevel + 1; k < tree_.levels(); ++k)
      for (uint64_t j = 0; j < (n_ >> k); ++j)
        tree_.at(k, j) = node_hash(tree_.at(k - 1, 2 * j), tree_.at(k - 1, 2 * j + 1));
    for (const ChunkResult& c : chunks_)
      for (const auto& s : c.above)
        if (s.hash != tree_.at(s.level, s.entry >> s.level))
          problem(node_name(s.level, s.entry >> s.level) + " differs from the entries' hashes");
  }

  // Checkpoints: signed by the key, with the root of the entries they cover.
  void check_checkpoints() {
    uint64_t covered = 0, previous = 0;
    bool first_bad = true;
    for (size_t i = 0; i < checkpoints_.size(); ++i) {
      const auto& [size, c] = checkpoints_[i];
      const std::string name = "checkpoint at size " + std::to_string(size);
      if (!c) {
        problem(name + ": unreadable (" + c.status().message() + ")");
        continue;
      }
      if (c->tree_size != size) problem(name + ": it signs size " + std::to_string(c->tree_size));
      if (!signatures_[i]) problem(name + ": " + signatures_[i].message());
      if (c->tree_size > n_) {
        problem(name + ": the log has only " + std::to_string(n_) +
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
    if (covered < n_)
      problem("entries " + std::to_string(covered) + " to " + std::to_string(n_ - 1) +
              " are not covered by any signed checkpoint (inserted)");
  }

  struct StoredCheckpoint {
    uint64_t size;
    Result<Checkpoint> checkpoint;
  };

  const std::string path_;
  AuditReport& report_;
  uint64_t n_ = 0, limit_ = 0;
  MemoryTree tree_;                            // workers write disjoint ranges
  std::vector<ChunkResult> chunks_;            // one per chunk, written by its worker
  std::vector<StoredCheckpoint> checkpoints_;  // read before the workers start
  std::vector<Status> signatures_;             // one per checkpoint, written by one worker
  std::atomic<size_t> next_task_{0};
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
  Auditor auditor(path, report);
  if (Status s = auditor.run(r, *key); !s)
    return Status::invalid_argument(path + ": " + s.message());
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
