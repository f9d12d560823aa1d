// The embedded store: one SQLite file (WAL, synchronous=FULL), one connection behind a mutex
// (the broker's writes are few and small next to the provenance log's).
//
//   datasets(id TEXT PRIMARY KEY, seq INTEGER UNIQUE, provider TEXT, body TEXT,
//            withdrawn TEXT NULL)
//   participants(id TEXT PRIMARY KEY, identity TEXT, first_seen TEXT, last_seen TEXT)
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
        "  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL);");
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
