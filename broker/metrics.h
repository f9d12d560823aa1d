#pragma once
// The broker's counters, exposed at GET /metrics in the Prometheus text format (0.0.4):
//   dsx_connections_open, dsx_connections_total, dsx_channels_open,
//   dsx_channel_events_total{source} (pushed as committed, or read back from the store),
//   dsx_requests_total{route,status}, dsx_handshake_failures_total{reason},
//   dsx_limit_violations_total{limit}, dsx_provenance_log_entries, dsx_catalog_datasets,
//   dsx_relay_active, dsx_relay_bytes_total, dsx_relay_buffered_bytes (broker/relay.h).
// Thread-safe: any thread may count; gauges read from callbacks at scrape time.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace dsx::broker {

class Metrics {
 public:
  void connection_opened() {
    ++open_;
    ++total_;
  }
  void connection_closed() { --open_; }
  int64_t connections_open() const { return open_.load(); }
  void channel_opened() { ++channels_; }
  void channel_closed() { --channels_; }
  // An event sent on a channel: read back from the store (catching up), or pushed as committed.
  void channel_event(bool from_store) { ++(from_store ? events_read_ : events_pushed_); }

  // The relay: relays in progress, bytes delivered to consumers, bytes held in relay buffers.
  void relay_started() { ++relays_; }
  void relay_ended() { --relays_; }
  void relay_bytes(uint64_t n) { relay_bytes_ += n; }
  std::atomic<int64_t>& relay_buffered() { return relay_buffered_; }
  int64_t relays_active() const { return relays_.load(); }
  uint64_t relay_bytes_total() const { return relay_bytes_.load(); }

  void request(const std::string& route, int status);
  void handshake_failure(const std::string& reason);
  void limit_violation(const std::string& limit);

  // A gauge read at scrape time (e.g. the log's size).
  void gauge(std::string name, std::string help, std::function<double()> read);

  std::string prometheus_text() const;

 private:
  std::atomic<int64_t> open_{0};
  std::atomic<uint64_t> total_{0};
  std::atomic<int64_t> channels_{0};
  std::atomic<uint64_t> events_pushed_{0}, events_read_{0};
  std::atomic<int64_t> relays_{0};
  std::atomic<uint64_t> relay_bytes_{0};
  std::atomic<int64_t> relay_buffered_{0};
  mutable std::mutex mutex_;  // guards the maps below
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> handshake_failures_;
  std::map<std::string, uint64_t> limit_violations_;
  struct Gauge {
    std::string name, help;
    std::function<double()> read;
  };
  std::vector<Gauge> gauges_;
};

}  // namespace dsx::broker
