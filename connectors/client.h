#pragma once
// An HTTPS client for participants (connectors, auditors, the CLI): mutual TLS with the
// participant's certificate folder (cert.pem, key.pem, ca.pem from `dsx certs issue`), the broker
// verified against ca.pem and by host name, keep-alive, JSON bodies. Blocking and simple: one
// request at a time. Not thread-safe: one Client per thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dsx::connectors {

struct ClientConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8443;
  std::filesystem::path cert_dir;
  std::chrono::seconds timeout{30};
};

// "https://HOST:PORT" (port defaults to 8443).
Status parse_broker_url(std::string_view url, ClientConfig& config);

struct Reply {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // The first header with this name (case-insensitive), or "".
  std::string header(std::string_view name) const;
  // Every value of the header (e.g. several Link headers).
  std::vector<std::string> headers_named(std::string_view name) const;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> connect(const ClientConfig& config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One request; reconnects once when the kept-alive connection was closed meanwhile. An error
  // Status for transport failures (refused handshake, timeout); HTTP errors are Replies.
  Result<Reply> request(std::string_view method, std::string_view target,
                        std::string_view body = {},
                        std::string_view content_type = "application/json");

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The error of a reply that is not 2xx, in one line: "403 forbidden: ... needs the role provider".
std::string describe_error(const Reply& reply);

}  // namespace dsx::connectors
