#pragma once
// An HTTPS client for participants (connectors, auditors, the CLI): mutual TLS with the
// participant's certificate folder (cert.pem, key.pem, ca.pem from `dsx certs issue`), the broker
// verified against ca.pem and by host name, keep-alive, JSON bodies. Blocking and simple: one
// request at a time, whole bodies (request) or bodies streamed in pieces through callbacks
// (upload, download: the encrypted relay). Not thread-safe: one Client per thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
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

  using Headers = std::vector<std::pair<std::string, std::string>>;
  // Fills the front of `out` with the next bytes of a body and returns how many (0 only when
  // `out` is empty); an error aborts the upload and is returned as it is.
  using BodySource = std::function<Result<size_t>(std::span<uint8_t> out)>;
  // Takes the next piece of a body; an error aborts the download (the connection is closed).
  using BodySink = std::function<Status(std::span<const uint8_t> piece)>;
  // Sees the status and headers of a 2xx reply before its body; an error aborts the download.
  using HeadersSink = std::function<Status(const Reply& head)>;

  // Sends `method target` with a body of exactly `content_length` bytes (application/octet-stream)
  // taken from `source` in pieces of up to `piece_size` bytes, and reads the reply whole. Each
  // write and the reply are bounded by the configured timeout (a receiver that stops reading
  // stalls the writes: that is the backpressure). A peer that answers before taking the whole
  // body (a refusal) gets its reply returned; the connection is then closed.
  Result<Reply> upload(std::string_view method, std::string_view target, const Headers& headers,
                       uint64_t content_length, const BodySource& source,
                       size_t piece_size = 256 * 1024);

  // GET `target`: a 2xx reply's headers go to `on_headers`, then its body to `on_piece` as it
  // arrives (pieces of at most `piece_size` bytes), each read bounded by the configured timeout;
  // the Reply returned has the status and headers and an empty body. A reply that is not 2xx is
  // read whole (as request() does) and returned with its body, without calling the sinks.
  Result<Reply> download(std::string_view target, const Headers& headers,
                         const HeadersSink& on_headers, const BodySink& on_piece,
                         size_t piece_size = 256 * 1024);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The error of a reply that is not 2xx, in one line: "403 forbidden: ... needs the role provider".
std::string describe_error(const Reply& reply);

// An id as one URL path segment: characters a path may not hold are percent-encoded (ids are
// normally urn:uuid:..., which pass unchanged).
std::string path_segment(std::string_view id);

}  // namespace dsx::connectors
