#pragma once
// The broker's configuration: flags and an optional JSON config file (flags win), with defaults
// that work out of the box. docs/operations.md lists every key. Plain value.
//
//   {"listen": "127.0.0.1:8443", "data": "./dsx-data", "cert": "broker-cert/",
//    "crl": "ca/crl.pem", "tls12": false, "ioThreads": 2, "workerThreads": 32,
//    "limits": {"maxBodyBytes": 1048576, "maxHeaderBytes": 8192, "readTimeoutSeconds": 10,
//               "idleTimeoutSeconds": 60, "handshakeTimeoutSeconds": 10,
//               "maxConnections": 10000, "maxConnectionsPerParticipant": 64,
//               "channelQueueEvents": 1000},
//    "catalog": {"pageSize": 50, "maxPageSize": 500}, "negotiationTimeoutSeconds": 604800,
//    "transferRendezvousSeconds": 30}

#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/status.h"

namespace dsx::broker {

struct Limits {
  uint64_t max_body_bytes = 1 << 20;
  uint32_t max_header_bytes = 8192;
  uint32_t read_timeout_seconds = 10;       // a request must arrive whole within this
  uint32_t idle_timeout_seconds = 60;       // keep-alive connections idle longer are closed
  uint32_t handshake_timeout_seconds = 10;  // TCP accept to finished TLS handshake
  uint32_t max_connections = 10000;
  uint32_t max_connections_per_participant = 64;
  // Events waiting in memory for one control channel (4 MiB at most); beyond, it reads them from
  // the store.
  uint32_t channel_queue_events = 1000;
};

struct BrokerConfig {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8443;  // 0: any free port (tests)
  std::filesystem::path data_dir = "dsx-data";
  std::filesystem::path cert_dir;  // cert.pem, key.pem, ca.pem (dsx certs issue --role broker)
  std::filesystem::path crl_file;  // empty: no CRL (a warning at start-up)
  bool allow_tls12 = false;
  uint32_t io_threads = 2;
  uint32_t worker_threads = 32;
  uint32_t crl_check_interval_ms = 1000;
  Limits limits;
  uint32_t catalog_page_size = 50;
  uint32_t catalog_max_page_size = 500;
  // A negotiation waiting this long for its next message is terminated ("timed out").
  uint32_t negotiation_timeout_seconds = 7 * 24 * 3600;
  // The first of a transfer's data upload and download waits this long for the other.
  uint32_t transfer_rendezvous_seconds = 30;
};

// "HOST:PORT", "[v6]:PORT".
Status parse_listen(std::string_view text, BrokerConfig& config);
// Applies the members present in a config file's JSON; unknown keys are an error (typos).
Status apply_config_json(const nlohmann::json& doc, BrokerConfig& config);
Status load_config_file(const std::filesystem::path& file, BrokerConfig& config);
// Checks ranges and that the files exist; the message names the setting.
Status validate(const BrokerConfig& config);

}  // namespace dsx::broker
