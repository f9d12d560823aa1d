#pragma once
// Internal to connectors/ (the CLI never includes it): how every connection to the broker is
// opened, shared by the HTTPS Client and the control Channel. A participant's TLS context holds
// its certificate and key and trusts the data space CA alone; connect_tls dials, handshakes and
// checks that the broker's certificate names the host dialled. The calls block, but run
// asynchronous operations on the caller's io_context underneath, because Beast's timeouts only
// bound asynchronous operations: a dead broker ends a call after config.timeout, not never.
// Not thread-safe: the owner of the io_context and the stream calls these from one thread.

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <filesystem>
#include <utility>

#include "common/status.h"
#include "connectors/client.h"

namespace dsx::connectors::detail {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// Loads cert.pem, key.pem and ca.pem from `cert_dir` into `ctx` (a tls_client context) and makes
// it verify the peer. The error names the file.
Status load_participant_context(boost::asio::ssl::context& ctx,
                                const std::filesystem::path& cert_dir);

// Resolves config.host, connects (TCP_NODELAY), then the TLS handshake with SNI; the broker's
// certificate must chain to ca.pem and name config.host (DNS or IP SAN). `session` (may be null)
// is offered for resumption. Each step is bounded by config.timeout. On an error the stream is
// unusable; the message says which step failed and why.
Status connect_tls(boost::asio::io_context& ioc, TlsStream& stream, const ClientConfig& config,
                   SSL_SESSION* session);

// The completion handler of every blocking call in connectors/: records the error and that the
// operation finished. One handler type for all call sites means Asio's and Beast's composed
// operations (several layers deep over TLS) are instantiated once per operation, not once per
// call site, which is most of these files' compile time.
struct OpDone {
  boost::system::error_code* ec;
  bool* done;
  template <typename... Rest>
  void operator()(boost::system::error_code e, Rest&&...) const {
    *ec = e;
    *done = true;
  }
};

// Starts an asynchronous operation with `start(handler)` and runs `ioc` until the handler has
// run; returns the operation's error. The operation's own deadline (the tcp_stream's expiry, or
// the websocket's timeouts) must bound it.
template <typename Start>
boost::system::error_code run_op(boost::asio::io_context& ioc, Start&& start) {
  boost::system::error_code result;
  bool done = false;
  std::forward<Start>(start)(OpDone{&result, &done});
  ioc.restart();
  while (!done && ioc.run_one() > 0) {
  }
  return result;
}

}  // namespace dsx::connectors::detail
