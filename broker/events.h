#pragma once
// Events: the broker's outbox of events for participants' control channels. The events
// themselves are rows of the Store, written in the same transaction as the state change they
// report (broker/negotiations.cpp). As each commit becomes durable the store hands its events to
// this class, which passes them on to the recipient's open channel, if there is one, so that a
// channel sends them without reading them back; read() serves a channel catching up (a new
// connection, or one that fell behind), ack() and ack_delivered() drop what was handled.
//
// Thread-safe. read() and ack() block on the store: call them from the worker pool.
// ack_delivered(), subscribe() and the store's hand-over only take mutexes; `push` and `replaced`
// callbacks run on the store's committer thread or the subscribing thread and must only post work
// elsewhere.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/store.h"

namespace dsx::broker {

class Events {
 public:
  // Becomes `store`'s event sink until destroyed; `store` must outlive this.
  explicit Events(Store& store);
  ~Events();
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;

  // At most `limit` events for `participant` with an id above `after`, oldest first.
  Result<std::vector<StoredEvent>> read(const std::string& participant, uint64_t after,
                                        size_t limit = 100);
  // Drops an event its recipient has handled; false when it was not theirs or already gone.
  Result<bool> ack(const std::string& participant, uint64_t id);
  // The same for an event the caller delivered to this recipient itself: no check, no wait.
  void ack_delivered(uint64_t id);

  // Calls `push` with each event for `participant` committed while the subscription lives, in
  // id order. A new subscription of the same participant replaces the old one, whose `replaced`
  // runs once (one channel per participant).
  class Subscription;
  using Push = std::function<void(const StoredEvent&)>;
  std::unique_ptr<Subscription> subscribe(const std::string& participant, Push push,
                                          std::function<void()> replaced);

 private:
  struct Listener {
    uint64_t token;
    Push push;
    std::function<void()> replaced;
  };
  void deliver(const std::vector<StoredEvent>& events);  // the store's sink
  void unsubscribe(const std::string& participant, uint64_t token);

  Store& store_;
  std::mutex mutex_;  // guards listeners_ and next_token_
  std::map<std::string, Listener> listeners_;
  uint64_t next_token_ = 1;
};

class Events::Subscription {
 public:
  Subscription(Events& events, std::string participant, uint64_t token)
      : events_(events), participant_(std::move(participant)), token_(token) {}
  ~Subscription() { events_.unsubscribe(participant_, token_); }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

 private:
  Events& events_;
  std::string participant_;
  uint64_t token_;
};

}  // namespace dsx::broker
