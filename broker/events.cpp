#include "broker/events.h"

namespace dsx::broker {

Events::Events(Store& store) : store_(store) {
  store_.set_event_sink([this](const std::vector<StoredEvent>& events) { deliver(events); });
}

Events::~Events() {
  store_.set_event_sink(nullptr);  // waits for a delivery under way
}

Result<std::vector<StoredEvent>> Events::read(const std::string& participant, uint64_t after,
                                              size_t limit) {
  return store_.events_for(participant, after, limit);
}

Result<bool> Events::ack(const std::string& participant, uint64_t id) {
  return store_.ack_event(participant, id);
}

void Events::ack_delivered(uint64_t id) {
  store_.drop_delivered_event(id);
}

std::unique_ptr<Events::Subscription> Events::subscribe(const std::string& participant, Push push,
                                                        std::function<void()> replaced) {
  std::function<void()> evicted;
  uint64_t token;
  {
    std::lock_guard lock(mutex_);
    token = next_token_++;
    auto it = listeners_.find(participant);
    if (it != listeners_.end()) evicted = std::move(it->second.replaced);
    listeners_[participant] = Listener{token, std::move(push), std::move(replaced)};
  }
  if (evicted) evicted();
  return std::make_unique<Subscription>(*this, participant, token);
}

void Events::deliver(const std::vector<StoredEvent>& events) {
  // Under the mutex, so that a subscription being replaced or destroyed does not miss or outlive
  // a push; the callbacks only post.
  std::lock_guard lock(mutex_);
  for (const StoredEvent& e : events) {
    auto it = listeners_.find(e.recipient);
    if (it != listeners_.end()) it->second.push(e);
  }
}

void Events::unsubscribe(const std::string& participant, uint64_t token) {
  std::lock_guard lock(mutex_);
  auto it = listeners_.find(participant);
  if (it != listeners_.end() && it->second.token == token) listeners_.erase(it);
}

}  // namespace dsx::broker
