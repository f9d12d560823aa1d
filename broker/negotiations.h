#pragma once
// Negotiations: the Dataspace Protocol 2025-1 contract negotiation in the broker (docs/api.md,
// "Contract negotiation"). The broker plays the provider's side towards the consumer and relays
// each step to the real provider; protocol::next_state decides every transition.
//
// Every transition is one store transaction holding the new state, the events it sends (the
// control channel's outbox) and the provenance entries that record it (the log's outbox); the
// entries are appended to the log after the commit, and again at start-up if the broker stopped
// in between. So nothing is sent that is not recorded, and a restart loses nothing.
//
// Thread-safe: handlers run on the worker pool. A transition holds the lock of its negotiation
// (one of kStripes mutexes, by providerPid; a first request by consumer and consumerPid) from
// reading the state to the durable commit (a first request holds both), so two messages for one
// negotiation never interleave while different negotiations proceed side by side and share the
// store's group commits. The state is read from a cache of negotiations in progress. The
// reply waits for the store's commit, not for the log: the entries are durable in the outbox
// and reach the log a moment later. Calls block on SQLite.

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/catalog.h"
#include "broker/config.h"
#include "broker/router.h"
#include "broker/store.h"
#include "common/clock.h"
#include "provenance/log.h"
#include "provenance/signing.h"

namespace dsx::broker {

class Negotiations {
 public:
  // All references must outlive this. `key` signs agreements (the log's key: auditors already
  // hold its public key).
  Negotiations(const BrokerConfig& config, Store& store, provenance::Log& log,
               provenance::SigningKey key, const Catalog& catalog, const Clock& clock,
               std::string broker_id);

  // Appends the provenance entries a crash left in the outbox, then terminates negotiations
  // that waited too long.
  Status recover();
  void add_routes(Router& router);
  // Terminates every open negotiation idle for longer than negotiationTimeoutSeconds; returns
  // how many.
  Result<size_t> expire_idle();

  struct Message;  // one parsed incoming message

 private:
  HttpResponse request(const HttpRequest& r, const Caller& c);
  HttpResponse get(const Caller& c, const std::string& pid);
  HttpResponse receive(const HttpRequest& r, const Caller& c, const std::string& pid,
                       const std::string& route);
  HttpResponse list(const Caller& c);
  HttpResponse agreements(const Caller& c);
  HttpResponse agreement(const Caller& c, const std::string& id);
  // An agreement with its negotiation's consumerPid and state, as the management routes show it.
  nlohmann::json agreement_view(const StoredAgreement& a);
  HttpResponse retire(const HttpRequest& r, const Caller& c, const std::string& id);

  // Commits `t` (durable on return; its events go to open channels) and queues its log entries.
  // The caller holds the stripe of t.negotiation's providerPid, if it has one.
  Status commit(Transition& t);
  std::mutex& stripe(const std::string& key);
  // The negotiation as last committed: from the cache when it is there, else from the store.
  // The caller holds its stripe.
  Result<std::optional<StoredNegotiation>> current(const std::string& provider_pid);

  const BrokerConfig& config_;
  Store& store_;
  provenance::Log& log_;
  const provenance::SigningKey key_;
  const Catalog& catalog_;
  const Clock& clock_;
  const std::string broker_id_;  // the actor of the broker's own entries

  // One is held across each read-decide-commit of a negotiation (and of its agreement), so
  // across a durable commit. Two negotiations that hash to the same stripe wait for each other:
  // with 58 requests in flight (the negotiation bench) and 64 stripes, more than half of them
  // shared a stripe with another (1 - (63/64)^57), and the workers blocked about 1,000 times a
  // second on these locks. With 4096 (160 KB of mutexes), about 1.4 %.
  static constexpr size_t kStripes = 4096;
  std::array<std::mutex, kStripes> stripes_;

  // Negotiations in progress as their last commit left them, so that the next message of each
  // (the broker handles three or four per negotiation, a few milliseconds apart) needs no read of
  // the store. An entry is written only after a durable commit and under the negotiation's
  // stripe (so it is never older than the row), dropped when the negotiation ends or a commit
  // fails, and at most kCached are kept (further ones are read from the store).
  static constexpr size_t kCached = 8192;
  std::mutex cache_mutex_;
  std::unordered_map<std::string, StoredNegotiation> cache_;  // guarded by cache_mutex_
};

}  // namespace dsx::broker
