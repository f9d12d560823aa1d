#pragma once
// Events: the broker's outbox of events for participants' control channels. The events
// themselves are rows of the Store, written in the same transaction as the state change they
// report (broker/negotiations.cpp); this class reads and acknowledges them and wakes the
// channel of a participant when new ones were committed.
//
// Thread-safe. read() and ack() block on the store: call them from the worker pool. notify()
// and subscribe() only take a mutex; wake callbacks run in the notifying thread and must only
// post work elsewhere.

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
  explicit Events(Store& store) : store_(store) {}  // `store` must outlive this

  // At most `limit` events for `participant` with an id above `after`, oldest first.
  Result<std::vector<StoredEvent>> read(const std::string& participant, uint64_t after,
                                        size_t limit = 100);
  // Drops an event its recipient has handled; false when it was not theirs or already gone.
  Result<bool> ack(const std::string& participant, uint64_t id);

  // Calls `wake` after each notify(participant) until the subscription is destroyed. A new
  // subscription of the same participant replaces the old one, whose `replaced` runs once
  // (one channel per participant).
  class Subscription;
  std::unique_ptr<Subscription> subscribe(const std::string& participant,
                                          std::function<void()> wake,
                                          std::function<void()> replaced);
  void notify(const std::string& participant);

 private:
  struct Listener {
    uint64_t token;
    std::function<void()> wake, replaced;
  };
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
