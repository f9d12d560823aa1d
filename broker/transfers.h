#pragma once
// Transfers: the Dataspace Protocol 2025-1 transfer process in the broker (docs/api.md,
// "Transfers"), its control plane only: the DSP messages, the consumer's encryption key, the
// policy at transfer time, events and provenance. The bytes themselves go through the relay
// (broker/relay.h), which asks data_access() before and calls record_relay() after.
//
// Same design as broker/negotiations.h: protocol::next_state decides every transition; each
// transition is one store transaction with its events and provenance entries (the outboxes);
// a transition holds the lock of its transfer (a stripe, by providerPid; a first request by
// consumer and consumerPid) from reading the state to the durable commit.
//
// Thread-safe: every call blocks on SQLite, so call from the worker pool only.

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "broker/config.h"
#include "broker/router.h"
#include "broker/store.h"
#include "common/clock.h"
#include "provenance/log.h"

namespace dsx::broker {

// What the relay may move for one transfer (see data_access).
struct DataAccess {
  std::string provider_pid, consumer_pid, provider, consumer, agreement_id, dataset;
  uint64_t from_chunk = 0;
};

class Transfers {
 public:
  // All references must outlive this.
  Transfers(const BrokerConfig& config, Store& store, provenance::Log& log, const Clock& clock,
            std::string broker_id);
  ~Transfers();

  // Terminates STARTED transfers whose policy no longer holds (see expire()).
  Status recover();
  void add_routes(Router& router);
  // Terminates every STARTED transfer whose agreement's policy no longer holds now (its
  // dateTime window closed, the agreement was retired), code policy-expired; returns how many.
  Result<size_t> expire();

  // The caller may upload (provider, `upload`) / download (consumer) this transfer's data now:
  // it exists, the caller is that party, it is STARTED. Errors: kNotFound (404: no such transfer,
  // or not the caller's in that role), kFailedPrecondition (409: not STARTED).
  Result<DataAccess> data_access(const Caller& caller, const std::string& provider_pid,
                                 bool upload);
  // After a relay: logs transfer.relayed {bytes, sha256 (hex, of the bytes relayed), fromChunk,
  // manifest (the provider's signed manifest JSON text, may be empty), complete} and stores
  // relayed_sha256 + manifest. Blocking (store/log): call from the worker pool.
  Status record_relay(const std::string& provider_pid, uint64_t from_chunk, uint64_t bytes,
                      const std::string& sha256_hex, const std::string& manifest_json,
                      bool complete);

 private:
  HttpResponse put_key(const HttpRequest& r, const Caller& c);
  HttpResponse get_key(const std::string& participant);
  HttpResponse request(const HttpRequest& r, const Caller& c);
  HttpResponse get(const Caller& c, const std::string& pid);
  HttpResponse receive(const HttpRequest& r, const Caller& c, const std::string& pid,
                       const std::string& step);
  HttpResponse list(const Caller& c);

  Status commit(Transition& t);
  std::mutex& stripe(const std::string& key);

  const BrokerConfig& config_;
  Store& store_;
  provenance::Log& log_;
  const Clock& clock_;
  const std::string broker_id_;

  // As Negotiations' stripes: one is held across a durable commit, so two transfers sharing one
  // wait for each other's fsync. Transfers are fewer at once than negotiations.
  static constexpr size_t kStripes = 1024;
  std::array<std::mutex, kStripes> stripes_;
};

}  // namespace dsx::broker
