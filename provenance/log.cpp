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
//
// Three threads of the log's own, besides the callers':
// - the writer (the only user of the writer's connection) numbers, hashes and inserts a batch,
//   signs its checkpoint and commits;
// - the answerer then calls the batch's callbacks, in commit order, and frees the batch, while
//   the writer goes on with the next. Callbacks wake the callers' threads, which then compete
//   for the CPU: run on the writer, they and the freeing held up the next transaction. A small
//   batch, when the answerer is idle, is still answered by the writer (see hand_over);
// - the checkpointer, with a connection of its own, copies committed pages from the WAL back into
//   the database file and syncs that file (a WAL checkpoint). SQLite's auto-checkpoint would do
//   this inside the writer's commits; in PASSIVE mode on its own connection it never blocks the
//   writer, whose only wait per batch is then its commit's fsync of the WAL. SQLite can start
//   the WAL over from its beginning only when a write transaction begins with everything in it
//   already copied back, and under a steady load that moment never comes by itself: so once the
//   WAL has grown to kWalRestartBytes the writer waits, before its next transaction, for the
//   checkpoint of the last commit (the earlier ones were copied meanwhile, so this is short).
// New files get 16 KB pages rather than SQLite's 4 KB: fewer WAL frames and syscalls per commit
// and a cheaper full scan for the audit (docs/performance.md). A file keeps the page size it was
// created with.
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

#include "provenance/sqlite_setup.h"

namespace dsx::provenance {
namespace {

constexpr size_t kMaxBatch = 4096;             // entries per transaction
constexpr std::chrono::hours kMaxMayWait{24};  // append_async's may_wait is cut to this
constexpr size_t kMaxQueued = 65536;           // appends waiting; beyond this append() waits
// A checkpoint is asked for each time the WAL has grown by this much (SQLite's auto-checkpoint
// runs at 1,000 pages, 4 MB with 4 KB pages) ...
constexpr int64_t kWalCheckpointBytes = int64_t{2} << 20;
// ... and the WAL starts over once it holds this much; the file is then cut back to this size. Kept
// small: while the WAL file grows, every commit's fdatasync must also make the file's new size
// durable (a file system journal commit): with a limit of 64 MB, callers that wait for each
// append (a few entries per commit) got about a third fewer appends through (docs/performance.md).
constexpr int64_t kWalRestartBytes = int64_t{8} << 20;

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

// SQLITE_STATIC: SQLite does not copy the hash, so it must stay put until the statement is reset.
void bind_hash(sqlite3_stmt* s, int i, const Hash& h) {
  sqlite3_bind_blob(s, i, h.data(), static_cast<int>(h.size()), SQLITE_STATIC);
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

// A batch the writer has finished with, for the answerer: the receipts' leaf hashes when it was
// committed, else the error.
struct Written {
  std::vector<Pending> batch;
  uint64_t first = 0;
  std::vector<Hash> leaves;
  Status failure;
};

constexpr size_t kMaxWritten = 2;  // batches waiting for the answerer; beyond this the writer waits
constexpr size_t kAnswerOnWriter = 64;  // batches up to this size may be answered by the writer

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
    {
      std::lock_guard lock(written_mutex_);
      answerer_stopping_ = true;
    }
    written_cv_.notify_all();
    if (answerer_.joinable()) answerer_.join();  // after answering everything written
    {
      std::lock_guard lock(checkpoint_mutex_);
      checkpoint_stopping_ = true;
    }
    checkpoint_cv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
    sqlite3_close_v2(checkpoint_db_);
    // The statements are finalized after this body runs (members); close_v2 waits for them. The
    // writer's connection closes last and so copies the WAL back and removes it.
    sqlite3_close_v2(read_db_);
    sqlite3_close_v2(db_);
  }

  Impl(SigningKey key, std::string name, const Clock& clock)
      : key_(std::move(key)), name_(std::move(name)), clock_(clock) {}

  Status open(const std::string& path) {
    // NOMUTEX on every connection: each is used by one thread at a time (the writer's by the
    // writer thread after open, the reader's under read_mutex_db_, the checkpointer's by its
    // thread), so SQLite's own per-call mutex would only add cost.
    configure_sqlite();
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      return sqlite_error(db_, "opening the log " + path);
    sqlite3_busy_timeout(db_, 5000);
    // page_size first: it only takes effect on a file that has no content yet.
    const char* schema =
        "PRAGMA page_size=16384;"
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
    if (sqlite3_open_v2(path.c_str(), &read_db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
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
    if (Status s = open_checkpointer(path); !s) return s;
    answerer_ = std::thread([this] { answer_loop(); });
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

  void append_async(const Entry& e, AppendCallback done, std::chrono::milliseconds may_wait) {
    Result<PreparedEntry> prepared = prepare(e);
    if (!prepared) return done(prepared.status());
    append_async(std::move(*prepared), std::move(done), may_wait);
  }

  void append_async(PreparedEntry prepared, AppendCallback done,
                    std::chrono::milliseconds may_wait) {
    if (prepared.text.empty() || prepared.seq_at == 0 || prepared.seq_at > prepared.text.size())
      return done(Status::invalid_argument("the entry was not prepared (provenance::prepare)"));
    bool wake = false;
    {
      std::unique_lock lock(queue_mutex_);
      space_cv_.wait(lock, [this] { return queue_.size() < kMaxQueued || stopping_; });
      if (stopping_) {
        lock.unlock();
        return done(Status::failed_precondition("the log is closing"));
      }
      // Wake the writer only when this entry changes what it waits for: an empty queue, an
      // earlier deadline, a full batch.
      const auto by = std::chrono::steady_clock::now() +
                      std::min<std::chrono::milliseconds>(may_wait, kMaxMayWait);
      wake = queue_.empty() || by < write_by_ || queue_.size() + 1 >= kMaxBatch;
      queue_.push_back(Pending{std::move(prepared), std::move(done)});
      write_by_ = std::min(write_by_, by);
    }
    if (wake) queue_cv_.notify_one();
  }

  Result<Receipt> append(const Entry& e) {
    std::promise<Result<Receipt>> promise;
    auto result = promise.get_future();
    append_async(e, [&promise](Result<Receipt> r) { promise.set_value(std::move(r)); }, {});
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

  // The checkpointer's connection and thread; the writer's connection stops checkpointing.
  Status open_checkpointer(const std::string& path) {
    Statement page_size;
    if (Status s = page_size.prepare(db_, "PRAGMA page_size"); !s) return s;
    if (sqlite3_step(page_size.get()) != SQLITE_ROW)
      return sqlite_error(db_, "reading the log's page size");
    const int64_t page = std::max<int64_t>(sqlite3_column_int64(page_size.get(), 0), 512);
    checkpoint_frames_ = kWalCheckpointBytes / page;
    restart_frames_ = kWalRestartBytes / page;
    const std::string limit = "PRAGMA journal_size_limit=" + std::to_string(kWalRestartBytes) + ";";
    if (sqlite3_exec(db_, limit.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
      return sqlite_error(db_, "limiting the log's WAL");
    // A WAL hook replaces SQLite's auto-checkpoint: it only notes the WAL's size after each
    // commit, and the writer hands the checkpoint to the checkpointer (write_batch).
    sqlite3_wal_hook(
        db_,
        [](void* impl, sqlite3*, const char*, int frames) {
          static_cast<Impl*>(impl)->wal_frames_ = frames;
          return SQLITE_OK;
        },
        this);
    if (sqlite3_open_v2(path.c_str(), &checkpoint_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      return sqlite_error(checkpoint_db_, "opening the log " + path + " for checkpoints");
    // The checkpoint syncs the WAL before copying and the database file after, as the writer's
    // auto-checkpoint did.
    if (sqlite3_exec(checkpoint_db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr) !=
        SQLITE_OK)
      return sqlite_error(checkpoint_db_, "preparing the log's checkpoints");
    checkpointer_ = std::thread([this] { checkpoint_loop(); });
    return Status::ok();
  }

  // Runs a PASSIVE checkpoint for each request (requests that arrive during one are served by the
  // next). PASSIVE copies what no reader still needs and never waits for the writer or readers.
  // A checkpoint that fails (SQLITE_BUSY when another connection is checkpointing, an I/O error)
  // loses nothing: the WAL still holds every commit and the next request tries again.
  void checkpoint_loop() {
    std::unique_lock lock(checkpoint_mutex_);
    for (;;) {
      checkpoint_cv_.wait(lock, [this] {
        return checkpoint_stopping_ || checkpoint_requested_ > checkpoint_done_;
      });
      if (checkpoint_stopping_) return;
      const uint64_t request = checkpoint_requested_;
      lock.unlock();
      sqlite3_wal_checkpoint_v2(checkpoint_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                nullptr);
      lock.lock();
      checkpoint_done_ = request;
      checkpoint_cv_.notify_all();
    }
  }

  // Writer thread, after a commit: asks for a checkpoint each time the WAL has grown by
  // kWalCheckpointBytes since the last request, as SQLite's auto-checkpoint would. Not after every
  // commit: each checkpoint syncs the database file, and with small commits (callers that wait for
  // each append) that would be one more fsync per commit.
  void after_commit() {
    if (wal_frames_ < requested_at_frames_) requested_at_frames_ = 0;  // the WAL started over
    if (wal_frames_ - requested_at_frames_ >= checkpoint_frames_) request_checkpoint();
  }

  void request_checkpoint() {
    requested_at_frames_ = wal_frames_;
    {
      std::lock_guard lock(checkpoint_mutex_);
      ++checkpoint_requested_;
    }
    checkpoint_cv_.notify_all();
  }

  // Writer thread, before a transaction: once the WAL is large, waits until everything committed
  // is copied back, so that this transaction starts the WAL over.
  void before_transaction() {
    if (wal_frames_ < restart_frames_) return;
    if (requested_at_frames_ != wal_frames_)
      request_checkpoint();  // one that covers the last commit
    std::unique_lock lock(checkpoint_mutex_);
    checkpoint_cv_.wait(lock, [this] { return checkpoint_done_ >= checkpoint_requested_; });
  }

  void write_loop() {
    for (;;) {
      std::vector<Pending> batch;
      {
        std::unique_lock lock(queue_mutex_);
        queue_cv_.wait(lock, [this] { return !queue_.empty() || stopping_; });
        // Entries that may wait for company do, until the first of them must be written.
        while (!stopping_ && queue_.size() < kMaxBatch &&
               std::chrono::steady_clock::now() < write_by_)
          queue_cv_.wait_until(lock, write_by_);
        if (queue_.empty()) return;  // stopping, and everything was written
        while (!queue_.empty() && batch.size() < kMaxBatch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        write_by_ = queue_.empty() ? std::chrono::steady_clock::time_point::max()
                                   : std::chrono::steady_clock::now();
      }
      space_cv_.notify_all();
      before_transaction();
      write_batch(batch);
    }
  }

  // Hands a written batch to the answerer, waiting while it is kMaxWritten batches behind. A small
  // batch (callers that wait for each append) is answered here when the answerer has nothing to
  // do, which keeps the order: waking the answerer would cost those callers more than their
  // callbacks cost the writer.
  void hand_over(Written written) {
    {
      std::unique_lock lock(written_mutex_);
      if (written.batch.size() <= kAnswerOnWriter && written_.empty() && !answering_) {
        lock.unlock();
        return answer(written);
      }
      written_cv_.wait(lock, [this] { return written_.size() < kMaxWritten; });
      written_.push_back(std::move(written));
    }
    written_cv_.notify_all();
  }

  // Answers the callers of each written batch, in order, until the log closes and every batch
  // is answered. The batch (the entries' bytes, the callbacks) is freed here too.
  void answer_loop() {
    std::unique_lock lock(written_mutex_);
    for (;;) {
      written_cv_.wait(lock, [this] { return !written_.empty() || answerer_stopping_; });
      if (written_.empty()) return;  // stopping, and everything was answered
      Written w = std::move(written_.front());
      written_.pop_front();
      answering_ = true;
      lock.unlock();
      written_cv_.notify_all();
      answer(w);
      w = Written{};
      lock.lock();
      answering_ = false;
    }
  }

  static void answer(Written& w) {
    for (size_t i = 0; i < w.batch.size(); ++i) {
      if (w.failure.is_ok())
        w.batch[i].done(Receipt{w.first + i, w.leaves[i]});
      else
        w.batch[i].done(w.failure);
    }
  }

  // Writes one batch in one transaction, then hands it to the answerer.
  void write_batch(std::vector<Pending>& batch) {
    std::vector<Hash> frontier = frontier_;
    const uint64_t first = size_.load();
    uint64_t n = first;
    Status failure;
    std::vector<Hash> leaves;
    leaves.reserve(batch.size());
    std::string bytes;  // one buffer for every entry's canonical bytes
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
      failure = sqlite_error(db_, "starting a transaction");
    for (size_t i = 0; i < batch.size() && failure.is_ok(); ++i, ++n) {
      batch[i].entry.with_seq(n, bytes);
      leaves.push_back(leaf_hash(bytes));
      failure = insert(n, bytes, leaves.back(), frontier);
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
      return hand_over(Written{std::move(batch), first, {}, std::move(failure)});
    }
    frontier_ = std::move(frontier);
    size_.store(n);
    after_commit();
    hand_over(Written{std::move(batch), first, std::move(leaves), Status::ok()});
  }

  // Inserts leaf `index` with the perfect subtrees it completes; updates `frontier`.
  Status insert(uint64_t index, const std::string& body, const Hash& leaf,
                std::vector<Hash>& frontier) {
    std::array<Hash, 64> subtrees;  // level 1 upwards; at most one per level of a 64-bit index
    size_t completed = 0;
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
      subtrees[completed++] = parent;
      current = parent;
    }
    // Every parameter is bound again below: a reset without clearing the bindings is enough.
    sqlite3_reset(insert_entry_.get());
    bind_u64(insert_entry_.get(), 1, index);
    sqlite3_bind_text(insert_entry_.get(), 2, body.data(), static_cast<int>(body.size()),
                      SQLITE_STATIC);
    bind_hash(insert_entry_.get(), 3, leaf);
    sqlite3_bind_blob(insert_entry_.get(), 4, subtrees.data(),
                      static_cast<int>(completed * sizeof(Hash)), SQLITE_STATIC);
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

  // WAL checkpoints (see the top of this file).
  sqlite3* checkpoint_db_ = nullptr;                    // the checkpointer thread only (after open)
  int64_t checkpoint_frames_ = 0, restart_frames_ = 0;  // constant after open
  // Writer thread only: the WAL's frames after the last commit, and when a checkpoint was last
  // asked for.
  int64_t wal_frames_ = 0, requested_at_frames_ = 0;
  std::mutex checkpoint_mutex_;  // guards the three below
  std::condition_variable checkpoint_cv_;
  uint64_t checkpoint_requested_ = 0, checkpoint_done_ = 0;
  bool checkpoint_stopping_ = false;
  std::thread checkpointer_;

  mutable std::mutex read_mutex_;  // one proof at a time reports read errors through read_error_
  mutable Status read_error_;

  std::mutex written_mutex_;  // guards the three below
  std::condition_variable written_cv_;
  std::deque<Written> written_;
  bool answering_ = false;  // the answerer is answering a batch it took from written_
  bool answerer_stopping_ = false;
  std::thread answerer_;

  std::mutex queue_mutex_;  // guards queue_ and stopping_
  std::condition_variable queue_cv_, space_cv_;
  std::deque<Pending> queue_;  // by value: one allocation less per append
  bool stopping_ = false;
  // When the oldest queued entry must be written (max: the queue is empty).
  std::chrono::steady_clock::time_point write_by_ = std::chrono::steady_clock::time_point::max();
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

void Log::append_async(const Entry& e, AppendCallback done, std::chrono::milliseconds may_wait) {
  impl_->append_async(e, std::move(done), may_wait);
}

void Log::append_async(PreparedEntry e, AppendCallback done, std::chrono::milliseconds may_wait) {
  impl_->append_async(std::move(e), std::move(done), may_wait);
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
