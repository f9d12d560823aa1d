#pragma once
// The control channel (docs/api.md, "The control channel"): a WebSocket at GET /channel over the
// same mutual TLS as Client, on which the broker pushes negotiation events, oldest first, and
// the connector acknowledges the ones it has handled ({"ack": [IDs]}). Unacknowledged events come
// again on the next connection.
//
// Channel is one connection: blocking calls, not thread-safe (one thread owns it). Channel::run
// is the long-running loop around it: reconnects with capped, jittered exponential backoff
// (Backoff), and remembers the ids of handled events in a state file (HandledEvents), so that a
// handler sees each event id once across reconnections and restarts. Both are plain values
// owned by the caller.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"
#include "connectors/client.h"

namespace dsx::connectors {

// One event as the broker pushed it.
struct Event {
  uint64_t id = 0;
  std::string type;     // "negotiation.requested", "negotiation.agreed", ...
  nlohmann::json body;  // the whole message: id, type, time, negotiation, message
};

// Reads one channel message; an error (naming the member) for anything but an object with an
// unsigned "id" and a string "type".
Result<Event> parse_event(std::string_view text);

class Channel {
 public:
  // Connects (TLS as Client::connect) and upgrades GET /channel to a WebSocket. A connection
  // that receives nothing, not even an answer to the pings sent when idle, for `idle_timeout`
  // is taken for dead. Errors: kFailedPrecondition when the broker cannot be reached (worth a
  // retry), kInvalidArgument for unreadable certificate files or a refused upgrade (4xx).
  static Result<std::unique_ptr<Channel>> connect(
      const ClientConfig& config, std::chrono::seconds idle_timeout = std::chrono::seconds(60));
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // The next event, or nullopt when none arrived within `wait`. Pings are answered meanwhile.
  // Errors: kInvalidArgument when the broker sent something that is not an event (the channel
  // stays usable); kFailedPrecondition when the connection is lost (the Channel is then dead).
  Result<std::optional<Event>> next_event(std::chrono::milliseconds wait);
  // Tells the broker the event was handled, so it is not sent again. Acknowledgements go in
  // batches ({"ack": [ids]}): when kAckBatch are waiting, when the oldest has waited kAckDelay
  // (checked here and while next_event waits), on flush_acks() and on close(). One lost with
  // the connection only means the event comes again on the next one (HandledEvents drops it).
  // An error when the connection is lost.
  Status ack(uint64_t id);
  Status flush_acks();
  static constexpr size_t kAckBatch = 64;
  static constexpr std::chrono::milliseconds kAckDelay{100};
  // Sends the acknowledgements waiting, then closes the WebSocket politely (also done by the
  // destructor).
  void close();

  // Delays between reconnection attempts: `initial`, doubled after each failure up to `max`,
  // each drawn uniformly from [d/2, d] so that connectors restarted together do not come back
  // in step. Deterministic for a given seed.
  class Backoff {
   public:
    explicit Backoff(std::chrono::milliseconds initial = std::chrono::milliseconds(500),
                     std::chrono::milliseconds max = std::chrono::seconds(30), uint64_t seed = 0);
    std::chrono::milliseconds next();
    void reset() { attempt_ = 0; }

   private:
    std::chrono::milliseconds initial_, max_;
    unsigned attempt_ = 0;
    uint64_t state_;
  };

  // The ids of the events handled, in a small JSON file ({"handled": [ids]}) rewritten
  // atomically (temporary file, fsync, rename) on every change. Ids below the first event of a
  // connection are forgotten: the broker resends every unacknowledged event, in order, so those
  // were acknowledged; at most kMaxRemembered are kept in any case.
  class HandledEvents {
   public:
    static constexpr size_t kMaxRemembered = 10000;
    // An empty path keeps the ids in memory only; a missing file is an empty set.
    static Result<HandledEvents> open(std::filesystem::path file,
                                      size_t max_remembered = kMaxRemembered);
    bool contains(uint64_t id) const { return ids_.count(id) != 0; }
    Status add(uint64_t id);
    Status forget_below(uint64_t id);
    size_t size() const { return ids_.size(); }

   private:
    Status save() const;
    std::filesystem::path file_;
    size_t max_ = kMaxRemembered;
    std::set<uint64_t> ids_;
  };

  // Handles one event; an error leaves it unacknowledged (it comes again after a reconnection).
  using Handler = std::function<Status(const Event&)>;

  struct RunOptions {
    std::chrono::seconds idle_timeout{60};
    // Set: return once connected and no event came for this long (the backlog is handled), and
    // return an error instead of reconnecting. Unset: run until `stop` says so.
    std::optional<std::chrono::milliseconds> return_when_quiet;
    std::function<bool()> stop;                    // polled about every 200 ms; may be empty
    std::function<void(const std::string&)> note;  // connection news, one line each
    Backoff backoff;
  };

  // Connects, hands each event not yet in `handled` to `handler`, records and acknowledges it
  // after the handler succeeded (events already handled are only acknowledged), and reconnects
  // after a lost connection or a failed handler. Returns OK when stopped (or quiet), an error
  // when it cannot go on: a refused upgrade, unreadable certificates, the state file, or in
  // return_when_quiet mode any failure.
  static Status run(const ClientConfig& config, RunOptions& options, HandledEvents& handled,
                    const Handler& handler);

  struct Impl;

 private:
  explicit Channel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsx::connectors
