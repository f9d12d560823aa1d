// dsx_provenance_bench: how fast the provenance log appends durably, audits a whole log file and
// answers proofs, as figures and as ratios against raw SQLite baselines measured in the same run
// on the same disk (docs/performance.md, "Provenance log").
//
// Three sections, each a plain timed run (Google Benchmark's loop does not fit fixed-count work
// from many threads); every measurement runs --reps times (default 3) and the median is printed
// beside each run's figure:
//
//  (1) appends: 8 threads each call Log::append (group commit, WAL, synchronous=FULL) a fixed
//      number of times on a fresh log; entries/s is all entries over the wall time from the
//      start signal to the last thread's return. Beside it, on a fresh file in the same temp dir,
//      raw SQLite with the same settings inserting the same ~300-byte bodies and 32-byte hashes:
//      (a) one row per transaction, (b) 1000 rows per transaction. The ratios Log / raw are
//      taken per round (the three run one after the other) and their median printed.
//  (2) audit: a log of --entries entries (default 1,000,000) is built once through Log::append
//      from 8 threads, then audit_log_file reads it --reps times. A breakdown then redoes each
//      step of the audit with the same public functions, each step timed on its own, to show
//      where the time goes (docs/performance.md has the callgrind profile too).
//  (3) proofs: --proof-calls random calls each of Log::prove_inclusion and
//      Log::prove_consistency on that log, every call timed alone; p50 and p99 (nearest rank).
//      The baseline is one random point lookup of a stored hash through SQLite.
//
// Files live in a fresh directory under $TMPDIR (or /tmp, or --dir), the log's key is created
// there with SigningKey::load_or_create, and the directory is removed at the end (also on an
// error; not when the process is killed: its name is printed first). Figures only: nothing here
// asserts on time. An entry count or audit result that is not what was written is a broken run
// and stops it.

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/stats.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/time.h"
#include "provenance/audit.h"
#include "provenance/canonical_json.h"
#include "provenance/checkpoint.h"
#include "provenance/entry.h"
#include "provenance/log.h"
#include "provenance/merkle.h"
#include "provenance/proof.h"
#include "provenance/signing.h"

namespace dsx::bench {
namespace {

namespace prov = dsx::provenance;

// Targets of the issue.
constexpr double kTargetAppendsPerSec = 100'000;
constexpr double kTargetAuditPerSec = 1'000'000;
constexpr size_t kEntryBytes = 300;   // canonical JSON bytes an entry is built to have
constexpr uint64_t kRawBatch = 1000;  // rows per transaction of raw (b)

struct Options {
  uint64_t entries = 1'000'000;          // size of the log for (2) and (3)
  uint64_t threads = 8;                  // writer threads of (1) and of building the log
  uint64_t appends_per_thread = 50'000;  // (1): Log::append_async calls per thread
  uint64_t window = 1'024;               // (1): appends each thread keeps in flight
  uint64_t blocking_per_thread = 2'000;  // (1), context: blocking Log::append calls per thread
  uint64_t raw_single_rows = 5'000;      // (1a): rows, one per transaction
  uint64_t raw_batched_rows = 200'000;   // (1b): rows, kRawBatch per transaction
  uint64_t reps = 3;
  uint64_t proof_calls = 10'000;
  std::string dir;  // parent of the temp dir
  bool run_appends = true, run_log = true;
};

// ---- SQLite, for the baselines and for reading what the log wrote ----------------------------

class Db {
 public:
  Db(const std::string& path, int flags) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK)
      fail(path + ": " + sqlite3_errmsg(db_));
  }
  ~Db() { sqlite3_close_v2(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
      fail(std::string(sql) + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class Stmt {
 public:
  Stmt(const Db& db, const char* sql) : db_(db.get()) {
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      fail(std::string(sql) + ": " + sqlite3_errmsg(db_));
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  sqlite3_stmt* get() const { return stmt_; }
  bool row() {  // steps; true for a row, false when done
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail(std::string("sqlite3_step: ") + sqlite3_errmsg(db_));
    return false;
  }
  void run() {  // a statement without rows, ready to run again
    row();
    sqlite3_reset(stmt_);
  }
  int64_t integer(int i) const { return sqlite3_column_int64(stmt_, i); }
  double real(int i) const { return sqlite3_column_double(stmt_, i); }
  std::string_view text(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, i)))
             : std::string_view();
  }
  prov::Hash hash(int i) const {
    prov::Hash h{};
    if (sqlite3_column_bytes(stmt_, i) != static_cast<int>(h.size()))
      fail("a hash is not 32 bytes");
    const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, i));
    std::copy(p, p + h.size(), h.begin());
    return h;
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void remove_db(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    std::filesystem::remove(path + suffix);
}

// ---- entries ---------------------------------------------------------------------------------

// A policy decision as the broker logs it. `reason` pads it to kEntryBytes (see make_pad).
prov::Entry make_entry(uint64_t i, const std::string& reason) {
  prov::Entry e;
  e.time = Instant{1'800'000'000 + static_cast<int64_t>(i % 1'000'000), 0};
  e.actor = "urn:dsx:participant:leiden-university";
  e.action = "policy.decided";
  e.subjects = {"urn:dsx:offer:" + std::to_string(i % 9973),
                "urn:dsx:agreement:" + std::to_string(i)};
  e.details = {{"decision", "permit"},
               {"policy", "urn:dsx:policy:hospital-admissions-2024"},
               {"reasons", nlohmann::json::array({reason})}};
  return e;
}

size_t canonical_size(prov::Entry e, uint64_t seq) {
  e.seq = seq;
  auto text = prov::canonical(e);
  if (!text) fail("an entry has no canonical form: " + text.status().message());
  return text->size();
}

// The reason text that makes entry 100,000 (6-digit seq and agreement id) kEntryBytes long.
std::string make_pad() {
  const size_t base = canonical_size(make_entry(100'000, ""), 100'000);
  const std::string words =
      "purpose research is one of research, public-health; dateTime within [2024-01-01, "
      "2027-01-01); spatial NL equals NL; ";
  std::string pad;
  while (pad.size() + base < kEntryBytes)
    pad += words[pad.size() % words.size()];
  return pad;
}

struct LogFileStats {
  uint64_t entries = 0;
  double avg_entry_bytes = 0;
  uint64_t checkpoints = 0;  // one per committed batch
  uint64_t nodes = 0;
  uint64_t page_size = 0;  // SQLite's, fixed when the file was created
};

LogFileStats read_stats(const std::string& path) {
  Db db(path, SQLITE_OPEN_READONLY);
  LogFileStats s;
  Stmt e(db, "SELECT COUNT(*), AVG(LENGTH(CAST(body AS BLOB))) FROM entries");
  if (e.row()) {
    s.entries = static_cast<uint64_t>(e.integer(0));
    s.avg_entry_bytes = e.real(1);
  }
  Stmt c(db, "SELECT COUNT(*) FROM checkpoints");
  if (c.row()) s.checkpoints = static_cast<uint64_t>(c.integer(0));
  Stmt n(db, "SELECT COALESCE(SUM(LENGTH(subtrees)), 0) / 32 FROM entries");
  if (n.row()) s.nodes = static_cast<uint64_t>(n.integer(0));
  Stmt p(db, "PRAGMA page_size");
  if (p.row()) s.page_size = static_cast<uint64_t>(p.integer(0));
  return s;
}

// ---- (1) appends -----------------------------------------------------------------------------

struct AppendRun {
  double seconds = 0;
  uint64_t entries = 0;
  LogFileStats stats;
  double per_sec() const { return seconds > 0 ? static_cast<double>(entries) / seconds : 0; }
};

// `threads` threads append `per_thread` entries each to a fresh log at `path`; the log is closed
// before returning (its destructor waits for nothing: every append has returned). window == 1:
// each thread calls the blocking Log::append; window > 1: each thread keeps up to `window`
// Log::append_async calls in flight, as a broker's many sessions do, and the run ends when the
// last one is acknowledged durable.
AppendRun log_appends(const std::string& path, const prov::SigningKey& key, uint64_t threads,
                      uint64_t per_thread, const std::string& pad, uint64_t window) {
  remove_db(path);
  SystemClock clock;
  auto opened = prov::Log::open(path, key, "dsx-bench", clock);
  if (!opened) fail("opening the log: " + opened.status().message());
  std::unique_ptr<prov::Log> log = std::move(*opened);

  std::latch go(1);
  std::mutex error_mutex;
  std::string error;
  std::vector<std::thread> writers;
  for (uint64_t t = 0; t < threads; ++t)
    writers.emplace_back([&, t] {
      auto failed = [&](const dsx::Status& s) {
        std::lock_guard lock(error_mutex);
        if (error.empty()) error = s.message();
      };
      go.wait();
      if (window <= 1) {
        for (uint64_t k = 0; k < per_thread; ++k)
          if (auto receipt = log->append(make_entry(k * threads + t, pad)); !receipt)
            return failed(receipt.status());
        return;
      }
      std::mutex m;
      std::condition_variable cv;
      uint64_t in_flight = 0;
      for (uint64_t k = 0; k < per_thread; ++k) {
        {
          std::unique_lock lock(m);
          cv.wait(lock, [&] { return in_flight < window; });
          ++in_flight;
        }
        log->append_async(make_entry(k * threads + t, pad), [&](dsx::Result<prov::Receipt> r) {
          if (!r) failed(r.status());
          std::lock_guard lock(m);
          --in_flight;
          cv.notify_one();
        });
      }
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return in_flight == 0; });
    });
  const auto t0 = SteadyClock::now();
  go.count_down();
  for (std::thread& w : writers)
    w.join();
  AppendRun run;
  run.seconds = seconds_since(t0);
  if (!error.empty()) fail("appending: " + error);
  run.entries = log->size();
  log.reset();
  run.stats = read_stats(path);
  if (run.entries != threads * per_thread || run.stats.entries != run.entries)
    fail("the log holds " + std::to_string(run.stats.entries) + " entries, not " +
         std::to_string(threads * per_thread));
  return run;
}

// Canonical bodies and their leaf hashes, for the raw baselines: the same bytes the log writes.
struct Bodies {
  std::vector<std::string> text;
  std::vector<prov::Hash> leaf;
};

Bodies make_bodies(const std::string& pad) {
  Bodies b;
  for (uint64_t i = 0; i < 1024; ++i) {
    prov::Entry e = make_entry(100'000 + i, pad);
    e.seq = 100'000 + i;
    b.text.push_back(*prov::canonical(e));
    b.leaf.push_back(prov::leaf_hash(b.text.back()));
  }
  return b;
}

// Raw SQLite: `rows` inserts of body + leaf, `per_txn` per transaction, into a fresh file with the
// log's settings. Returns rows per second.
double raw_inserts(const std::string& path, uint64_t rows, uint64_t per_txn, const Bodies& b) {
  remove_db(path);
  double per_sec = 0;
  {
    Db db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    db.exec(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
        "CREATE TABLE raw(idx INTEGER PRIMARY KEY, body TEXT NOT NULL, leaf BLOB NOT NULL)");
    {
      Stmt mode(db, "PRAGMA journal_mode");
      if (!mode.row() || mode.text(0) != "wal") fail("raw baseline: WAL mode is not on");
    }
    Stmt begin(db, "BEGIN IMMEDIATE"), commit(db, "COMMIT");
    Stmt insert(db, "INSERT INTO raw(idx, body, leaf) VALUES(?, ?, ?)");
    sqlite3_stmt* ins = insert.get();
    const auto t0 = SteadyClock::now();
    for (uint64_t i = 0; i < rows;) {
      begin.run();
      for (uint64_t k = 0; k < per_txn && i < rows; ++k, ++i) {
        const size_t j = i % b.text.size();
        sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(i));
        sqlite3_bind_text(ins, 2, b.text[j].data(), static_cast<int>(b.text[j].size()),
                          SQLITE_STATIC);
        sqlite3_bind_blob(ins, 3, b.leaf[j].data(), static_cast<int>(b.leaf[j].size()),
                          SQLITE_STATIC);
        insert.run();
      }
      commit.run();
    }
    per_sec = static_cast<double>(rows) / seconds_since(t0);
  }
  remove_db(path);
  return per_sec;
}

void section_appends(const Options& o, const std::string& dir, const prov::SigningKey& key,
                     const std::string& pad) {
  const Bodies bodies = make_bodies(pad);
  std::printf(
      "\n(1) Durable appends. Per round, one after the other, each on a fresh file in %s:\n"
      "    raw (a): %s rows, 1 per transaction; raw (b): %s rows, %s per transaction "
      "(one thread, WAL, synchronous=FULL,\n"
      "    INSERT of a %zu-byte canonical entry + its 32-byte leaf hash); Log: %s threads x %s "
      "Log::append_async,\n    each keeping up to %s in flight; context: the same threads x %s "
      "blocking Log::append.\n",
      dir.c_str(), grouped(static_cast<double>(o.raw_single_rows)).c_str(),
      grouped(static_cast<double>(o.raw_batched_rows)).c_str(),
      grouped(static_cast<double>(kRawBatch)).c_str(), bodies.text[0].size(),
      grouped(static_cast<double>(o.threads)).c_str(),
      grouped(static_cast<double>(o.appends_per_thread)).c_str(),
      grouped(static_cast<double>(o.window)).c_str(),
      grouped(static_cast<double>(o.blocking_per_thread)).c_str());
  std::fflush(stdout);
  std::vector<double> raw_a, raw_b, log_rate, ctx_rate, ratio_a, ratio_b, per_commit,
      ctx_per_commit, avg_bytes;
  const std::string path = dir + "/append.db";
  for (uint64_t r = 0; r < o.reps; ++r) {
    raw_a.push_back(raw_inserts(path, o.raw_single_rows, 1, bodies));
    raw_b.push_back(raw_inserts(path, o.raw_batched_rows, kRawBatch, bodies));
    const AppendRun run = log_appends(path, key, o.threads, o.appends_per_thread, pad, o.window);
    log_rate.push_back(run.per_sec());
    avg_bytes.push_back(run.stats.avg_entry_bytes);
    per_commit.push_back(static_cast<double>(run.entries) /
                         static_cast<double>(std::max<uint64_t>(run.stats.checkpoints, 1)));
    ratio_a.push_back(log_rate.back() / raw_a.back());
    ratio_b.push_back(log_rate.back() / raw_b.back());
    if (o.blocking_per_thread > 0) {
      const AppendRun ctx = log_appends(path, key, o.threads, o.blocking_per_thread, pad, 1);
      ctx_rate.push_back(ctx.per_sec());
      ctx_per_commit.push_back(static_cast<double>(ctx.entries) /
                               static_cast<double>(std::max<uint64_t>(ctx.stats.checkpoints, 1)));
    }
    remove_db(path);
    std::printf("    round %llu: raw (a) %s/s, raw (b) %s/s, Log %s/s (%.1f entries per commit)\n",
                static_cast<unsigned long long>(r + 1), grouped(raw_a.back()).c_str(),
                grouped(raw_b.back()).c_str(), grouped(log_rate.back()).c_str(), per_commit.back());
    std::fflush(stdout);
  }

  // A commit's fixed costs besides the fsync: signing the checkpoint (Ed25519).
  std::vector<double> sign_us;
  for (int i = 0; i < 2000; ++i) {
    const auto t0 = SteadyClock::now();
    auto c = prov::sign_checkpoint("dsx-bench", 1'000'000, bodies.leaf[0],
                                   Instant{1'800'000'000, 0}, key);
    benchmark::DoNotOptimize(c);
    sign_us.push_back(seconds_since(t0) * 1e6);
  }

  std::printf("\n%-36s %14s   %s\n", "", "median", "runs");
  std::printf("%-36s %14s   %s\n", "raw (a) rows/s, 1 per txn", grouped(median(raw_a)).c_str(),
              join_grouped(raw_a).c_str());
  std::printf("%-36s %14s   %s\n", "raw (b) rows/s, 1000 per txn", grouped(median(raw_b)).c_str(),
              join_grouped(raw_b).c_str());
  std::printf("%-36s %14s   %s\n", "Log entries/s", grouped(median(log_rate)).c_str(),
              join_grouped(log_rate).c_str());
  std::printf("%-36s %14.2f   %s\n", "Log / raw (a)", median(ratio_a),
              join_runs(ratio_a, "%.2f").c_str());
  std::printf("%-36s %14.3f   %s\n", "Log / raw (b)", median(ratio_b),
              join_runs(ratio_b, "%.3f").c_str());
  std::printf("%-36s %14.1f   %s\n", "Log entries per commit", median(per_commit),
              join_runs(per_commit, "%.1f").c_str());
  std::printf("%-36s %14.1f   %s\n", "Log entry bytes (average)", median(avg_bytes),
              join_runs(avg_bytes, "%.1f").c_str());
  if (!ctx_rate.empty()) {
    char label[64];
    std::snprintf(label, sizeof label, "context: blocking, %llu threads, /s",
                  static_cast<unsigned long long>(o.threads));
    std::printf("%-36s %14s   %s\n", label, grouped(median(ctx_rate)).c_str(),
                join_grouped(ctx_rate).c_str());
    std::printf("%-36s %14.1f   %s\n", "context: entries per commit", median(ctx_per_commit),
                join_runs(ctx_per_commit, "%.1f").c_str());
  }
  std::sort(sign_us.begin(), sign_us.end());
  std::printf("%-36s %14.1f   p99 %.1f us (2,000 calls)\n", "sign_checkpoint p50 us",
              percentile(sign_us, 0.5), percentile(sign_us, 0.99));
  const double m = median(log_rate);
  std::printf("\nTarget: >= %s durable appends/s from %llu threads: %s/s, %s (%.2fx the target).\n",
              grouped(kTargetAppendsPerSec).c_str(), static_cast<unsigned long long>(o.threads),
              grouped(m).c_str(), m >= kTargetAppendsPerSec ? "met" : "MISSED",
              m / kTargetAppendsPerSec);
  std::fflush(stdout);
}

// ---- (2) audit -------------------------------------------------------------------------------

// The per-entry steps of audit_log_file, each timed alone on one thread over the whole log
// (audit.cpp runs them in parallel, chunk by chunk, on every core).
struct Breakdown {
  double entries_scan = 0;  // SELECT idx, body, leaf, subtrees ORDER BY idx (one connection)
  double canonical = 0;     // is_canonical_json with the seq, per entry
  double leaf_hash = 0;     // SHA-256(0x00 || body)
  double tree = 0;          // every inner node: MemoryTree::append
  double cp_verify = 0;     // verify_checkpoint (Ed25519) of every checkpoint
  double total() const { return entries_scan + canonical + leaf_hash + tree + cp_verify; }
};

Breakdown audit_breakdown(const std::string& path, const prov::PublicKey& key, uint64_t n) {
  Breakdown b;
  Db db(path, SQLITE_OPEN_READONLY);
  prov::MemoryTree tree;
  constexpr size_t kChunk = 4096;
  std::vector<std::string> bodies;
  uint64_t problems = 0;
  {
    Stmt s(db, "SELECT idx, body, leaf, subtrees FROM entries ORDER BY idx");
    bool more = true;
    uint64_t expected = 0;
    std::vector<prov::Hash> leaves;
    while (more) {
      bodies.clear();
      auto t0 = SteadyClock::now();
      while (bodies.size() < kChunk && (more = s.row())) {
        if (static_cast<uint64_t>(s.integer(0)) != expected++) ++problems;
        bodies.emplace_back(s.text(1));
        benchmark::DoNotOptimize(s.hash(2));
      }
      b.entries_scan += seconds_since(t0);
      t0 = SteadyClock::now();
      for (size_t i = 0; i < bodies.size(); ++i) {
        std::optional<uint64_t> seq;
        problems += !prov::is_canonical_json(bodies[i], &seq) || !seq;
      }
      b.canonical += seconds_since(t0);
      t0 = SteadyClock::now();
      leaves.clear();
      for (const std::string& body : bodies)
        leaves.push_back(prov::leaf_hash(body));
      b.leaf_hash += seconds_since(t0);
      t0 = SteadyClock::now();
      for (const prov::Hash& leaf : leaves)
        tree.append(leaf);
      b.tree += seconds_since(t0);
    }
  }
  if (tree.size() != n) fail("breakdown: the log does not hold the entries written");
  {
    Stmt s(db, "SELECT size, body FROM checkpoints ORDER BY size");
    while (s.row()) {
      auto c = prov::parse_checkpoint(nlohmann::json::parse(s.text(1), nullptr, false));
      if (!c) fail("breakdown: a checkpoint is unreadable");
      const auto t0 = SteadyClock::now();
      problems += !prov::verify_checkpoint(*c, key).is_ok();
      b.cp_verify += seconds_since(t0);
    }
  }
  if (problems != 0) fail("breakdown: " + std::to_string(problems) + " problems in a clean log");
  return b;
}

// Builds the log of (2) and (3): o.entries entries through Log::append from o.threads threads.
void build_log(const Options& o, const std::string& path, const prov::SigningKey& key,
               const std::string& pad) {
  const uint64_t per_thread = o.entries / o.threads;
  const uint64_t rest = o.entries % o.threads;
  std::printf("\n(2) Building a log of %s entries: %llu threads call Log::append_async ...\n",
              grouped(static_cast<double>(o.entries)).c_str(),
              static_cast<unsigned long long>(o.threads));
  std::fflush(stdout);
  AppendRun run = log_appends(path, key, o.threads, per_thread, pad, o.window);
  if (rest > 0) {  // the few left over, appended by one more (quick) open
    SystemClock clock;
    auto log = prov::Log::open(path, key, "dsx-bench", clock);
    if (!log) fail("reopening the log: " + log.status().message());
    for (uint64_t i = 0; i < rest; ++i)
      if (!(*log)->append(make_entry(o.threads * per_thread + i, pad))) fail("appending the rest");
  }
  const LogFileStats st = read_stats(path);
  if (st.entries != o.entries) fail("the built log does not hold --entries entries");
  std::printf(
      "    built in %.1f s: %s entries/s; %s checkpoints (%.1f entries per commit), %s tree "
      "nodes,\n    entry %.1f bytes on average, file %.1f MB in pages of %llu bytes\n",
      run.seconds, grouped(run.per_sec()).c_str(),
      grouped(static_cast<double>(st.checkpoints)).c_str(),
      static_cast<double>(st.entries) / static_cast<double>(std::max<uint64_t>(st.checkpoints, 1)),
      grouped(static_cast<double>(st.nodes)).c_str(), st.avg_entry_bytes,
      static_cast<double>(std::filesystem::file_size(path)) / 1e6,
      static_cast<unsigned long long>(st.page_size));
  std::fflush(stdout);
}

void section_audit(const Options& o, const std::string& path, const prov::SigningKey& key) {
  const auto n = static_cast<double>(o.entries);
  std::vector<double> secs;
  for (uint64_t r = 0; r < o.reps; ++r) {
    const auto t0 = SteadyClock::now();
    auto report = prov::audit_log_file(path, key.public_key());
    secs.push_back(seconds_since(t0));
    if (!report) fail("audit: " + report.status().message());
    if (!report->problems.empty() || report->entries != o.entries)
      fail("audit of a clean log: " + std::to_string(report->problems.size()) + " problems, " +
           std::to_string(report->entries) + " entries" +
           (report->problems.empty() ? "" : ": " + report->problems.front()));
  }
  std::vector<double> rates;
  for (double s : secs)
    rates.push_back(n / s);
  std::printf("\naudit_log_file, %s entries (file in the page cache: it was just written):\n",
              grouped(n).c_str());
  std::printf("    seconds %s; median %.2f s\n", join_runs(secs, "%.2f").c_str(), median(secs));
  std::printf("    entries/s %s; median %s\n", join_grouped(rates).c_str(),
              grouped(median(rates)).c_str());
  std::fflush(stdout);

  const Breakdown b = audit_breakdown(path, key.public_key(), o.entries);
  const double audit = median(secs);
  std::printf(
      "\nThe audit's steps, each redone alone on one thread over the whole log (ns per entry;\n"
      "%% of the audit's median wall time, which runs them on %u threads):\n",
      std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
  auto row = [&](const char* name, double s) {
    std::printf("    %-52s %8.3f s %9.0f ns/entry %6.1f %%\n", name, s, s / n * 1e9,
                100 * s / audit);
  };
  row("SQLite scan of the entries (one connection)", b.entries_scan);
  row("is_canonical_json + seq", b.canonical);
  row("leaf_hash (SHA-256)", b.leaf_hash);
  row("inner nodes (MemoryTree::append)", b.tree);
  row("verify_checkpoint, every checkpoint (Ed25519)", b.cp_verify);
  row("sum of the steps", b.total());
  std::printf(
      "\nBaseline: the SQLite scan of the entries alone (first row) reads %s entries/s; the audit "
      "takes %.2fx its time.\n",
      grouped(n / b.entries_scan).c_str(), audit / b.entries_scan);
  const double m = median(rates);
  std::printf("\nTarget: audit >= %s entries/s: %s entries/s, %s (%.2fx the target).\n",
              grouped(kTargetAuditPerSec).c_str(), grouped(m).c_str(),
              m >= kTargetAuditPerSec ? "met" : "MISSED", m / kTargetAuditPerSec);
  std::fflush(stdout);
}

// ---- (3) proofs ------------------------------------------------------------------------------

struct Latencies {
  std::vector<double> p50, p99, mean_hashes;
};

// A model of the Log's tree reads: the log answers range_hash exactly as MemoryTree does (one
// stored hash for an aligned perfect subtree, else split and combine), so counting those calls
// on a tree of the same size counts the SQLite point lookups and SHA-256s a proof costs.
class CountingTree final : public prov::TreeReader {
 public:
  explicit CountingTree(uint64_t n) : n_(n) {}
  uint64_t size() const override { return n_; }
  prov::Hash range_hash(uint64_t begin, uint64_t end) const override {
    const uint64_t len = end - begin;
    if (std::has_single_bit(len) && begin % len == 0) {
      ++reads;
      return {};
    }
    const uint64_t k = std::bit_floor(len - 1);
    range_hash(begin, begin + k);
    range_hash(begin + k, end);
    ++hashes;
    return {};
  }
  mutable uint64_t reads = 0, hashes = 0;

 private:
  uint64_t n_;
};

void section_proofs(const Options& o, const std::string& path, const prov::SigningKey& key) {
  SystemClock clock;
  const auto t_open = SteadyClock::now();
  auto opened = prov::Log::open(path, key, "dsx-bench", clock);
  const double open_s = seconds_since(t_open);
  if (!opened) fail("opening the log: " + opened.status().message());
  const prov::Log& log = **opened;
  const uint64_t n = log.size();

  // Baseline: one point lookup of a stored hash (a random leaf or tree node) on a connection of
  // our own, the kind of read a proof is made of.
  Db db(path, SQLITE_OPEN_READONLY);
  Stmt leaf(db, "SELECT leaf FROM entries WHERE idx = ?");
  Stmt node(db, "SELECT subtrees FROM entries WHERE idx = ?");
  const auto levels = static_cast<uint64_t>(std::bit_width(n));  // levels 0 .. levels - 1

  std::mt19937_64 rng(20261129);
  auto uniform = [&](uint64_t lo, uint64_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  // Each kind draws its arguments, then `call` runs it on the log (timed) and returns the
  // proof's hash count; `model` replays the same calls on the CountingTree.
  struct Args {
    uint64_t a, b;
  };
  enum class Op { kLookup, kInclusion, kConsistency };
  struct Kind {
    const char* name;
    Op op;
    std::function<Args()> args;
  };
  const std::vector<Kind> kinds = {
      {"lookup: one stored hash (baseline)", Op::kLookup,
       [&] {
         const uint64_t level = uniform(0, levels - 1);
         return Args{level, uniform(0, (n >> level) - 1)};
       }},
      {"prove_inclusion(random index, n)", Op::kInclusion,
       [&] {
         return Args{uniform(0, n - 1), n};
       }},
      {"prove_inclusion(random index, random size)", Op::kInclusion,
       [&] {
         const uint64_t size = uniform(1, n);
         return Args{uniform(0, size - 1), size};
       }},
      {"prove_consistency(random first, n)", Op::kConsistency,
       [&] {
         return Args{uniform(1, n), n};
       }},
      {"prove_consistency(random first, random second)", Op::kConsistency,
       [&] {
         const uint64_t second = uniform(1, n);
         return Args{uniform(1, second), second};
       }},
  };
  auto call = [&](Op op, Args x) -> size_t {
    switch (op) {
      case Op::kLookup: {
        Stmt& st = x.a == 0 ? leaf : node;
        sqlite3_reset(st.get());
        if (x.a == 0) {
          sqlite3_bind_int64(st.get(), 1, static_cast<sqlite3_int64>(x.b));
        } else {  // the row of the leaf that completes the subtree (log.cpp)
          sqlite3_bind_int64(st.get(), 1, static_cast<sqlite3_int64>(((x.b + 1) << x.a) - 1));
        }
        if (!st.row()) fail("baseline lookup found nothing");
        benchmark::DoNotOptimize(st.text(0));
        return 1;
      }
      case Op::kInclusion: {
        auto p = log.prove_inclusion(x.a, x.b);
        if (!p) fail("prove_inclusion: " + p.status().message());
        return p->proof.size();
      }
      case Op::kConsistency: {
        auto p = log.prove_consistency(x.a, x.b);
        if (!p) fail("prove_consistency: " + p.status().message());
        return p->proof.size();
      }
    }
    return 0;
  };
  // What Log::prove_inclusion / prove_consistency ask of the tree (log.cpp).
  auto model = [](CountingTree& t, Op op, Args x) {
    switch (op) {
      case Op::kLookup:
        ++t.reads;
        break;
      case Op::kInclusion:
        prov::root(t, x.b);
        t.range_hash(x.a, x.a + 1);
        prov::inclusion_proof(t, x.a, x.b);
        break;
      case Op::kConsistency:
        prov::root(t, x.a);
        prov::root(t, x.b);
        prov::consistency_proof(t, x.a, x.b);
        break;
    }
  };

  // Sanity: proofs from the log verify (outside any timing).
  for (int i = 0; i < 100; ++i) {
    const uint64_t size = uniform(1, n), first = uniform(1, size);
    auto inc = log.prove_inclusion(uniform(0, size - 1), size);
    auto con = log.prove_consistency(first, size);
    if (!inc || !con || !prov::verify(prov::Proof{*inc}).is_ok() ||
        !prov::verify(prov::Proof{*con}).is_ok())
      fail("a proof from the log does not verify");
  }

  std::printf(
      "\n(3) Proofs at n = %s (Log::open took %.2f s). Per round, %s calls of each kind, each "
      "timed alone (clock pair included, ~0.03 us); p50 and p99 in microseconds per round; "
      "x lookup = p50 / p50 of the baseline in the same round.\n",
      grouped(static_cast<double>(n)).c_str(), open_s,
      grouped(static_cast<double>(o.proof_calls)).c_str());
  std::vector<Latencies> lat(kinds.size());
  std::vector<std::vector<double>> x_lookup(kinds.size());
  std::vector<double> model_reads(kinds.size()), model_hashes(kinds.size());
  for (uint64_t r = 0; r < o.reps; ++r) {
    for (size_t k = 0; k < kinds.size(); ++k) {
      for (uint64_t i = 0; i < o.proof_calls / 10; ++i)  // warm-up
        call(kinds[k].op, kinds[k].args());
      std::vector<double> us;
      us.reserve(o.proof_calls);
      double hashes = 0;
      CountingTree counting(n);
      for (uint64_t i = 0; i < o.proof_calls; ++i) {
        const Args x = kinds[k].args();
        const auto t0 = SteadyClock::now();
        const size_t h = call(kinds[k].op, x);
        us.push_back(seconds_since(t0) * 1e6);
        hashes += static_cast<double>(h);
        if (r == 0) model(counting, kinds[k].op, x);
      }
      if (r == 0) {
        model_reads[k] = static_cast<double>(counting.reads) / static_cast<double>(o.proof_calls);
        model_hashes[k] = static_cast<double>(counting.hashes) / static_cast<double>(o.proof_calls);
      }
      std::sort(us.begin(), us.end());
      lat[k].p50.push_back(percentile(us, 0.50));
      lat[k].p99.push_back(percentile(us, 0.99));
      lat[k].mean_hashes.push_back(hashes / static_cast<double>(o.proof_calls));
      x_lookup[k].push_back(lat[k].p50.back() / lat[0].p50.back());
    }
  }
  std::printf("\n%-48s %9s %9s %7s %7s %7s %9s   %s\n", "call", "p50 us", "p99 us", "proof",
              "reads", "SHA256", "x lookup", "p50 / p99 per round");
  for (size_t k = 0; k < kinds.size(); ++k) {
    std::string runs;
    for (size_t r = 0; r < lat[k].p50.size(); ++r) {
      char buf[48];
      std::snprintf(buf, sizeof buf, "%s%.1f/%.1f", r ? "  " : "", lat[k].p50[r], lat[k].p99[r]);
      runs += buf;
    }
    std::printf("%-48s %9.1f %9.1f %7.1f %7.1f %7.1f %9.1f   %s\n", kinds[k].name,
                median(lat[k].p50), median(lat[k].p99), median(lat[k].mean_hashes), model_reads[k],
                model_hashes[k], median(x_lookup[k]), runs.c_str());
  }
  std::printf(
      "proof: hashes in the proof; reads, SHA256: stored hashes a call reads and node hashes it "
      "computes (mean, counted on a model of the log's tree, same calls as round 1).\n");
  std::fflush(stdout);
}

// ---- driver ----------------------------------------------------------------------------------

// The temp dir of the run, removed with everything in it at the end.
class TempDir {
 public:
  explicit TempDir(const std::string& parent) {
    std::string templ = parent + "/dsx-provenance-bench-XXXXXX";
    if (!mkdtemp(templ.data())) fail("cannot create a temp dir under " + parent);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

void run(const Options& o) {
  TempDir tmp(o.dir);
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::printf(
      "dsx_provenance_bench: %u CPUs (%s), load average %.2f %.2f %.2f, SQLite %s\n"
      "temp dir %s (removed at the end)\n",
      std::thread::hardware_concurrency(), cpu_model().c_str(), load[0], load[1], load[2],
      sqlite3_libversion(), tmp.path().c_str());
  auto key = prov::SigningKey::load_or_create(tmp.path() + "/log.key");
  if (!key) fail("creating the log key: " + key.status().message());
  const std::string pad = make_pad();

  if (o.run_appends) section_appends(o, tmp.path(), *key, pad);
  if (o.run_log) {
    const std::string path = tmp.path() + "/log.db";
    const auto t0 = SteadyClock::now();
    build_log(o, path, *key, pad);
    section_audit(o, path, *key);
    section_proofs(o, path, *key);
    std::printf("\n(2) and (3) took %.0f s with building the log.\n", seconds_since(t0));
  }
}

constexpr const char* kUsage =
    "usage: dsx_provenance_bench [--entries=N] [--quick] [--only=appends|log] [--reps=N]\n"
    "         [--threads=N] [--appends-per-thread=N] [--raw-single=N] [--raw-batched=N]\n"
    "         [--window=N] [--blocking-per-thread=N] [--proof-calls=N] [--dir=PATH]\n"
    "  --entries          log size for the audit and proofs (default 1000000; also\n"
    "                     DSX_PROVENANCE_BENCH_ENTRIES)\n"
    "  --quick            20000 entries, 5000 (200 blocking) appends per thread, 1000 + 20000\n"
    "                     raw rows, 2000 proof calls: about half a minute\n"
    "  --window           appends in flight per thread in (1) (default 1024)\n"
    "  --only             appends: only (1); log: only (2) and (3)\n"
    "  --dir              where the temp dir goes (default $TMPDIR or /tmp)\n";

bool parse_u64(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  if (const char* env = std::getenv("DSX_PROVENANCE_BENCH_ENTRIES"))
    if (!parse_u64(env, o.entries)) return std::nullopt;
  if (const char* t = std::getenv("TMPDIR"); t && *t) o.dir = t;
  if (o.dir.empty()) o.dir = "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    auto number = [&](uint64_t& out) { return parse_u64(value, out); };
    bool ok = true;
    if (name == "--quick") {
      o.entries = 20'000;
      o.appends_per_thread = 5'000;
      o.blocking_per_thread = 200;
      o.raw_single_rows = 1'000;
      o.raw_batched_rows = 20'000;
      o.proof_calls = 2'000;
    } else if (name == "--entries") {
      ok = number(o.entries);
    } else if (name == "--reps") {
      ok = number(o.reps);
    } else if (name == "--threads") {
      ok = number(o.threads);
    } else if (name == "--appends-per-thread") {
      ok = number(o.appends_per_thread);
    } else if (name == "--raw-single") {
      ok = number(o.raw_single_rows);
    } else if (name == "--raw-batched") {
      ok = number(o.raw_batched_rows);
    } else if (name == "--window") {
      ok = number(o.window);
    } else if (name == "--blocking-per-thread") {
      ok = number(o.blocking_per_thread);
    } else if (name == "--proof-calls") {
      ok = number(o.proof_calls);
    } else if (name == "--dir") {
      o.dir = std::string(value);
      ok = !o.dir.empty();
    } else if (name == "--only") {
      o.run_appends = value == "appends";
      o.run_log = value == "log";
      ok = o.run_appends || o.run_log;
    } else {
      ok = false;
    }
    if (!ok) return std::nullopt;
  }
  if (o.entries < 2 || o.threads == 0 || o.reps == 0 || o.proof_calls == 0 ||
      o.appends_per_thread == 0 || o.window == 0 || o.raw_single_rows == 0 ||
      o.raw_batched_rows == 0)
    return std::nullopt;
  return o;
}

}  // namespace
}  // namespace dsx::bench

int main(int argc, char** argv) {
  const auto options = dsx::bench::parse_options(argc, argv);
  if (!options) {
    std::fputs(dsx::bench::kUsage, stderr);
    return 2;
  }
  try {
    dsx::bench::run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsx_provenance_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
