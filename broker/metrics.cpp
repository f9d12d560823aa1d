#include "broker/metrics.h"

#include <sstream>

namespace dsx::broker {
namespace {

// A label value with the exposition format's escapes.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

void Metrics::request(const std::string& route, int status) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
}

void Metrics::handshake_failure(const std::string& reason) {
  std::lock_guard lock(mutex_);
  ++handshake_failures_[reason];
}

void Metrics::limit_violation(const std::string& limit) {
  std::lock_guard lock(mutex_);
  ++limit_violations_[limit];
}

void Metrics::gauge(std::string name, std::string help, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  gauges_.push_back({std::move(name), std::move(help), std::move(read)});
}

std::string Metrics::prometheus_text() const {
  std::ostringstream out;
  out << "# HELP dsx_connections_open TLS connections open now.\n"
         "# TYPE dsx_connections_open gauge\n"
      << "dsx_connections_open " << open_.load() << "\n"
      << "# HELP dsx_connections_total TCP connections accepted.\n"
         "# TYPE dsx_connections_total counter\n"
      << "dsx_connections_total " << total_.load() << "\n"
      << "# HELP dsx_channels_open Control channels (WebSockets) open now.\n"
         "# TYPE dsx_channels_open gauge\n"
      << "dsx_channels_open " << channels_.load() << "\n"
      << "# HELP dsx_channel_events_total Events sent on control channels, by where the broker "
         "took them from: pushed as they committed, or read back from its store (a channel "
         "opening or catching up).\n"
         "# TYPE dsx_channel_events_total counter\n"
      << "dsx_channel_events_total{source=\"pushed\"} " << events_pushed_.load() << "\n"
      << "dsx_channel_events_total{source=\"store\"} " << events_read_.load() << "\n"
      << "# HELP dsx_relay_active Data relays (paired uploads and downloads) in progress.\n"
         "# TYPE dsx_relay_active gauge\n"
      << "dsx_relay_active " << relays_.load() << "\n"
      << "# HELP dsx_relay_bytes_total Bytes relayed from providers to consumers.\n"
         "# TYPE dsx_relay_bytes_total counter\n"
      << "dsx_relay_bytes_total " << relay_bytes_.load() << "\n"
      << "# HELP dsx_relay_buffered_bytes Bytes held in relay buffers now.\n"
         "# TYPE dsx_relay_buffered_bytes gauge\n"
      << "dsx_relay_buffered_bytes " << relay_buffered_.load() << "\n";
  std::lock_guard lock(mutex_);
  out << "# HELP dsx_requests_total HTTP requests answered, by route and status.\n"
         "# TYPE dsx_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out << "dsx_requests_total{route=\"" << label(key.first) << "\",status=\"" << key.second
        << "\"} " << n << "\n";
  out << "# HELP dsx_handshake_failures_total TLS handshakes refused or failed, by reason.\n"
         "# TYPE dsx_handshake_failures_total counter\n";
  for (const auto& [reason, n] : handshake_failures_)
    out << "dsx_handshake_failures_total{reason=\"" << label(reason) << "\"} " << n << "\n";
  out << "# HELP dsx_limit_violations_total Requests or connections refused by a limit.\n"
         "# TYPE dsx_limit_violations_total counter\n";
  for (const auto& [limit, n] : limit_violations_)
    out << "dsx_limit_violations_total{limit=\"" << label(limit) << "\"} " << n << "\n";
  for (const Gauge& g : gauges_)
    out << "# HELP " << g.name << " " << g.help << "\n# TYPE " << g.name << " gauge\n"
        << g.name << " " << g.read() << "\n";
  return out.str();
}

}  // namespace dsx::broker
