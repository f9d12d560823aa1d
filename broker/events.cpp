#include "broker/events.h"

namespace dsx::broker {

Result<std::vector<StoredEvent>> Events::read(const std::string& participant, uint64_t after,
                                              size_t limit) {
  return store_.events_for(participant, after, limit);
}

Result<bool> Events::ack(const std::string& participant, uint64_t id) {
  return store_.ack_event(participant, id);
}

std::unique_ptr<Events::Subscription> Events::subscribe(const std::string& participant,
                                                        std::function<void()> wake,
                                                        std::function<void()> replaced) {
  std::function<void()> evicted;
  uint64_t token;
  {
    std::lock_guard lock(mutex_);
    token = next_token_++;
    auto it = listeners_.find(participant);
    if (it != listeners_.end()) evicted = std::move(it->second.replaced);
    listeners_[participant] = Listener{token, std::move(wake), std::move(replaced)};
  }
  if (evicted) evicted();
  return std::make_unique<Subscription>(*this, participant, token);
}

void Events::notify(const std::string& participant) {
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    auto it = listeners_.find(participant);
    if (it == listeners_.end()) return;
    wake = it->second.wake;
  }
  wake();
}

void Events::unsubscribe(const std::string& participant, uint64_t token) {
  std::lock_guard lock(mutex_);
  auto it = listeners_.find(participant);
  if (it != listeners_.end() && it->second.token == token) listeners_.erase(it);
}

}  // namespace dsx::broker
