// The embedded store: one SQLite file (WAL, synchronous=FULL).
//
//   datasets(id TEXT PRIMARY KEY, seq INTEGER UNIQUE, provider TEXT, body TEXT,
//            withdrawn TEXT NULL)
//   participants(id TEXT PRIMARY KEY, identity TEXT, first_seen TEXT, last_seen TEXT)
//   negotiations(provider_pid TEXT PRIMARY KEY, consumer, consumer_pid, ... ,
//                UNIQUE(consumer, consumer_pid))
//   agreements(id TEXT PRIMARY KEY, provider_pid, ..., retired INTEGER, ...)
//   transfers(provider_pid TEXT PRIMARY KEY, consumer_pid, consumer, ..., agreement_id, ...,
//             UNIQUE(consumer, consumer_pid))
//   encryption_keys(participant TEXT PRIMARY KEY, binding_text, signature, certificate_pem,
//                   created)
//   events(id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT, body TEXT)
//   log_outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT)
// AUTOINCREMENT: an event id is never reused, even after the newest events were acknowledged
// and deleted, so a connector that remembers handled ids never mistakes a new event for an old
// one.
//
// Group commit. A transition (negotiation + agreement + events + log entries) is what a caller
// waits for, and each must be durable before its reply goes out; one fsync each would cap the
// broker at the disk's fsync rate (docs/performance.md, "Contract negotiation"). So commit()
// queues the transition and waits; one committer thread takes everything queued, writes it in
// one transaction (each transition inside its own SAVEPOINT, so a failing one fails alone),
// commits once, hands the events it wrote to the event sink (broker/events.h), and wakes the
// callers. Under load many transitions share one fsync; alone, a transition waits for exactly one.
//
// Acknowledged events and outbox entries already in the log are deleted by the same committer,
// in its next transaction; their callers do not wait. Until then they are hidden from reads
// (acked_, dropped_), so no one sees them again. A crash before that deletion loses nothing:
// the event is sent once more (connectors drop ids they handled), the entry is found already in
// the log at start-up (Negotiations::recover).
//
// Reads go through a few read-only connections of their own (WAL: readers see the last commit
// and never wait for the writer). Statements are prepared once per connection and reused.
#include <sqlite3.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "broker/store.h"
#include "provenance/sqlite_setup.h"

namespace dsx::broker {
namespace {

// One SQLite connection and its prepared statements. Not thread-safe: its owner locks.
class Connection {
 public:
  Connection() = default;
  ~Connection() {
    for (auto& [sql, stmt] : cache_)
      sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // NOMUTEX: a Connection is used by one thread at a time (its owner locks), so SQLite's own
  // mutex on every call would only add cost.
  Status open(const std::string& path) {
    provenance::configure_sqlite();
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      return error("opening " + path);
    sqlite3_busy_timeout(db_, 5000);
    return Status::ok();
  }

  // A cached statement, reset and unbound when the handle goes.
  class Stmt {
   public:
    explicit Stmt(sqlite3_stmt* s) : stmt_(s) {}
    ~Stmt() {
      if (!stmt_) return;
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    sqlite3_stmt* get() const { return stmt_; }
    void text(int i, const std::string& v) {
      sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    void int64(int i, uint64_t v) { sqlite3_bind_int64(stmt_, i, static_cast<sqlite3_int64>(v)); }
    int step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_ERROR; }
    std::string column(int i) const {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
      return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : "";
    }
    uint64_t column_u64(int i) const {
      return static_cast<uint64_t>(sqlite3_column_int64(stmt_, i));
    }

   private:
    sqlite3_stmt* stmt_;
  };

  // A statement handle that fails every step when `sql` does not prepare (error() says why).
  Stmt prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) !=
          SQLITE_OK)
        return Stmt(nullptr);
      it = cache_.emplace(sql, s).first;
    }
    return Stmt(it->second);
  }

  // One statement, prepared once (the committer's BEGIN, SAVEPOINT, COMMIT... run thousands of
  // times a second; sqlite3_exec would compile each again).
  Status run(const std::string& sql) {
    Stmt s = prepare(sql);
    const int rc = s.step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return error(sql);
    return Status::ok();
  }

  Status exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return error(sql);
    return Status::ok();
  }
  Status error(const std::string& what) const {
    return Status::internal("broker store: " + what + ": " +
                            (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  sqlite3* db() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class SqliteStore final : public Store {
 public:
  ~SqliteStore() override {
    {
      std::lock_guard lock(queue_mutex_);
      closing_ = true;
    }
    work_.notify_all();
    if (committer_.joinable()) committer_.join();
    {
      std::lock_guard lock(checkpoint_mutex_);
      checkpoint_stop_ = true;
    }
    checkpoint_cv_.notify_all();
    if (checkpointer_.joinable()) checkpointer_.join();
  }

  Status open(const std::string& path) {
    if (Status s = writer_.open(path); !s) return s;
    Status schema = writer_.exec(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=0;"
        "PRAGMA temp_store=MEMORY;"
        "PRAGMA journal_size_limit=67108864;"
        // Debian builds SQLite with SECURE_DELETE: every page freed by a deletion (acknowledged
        // events, outbox entries already in the log) was zeroed and written to the WAL, five
        // frames of zeros in each commit under load. FAST zeroes deleted content only where
        // that costs no extra write. What is deleted here keeps nothing secret: events repeat
        // the state and messages the negotiation and transfer rows keep, and outbox entries
        // are in the provenance log.
        "PRAGMA secure_delete=FAST;"
        "CREATE TABLE IF NOT EXISTS datasets(id TEXT PRIMARY KEY, seq INTEGER UNIQUE NOT NULL,"
        "  provider TEXT NOT NULL, body TEXT NOT NULL, withdrawn TEXT);"
        "CREATE TABLE IF NOT EXISTS participants(id TEXT PRIMARY KEY, identity TEXT NOT NULL,"
        "  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS negotiations(provider_pid TEXT PRIMARY KEY,"
        "  consumer_pid TEXT NOT NULL, consumer TEXT NOT NULL, provider TEXT NOT NULL,"
        "  dataset TEXT NOT NULL, offer TEXT NOT NULL, catalog_offer TEXT NOT NULL,"
        "  purpose TEXT NOT NULL, context TEXT NOT NULL, state TEXT NOT NULL,"
        "  agreement_id TEXT NOT NULL, reason TEXT NOT NULL, last_message TEXT NOT NULL,"
        "  last_sender TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,"
        "  UNIQUE(consumer, consumer_pid));"
        "CREATE INDEX IF NOT EXISTS negotiations_provider ON negotiations(provider);"
        "CREATE TABLE IF NOT EXISTS agreements(id TEXT PRIMARY KEY, provider_pid TEXT NOT NULL,"
        "  dataset TEXT NOT NULL, provider TEXT NOT NULL, consumer TEXT NOT NULL,"
        "  body TEXT NOT NULL, sha256 TEXT NOT NULL, signature TEXT NOT NULL,"
        "  created TEXT NOT NULL, retired INTEGER NOT NULL DEFAULT 0,"
        "  retired_reason TEXT NOT NULL DEFAULT '', retired_at TEXT NOT NULL DEFAULT '');"
        "CREATE TABLE IF NOT EXISTS transfers(provider_pid TEXT PRIMARY KEY,"
        "  consumer_pid TEXT NOT NULL, consumer TEXT NOT NULL, provider TEXT NOT NULL,"
        "  agreement_id TEXT NOT NULL, dataset TEXT NOT NULL, state TEXT NOT NULL,"
        "  reason TEXT NOT NULL, last_message TEXT NOT NULL, last_sender TEXT NOT NULL,"
        "  from_chunk INTEGER NOT NULL, manifest TEXT NOT NULL, receipt TEXT NOT NULL,"
        "  relayed_sha256 TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,"
        "  UNIQUE(consumer, consumer_pid));"
        "CREATE INDEX IF NOT EXISTS transfers_provider ON transfers(provider);"
        "CREATE INDEX IF NOT EXISTS transfers_agreement ON transfers(agreement_id, state);"
        "CREATE INDEX IF NOT EXISTS transfers_state ON transfers(state, updated);"
        "CREATE TABLE IF NOT EXISTS encryption_keys(participant TEXT PRIMARY KEY,"
        "  binding_text TEXT NOT NULL, signature TEXT NOT NULL, certificate_pem TEXT NOT NULL,"
        "  created TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  recipient TEXT NOT NULL, body TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS events_recipient ON events(recipient, id);"
        "CREATE TABLE IF NOT EXISTS log_outbox(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  entry TEXT NOT NULL);");
    if (!schema) return schema;
    for (Reader& r : readers_) {
      if (Status s = r.conn.open(path); !s) return s;
      if (Status s = r.conn.exec("PRAGMA query_only=1"); !s) return s;
    }
    if (Status s = checkpoint_conn_.open(path); !s) return s;
    sqlite3_wal_hook(
        writer_.db(),
        [](void* self, sqlite3*, const char*, int frames) {
          static_cast<SqliteStore*>(self)->wal_frames_ = frames;
          return SQLITE_OK;
        },
        this);
    checkpointer_ = std::thread([this] { checkpoint_loop(); });
    committer_ = std::thread([this] { commit_loop(); });
    return Status::ok();
  }

  Result<uint64_t> put_dataset(const StoredDataset& d) override {
    std::lock_guard lock(write_mutex_);
    if (Status s = ready_to_write(); !s) return s;
    Connection& w = writer_;
    Connection::Stmt find = w.prepare("SELECT seq FROM datasets WHERE id = ?");
    find.text(1, d.id);
    if (find.step() == SQLITE_ROW) {
      const uint64_t seq = find.column_u64(0);
      Connection::Stmt update =
          w.prepare("UPDATE datasets SET body = ?, withdrawn = NULL WHERE id = ?");
      update.text(1, d.body);
      update.text(2, d.id);
      if (update.step() != SQLITE_DONE) return w.error("updating dataset " + d.id);
      return seq;
    }
    Connection::Stmt insert = w.prepare(
        "INSERT INTO datasets(id, seq, provider, body) VALUES(?, (SELECT COALESCE(MAX(seq), "
        "0) + 1 FROM datasets), ?, ?) RETURNING seq");
    insert.text(1, d.id);
    insert.text(2, d.provider);
    insert.text(3, d.body);
    if (insert.step() != SQLITE_ROW) return w.error("inserting dataset " + d.id);
    return insert.column_u64(0);
  }

  Status withdraw_dataset(const std::string& id, Instant when) override {
    std::lock_guard lock(write_mutex_);
    if (Status s = ready_to_write(); !s) return s;
    Connection::Stmt s =
        writer_.prepare("UPDATE datasets SET withdrawn = ? WHERE id = ? AND withdrawn IS NULL");
    s.text(1, format_rfc3339(when));
    s.text(2, id);
    if (s.step() != SQLITE_DONE) return writer_.error("withdrawing dataset " + id);
    if (sqlite3_changes(writer_.db()) == 0) return Status::not_found("no dataset " + id);
    return Status::ok();
  }

  Result<std::vector<StoredDataset>> active_datasets() override {
    auto r = reader();
    Connection::Stmt s = r->prepare(
        "SELECT id, seq, provider, body FROM datasets WHERE withdrawn IS NULL ORDER BY seq");
    std::vector<StoredDataset> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back({s.column(0), s.column(2), s.column(3), s.column_u64(1)});
    if (rc != SQLITE_DONE) return r->error("reading datasets");
    return out;
  }

  Status participant_seen(const certs::Identity& who, Instant when) override {
    std::lock_guard lock(write_mutex_);
    if (Status s = ready_to_write(); !s) return s;
    Connection::Stmt s = writer_.prepare(
        "INSERT INTO participants(id, identity, first_seen, last_seen) VALUES(?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET identity = excluded.identity, "
        "last_seen = excluded.last_seen");
    const std::string t = format_rfc3339(when);
    s.text(1, who.participant_id);
    s.text(2, certs::to_json(who).dump());
    s.text(3, t);
    s.text(4, t);
    if (s.step() != SQLITE_DONE)
      return writer_.error("recording participant " + who.participant_id);
    return Status::ok();
  }

  Result<std::optional<StoredNegotiation>> negotiation(const std::string& pid) override {
    auto r = reader();
    return one_negotiation(*r, "provider_pid = ?", {pid});
  }

  Result<std::optional<StoredNegotiation>> negotiation_by_consumer_pid(
      const std::string& consumer, const std::string& consumer_pid) override {
    auto r = reader();
    return one_negotiation(*r, "consumer = ? AND consumer_pid = ?", {consumer, consumer_pid});
  }

  Result<std::vector<StoredNegotiation>> negotiations_of(const std::string& participant) override {
    auto r = reader();
    return negotiations_where(
        *r, "consumer = ?1 OR provider = ?1 ORDER BY created DESC, rowid DESC", {participant});
  }

  Result<std::vector<StoredNegotiation>> negotiations_idle_since(Instant before) override {
    auto r = reader();
    // RFC 3339 UTC text with a fixed form sorts as time does.
    return negotiations_where(
        *r, "state NOT IN ('FINALIZED', 'TERMINATED') AND updated < ? ORDER BY updated",
        {format_rfc3339(before)});
  }

  Result<std::optional<StoredAgreement>> agreement(const std::string& id) override {
    auto r = reader();
    auto all = agreements_where(*r, "id = ?", {id});
    if (!all) return all.status();
    if (all->empty()) return std::optional<StoredAgreement>();
    return std::optional<StoredAgreement>(std::move(all->front()));
  }

  Result<std::vector<StoredAgreement>> agreements_of(const std::string& participant) override {
    auto r = reader();
    return agreements_where(*r, "consumer = ?1 OR provider = ?1 ORDER BY created DESC, rowid DESC",
                            {participant});
  }

  Result<std::optional<StoredTransfer>> transfer(const std::string& pid) override {
    auto r = reader();
    return one_transfer(*r, "provider_pid = ?", {pid});
  }

  Result<std::optional<StoredTransfer>> transfer_by_consumer_pid(
      const std::string& consumer, const std::string& consumer_pid) override {
    auto r = reader();
    return one_transfer(*r, "consumer = ? AND consumer_pid = ?", {consumer, consumer_pid});
  }

  Result<std::vector<StoredTransfer>> transfers_of(const std::string& participant) override {
    auto r = reader();
    return transfers_where(*r, "consumer = ?1 OR provider = ?1 ORDER BY created DESC, rowid DESC",
                           {participant});
  }

  Result<std::vector<StoredTransfer>> transfers_in_state(const std::string& state) override {
    auto r = reader();
    return transfers_where(*r, "state = ? ORDER BY updated", {state});
  }

  Result<uint64_t> count_completed(const std::string& agreement_id) override {
    auto r = reader();
    Connection::Stmt s =
        r->prepare("SELECT COUNT(*) FROM transfers WHERE agreement_id = ? AND state = 'COMPLETED'");
    s.text(1, agreement_id);
    if (s.step() != SQLITE_ROW) return r->error("counting transfers of " + agreement_id);
    return s.column_u64(0);
  }

  Result<std::optional<StoredEncryptionKey>> encryption_key(
      const std::string& participant) override {
    auto r = reader();
    Connection::Stmt s = r->prepare(
        "SELECT participant, binding_text, signature, certificate_pem, created "
        "FROM encryption_keys WHERE participant = ?");
    s.text(1, participant);
    const int rc = s.step();
    if (rc == SQLITE_DONE) return std::optional<StoredEncryptionKey>();
    if (rc != SQLITE_ROW) return r->error("reading the encryption key of " + participant);
    return std::optional<StoredEncryptionKey>(StoredEncryptionKey{
        s.column(0), s.column(1), s.column(2), s.column(3), instant(s.column(4))});
  }

  Result<std::vector<uint64_t>> commit(const Transition& t) override {
    Waiter w{&t, std::nullopt, {}};
    std::unique_lock lock(queue_mutex_);
    if (closing_) return Status::failed_precondition("broker store: closing");
    queue_.push_back(&w);
    work_.notify_one();
    w.done.wait(lock, [&] { return w.result.has_value(); });
    return std::move(*w.result);
  }

  Status log_entry_done(uint64_t id) override {
    std::lock_guard lock(queue_mutex_);
    if (dropped_.insert(id).second) queue_deletion(drop_entries_, id);
    return Status::ok();
  }

  Result<std::vector<PendingLogEntry>> pending_log_entries() override {
    std::vector<PendingLogEntry> out;
    {
      auto r = reader();
      Connection::Stmt s = r->prepare("SELECT id, entry FROM log_outbox ORDER BY id");
      int rc;
      while ((rc = s.step()) == SQLITE_ROW)
        out.push_back({s.column_u64(0), s.column(1)});
      if (rc != SQLITE_DONE) return r->error("reading the log outbox");
    }
    std::lock_guard lock(queue_mutex_);
    std::erase_if(out, [&](const PendingLogEntry& e) { return dropped_.count(e.id) != 0; });
    return out;
  }

  Result<std::vector<StoredEvent>> events_for(const std::string& recipient, uint64_t after,
                                              size_t limit) override {
    // `limit` events that are not acknowledged: a shorter answer means there are no more, which
    // is how a channel knows it caught up. Acknowledged rows whose deletion has not committed yet
    // are skipped as they come (a snapshot of acked_: one acknowledged meanwhile is sent again,
    // which connectors ignore).
    std::unordered_set<uint64_t> acked;
    {
      std::lock_guard lock(queue_mutex_);
      acked = acked_;
    }
    std::vector<StoredEvent> out;
    auto r = reader();
    Connection::Stmt s =
        r->prepare("SELECT id, body FROM events WHERE recipient = ? AND id > ? ORDER BY id");
    s.text(1, recipient);
    s.int64(2, after);
    int rc = SQLITE_DONE;
    while (out.size() < limit && (rc = s.step()) == SQLITE_ROW)
      if (!acked.count(s.column_u64(0))) out.push_back({s.column_u64(0), recipient, s.column(1)});
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return r->error("reading events");
    return out;
  }

  Result<bool> ack_event(const std::string& recipient, uint64_t id) override {
    {
      auto r = reader();
      Connection::Stmt s = r->prepare("SELECT 1 FROM events WHERE id = ? AND recipient = ?");
      s.int64(1, id);
      s.text(2, recipient);
      const int rc = s.step();
      if (rc == SQLITE_DONE) return false;
      if (rc != SQLITE_ROW) return r->error("acknowledging event");
    }
    return drop(id);
  }

  void drop_delivered_event(uint64_t id) override { (void)drop(id); }

  void set_event_sink(EventSink sink) override {
    std::lock_guard lock(sink_mutex_);
    sink_ = std::move(sink);
  }

 private:
  // Hides an acknowledged event and queues its deletion; false when it already was.
  bool drop(uint64_t id) {
    std::lock_guard lock(queue_mutex_);
    if (!acked_.insert(id).second) return false;
    queue_deletion(drop_events_, id);
    return true;
  }

  // With queue_mutex_ held. Only the first deletion since the last batch wakes the committer:
  // it then waits kLazyDeletes for a transition by itself, and the deletions after it would
  // each wake it for nothing (six log entries and four acknowledgements per negotiation).
  void queue_deletion(std::vector<uint64_t>& list, uint64_t id) {
    const bool first = drop_entries_.empty() && drop_events_.empty();
    list.push_back(id);
    if (first) work_.notify_one();
  }

  // A transition waiting in commit(). The committer wakes each waiter of its batch alone: one
  // condition variable for all of them woke every waiting worker at every commit, most of them
  // to find their transition still queued.
  struct Waiter {
    const Transition* transition;
    std::optional<Result<std::vector<uint64_t>>> result;  // set by the committer
    std::condition_variable done;                         // with queue_mutex_
  };

  // A read connection, locked for as long as the lease lives.
  struct Reader {
    std::mutex mutex;
    Connection conn;
  };
  class Lease {
   public:
    explicit Lease(Reader& r) : lock_(r.mutex), conn_(r.conn) {}
    Connection* operator->() const { return &conn_; }
    Connection& operator*() const { return conn_; }

   private:
    std::unique_lock<std::mutex> lock_;
    Connection& conn_;
  };
  // A free reader if there is one, else the next in turn.
  Lease reader() {
    for (Reader& r : readers_) {
      std::unique_lock lock(r.mutex, std::try_to_lock);
      if (lock.owns_lock()) {
        lock.unlock();  // Lease locks it again; another thread may win it meanwhile: fine
        return Lease(r);
      }
    }
    return Lease(readers_[next_reader_.fetch_add(1) % readers_.size()]);
  }

  // The committer thread: everything queued, in one transaction, until closing and drained.
  // Deletions alone wait up to kLazyDeletes for a transition to ride with, then go without an
  // fsync of their own (synchronous=NORMAL): losing them in a crash costs a resend, nothing more.
  void commit_loop() {
    for (;;) {
      std::vector<Waiter*> batch;
      std::vector<uint64_t> entries, events;
      {
        std::unique_lock lock(queue_mutex_);
        const auto deletions = [&] { return !drop_entries_.empty() || !drop_events_.empty(); };
        work_.wait(lock, [&] { return closing_ || !queue_.empty() || deletions(); });
        if (queue_.empty() && !closing_)
          work_.wait_for(lock, kLazyDeletes, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty() && !deletions()) return;  // closing, and drained
        batch.swap(queue_);
        entries.swap(drop_entries_);
        events.swap(drop_events_);
      }
      const Status committed = write_batch(batch, entries, events);
      after_commit();
      std::lock_guard lock(queue_mutex_);
      if (committed) {
        for (uint64_t id : entries)
          dropped_.erase(id);
        for (uint64_t id : events)
          acked_.erase(id);
      } else {  // the deletions come again with the next batch
        drop_entries_.insert(drop_entries_.end(), entries.begin(), entries.end());
        drop_events_.insert(drop_events_.end(), events.begin(), events.end());
      }
    }
  }

  // Checkpoints. SQLite's auto-checkpoint would copy the WAL back into the database inside the
  // committer's commits, holding every waiting transition; it is off, and the checkpointer thread
  // does it on a connection of its own (PASSIVE: never blocks the committer) each time the WAL
  // grew by kCheckpointFrames. The WAL starts over only when a write begins with all of it
  // copied back, which a steady load never waits for: at kRestartFrames the committer restarts
  // it itself, a pause of one checkpoint. RESTART, not TRUNCATE: the file keeps its size, and
  // the next commits overwrite it in place; a commit that grows the file makes its fdatasync
  // write the inode too (0.39 ms instead of 0.15 ms for 8 KB on this machine's disk, measured
  // with a Python loop of pwrite + fdatasync), and every transition waits for one.
  // journal_size_limit lies above kRestartFrames' size, so SQLite does not shorten it either.
  void after_commit() {
    const int frames = wal_frames_;
    if (frames >= kRestartFrames) {
      std::lock_guard lock(write_mutex_);
      sqlite3_wal_checkpoint_v2(writer_.db(), nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
      wal_frames_ = 0;
      last_checkpoint_request_ = 0;
      return;
    }
    if (frames - last_checkpoint_request_ < kCheckpointFrames) return;
    last_checkpoint_request_ = frames;
    {
      std::lock_guard lock(checkpoint_mutex_);
      checkpoint_wanted_ = true;
    }
    checkpoint_cv_.notify_one();
  }

  void checkpoint_loop() {
    std::unique_lock lock(checkpoint_mutex_);
    for (;;) {
      checkpoint_cv_.wait(lock, [this] { return checkpoint_stop_ || checkpoint_wanted_; });
      if (checkpoint_stop_) return;
      checkpoint_wanted_ = false;
      lock.unlock();
      sqlite3_wal_checkpoint_v2(checkpoint_conn_.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                nullptr);
      lock.lock();
    }
  }

  // With write_mutex_ held, before any write on writer_: no transaction left open (a batch whose
  // COMMIT and ROLLBACK both failed would leave one, and every later write would join it
  // uncommitted), and synchronous back at FULL after a deletions-only batch, so that nothing a
  // reply confirms commits without its fsync. A failure fails the write, not the store: the
  // next one tries again.
  Status ready_to_write() {
    if (!sqlite3_get_autocommit(writer_.db())) {
      if (Status s = writer_.exec("ROLLBACK"); !s) return s;
    }
    if (relaxed_) {
      if (Status s = writer_.exec("PRAGMA synchronous=FULL"); !s) return s;
      relaxed_ = false;
    }
    return Status::ok();
  }

  // Writes and commits one batch; sets every waiter's result.
  Status write_batch(std::vector<Waiter*>& batch, const std::vector<uint64_t>& entries,
                     const std::vector<uint64_t>& events) {
    std::vector<Result<Written>> results;
    Status committed = Status::ok();
    {
      std::lock_guard lock(write_mutex_);
      const bool durable = !batch.empty();
      committed = ready_to_write();  // and FULL is back, from a deletions-only batch before
      if (committed && !durable) {   // FULL comes back with the next write (ready_to_write)
        relaxed_ = true;
        committed = writer_.exec("PRAGMA synchronous=NORMAL");
      }
      if (committed) committed = writer_.run("BEGIN IMMEDIATE");
      if (committed) {
        for (Waiter* w : batch) {
          (void)writer_.run("SAVEPOINT transition");
          results.push_back(write_transition(*w->transition));
          if (!results.back()) (void)writer_.run("ROLLBACK TO transition");
          (void)writer_.run("RELEASE transition");
        }
        for (uint64_t id : entries) {
          Connection::Stmt s = writer_.prepare("DELETE FROM log_outbox WHERE id = ?");
          s.int64(1, id);
          if (s.step() != SQLITE_DONE) committed = writer_.error("clearing the log outbox");
        }
        for (uint64_t id : events) {
          Connection::Stmt s = writer_.prepare("DELETE FROM events WHERE id = ?");
          s.int64(1, id);
          if (s.step() != SQLITE_DONE) committed = writer_.error("dropping an event");
        }
        if (committed) committed = writer_.run("COMMIT");
        if (!committed) (void)writer_.run("ROLLBACK");
      }
    }
    if (committed) {
      std::vector<StoredEvent> written;
      for (Result<Written>& r : results)
        if (r)
          for (StoredEvent& e : r->events)
            written.push_back(std::move(e));
      std::lock_guard lock(sink_mutex_);
      if (sink_ && !written.empty()) sink_(written);
    }
    std::lock_guard lock(queue_mutex_);
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!committed)
        batch[i]->result = committed;
      else if (!results[i])
        batch[i]->result = results[i].status();
      else
        batch[i]->result = std::move(results[i]->log_ids);
      // Under the lock that guards the result: once it is released, the waiter may see its
      // result, return, and take its condition variable with it.
      batch[i]->done.notify_one();
    }
    return committed;
  }

  static constexpr const char* kNegotiationColumns =
      "provider_pid, consumer_pid, consumer, provider, dataset, offer, catalog_offer, purpose, "
      "context, state, agreement_id, reason, last_message, last_sender, created, updated";
  static constexpr const char* kAgreementColumns =
      "id, provider_pid, dataset, provider, consumer, body, sha256, signature, created, retired, "
      "retired_reason, retired_at";

  static Instant instant(const std::string& text) {
    return parse_xsd_date_time(text).value_or(Instant());
  }

  static Result<std::vector<StoredNegotiation>> negotiations_where(
      Connection& conn, const std::string& where, const std::vector<std::string>& args) {
    const std::string sql =
        std::string("SELECT ") + kNegotiationColumns + " FROM negotiations WHERE " + where;
    Connection::Stmt s = conn.prepare(sql);
    for (size_t i = 0; i < args.size(); ++i)
      s.text(static_cast<int>(i + 1), args[i]);
    std::vector<StoredNegotiation> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      StoredNegotiation n;
      n.provider_pid = s.column(0);
      n.consumer_pid = s.column(1);
      n.consumer = s.column(2);
      n.provider = s.column(3);
      n.dataset = s.column(4);
      n.offer = s.column(5);
      n.catalog_offer = s.column(6);
      n.purpose = s.column(7);
      n.context = s.column(8);
      n.state = s.column(9);
      n.agreement_id = s.column(10);
      n.reason = s.column(11);
      n.last_message = s.column(12);
      n.last_sender = s.column(13);
      n.created = instant(s.column(14));
      n.updated = instant(s.column(15));
      out.push_back(std::move(n));
    }
    if (rc != SQLITE_DONE) return conn.error("reading negotiations");
    return out;
  }

  static Result<std::optional<StoredNegotiation>> one_negotiation(
      Connection& conn, const std::string& where, const std::vector<std::string>& args) {
    auto all = negotiations_where(conn, where, args);
    if (!all) return all.status();
    if (all->empty()) return std::optional<StoredNegotiation>();
    return std::optional<StoredNegotiation>(std::move(all->front()));
  }

  static constexpr const char* kTransferColumns =
      "provider_pid, consumer_pid, consumer, provider, agreement_id, dataset, state, reason, "
      "last_message, last_sender, manifest, receipt, relayed_sha256, from_chunk, created, updated";

  static Result<std::vector<StoredTransfer>> transfers_where(Connection& conn,
                                                             const std::string& where,
                                                             const std::vector<std::string>& args) {
    const std::string sql =
        std::string("SELECT ") + kTransferColumns + " FROM transfers WHERE " + where;
    Connection::Stmt s = conn.prepare(sql);
    for (size_t i = 0; i < args.size(); ++i)
      s.text(static_cast<int>(i + 1), args[i]);
    std::vector<StoredTransfer> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      StoredTransfer t;
      int i = 0;
      for (std::string* v : {&t.provider_pid, &t.consumer_pid, &t.consumer, &t.provider,
                             &t.agreement_id, &t.dataset, &t.state, &t.reason, &t.last_message,
                             &t.last_sender, &t.manifest, &t.receipt, &t.relayed_sha256})
        *v = s.column(i++);
      t.from_chunk = s.column_u64(i++);
      t.created = instant(s.column(i++));
      t.updated = instant(s.column(i++));
      out.push_back(std::move(t));
    }
    if (rc != SQLITE_DONE) return conn.error("reading transfers");
    return out;
  }

  static Result<std::optional<StoredTransfer>> one_transfer(Connection& conn,
                                                            const std::string& where,
                                                            const std::vector<std::string>& args) {
    auto all = transfers_where(conn, where, args);
    if (!all) return all.status();
    if (all->empty()) return std::optional<StoredTransfer>();
    return std::optional<StoredTransfer>(std::move(all->front()));
  }

  static Result<std::vector<StoredAgreement>> agreements_where(
      Connection& conn, const std::string& where, const std::vector<std::string>& args) {
    const std::string sql =
        std::string("SELECT ") + kAgreementColumns + " FROM agreements WHERE " + where;
    Connection::Stmt s = conn.prepare(sql);
    for (size_t i = 0; i < args.size(); ++i)
      s.text(static_cast<int>(i + 1), args[i]);
    std::vector<StoredAgreement> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      StoredAgreement a;
      a.id = s.column(0);
      a.provider_pid = s.column(1);
      a.dataset = s.column(2);
      a.provider = s.column(3);
      a.consumer = s.column(4);
      a.body = s.column(5);
      a.sha256 = s.column(6);
      a.signature = s.column(7);
      a.created = instant(s.column(8));
      a.retired = sqlite3_column_int(s.get(), 9) != 0;
      a.retired_reason = s.column(10);
      a.retired_at = instant(s.column(11));
      out.push_back(std::move(a));
    }
    if (rc != SQLITE_DONE) return conn.error("reading agreements");
    return out;
  }

  // "INSERT INTO table(columns) VALUES(?, ...) ON CONFLICT(key) DO UPDATE SET c = excluded.c"
  // for each of `changing`. A transition writes a row that usually exists already; the upsert
  // changes it where it lies and leaves the indexes of the columns it does not assign alone.
  // INSERT OR REPLACE deleted the row and inserted it again: a new rowid and every index entry
  // rewritten, each a page of its own in the WAL (ids are random), about 30 pages written per
  // negotiation (docs/performance.md, "Contract negotiation").
  static std::string upsert(const char* table, const char* columns, const char* key,
                            std::initializer_list<const char*> changing) {
    std::string sql = std::string("INSERT INTO ") + table + "(" + columns + ") VALUES(?";
    for (const char* c = columns; *c; ++c)
      if (*c == ',') sql += ", ?";
    sql += std::string(") ON CONFLICT(") + key + ") DO UPDATE SET ";
    const char* sep = "";
    for (const char* c : changing) {
      sql += std::string(sep) + c + " = excluded." + c;
      sep = ", ";
    }
    return sql;
  }

  // What write_transition wrote: the ids of its log entries, its events with their ids.
  struct Written {
    std::vector<uint64_t> log_ids;
    std::vector<StoredEvent> events;
  };

  // Inside the committer's transaction, with write_mutex_ held.
  Result<Written> write_transition(const Transition& t) {
    Written out;
    Connection& w = writer_;
    if (const StoredNegotiation* n = t.negotiation) {
      static const std::string sql =
          upsert("negotiations", kNegotiationColumns, "provider_pid",
                 {"dataset", "offer", "catalog_offer", "purpose", "context", "state",
                  "agreement_id", "reason", "last_message", "last_sender", "updated"});
      Connection::Stmt s = w.prepare(sql);
      int i = 0;
      for (const std::string* v :
           {&n->provider_pid, &n->consumer_pid, &n->consumer, &n->provider, &n->dataset, &n->offer,
            &n->catalog_offer, &n->purpose, &n->context, &n->state, &n->agreement_id, &n->reason,
            &n->last_message, &n->last_sender})
        s.text(++i, *v);
      s.text(++i, format_rfc3339(n->created));
      s.text(++i, format_rfc3339(n->updated));
      if (s.step() != SQLITE_DONE) return w.error("writing negotiation " + n->provider_pid);
    }
    if (const StoredAgreement* a = t.agreement) {
      static const std::string sql =
          upsert("agreements", kAgreementColumns, "id",
                 {"body", "sha256", "signature", "retired", "retired_reason", "retired_at"});
      Connection::Stmt s = w.prepare(sql);
      int i = 0;
      for (const std::string* v : {&a->id, &a->provider_pid, &a->dataset, &a->provider,
                                   &a->consumer, &a->body, &a->sha256, &a->signature})
        s.text(++i, *v);
      s.text(++i, format_rfc3339(a->created));
      sqlite3_bind_int(s.get(), ++i, a->retired ? 1 : 0);
      s.text(++i, a->retired_reason);
      s.text(++i, a->retired ? format_rfc3339(a->retired_at) : "");
      if (s.step() != SQLITE_DONE) return w.error("writing agreement " + a->id);
    }
    if (const StoredTransfer* x = t.transfer) {
      static const std::string sql =
          upsert("transfers", kTransferColumns, "provider_pid",
                 {"agreement_id", "dataset", "state", "reason", "last_message", "last_sender",
                  "manifest", "receipt", "relayed_sha256", "from_chunk", "updated"});
      Connection::Stmt s = w.prepare(sql);
      int i = 0;
      for (const std::string* v :
           {&x->provider_pid, &x->consumer_pid, &x->consumer, &x->provider, &x->agreement_id,
            &x->dataset, &x->state, &x->reason, &x->last_message, &x->last_sender, &x->manifest,
            &x->receipt, &x->relayed_sha256})
        s.text(++i, *v);
      s.int64(++i, x->from_chunk);
      s.text(++i, format_rfc3339(x->created));
      s.text(++i, format_rfc3339(x->updated));
      if (s.step() != SQLITE_DONE) return w.error("writing transfer " + x->provider_pid);
    }
    if (const StoredEncryptionKey* k = t.encryption_key) {
      Connection::Stmt s = w.prepare(
          "INSERT OR REPLACE INTO encryption_keys(participant, binding_text, signature, "
          "certificate_pem, created) VALUES(?, ?, ?, ?, ?)");
      s.text(1, k->participant);
      s.text(2, k->binding_text);
      s.text(3, k->signature);
      s.text(4, k->certificate_pem);
      s.text(5, format_rfc3339(k->created));
      if (s.step() != SQLITE_DONE)
        return w.error("writing the encryption key of " + k->participant);
    }
    for (const StoredEvent& e : t.events) {
      Connection::Stmt s =
          w.prepare("INSERT INTO events(recipient, body) VALUES(?, ?) RETURNING id");
      s.text(1, e.recipient);
      s.text(2, e.body);
      if (s.step() != SQLITE_ROW) return w.error("queueing an event");
      out.events.push_back({s.column_u64(0), e.recipient, e.body});
    }
    for (const OutboxEntry& entry : t.log_entries) {
      Connection::Stmt s = w.prepare("INSERT INTO log_outbox(entry) VALUES(?) RETURNING id");
      s.text(1, entry.text);
      if (s.step() != SQLITE_ROW) return w.error("queueing a log entry");
      out.log_ids.push_back(s.column_u64(0));
    }
    return out;
  }

  static constexpr size_t kReaders = 4;
  static constexpr int kCheckpointFrames = 1000;  // 4 MB of 4 KB pages, as SQLite's default
  static constexpr int kRestartFrames = 8000;     // 32 MB
  static constexpr std::chrono::milliseconds kLazyDeletes{50};

  std::mutex write_mutex_;  // guards writer_
  Connection writer_;
  std::array<Reader, kReaders> readers_;
  std::atomic<size_t> next_reader_{0};

  std::mutex queue_mutex_;  // guards everything below, and every Waiter's result
  std::condition_variable work_;
  std::vector<Waiter*> queue_;                    // transitions waiting for the committer
  std::vector<uint64_t> drop_entries_;            // outbox entries to delete (in the log)
  std::vector<uint64_t> drop_events_;             // acknowledged events to delete
  std::unordered_set<uint64_t> dropped_, acked_;  // the same, until their deletion commits
  bool closing_ = false;

  std::mutex sink_mutex_;  // guards sink_; held while it runs, so that replacing it waits
  EventSink sink_;

  std::atomic<int> wal_frames_{0};   // the WAL's size after the last commit (the WAL hook)
  int last_checkpoint_request_ = 0;  // the committer's own
  bool relaxed_ = false;  // guarded by write_mutex_: synchronous is NORMAL, FULL must come back
  Connection checkpoint_conn_;   // the checkpointer's own
  std::mutex checkpoint_mutex_;  // guards the two flags
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false, checkpoint_stop_ = false;
  std::thread checkpointer_;
  std::thread committer_;  // last: started once the rest exists, joined first
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  auto store = std::make_unique<SqliteStore>();
  if (Status s = store->open(path); !s) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace dsx::broker
