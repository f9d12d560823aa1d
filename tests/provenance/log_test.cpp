#include "provenance/log.h"

#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "provenance/audit.h"
#include "provenance/prov_export.h"
#include "tests/run_dsx.h"

using namespace dsx::provenance;

namespace {

using dsx::testing::run_dsx;

// A fresh log file in a temporary folder, removed afterwards.
struct TempLog {
  std::filesystem::path dir;
  std::string path;
  dsx::ManualClock clock{dsx::Instant{1'800'000'000, 0}};
  TempLog() {
    static std::atomic<int> counter{0};
    dir = std::filesystem::temp_directory_path() /
          ("dsx-log-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(dir);
    path = (dir / "log.db").string();
  }
  ~TempLog() { std::filesystem::remove_all(dir); }
};

Entry entry(int i, const std::string& actor = "urn:dsx:participant:alice") {
  Entry e;
  e.time = dsx::Instant{1'700'000'000 + i, 0};
  e.actor = actor;
  e.action = "policy.decided";
  e.subjects = {"urn:dsx:offer:" + std::to_string(i)};
  e.details = {{"decision", i % 2 ? "permit" : "deny"},
               {"reasons", {"reason " + std::to_string(i)}}};
  return e;
}

dsx::Result<std::unique_ptr<Log>> try_open(TempLog& tmp, const std::string& key_file = "log.key") {
  auto key = SigningKey::load_or_create((tmp.dir / key_file).string());
  REQUIRE(key);
  return Log::open(tmp.path, *key, "test-log", tmp.clock);
}

std::unique_ptr<Log> open_log(TempLog& tmp) {
  auto log = try_open(tmp);
  INFO(log.status().message());
  REQUIRE(log);
  return std::move(*log);
}

void edit(const TempLog& tmp, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(tmp.path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace

TEST_CASE("a log's roots and proofs match a tree built from its entries", "[log]") {
  TempLog tmp;
  auto log = open_log(tmp);
  MemoryTree model;
  for (int i = 0; i < 100; ++i) {
    auto receipt = log->append(entry(i));
    REQUIRE(receipt);
    CHECK(receipt->index == static_cast<uint64_t>(i));
    auto text = log->entry_text(receipt->index);
    REQUIRE(text);
    CHECK(leaf_hash(*text) == receipt->leaf_hash);
    auto parsed = parse_entry(*text);
    REQUIRE(parsed);
    CHECK(parsed->seq == static_cast<uint64_t>(i));
    model.append(receipt->leaf_hash);
  }
  REQUIRE(log->size() == 100);
  for (uint64_t size : {1u, 2u, 7u, 64u, 99u, 100u}) {
    CHECK(*log->root(size) == root(model, size));
    for (uint64_t i = 0; i < size; i += 13) {
      auto p = log->prove_inclusion(i, size);
      REQUIRE(p);
      CHECK(verify(Proof{*p}).is_ok());
    }
    for (uint64_t first = 1; first <= size; first += 9) {
      auto c = log->prove_consistency(first, size);
      REQUIRE(c);
      CHECK(verify(Proof{*c}).is_ok());
    }
  }
  CHECK_FALSE(log->prove_inclusion(100, 100));
  CHECK_FALSE(log->root(101));
}

TEST_CASE("concurrent appends are group-committed, each durable and numbered once", "[log]") {
  TempLog tmp;
  auto log = open_log(tmp);
  constexpr int kThreads = 8, kEach = 250;
  std::vector<std::vector<Receipt>> receipts(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = log->append(entry(t * kEach + i, "urn:dsx:participant:" + std::to_string(t)));
        if (!r) {
          ++failures;
          continue;
        }
        receipts[static_cast<size_t>(t)].push_back(*r);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  REQUIRE(failures == 0);
  std::set<uint64_t> indices;
  for (const auto& rs : receipts)
    for (const Receipt& r : rs)
      indices.insert(r.index);
  CHECK(indices.size() == kThreads * kEach);
  CHECK(*indices.rbegin() == kThreads * kEach - 1);
  CHECK(log->size() == kThreads * kEach);
  for (const auto& rs : receipts) {
    const Receipt& r = rs[rs.size() / 2];
    auto p = log->prove_inclusion(r.index, log->size());
    REQUIRE(p);
    CHECK(p->leaf_hash == r.leaf_hash);
    CHECK(verify(Proof{*p}).is_ok());
  }
}

TEST_CASE("a reopened log continues where it stopped", "[log]") {
  TempLog tmp;
  dsx::provenance::Hash root37{};
  {
    auto log = open_log(tmp);
    for (int i = 0; i < 37; ++i)
      REQUIRE(log->append(entry(i)));
    root37 = *log->root(37);
  }
  auto log = open_log(tmp);
  CHECK(log->size() == 37);
  CHECK(*log->root(37) == root37);
  for (int i = 37; i < 80; ++i)
    REQUIRE(log->append(entry(i))->index == static_cast<uint64_t>(i));
  auto c = log->prove_consistency(37, 80);
  REQUIRE(c);
  CHECK(c->first_root == root37);
  CHECK(verify(Proof{*c}).is_ok());
}

TEST_CASE("an entry JCS cannot hold is refused and takes no index", "[log]") {
  TempLog tmp;
  auto log = open_log(tmp);
  Entry bad = entry(0);
  bad.details["ratio"] = std::nan("");
  CHECK_FALSE(log->append(bad));
  // Strings that are not UTF-8, in each member written without a JSON value.
  Entry bad_actor = entry(0, "urn:dsx:participant:\xff");
  CHECK_FALSE(log->append(bad_actor));
  Entry bad_action = entry(0);
  bad_action.action = "policy.\xc3";
  CHECK_FALSE(log->append(bad_action));
  Entry bad_subject = entry(0);
  bad_subject.subjects.push_back("urn:dsx:offer:\xed\xa0\x80");
  CHECK_FALSE(log->append(bad_subject));
  CHECK(log->append(entry(1))->index == 0);
}

TEST_CASE("opening a log with a deleted row refuses it", "[log]") {
  TempLog tmp;
  {
    auto log = open_log(tmp);
    for (int i = 0; i < 10; ++i)
      REQUIRE(log->append(entry(i)));
  }
  edit(tmp, "DELETE FROM entries WHERE idx = 4");
  auto log = try_open(tmp);
  REQUIRE_FALSE(log);
  CHECK(log.status().message().find("is damaged: 9 entries but indices up to 10") !=
        std::string::npos);
}

TEST_CASE("every batch is covered by a checkpoint signed with the log's key", "[log]") {
  TempLog tmp;
  {
    auto log = open_log(tmp);
    CHECK_FALSE(log->latest_checkpoint());  // empty log: nothing signed yet
    for (int i = 0; i < 21; ++i)
      REQUIRE(log->append(entry(i)));
    auto c = log->latest_checkpoint();
    REQUIRE(c);
    CHECK(c->tree_size == 21);
    CHECK(c->root == *log->root(21));
    CHECK(c->log == "test-log");
    CHECK(c->time == tmp.clock.now());
    CHECK(verify_checkpoint(*c, log->public_key()).is_ok());
    // Only the public key is needed, and any change breaks the signature.
    auto pub = PublicKey::from_pem(log->public_key().pem());
    REQUIRE(pub);
    CHECK(verify_checkpoint(*c, *pub).is_ok());
    Checkpoint forged = *c;
    forged.tree_size = 20;
    CHECK_FALSE(verify_checkpoint(forged, *pub).is_ok());
    auto round = parse_checkpoint(to_json(*c));
    REQUIRE(round);
    CHECK(verify_checkpoint(*round, *pub).is_ok());
  }
  auto mode = std::filesystem::status(tmp.dir / "log.key").permissions();
  CHECK((mode & std::filesystem::perms::group_all) == std::filesystem::perms::none);
  CHECK((mode & std::filesystem::perms::others_all) == std::filesystem::perms::none);
  // Another key cannot take the log over.
  auto other = try_open(tmp, "other.key");
  REQUIRE_FALSE(other);
  CHECK(other.status().message().find("signed by another key") != std::string::npos);
}

TEST_CASE("a log whose stored tree differs from its signed checkpoint is refused", "[log]") {
  TempLog tmp;
  {
    auto log = open_log(tmp);
    for (int i = 0; i < 12; ++i)
      REQUIRE(log->append(entry(i)));
  }
  // Rewrite a stored subtree hash, as an attacker editing entries and nodes consistently would.
  edit(tmp, "UPDATE entries SET subtrees = zeroblob(96) WHERE idx = 7");
  auto log = try_open(tmp);
  REQUIRE_FALSE(log);
  CHECK(log.status().message().find("does not have the root its latest checkpoint signs") !=
        std::string::npos);
}

namespace {

// A log of 20 entries appended one by one (a batch, and a checkpoint, each), closed.
void write_log(TempLog& tmp) {
  auto log = open_log(tmp);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(log->append(entry(i)));
  }
}

std::vector<std::string> audit(const TempLog& tmp) {
  auto report = audit_log_file(tmp.path, std::nullopt);
  INFO(report.status().message());
  REQUIRE(report);
  return report->problems;
}

bool mentions(const std::vector<std::string>& problems, const std::string& text) {
  for (const auto& p : problems)
    if (p.find(text) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("audit verify passes an intact log and names every kind of damage", "[audit]") {
  SECTION("intact") {
    TempLog tmp;
    write_log(tmp);
    auto report = audit_log_file(tmp.path, std::nullopt);
    REQUIRE(report);
    CHECK(report->problems.empty());
    CHECK(report->entries == 20);
    CHECK(report->checkpoints >= 1);
  }
  SECTION("an entry edited in place") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp, "UPDATE entries SET body = replace(body, 'reason 5', 'reason X') WHERE idx = 5");
    CHECK(mentions(audit(tmp), "entry 5: its content does not match its stored leaf hash"));
  }
  SECTION("a decision flipped") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp, "UPDATE entries SET body = replace(body, '\"permit\"', '\"deny\"') WHERE idx = 7;");
    auto problems = audit(tmp);
    CHECK(mentions(problems, "entry 7: its content does not match"));
  }
  SECTION("an entry deleted") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp, "DELETE FROM entries WHERE idx = 3");
    auto problems = audit(tmp);
    CHECK(mentions(problems, "entry 3 is missing (deleted)"));
    // Sequential appends are one batch each, so a checkpoint at every size pins the entry down.
    CHECK(mentions(
        problems,
        "checkpoint at size 4: the entries do not have the root it signs: an entry from 3 to 3"));
  }
  SECTION("two entries swapped") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp,
         "UPDATE entries SET idx = -1 WHERE idx = 2; UPDATE entries SET idx = 2 WHERE idx = 3;"
         "UPDATE entries SET idx = 3 WHERE idx = -1;");
    auto problems = audit(tmp);
    CHECK(mentions(problems, "entry 2 says it is entry 3 (entries were moved or reordered)"));
    CHECK(mentions(problems, "entry 3 says it is entry 2"));
  }
  SECTION("an entry inserted at the end") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp,
         "INSERT INTO entries(idx, body, leaf, subtrees) SELECT 20, body, leaf, x'' FROM entries "
         "WHERE idx = 19");
    auto problems = audit(tmp);
    CHECK(mentions(problems, "entries 20 to 20 are not covered by any signed checkpoint"));
    CHECK(mentions(problems, "entry 20 says it is entry 19"));
  }
  SECTION("entries cut off at the end") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp, "DELETE FROM entries WHERE idx >= 15");
    CHECK(mentions(audit(tmp), "the log has only 15 entries (entries at the end were deleted)"));
  }
  SECTION("a tree node edited") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp, "UPDATE entries SET subtrees = zeroblob(96) WHERE idx = 7");
    CHECK(mentions(audit(tmp), "tree node level 2 index 1 (entries 4 to 7) differs"));
  }
  SECTION("a checkpoint forged") {
    TempLog tmp;
    write_log(tmp);
    edit(tmp, "UPDATE checkpoints SET body = replace(body, 'test-log', 'evil-log')");
    CHECK(mentions(audit(tmp), "the signature does not verify"));
  }
  SECTION("checked against another key") {
    TempLog tmp;
    write_log(tmp);
    auto other = SigningKey::load_or_create((tmp.dir / "other.key").string());
    REQUIRE(other);
    auto report = audit_log_file(tmp.path, other->public_key());
    REQUIRE(report);
    CHECK(mentions(report->problems, "signed by another key"));
  }
  SECTION("not a log at all") {
    TempLog tmp;
    edit(tmp, "CREATE TABLE t(x)");
    CHECK_FALSE(audit_log_file(tmp.path, std::nullopt));
  }
}

TEST_CASE("dsx audit verify reports through its exit status", "[audit]") {
  TempLog tmp;
  write_log(tmp);
  auto run = [](const std::string& args) { return run_dsx("audit verify " + args); };
  auto [ok, ok_out] = run("--db " + tmp.path);
  CHECK(ok == 0);
  CHECK(ok_out.rfind("ok: 20 entries, ", 0) == 0);
  edit(tmp, "DELETE FROM entries WHERE idx = 9");
  auto [bad, bad_out] = run("--db " + tmp.path);
  CHECK(bad == 1);
  CHECK(bad_out.find("entry 9 is missing (deleted)") != std::string::npos);
  CHECK(run("--db " + (tmp.dir / "nothing.db").string()).status == 2);
  CHECK(run("--db " + tmp.path + " --pubkey " + tmp.path).status == 2);
}

TEST_CASE("appends that returned survive SIGKILL at random moments", "[log][crash]") {
  TempLog tmp;
  const std::string key = (tmp.dir / "log.key").string();
  std::mt19937 rng(20261129);  // fixed seed: the same kill times in every run
  std::set<uint64_t> acknowledged;
  for (int round = 0; round < 6; ++round) {
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl(DSX_CRASH_WRITER, DSX_CRASH_WRITER, tmp.path.c_str(), key.c_str(), nullptr);
      _exit(127);
    }
    close(out[1]);
    // The kill comes at a random moment once the writer acknowledges appends: not a time from
    // its start, which a slow start (a sanitizer build on a busy machine) may not reach.
    std::string printed;
    char buf[65536];
    ssize_t n = 0;
    pollfd first{out[0], POLLIN, 0};
    while (printed.find('\n') == std::string::npos && poll(&first, 1, 60'000) == 1 &&
           (n = read(out[0], buf, sizeof buf)) > 0)
      printed.append(buf, static_cast<size_t>(n));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 250));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    while ((n = read(out[0], buf, sizeof buf)) > 0)
      printed.append(buf, static_cast<size_t>(n));
    close(out[0]);
    size_t pos = 0;
    while (true) {
      size_t nl = printed.find('\n', pos);
      if (nl == std::string::npos) break;  // a line cut by the kill was never acknowledged
      acknowledged.insert(std::stoull(printed.substr(pos, nl - pos)));
      pos = nl + 1;
    }
    // The log opens (its checkpoint vouches for it), holds every acknowledged entry and verifies.
    auto log = try_open(tmp);
    INFO(log.status().message());
    REQUIRE(log);
    const uint64_t size = (*log)->size();
    INFO("round " << round << ": " << acknowledged.size() << " acknowledged, size " << size);
    REQUIRE(!acknowledged.empty());
    CHECK(*acknowledged.rbegin() < size);
    log->reset();
    auto report = audit_log_file(tmp.path, std::nullopt);
    REQUIRE(report);
    CHECK(report->problems.empty());
    CHECK(report->entries == size);
  }
}

TEST_CASE("dsx audit log prints entries with filters", "[audit]") {
  TempLog tmp;
  {
    auto log = open_log(tmp);
    for (int i = 0; i < 10; ++i)
      REQUIRE(
          log->append(entry(i, i % 3 ? "urn:dsx:participant:alice" : "urn:dsx:participant:bob")));
  }
  auto run = [&](const std::string& args) {
    auto [status, out] = run_dsx("audit log --db " + tmp.path + " " + args);
    CHECK(status == 0);
    return out;
  };
  auto lines = [](const std::string& s) { return std::count(s.begin(), s.end(), '\n'); };
  std::string json = run("--json");
  CHECK(lines(json) == 10);
  CHECK(json.rfind("{\"action\":\"policy.decided\",\"actor\":\"urn:dsx:participant:bob\"", 0) == 0);
  CHECK(lines(run("--json --actor urn:dsx:participant:bob")) == 4);  // 0, 3, 6, 9
  CHECK(lines(run("--json --from 2 --to 4")) == 3);
  CHECK(lines(run("--json --action offer.published")) == 0);
  std::string text = run("--from 3 --to 3");
  CHECK(text.rfind("#3  ", 0) == 0);
  CHECK(text.find("policy.decided  by urn:dsx:participant:bob  urn:dsx:offer:3") !=
        std::string::npos);
}

TEST_CASE("the log exports as PROV-O JSON-LD", "[audit]") {
  TempLog tmp;
  {
    auto log = open_log(tmp);
    Entry offer = entry(0, "urn:dsx:participant:hospital");
    offer.action = "offer.published";
    offer.subjects = {"urn:dsx:offer:1", "urn:dsx:dataset:admissions"};
    REQUIRE(log->append(offer));
    Entry decided = entry(1, "urn:dsx:participant:broker");
    decided.subjects = {"urn:dsx:negotiation:9", "urn:dsx:offer:1"};
    REQUIRE(log->append(decided));
    Entry signed_agreement = entry(2, "urn:dsx:participant:broker");
    signed_agreement.action = "agreement.signed";
    signed_agreement.subjects = {"urn:dsx:agreement:3", "urn:dsx:negotiation:9"};
    REQUIRE(log->append(signed_agreement));
  }
  auto doc = export_prov(tmp.path);
  REQUIRE(doc);
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& node : (*doc)["@graph"]) {
    by_id[node["@id"].get<std::string>()].update(node);
  }
  CHECK(by_id["urn:dsx:participant:hospital"]["@type"] == "prov:Agent");
  CHECK(by_id["urn:dsx:dataset:admissions"]["@type"] == "prov:Entity");
  CHECK(by_id["urn:dsx:negotiation:9"]["@type"] == "prov:Activity");
  CHECK(by_id["urn:dsx:offer:1"]["prov:wasGeneratedBy"]["@id"] == "urn:dsx:log-entry:0");
  CHECK(by_id["urn:dsx:agreement:3"]["prov:wasAttributedTo"]["@id"] ==
        "urn:dsx:participant:broker");
  const auto& decision = by_id["urn:dsx:log-entry:1"];
  CHECK(decision["dsx:action"] == "policy.decided");
  CHECK(decision["prov:wasAssociatedWith"]["@id"] == "urn:dsx:participant:broker");
  CHECK(decision["prov:wasInformedBy"][0]["@id"] == "urn:dsx:negotiation:9");
  CHECK(decision["prov:used"][0]["@id"] == "urn:dsx:offer:1");
  CHECK((*doc)["@context"]["prov"] == "http://www.w3.org/ns/prov#");
}

TEST_CASE("append_async answers every entry once, with consecutive indices", "[log]") {
  TempLog tmp;
  auto log = open_log(tmp);
  std::mutex m;
  std::condition_variable cv;
  std::vector<uint64_t> indices;  // in the order the callbacks ran
  size_t failures = 0;
  constexpr size_t kCount = 2000;
  for (size_t i = 0; i < kCount; ++i)
    log->append_async(entry(static_cast<int>(i)), [&](dsx::Result<dsx::provenance::Receipt> r) {
      std::lock_guard lock(m);
      if (r)
        indices.push_back(r->index);
      else
        ++failures;
      cv.notify_one();
    });
  std::unique_lock lock(m);
  REQUIRE(cv.wait_for(lock, std::chrono::seconds(60),
                      [&] { return indices.size() + failures == kCount; }));
  CHECK(failures == 0);
  // Callers are answered in commit order: by increasing index.
  for (size_t i = 0; i < indices.size(); ++i)
    CHECK(indices[i] == i);
  CHECK(log->size() == kCount);
}

TEST_CASE("a prepared entry is logged as the entry itself, and reads back without its seq",
          "[log]") {
  TempLog tmp;
  auto log = open_log(tmp);
  Entry e = entry(7);
  e.details["text"] = "quotes \" and \\ and \u00e9";
  auto prepared = prepare(e);
  REQUIRE(prepared);
  // Without seq: canonical JSON of the other members, which reads back as the same entry.
  const std::string kept = prepared->without_seq();
  CHECK(kept.find("\"seq\"") == std::string::npos);
  auto doc = nlohmann::json::parse(kept);
  CHECK(doc["action"] == e.action);
  CHECK(doc["actor"] == e.actor);
  CHECK(doc["details"] == e.details);
  CHECK(doc["subjects"] == nlohmann::json(e.subjects));
  doc["seq"] = 0;
  auto back = parse_entry(doc.dump());
  REQUIRE(back);
  CHECK(back->time == e.time);

  std::promise<dsx::Result<Receipt>> done;
  log->append_async(std::move(*prepared), [&](dsx::Result<Receipt> r) { done.set_value(r); });
  auto receipt = done.get_future().get();
  REQUIRE(receipt);
  e.seq = receipt->index;
  auto text = log->entry_text(receipt->index);
  REQUIRE(text);
  CHECK(*text == *canonical(e));  // the bytes append_async(Entry) would have written

  // What prepare() did not make is refused, and has no text without seq.
  CHECK(PreparedEntry{}.without_seq().empty());
  std::promise<dsx::Result<Receipt>> refused;
  log->append_async(PreparedEntry{}, [&](dsx::Result<Receipt> r) { refused.set_value(r); });
  CHECK_FALSE(refused.get_future().get());
  CHECK(log->size() == 1);
}

TEST_CASE("the WAL is copied back while the log is open and stays bounded", "[log][wal]") {
  // Checkpoints run on the log's own thread; once the WAL holds 8 MB the writer waits for the
  // copy of the last commit, so that its next transaction starts the WAL over, and the file is
  // cut back to 8 MB. Rounds of 256 entries of 16 KB (4 MB per commit), 32 MB in all.
  TempLog tmp;
  auto log = open_log(tmp);
  const std::string padding(16 * 1024, 'p');
  constexpr int kRounds = 8, kPerRound = 256;
  constexpr uintmax_t kMB = 1024 * 1024;
  uintmax_t largest_wal = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::mutex m;
    std::condition_variable cv;
    int answered = 0, failed = 0;
    for (int i = 0; i < kPerRound; ++i) {
      Entry e = entry(round * kPerRound + i);
      e.details["padding"] = padding;
      log->append_async(e, [&](dsx::Result<Receipt> r) {
        std::lock_guard lock(m);
        ++answered;
        failed += r ? 0 : 1;
        cv.notify_one();
      });
    }
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(120), [&] { return answered == kPerRound; }));
    REQUIRE(failed == 0);
    largest_wal = std::max(largest_wal, std::filesystem::file_size(tmp.path + "-wal"));
  }
  CHECK(log->size() == uint64_t{kRounds * kPerRound});
  // The limit, plus what a round adds before the writer checks the size again (4 MB of entries,
  // a little more with their other members, the b-tree's pages and the frame headers).
  CHECK(largest_wal <= (8 + 5) * kMB);
  // Checkpoints copied the commits into the database file while the log was open (without them
  // it would still be nearly empty: the WAL holds the commits until a checkpoint).
  CHECK(std::filesystem::file_size(tmp.path) >= 16 * kMB);
}

TEST_CASE("a log file of another format is refused with a clear message", "[log]") {
  TempLog tmp;
  {
    auto log = open_log(tmp);
    REQUIRE(log->append(entry(0)));
  }
  edit(tmp, "UPDATE meta SET value = 'dsx-provenance-log/1' WHERE key = 'format'");
  auto log = try_open(tmp);
  REQUIRE_FALSE(log);
  CHECK(log.status().message().find("has format \"dsx-provenance-log/1\"") != std::string::npos);
}

TEST_CASE("an entry that may wait shares the next entry's commit, and is written at close",
          "[log]") {
  TempLog tmp;
  std::atomic<int> answered{0};
  std::atomic<uint64_t> first_index{99};
  const auto count = [&](const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(tmp.path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
  };
  {
    auto log = open_log(tmp);
    log->append_async(
        entry(0),
        [&](dsx::Result<Receipt> r) {
          if (r) first_index = r->index;
          ++answered;
        },
        std::chrono::minutes(10));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(answered == 0);  // waiting for company, ten minutes at most
    CHECK(log->size() == 0);
    auto second = log->append(entry(1));  // does not wait, and takes the first along
    REQUIRE(second);
    CHECK(second->index == 1);
    CHECK(answered == 1);  // answered in index order, so before the second
    CHECK(first_index == 0);
    CHECK(count("SELECT COUNT(*) FROM checkpoints") == 1);  // one commit for both
    log->append_async(
        entry(2), [&](dsx::Result<Receipt> r) { answered += r ? 1 : 100; },
        std::chrono::minutes(10));
  }  // closing writes what waits
  CHECK(answered == 2);
  auto reopened = open_log(tmp);
  CHECK(reopened->size() == 3);
}
