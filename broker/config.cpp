#include "broker/config.h"

#include <charconv>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/json.h"

namespace dsx::broker {
namespace {

using json = nlohmann::json;

template <typename T>
Status read_uint(const json& doc, const char* key, T& out, uint64_t min, uint64_t max,
                 const std::string& where) {
  auto it = doc.find(key);
  if (it == doc.end()) return Status::ok();
  if (!it->is_number_unsigned() || it->get<uint64_t>() < min || it->get<uint64_t>() > max)
    return Status::invalid_argument(where + key + ": expected an integer from " +
                                    std::to_string(min) + " to " + std::to_string(max));
  out = static_cast<T>(it->get<uint64_t>());
  return Status::ok();
}

Status unknown_keys(const json& doc, std::initializer_list<const char*> known,
                    const std::string& where) {
  for (const auto& [k, v] : doc.items()) {
    bool ok = false;
    for (const char* name : known)
      ok = ok || k == name;
    if (!ok) return Status::invalid_argument(where + k + ": unknown setting");
  }
  return Status::ok();
}

}  // namespace

Status parse_listen(std::string_view text, BrokerConfig& config) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size())
    return Status::invalid_argument("listen: expected HOST:PORT, got \"" + std::string(text) +
                                    "\"");
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const std::string_view p = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || end != p.data() + p.size() || port > 65535 || host.empty())
    return Status::invalid_argument(
        "listen: expected HOST:PORT with a port from 0 to 65535, got \"" + std::string(text) +
        "\"");
  config.listen_host = std::string(host);
  config.listen_port = static_cast<uint16_t>(port);
  return Status::ok();
}

Status apply_config_json(const json& doc, BrokerConfig& c) {
  if (!doc.is_object()) return Status::invalid_argument("the config file must hold a JSON object");
  if (Status s = unknown_keys(doc,
                              {"listen", "data", "cert", "crl", "tls12", "ioThreads",
                               "workerThreads", "crlCheckIntervalMs", "limits", "catalog",
                               "negotiationTimeoutSeconds", "transferRendezvousSeconds"},
                              "");
      !s)
    return s;
  auto str = [&](const char* key, auto&& set) -> Status {
    auto it = doc.find(key);
    if (it == doc.end()) return Status::ok();
    if (!it->is_string() || it->get<std::string>().empty())
      return Status::invalid_argument(std::string(key) + ": expected a non-empty string");
    return set(it->get<std::string>());
  };
  for (Status s :
       {str("listen", [&](const std::string& v) { return parse_listen(v, c); }),
        str("data",
            [&](const std::string& v) {
              c.data_dir = v;
              return Status::ok();
            }),
        str("cert",
            [&](const std::string& v) {
              c.cert_dir = v;
              return Status::ok();
            }),
        str("crl",
            [&](const std::string& v) {
              c.crl_file = v;
              return Status::ok();
            }),
        read_uint(doc, "ioThreads", c.io_threads, 1, 256, ""),
        read_uint(doc, "workerThreads", c.worker_threads, 1, 256, ""),
        read_uint(doc, "crlCheckIntervalMs", c.crl_check_interval_ms, 10, 3'600'000, ""),
        read_uint(doc, "negotiationTimeoutSeconds", c.negotiation_timeout_seconds, 1,
                  366 * 24 * 3600, ""),
        read_uint(doc, "transferRendezvousSeconds", c.transfer_rendezvous_seconds, 1, 3600, "")})
    if (!s) return s;
  if (auto it = doc.find("tls12"); it != doc.end()) {
    if (!it->is_boolean()) return Status::invalid_argument("tls12: expected true or false");
    c.allow_tls12 = it->get<bool>();
  }
  if (auto it = doc.find("limits"); it != doc.end()) {
    const json& l = *it;
    if (!l.is_object()) return Status::invalid_argument("limits: expected an object");
    const std::string w = "limits.";
    for (Status s :
         {unknown_keys(l,
                       {"maxBodyBytes", "maxHeaderBytes", "readTimeoutSeconds",
                        "idleTimeoutSeconds", "handshakeTimeoutSeconds", "maxConnections",
                        "maxConnectionsPerParticipant", "channelQueueEvents"},
                       w),
          read_uint(l, "maxBodyBytes", c.limits.max_body_bytes, 1024, uint64_t{1} << 32, w),
          read_uint(l, "maxHeaderBytes", c.limits.max_header_bytes, 1024, 1 << 20, w),
          read_uint(l, "readTimeoutSeconds", c.limits.read_timeout_seconds, 1, 3600, w),
          read_uint(l, "idleTimeoutSeconds", c.limits.idle_timeout_seconds, 1, 86400, w),
          read_uint(l, "handshakeTimeoutSeconds", c.limits.handshake_timeout_seconds, 1, 3600, w),
          read_uint(l, "maxConnections", c.limits.max_connections, 1, 1'000'000, w),
          read_uint(l, "maxConnectionsPerParticipant", c.limits.max_connections_per_participant, 1,
                    1'000'000, w),
          read_uint(l, "channelQueueEvents", c.limits.channel_queue_events, 1, 1'000'000, w)})
      if (!s) return s;
  }
  if (auto it = doc.find("catalog"); it != doc.end()) {
    const json& cat = *it;
    if (!cat.is_object()) return Status::invalid_argument("catalog: expected an object");
    for (Status s : {unknown_keys(cat, {"pageSize", "maxPageSize"}, "catalog."),
                     read_uint(cat, "pageSize", c.catalog_page_size, 1, 100000, "catalog."),
                     read_uint(cat, "maxPageSize", c.catalog_max_page_size, 1, 100000, "catalog.")})
      if (!s) return s;
  }
  return Status::ok();
}

Status load_config_file(const std::filesystem::path& file, BrokerConfig& config) {
  std::ifstream in(file);
  if (!in) return Status::invalid_argument(file.string() + ": cannot read the config file");
  std::stringstream text;
  text << in.rdbuf();
  auto doc = parse_json_text(text.str());
  if (!doc) return Status::invalid_argument(file.string() + ": " + doc.status().message());
  if (Status s = apply_config_json(*doc, config); !s)
    return Status::invalid_argument(file.string() + ": " + s.message());
  return Status::ok();
}

Status validate(const BrokerConfig& c) {
  if (c.cert_dir.empty())
    return Status::invalid_argument(
        "cert: the broker needs its certificate folder (dsx certs issue --role broker ... --out "
        "DIR, then --cert DIR)");
  for (const char* f : {"cert.pem", "key.pem", "ca.pem"})
    if (!std::filesystem::exists(c.cert_dir / f))
      return Status::invalid_argument("cert: " + (c.cert_dir / f).string() + " does not exist");
  if (!c.crl_file.empty() && !std::filesystem::exists(c.crl_file))
    return Status::invalid_argument("crl: " + c.crl_file.string() + " does not exist");
  if (c.catalog_page_size > c.catalog_max_page_size)
    return Status::invalid_argument("catalog.pageSize is larger than catalog.maxPageSize");
  return Status::ok();
}

}  // namespace dsx::broker
