// The broker's SQLite store (broker/store.h) on its own: group commit, events handed to the sink
// in id order, and a WAL that stays bounded and is rewritten in place.
#include "broker/store.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "tests/temp_dir.h"

namespace {

namespace fs = std::filesystem;

using dsx::testing::TempDir;

dsx::broker::StoredNegotiation negotiation(int i, size_t offer_bytes) {
  dsx::broker::StoredNegotiation n;
  n.provider_pid = "urn:uuid:p-" + std::to_string(i);
  n.consumer_pid = "urn:uuid:c-" + std::to_string(i);
  n.consumer = "urn:dsx:participant:leiden";
  n.provider = "urn:dsx:participant:acme";
  n.dataset = "urn:dsx:dataset:d";
  n.offer = "\"" + std::string(offer_bytes, 'o') + "\"";
  n.context = "{}";
  n.state = "REQUESTED";
  return n;
}

}  // namespace

TEST_CASE("the store hands each commit's events to its sink, in id order", "[store]") {
  TempDir dir("dsx-store-test");
  std::mutex m;  // before the store: its sink uses them until the store is gone
  std::vector<dsx::broker::StoredEvent> seen;
  auto store = dsx::broker::open_sqlite_store((dir.path / "broker.db").string());
  REQUIRE(store);
  (*store)->set_event_sink([&](const std::vector<dsx::broker::StoredEvent>& events) {
    std::lock_guard lock(m);
    seen.insert(seen.end(), events.begin(), events.end());
  });
  for (int i = 0; i < 3; ++i) {
    const auto n = negotiation(i, 10);
    dsx::broker::Transition t;
    t.negotiation = &n;
    t.events.push_back({0, "urn:dsx:participant:acme", R"({"type":"a"})"});
    t.events.push_back({0, "urn:dsx:participant:leiden", R"({"type":"b"})"});
    REQUIRE((*store)->commit(t));
  }
  std::lock_guard lock(m);
  REQUIRE(seen.size() == 6);
  for (size_t i = 1; i < seen.size(); ++i)
    CHECK(seen[i].id > seen[i - 1].id);
  CHECK(seen[0].recipient == "urn:dsx:participant:acme");
  CHECK(seen[1].body == R"({"type":"b"})");
  // The same events, as a channel catching up reads them.
  auto read = (*store)->events_for("urn:dsx:participant:leiden", 0, 100);
  REQUIRE(read);
  REQUIRE(read->size() == 3);
  CHECK((*read)[0].id == seen[1].id);
  // Dropped once delivered: hidden at once, and not twice.
  (*store)->drop_delivered_event(seen[1].id);
  read = (*store)->events_for("urn:dsx:participant:leiden", 0, 100);
  REQUIRE(read);
  CHECK(read->size() == 2);
  auto again = (*store)->ack_event("urn:dsx:participant:leiden", seen[1].id);
  REQUIRE(again);
  CHECK_FALSE(*again);
}

TEST_CASE("the store's WAL stays bounded and is rewritten in place, not regrown", "[store]") {
  TempDir dir("dsx-store-test");
  const fs::path db = dir.path / "broker.db";
  const fs::path wal = dir.path / "broker.db-wal";
  auto store = dsx::broker::open_sqlite_store(db.string());
  REQUIRE(store);
  // About 17 pages a commit: past the 8,000 frames at which the committer restarts the WAL.
  constexpr int kCommits = 600;
  uintmax_t largest = 0;
  for (int i = 0; i < kCommits; ++i) {
    const auto n = negotiation(i, 64 * 1024);
    dsx::broker::Transition t;
    t.negotiation = &n;
    REQUIRE((*store)->commit(t));
    largest = std::max(largest, fs::file_size(wal));
  }
  const uintmax_t now = fs::file_size(wal);
  INFO("largest " << largest << " bytes, now " << now);
  CHECK(largest < (48u << 20));  // about kRestartFrames' worth
  // Restarted, not truncated: the file kept its size, the later commits overwrote it.
  CHECK(now == largest);
  for (int i : {0, kCommits / 2, kCommits - 1}) {
    auto found = (*store)->negotiation("urn:uuid:p-" + std::to_string(i));
    REQUIRE(found);
    REQUIRE(*found);
    CHECK((*found)->offer.size() == 64 * 1024 + 2);
  }
}

TEST_CASE("reading events skips acknowledged ones and still fills the page", "[store]") {
  // A channel takes a short page for "caught up": acknowledged rows whose deletion has not
  // committed yet must not shorten it.
  TempDir dir("dsx-store-test");
  auto store = dsx::broker::open_sqlite_store((dir.path / "broker.db").string());
  REQUIRE(store);
  const auto n = negotiation(0, 10);
  dsx::broker::Transition t;
  t.negotiation = &n;
  for (int i = 0; i < 150; ++i)
    t.events.push_back({0, "urn:dsx:participant:acme", "{}"});
  REQUIRE((*store)->commit(t));
  auto all = (*store)->events_for("urn:dsx:participant:acme", 0, 1000);
  REQUIRE(all);
  REQUIRE(all->size() == 150);
  for (size_t i = 0; i < 10; ++i)
    (*store)->drop_delivered_event((*all)[i].id);
  auto page = (*store)->events_for("urn:dsx:participant:acme", 0, 100);
  REQUIRE(page);
  CHECK(page->size() == 100);
  CHECK(page->front().id == (*all)[10].id);
  auto rest = (*store)->events_for("urn:dsx:participant:acme", page->back().id, 100);
  REQUIRE(rest);
  CHECK(rest->size() == 40);
}

TEST_CASE("a transition rewrites its rows in place and never takes another's consumer pid",
          "[store]") {
  TempDir dir("dsx-store-test");
  auto opened = dsx::broker::open_sqlite_store((dir.path / "broker.db").string());
  REQUIRE(opened);
  dsx::broker::Store& store = **opened;
  auto commit = [&](const dsx::broker::StoredNegotiation& n,
                    const dsx::broker::StoredAgreement* a = nullptr) {
    dsx::broker::Transition t;
    t.negotiation = &n;
    t.agreement = a;
    return store.commit(t);
  };

  auto n = negotiation(1, 10);
  REQUIRE(commit(n));
  n.state = "AGREED";
  n.agreement_id = "urn:uuid:a-1";
  n.last_message = R"({"@type":"ContractAgreementMessage"})";
  dsx::broker::StoredAgreement a;
  a.id = n.agreement_id;
  a.provider_pid = n.provider_pid;
  a.dataset = n.dataset;
  a.provider = n.provider;
  a.consumer = n.consumer;
  a.body = "{}";
  REQUIRE(commit(n, &a));
  a.retired = true;
  a.retired_reason = "licence withdrawn";
  REQUIRE(commit(n, &a));

  auto read = store.negotiation(n.provider_pid);
  REQUIRE(read);
  REQUIRE(*read);
  CHECK((*read)->state == "AGREED");
  CHECK((*read)->agreement_id == "urn:uuid:a-1");
  CHECK((*read)->last_message == n.last_message);
  auto by_consumer = store.negotiation_by_consumer_pid(n.consumer, n.consumer_pid);
  REQUIRE(by_consumer);
  REQUIRE(*by_consumer);
  CHECK((*by_consumer)->provider_pid == n.provider_pid);
  auto agreement = store.agreement("urn:uuid:a-1");
  REQUIRE(agreement);
  REQUIRE(*agreement);
  CHECK((*agreement)->retired);
  CHECK((*agreement)->retired_reason == "licence withdrawn");

  // Another negotiation claiming the same consumer pid fails alone; the first one stays.
  // (INSERT OR REPLACE used to delete the first to make room.)
  auto other = negotiation(2, 10);
  other.consumer_pid = n.consumer_pid;
  CHECK_FALSE(commit(other));
  auto still = store.negotiation(n.provider_pid);
  REQUIRE(still);
  CHECK(*still);
  auto gone = store.negotiation(other.provider_pid);
  REQUIRE(gone);
  CHECK_FALSE(*gone);
  CHECK(commit(negotiation(3, 10)));  // and the store goes on
}
