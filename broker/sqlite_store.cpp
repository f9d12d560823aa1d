// The embedded store: one SQLite file (WAL, synchronous=FULL), one connection behind a mutex
// (the broker's writes are few and small next to the provenance log's).
//
//   datasets(id TEXT PRIMARY KEY, seq INTEGER UNIQUE, provider TEXT, body TEXT,
//            withdrawn TEXT NULL)
//   participants(id TEXT PRIMARY KEY, identity TEXT, first_seen TEXT, last_seen TEXT)
//   negotiations(provider_pid TEXT PRIMARY KEY, consumer, consumer_pid, ... ,
//                UNIQUE(consumer, consumer_pid))
//   agreements(id TEXT PRIMARY KEY, provider_pid, ..., retired INTEGER, ...)
//   events(id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT, body TEXT)
//   log_outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, entry TEXT)
// AUTOINCREMENT: an event id is never reused, even after the newest events were acknowledged
// and deleted, so a connector that remembers handled ids never mistakes a new event for an old
// one. A transition (negotiation + agreement + events + log entries) is one transaction.
#include <sqlite3.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "broker/store.h"

namespace dsx::broker {
namespace {

class SqliteStore final : public Store {
 public:
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  Status open(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
      return error("opening " + path);
    sqlite3_busy_timeout(db_, 5000);
    return exec(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
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
        "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  recipient TEXT NOT NULL, body TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS events_recipient ON events(recipient, id);"
        "CREATE TABLE IF NOT EXISTS log_outbox(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  entry TEXT NOT NULL);");
  }

  Result<uint64_t> put_dataset(const StoredDataset& d) override {
    std::lock_guard lock(mutex_);
    Stmt find(db_, "SELECT seq FROM datasets WHERE id = ?");
    find.text(1, d.id);
    if (find.step() == SQLITE_ROW) {
      const auto seq = static_cast<uint64_t>(sqlite3_column_int64(find.get(), 0));
      Stmt update(db_, "UPDATE datasets SET body = ?, withdrawn = NULL WHERE id = ?");
      update.text(1, d.body);
      update.text(2, d.id);
      if (update.step() != SQLITE_DONE) return error("updating dataset " + d.id);
      return seq;
    }
    Stmt insert(
        db_,
        "INSERT INTO datasets(id, seq, provider, body) VALUES(?, (SELECT COALESCE(MAX(seq), "
        "0) + 1 FROM datasets), ?, ?) RETURNING seq");
    insert.text(1, d.id);
    insert.text(2, d.provider);
    insert.text(3, d.body);
    if (insert.step() != SQLITE_ROW) return error("inserting dataset " + d.id);
    return static_cast<uint64_t>(sqlite3_column_int64(insert.get(), 0));
  }

  Status withdraw_dataset(const std::string& id, Instant when) override {
    std::lock_guard lock(mutex_);
    Stmt s(db_, "UPDATE datasets SET withdrawn = ? WHERE id = ? AND withdrawn IS NULL");
    s.text(1, format_rfc3339(when));
    s.text(2, id);
    if (s.step() != SQLITE_DONE) return error("withdrawing dataset " + id);
    if (sqlite3_changes(db_) == 0) return Status::not_found("no dataset " + id);
    return Status::ok();
  }

  Result<std::vector<StoredDataset>> active_datasets() override {
    std::lock_guard lock(mutex_);
    Stmt s(db_,
           "SELECT id, seq, provider, body FROM datasets WHERE withdrawn IS NULL ORDER BY seq");
    std::vector<StoredDataset> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back({s.column(0), s.column(2), s.column(3),
                     static_cast<uint64_t>(sqlite3_column_int64(s.get(), 1))});
    if (rc != SQLITE_DONE) return error("reading datasets");
    return out;
  }

  Status participant_seen(const certs::Identity& who, Instant when) override {
    std::lock_guard lock(mutex_);
    Stmt s(db_,
           "INSERT INTO participants(id, identity, first_seen, last_seen) VALUES(?, ?, ?, ?) "
           "ON CONFLICT(id) DO UPDATE SET identity = excluded.identity, "
           "last_seen = excluded.last_seen");
    const std::string t = format_rfc3339(when);
    s.text(1, who.participant_id);
    s.text(2, certs::to_json(who).dump());
    s.text(3, t);
    s.text(4, t);
    if (s.step() != SQLITE_DONE) return error("recording participant " + who.participant_id);
    return Status::ok();
  }

  Result<std::optional<StoredNegotiation>> negotiation(const std::string& pid) override {
    std::lock_guard lock(mutex_);
    return one_negotiation("provider_pid = ?", {pid});
  }

  Result<std::optional<StoredNegotiation>> negotiation_by_consumer_pid(
      const std::string& consumer, const std::string& consumer_pid) override {
    std::lock_guard lock(mutex_);
    return one_negotiation("consumer = ? AND consumer_pid = ?", {consumer, consumer_pid});
  }

  Result<std::vector<StoredNegotiation>> negotiations_of(const std::string& participant) override {
    std::lock_guard lock(mutex_);
    return negotiations_where("consumer = ?1 OR provider = ?1 ORDER BY created DESC, rowid DESC",
                              {participant});
  }

  Result<std::vector<StoredNegotiation>> negotiations_idle_since(Instant before) override {
    std::lock_guard lock(mutex_);
    // RFC 3339 UTC text with a fixed form sorts as time does.
    return negotiations_where(
        "state NOT IN ('FINALIZED', 'TERMINATED') AND updated < ? ORDER BY updated",
        {format_rfc3339(before)});
  }

  Result<std::optional<StoredAgreement>> agreement(const std::string& id) override {
    std::lock_guard lock(mutex_);
    auto all = agreements_where("id = ?", {id});
    if (!all) return all.status();
    if (all->empty()) return std::optional<StoredAgreement>();
    return std::optional<StoredAgreement>(std::move(all->front()));
  }

  Result<std::vector<StoredAgreement>> agreements_of(const std::string& participant) override {
    std::lock_guard lock(mutex_);
    return agreements_where("consumer = ?1 OR provider = ?1 ORDER BY created DESC, rowid DESC",
                            {participant});
  }

  Result<std::vector<uint64_t>> commit(const Transition& t) override {
    std::lock_guard lock(mutex_);
    if (Status s = exec("BEGIN IMMEDIATE"); !s) return s;
    auto ids = write_transition(t);
    if (!ids) {
      (void)exec("ROLLBACK");
      return ids.status();
    }
    if (Status s = exec("COMMIT"); !s) {
      (void)exec("ROLLBACK");
      return s;
    }
    return ids;
  }

  Status log_entry_done(uint64_t id) override {
    std::lock_guard lock(mutex_);
    Stmt s(db_, "DELETE FROM log_outbox WHERE id = ?");
    sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(id));
    if (s.step() != SQLITE_DONE) return error("clearing the log outbox");
    return Status::ok();
  }

  Result<std::vector<PendingLogEntry>> pending_log_entries() override {
    std::lock_guard lock(mutex_);
    Stmt s(db_, "SELECT id, entry FROM log_outbox ORDER BY id");
    std::vector<PendingLogEntry> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back({static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0)), s.column(1)});
    if (rc != SQLITE_DONE) return error("reading the log outbox");
    return out;
  }

  Result<std::vector<StoredEvent>> events_for(const std::string& recipient, uint64_t after,
                                              size_t limit) override {
    std::lock_guard lock(mutex_);
    Stmt s(db_, "SELECT id, body FROM events WHERE recipient = ? AND id > ? ORDER BY id LIMIT ?");
    s.text(1, recipient);
    sqlite3_bind_int64(s.get(), 2, static_cast<sqlite3_int64>(after));
    sqlite3_bind_int64(s.get(), 3, static_cast<sqlite3_int64>(limit));
    std::vector<StoredEvent> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      out.push_back(
          {static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0)), recipient, s.column(1)});
    if (rc != SQLITE_DONE) return error("reading events");
    return out;
  }

  Result<bool> ack_event(const std::string& recipient, uint64_t id) override {
    std::lock_guard lock(mutex_);
    Stmt s(db_, "DELETE FROM events WHERE id = ? AND recipient = ?");
    sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(id));
    s.text(2, recipient);
    if (s.step() != SQLITE_DONE) return error("acknowledging event");
    return sqlite3_changes(db_) > 0;
  }

 private:
  class Stmt {
   public:
    Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    sqlite3_stmt* get() const { return stmt_; }
    void text(int i, const std::string& v) {
      sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    int step() { return stmt_ ? sqlite3_step(stmt_) : SQLITE_ERROR; }
    std::string column(int i) const {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
      return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i))) : "";
    }

   private:
    sqlite3_stmt* stmt_ = nullptr;
  };

  static constexpr const char* kNegotiationColumns =
      "provider_pid, consumer_pid, consumer, provider, dataset, offer, catalog_offer, purpose, "
      "context, state, agreement_id, reason, last_message, last_sender, created, updated";
  static constexpr const char* kAgreementColumns =
      "id, provider_pid, dataset, provider, consumer, body, sha256, signature, created, retired, "
      "retired_reason, retired_at";

  static Instant instant(const std::string& text) {
    return parse_xsd_date_time(text).value_or(Instant());
  }

  Result<std::vector<StoredNegotiation>> negotiations_where(const std::string& where,
                                                            const std::vector<std::string>& args) {
    const std::string sql =
        std::string("SELECT ") + kNegotiationColumns + " FROM negotiations WHERE " + where;
    Stmt s(db_, sql.c_str());
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
    if (rc != SQLITE_DONE) return error("reading negotiations");
    return out;
  }

  Result<std::optional<StoredNegotiation>> one_negotiation(const std::string& where,
                                                           const std::vector<std::string>& args) {
    auto all = negotiations_where(where, args);
    if (!all) return all.status();
    if (all->empty()) return std::optional<StoredNegotiation>();
    return std::optional<StoredNegotiation>(std::move(all->front()));
  }

  Result<std::vector<StoredAgreement>> agreements_where(const std::string& where,
                                                        const std::vector<std::string>& args) {
    const std::string sql =
        std::string("SELECT ") + kAgreementColumns + " FROM agreements WHERE " + where;
    Stmt s(db_, sql.c_str());
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
    if (rc != SQLITE_DONE) return error("reading agreements");
    return out;
  }

  // Inside a transaction.
  Result<std::vector<uint64_t>> write_transition(const Transition& t) {
    if (const StoredNegotiation* n = t.negotiation) {
      const std::string sql = std::string("INSERT OR REPLACE INTO negotiations(") +
                              kNegotiationColumns +
                              ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      Stmt s(db_, sql.c_str());
      int i = 0;
      for (const std::string* v :
           {&n->provider_pid, &n->consumer_pid, &n->consumer, &n->provider, &n->dataset, &n->offer,
            &n->catalog_offer, &n->purpose, &n->context, &n->state, &n->agreement_id, &n->reason,
            &n->last_message, &n->last_sender})
        s.text(++i, *v);
      s.text(++i, format_rfc3339(n->created));
      s.text(++i, format_rfc3339(n->updated));
      if (s.step() != SQLITE_DONE) return error("writing negotiation " + n->provider_pid);
    }
    if (const StoredAgreement* a = t.agreement) {
      const std::string sql = std::string("INSERT OR REPLACE INTO agreements(") +
                              kAgreementColumns + ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      Stmt s(db_, sql.c_str());
      int i = 0;
      for (const std::string* v : {&a->id, &a->provider_pid, &a->dataset, &a->provider,
                                   &a->consumer, &a->body, &a->sha256, &a->signature})
        s.text(++i, *v);
      s.text(++i, format_rfc3339(a->created));
      sqlite3_bind_int(s.get(), ++i, a->retired ? 1 : 0);
      s.text(++i, a->retired_reason);
      s.text(++i, a->retired ? format_rfc3339(a->retired_at) : "");
      if (s.step() != SQLITE_DONE) return error("writing agreement " + a->id);
    }
    for (const StoredEvent& e : t.events) {
      Stmt s(db_, "INSERT INTO events(recipient, body) VALUES(?, ?)");
      s.text(1, e.recipient);
      s.text(2, e.body);
      if (s.step() != SQLITE_DONE) return error("queueing an event");
    }
    std::vector<uint64_t> ids;
    for (const std::string& entry : t.log_entries) {
      Stmt s(db_, "INSERT INTO log_outbox(entry) VALUES(?) RETURNING id");
      s.text(1, entry);
      if (s.step() != SQLITE_ROW) return error("queueing a log entry");
      ids.push_back(static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0)));
    }
    return ids;
  }

  Status exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return error(sql);
    return Status::ok();
  }
  Status error(const std::string& what) const {
    return Status::internal("broker store: " + what + ": " +
                            (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }

  sqlite3* db_ = nullptr;
  std::mutex mutex_;  // guards db_
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  auto store = std::make_unique<SqliteStore>();
  if (Status s = store->open(path); !s) return s;
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace dsx::broker
