// The provenance log's SQLite store.
//
// Layout (one file, WAL mode, synchronous=FULL):
//   entries(idx INTEGER PRIMARY KEY, body TEXT, leaf BLOB, subtrees BLOB)
//       leaf     = SHA-256(0x00 || body), the RFC 9162 leaf hash
//       subtrees = the hashes of the perfect subtrees this leaf completes, level 1 upwards,
//                  32 bytes each: leaf i completes levels 1..t, t = the number of trailing one
//                  bits of i, so half the rows hold none, a quarter one, ... (one per leaf on
//                  average). The subtree of level k and index j, covering leaves
//                  [j * 2^k, (j + 1) * 2^k), is therefore in row (j + 1) * 2^k - 1 at offset
//                  (k - 1) * 32: one primary-key lookup, and one row written per entry.
//   checkpoints(size INTEGER PRIMARY KEY, body TEXT)          -- signed, JSON (checkpoint.h)
//   meta(key TEXT PRIMARY KEY, value TEXT)                    -- format, name, public_key (PEM)
// Invariants: entries holds indices 0..size-1 without gaps; rows are only ever inserted. A batch
// of entries commits in one transaction together with the checkpoint signed over the batch's new
// root, so a crash leaves either the whole batch and its checkpoint or none of it, and the latest
// checkpoint always covers every entry. Opening checks that: the root rebuilt from the stored
// subtrees must be the latest checkpoint's, signed by this log's key.
//
// The writer thread keeps the "frontier": for each level, the hash of the last completed perfect
// subtree. A new leaf that is a right child combines with the frontier of its level, and so on
// upwards, so an append costs O(log n) hashes, one insert, and reads nothing back.
#include "provenance/log.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

namespace dsx::provenance {
namespace {

constexpr size_t kMaxBatch = 4096;    // entries per transaction
constexpr size_t kMaxQueued = 65536;  // appends waiting; beyond this append() waits

Status sqlite_error(sqlite3* db, const std::string& what) {
  return Status::internal(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// A prepared statement, finalized on destruction.
class Statement {
 public:
  Statement() = default;
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Status prepare(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      return sqlite_error(db, std::string("preparing ") + sql);
    return Status::ok();
  }
  sqlite3_stmt* get() const { return stmt_; }
  // Resets when the scope ends: a statement left stepped keeps its connection's read snapshot
  // open, and the reader connection would stop seeing new commits.
  [[nodiscard]] auto resetting() const {
    auto done = [](sqlite3_stmt* s) { sqlite3_reset(s); };
    return std::unique_ptr<sqlite3_stmt, decltype(done)>(stmt_, done);
  }
  void reset() const {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

void bind_u64(sqlite3_stmt* s, int i, uint64_t v) {
  sqlite3_bind_int64(s, i, static_cast<sqlite3_int64>(v));
}

void bind_hash(sqlite3_stmt* s, int i, const Hash& h) {
  sqlite3_bind_blob(s, i, h.data(), static_cast<int>(h.size()), SQLITE_TRANSIENT);
}

bool column_hash(sqlite3_stmt* s, int i, Hash& out) {
  if (sqlite3_column_bytes(s, i) != static_cast<int>(out.size())) return false;
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, i));
  std::copy(p, p + out.size(), out.begin());
  return true;
}

// The root of the first n leaves from the frontier: the perfect subtrees of n's binary
// decomposition, combined from the smallest (rightmost) to the largest.
Hash root_from_frontier(const std::vector<Hash>& frontier, uint64_t n) {
  if (n == 0) return empty_root();
  const auto low = static_cast<size_t>(std::countr_zero(n));
  Hash r = frontier[low];
  for (size_t k = low + 1; k < 64 && (n >> k) != 0; ++k)
    if ((n >> k) & 1) r = node_hash(frontier[k], r);
  return r;
}

struct Pending {
  PreparedEntry entry;
  Log::AppendCallback done;
};

std::string_view hash_view(const Hash& h) {
  return std::string_view(reinterpret_cast<const char*>(h.data()), h.size());
}

}  // namespace

class Log::Impl final : public TreeReader {
 public:
  ~Impl() override {
    {
      std::lock_guard lock(queue_mutex_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    space_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    // The statements are finalized after this body runs (members); close_v2 waits for them.
    sqlite3_close_v2(db_);
    sqlite3_close_v2(read_db_);
  }

  Impl(SigningKey key, std::string name, const Clock& clock)
      : key_(std::move(key)), name_(std::move(name)), clock_(clock) {}

  Status open(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
      return sqlite_error(db_, "opening the log " + path);
    sqlite3_busy_timeout(db_, 5000);
    const char* schema =
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=FULL;"
        "CREATE TABLE IF NOT EXISTS entries(idx INTEGER PRIMARY KEY, body TEXT NOT NULL,"
        "  leaf BLOB NOT NULL, subtrees BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS checkpoints(size INTEGER PRIMARY KEY, body TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);";
    if (sqlite3_exec(db_, schema, nullptr, nullptr, nullptr) != SQLITE_OK)
      return sqlite_error(db_, "preparing the log " + path);
    // What the file is and the key it is signed with, for auditors reading a copy (they should
    // still check signatures against the key the broker publishes).
    {
      Statement meta;
      if (Status s = meta.prepare(db_, "INSERT OR IGNORE INTO meta(key, value) VALUES(?, ?)"); !s)
        return s;
      for (auto [k, v] : {std::pair<std::string, std::string>{"format", kLogFormat},
                          {"name", name_},
                          {"public_key", key_.public_key().pem()}}) {
        meta.reset();
        sqlite3_bind_text(meta.get(), 1, k.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(meta.get(), 2, v.c_str(), -1, SQLITE_TRANSIENT);
        if (sqlite3_step(meta.get()) != SQLITE_DONE)
          return sqlite_error(db_, "writing the log's meta");
      }
      Statement format;
      if (Status s = format.prepare(db_, "SELECT value FROM meta WHERE key = 'format'"); !s)
        return s;
      if (sqlite3_step(format.get()) != SQLITE_ROW)
        return sqlite_error(db_, "reading the log's format");
      const auto* f = reinterpret_cast<const char*>(sqlite3_column_text(format.get(), 0));
      if (std::string_view(f ? f : "") != kLogFormat)
        return Status::failed_precondition("the log " + path + " has format \"" +
                                           std::string(f ? f : "") + "\"; this dsx reads " +
                                           kLogFormat);
    }
    for (auto [stmt, sql] :
         {std::pair{&insert_entry_,
                    "INSERT INTO entries(idx, body, leaf, subtrees) VALUES(?, ?, ?, ?)"},
          std::pair{&insert_checkpoint_, "INSERT INTO checkpoints(size, body) VALUES(?, ?)"}}) {
      if (Status s = stmt->prepare(db_, sql); !s) return s;
    }
    // Readers get their own connection: in WAL mode they read the last commit while the writer
    // writes the next.
    if (sqlite3_open_v2(path.c_str(), &read_db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK)
      return sqlite_error(read_db_, "opening the log " + path + " for reading");
    sqlite3_busy_timeout(read_db_, 5000);
    for (auto [stmt, sql] :
         {std::pair{&select_leaf_, "SELECT leaf FROM entries WHERE idx = ?"},
          std::pair{&select_subtrees_, "SELECT subtrees FROM entries WHERE idx = ?"},
          std::pair{&select_body_, "SELECT body FROM entries WHERE idx = ?"},
          std::pair{&select_checkpoint_,
                    "SELECT body FROM checkpoints ORDER BY size DESC LIMIT 1"}}) {
      if (Status s = stmt->prepare(read_db_, sql); !s) return s;
    }
    // The size, and the frontier the writer continues from.
    Statement count;
    if (Status s = count.prepare(db_, "SELECT COUNT(*), COALESCE(MAX(idx) + 1, 0) FROM entries");
        !s)
      return s;
    if (sqlite3_step(count.get()) != SQLITE_ROW) return sqlite_error(db_, "reading the log size");
    const auto rows = static_cast<uint64_t>(sqlite3_column_int64(count.get(), 0));
    const auto next = static_cast<uint64_t>(sqlite3_column_int64(count.get(), 1));
    if (rows != next)
      return Status::failed_precondition(
          "the log " + path + " is damaged: " + std::to_string(rows) +
          " entries but indices up to " + std::to_string(next) + " (run dsx audit verify)");
    size_ = rows;
    for (size_t level = 0; (rows >> level) > 0; ++level) {
      auto h = node(level, (rows >> level) - 1);
      if (!h) return h.status();
      frontier_.push_back(*h);
    }
    if (Status s = check_against_checkpoint(path); !s) return s;
    writer_ = std::thread([this] { write_loop(); });
    return Status::ok();
  }

  Result<Checkpoint> latest_checkpoint() const {
    std::lock_guard lock(read_mutex_db_);
    select_checkpoint_.reset();
    auto reset = select_checkpoint_.resetting();
    if (sqlite3_step(select_checkpoint_.get()) != SQLITE_ROW)
      return Status::not_found("the log has no checkpoint yet");
    const auto* text =
        reinterpret_cast<const char*>(sqlite3_column_text(select_checkpoint_.get(), 0));
    auto doc = nlohmann::json::parse(text ? text : "", nullptr, false);
    auto c = parse_checkpoint(doc);
    if (!c)
      return Status::failed_precondition("the latest checkpoint is unreadable: " +
                                         c.status().message());
    return c;
  }

  const SigningKey& key() const { return key_; }

  void append_async(const Entry& e, AppendCallback done) {
    Result<PreparedEntry> prepared = prepare(e);
    if (!prepared) return done(prepared.status());
    auto pending = std::make_unique<Pending>(Pending{std::move(*prepared), std::move(done)});
    {
      std::unique_lock lock(queue_mutex_);
      space_cv_.wait(lock, [this] { return queue_.size() < kMaxQueued || stopping_; });
      if (stopping_) {
        lock.unlock();
        return pending->done(Status::failed_precondition("the log is closing"));
      }
      queue_.push_back(std::move(pending));
    }
    queue_cv_.notify_one();
  }

  Result<Receipt> append(const Entry& e) {
    std::promise<Result<Receipt>> promise;
    auto result = promise.get_future();
    append_async(e, [&promise](Result<Receipt> r) { promise.set_value(std::move(r)); });
    return result.get();
  }

  uint64_t size() const override { return size_.load(); }

  Hash range_hash(uint64_t begin, uint64_t end) const override {
    const uint64_t n = end - begin;
    if (std::has_single_bit(n) && begin % n == 0) {
      auto h = node(static_cast<size_t>(std::countr_zero(n)), begin / n);
      if (h) return *h;
      read_error_ = h.status();
      return Hash{};
    }
    const uint64_t k = std::bit_floor(n - 1);
    return node_hash(range_hash(begin, begin + k), range_hash(begin + k, end));
  }

  // Runs fn (which reads the tree) and turns a read error during it into an error result.
  template <typename T, typename Fn>
  Result<T> reading(Fn&& fn) const {
    std::lock_guard lock(read_mutex_);
    read_error_ = Status::ok();
    T value = fn();
    if (!read_error_.is_ok()) return read_error_;
    return value;
  }

  Result<std::string> entry_text(uint64_t index) const {
    std::lock_guard lock(read_mutex_db_);
    select_body_.reset();
    auto reset = select_body_.resetting();
    bind_u64(select_body_.get(), 1, index);
    if (sqlite3_step(select_body_.get()) != SQLITE_ROW)
      return Status::not_found("no entry " + std::to_string(index));
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(select_body_.get(), 0));
    return std::string(text ? text : "");
  }

 private:
  // The hash of a perfect subtree: level 0 is a leaf; level k >= 1, index j is stored with the
  // leaf that completes it (see the layout above).
  Result<Hash> node(size_t level, uint64_t index) const {
    std::lock_guard lock(read_mutex_db_);
    const Statement& stmt = level == 0 ? select_leaf_ : select_subtrees_;
    stmt.reset();
    auto reset = stmt.resetting();
    bind_u64(stmt.get(), 1, level == 0 ? index : ((index + 1) << level) - 1);
    Hash h{};
    bool found = sqlite3_step(stmt.get()) == SQLITE_ROW;
    if (found && level == 0) {
      found = column_hash(stmt.get(), 0, h);
    } else if (found) {
      const size_t offset = (level - 1) * h.size();
      const auto bytes = static_cast<size_t>(sqlite3_column_bytes(stmt.get(), 0));
      const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt.get(), 0));
      found = bytes >= offset + h.size();
      if (found) std::copy(p + offset, p + offset + h.size(), h.begin());
    }
    if (!found)
      return Status::failed_precondition("the log is damaged: no hash for level " +
                                         std::to_string(level) + " index " + std::to_string(index) +
                                         " (run dsx audit verify)");
    return h;
  }

  // The stored tree must be the one the latest checkpoint signed.
  Status check_against_checkpoint(const std::string& path) {
    const uint64_t size = size_.load();
    auto damaged = [&](const std::string& what) {
      return Status::failed_precondition("the log " + path + " is damaged: " + what +
                                         "; it will not be appended to (run dsx audit verify)");
    };
    auto c = latest_checkpoint();
    if (!c) {
      if (size == 0 && c.status().code() == Status::Code::kNotFound) return Status::ok();
      return damaged(std::to_string(size) + " entries, but " + c.status().message());
    }
    if (Status s = verify_checkpoint(*c, key_.public_key()); !s)
      return damaged("its latest checkpoint is " + s.message());
    if (c->tree_size != size)
      return damaged("it holds " + std::to_string(size) +
                     " entries but its latest checkpoint signs " + std::to_string(c->tree_size));
    if (root_from_frontier(frontier_, size) != c->root)
      return damaged("its tree does not have the root its latest checkpoint signs");
    return Status::ok();
  }

  void write_loop() {
    for (;;) {
      std::vector<std::unique_ptr<Pending>> batch;
      {
        std::unique_lock lock(queue_mutex_);
        queue_cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
        if (queue_.empty()) return;  // stopping, and everything was written
        while (!queue_.empty() && batch.size() < kMaxBatch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      space_cv_.notify_all();
      write_batch(batch);
    }
  }

  // Writes one batch in one transaction, then answers every caller in it.
  void write_batch(std::vector<std::unique_ptr<Pending>>& batch) {
    std::vector<Hash> frontier = frontier_;
    const uint64_t first = size_.load();
    uint64_t n = first;
    Status failure;
    std::vector<Hash> leaves;
    leaves.reserve(batch.size());
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
      failure = sqlite_error(db_, "starting a transaction");
    for (size_t i = 0; i < batch.size() && failure.is_ok(); ++i, ++n) {
      const std::string body = batch[i]->entry.with_seq(n);
      leaves.push_back(leaf_hash(body));
      failure = insert(n, body, leaves.back(), frontier);
    }
    if (failure.is_ok()) {
      const Checkpoint c =
          sign_checkpoint(name_, n, root_from_frontier(frontier, n), clock_.now(), key_);
      const std::string body = to_json(c).dump();
      insert_checkpoint_.reset();
      bind_u64(insert_checkpoint_.get(), 1, n);
      sqlite3_bind_text(insert_checkpoint_.get(), 2, body.data(), static_cast<int>(body.size()),
                        SQLITE_STATIC);
      if (sqlite3_step(insert_checkpoint_.get()) != SQLITE_DONE)
        failure = sqlite_error(db_, "writing a checkpoint");
    }
    if (failure.is_ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK)
      failure = sqlite_error(db_, "committing");
    if (!failure.is_ok()) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      for (auto& p : batch)
        p->done(failure);
      return;
    }
    frontier_ = std::move(frontier);
    size_.store(n);
    for (size_t i = 0; i < batch.size(); ++i)
      batch[i]->done(Receipt{first + i, leaves[i]});
  }

  // Inserts leaf `index` with the perfect subtrees it completes; updates `frontier`.
  Status insert(uint64_t index, const std::string& body, const Hash& leaf,
                std::vector<Hash>& frontier) {
    std::string subtrees;  // level 1 upwards, 32 bytes each
    Hash current = leaf;
    uint64_t idx = index;
    for (size_t level = 0;; ++level) {
      if (frontier.size() <= level) frontier.resize(level + 1);
      if (idx % 2 == 0) {  // a left child: the parent is not complete yet
        frontier[level] = current;
        break;
      }
      const Hash parent = node_hash(frontier[level], current);
      frontier[level] = current;
      idx /= 2;
      subtrees += hash_view(parent);
      current = parent;
    }
    insert_entry_.reset();
    bind_u64(insert_entry_.get(), 1, index);
    sqlite3_bind_text(insert_entry_.get(), 2, body.data(), static_cast<int>(body.size()),
                      SQLITE_STATIC);
    bind_hash(insert_entry_.get(), 3, leaf);
    sqlite3_bind_blob(insert_entry_.get(), 4, subtrees.data(), static_cast<int>(subtrees.size()),
                      SQLITE_STATIC);
    if (sqlite3_step(insert_entry_.get()) != SQLITE_DONE)
      return sqlite_error(db_, "writing entry " + std::to_string(index));
    return Status::ok();
  }

  // Writer connection: the writer thread only (after open).
  sqlite3* db_ = nullptr;
  Statement insert_entry_, insert_checkpoint_;

  // Reader connection.
  sqlite3* read_db_ = nullptr;
  mutable std::mutex read_mutex_db_;  // guards read_db_ and its statements
  Statement select_leaf_, select_subtrees_, select_body_, select_checkpoint_;

  const SigningKey key_;
  const std::string name_;
  const Clock& clock_;

  std::atomic<uint64_t> size_{0};  // committed entries
  std::vector<Hash> frontier_;     // writer thread only (after open)

  mutable std::mutex read_mutex_;  // one proof at a time reports read errors through read_error_
  mutable Status read_error_;

  std::mutex queue_mutex_;  // guards queue_ and stopping_
  std::condition_variable queue_cv_, space_cv_;
  std::deque<std::unique_ptr<Pending>> queue_;
  bool stopping_ = false;
  std::thread writer_;
};

Log::Log(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Log::~Log() = default;

Result<std::unique_ptr<Log>> Log::open(const std::string& path, SigningKey key, std::string name,
                                       const Clock& clock) {
  auto impl = std::make_unique<Impl>(std::move(key), std::move(name), clock);
  if (Status s = impl->open(path); !s) return s;
  return std::unique_ptr<Log>(new Log(std::move(impl)));
}

Result<Receipt> Log::append(const Entry& e) {
  return impl_->append(e);
}

void Log::append_async(const Entry& e, AppendCallback done) {
  impl_->append_async(e, std::move(done));
}

uint64_t Log::size() const {
  return impl_->size();
}

Result<Hash> Log::root(uint64_t size) const {
  if (size > impl_->size())
    return Status::invalid_argument("the log has fewer entries than " + std::to_string(size));
  return impl_->reading<Hash>([&] { return provenance::root(*impl_, size); });
}

Result<InclusionProof> Log::prove_inclusion(uint64_t index, uint64_t size) const {
  if (index >= size || size > impl_->size())
    return Status::invalid_argument("no entry " + std::to_string(index) + " in a tree of size " +
                                    std::to_string(size) + " (the log has " +
                                    std::to_string(impl_->size()) + ")");
  return impl_->reading<InclusionProof>([&] {
    return InclusionProof{index, size, provenance::root(*impl_, size),
                          impl_->range_hash(index, index + 1),
                          inclusion_proof(*impl_, index, size)};
  });
}

Result<ConsistencyProof> Log::prove_consistency(uint64_t first, uint64_t second) const {
  if (first == 0 || first > second || second > impl_->size())
    return Status::invalid_argument("no consistency proof from size " + std::to_string(first) +
                                    " to " + std::to_string(second) + " (the log has " +
                                    std::to_string(impl_->size()) + ")");
  return impl_->reading<ConsistencyProof>([&] {
    return ConsistencyProof{first, second, provenance::root(*impl_, first),
                            provenance::root(*impl_, second),
                            consistency_proof(*impl_, first, second)};
  });
}

Result<std::string> Log::entry_text(uint64_t index) const {
  return impl_->entry_text(index);
}

Result<Checkpoint> Log::latest_checkpoint() const {
  return impl_->latest_checkpoint();
}

const PublicKey& Log::public_key() const {
  return impl_->key().public_key();
}

}  // namespace dsx::provenance
