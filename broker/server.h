#pragma once
// The broker's HTTPS server (Boost.Asio + Beast, C++20 coroutines): accept -> TLS handshake
// (client certificate required) -> read request -> run the route on the worker pool -> write the
// response, one coroutine per connection on its own strand, in the style of Beast's
// listen/session examples.
//
// Limits against abuse: a maximum of connections overall and per participant, a handshake
// timeout, an idle timeout between requests, a read timeout once a request has begun (so a
// slowloris client is closed), header and body size limits (431 / 413). Handlers never run on
// an I/O thread: the server awaits them on its worker pool.
//
// A request to upgrade GET /channel to a WebSocket becomes the participant's control channel
// (docs/api.md): the events of `events` are pushed to it, and acknowledged through it.
//
// PUT and GET /transfers/{pid}/data (given a RelayAuthority) are served by the relay
// (broker/relay.h) as soon as their header is read: the body streams, without the body limit.
//
// stop() is graceful: the acceptor closes, idle connections are closed, requests in progress
// finish and get their response, then run() returns (connections still busy after the drain
// timeout are cut). Thread-safe: stop() may be called from any thread; the other methods from the
// owner's thread.

#include <cstdint>
#include <memory>

#include "broker/config.h"
#include "broker/events.h"
#include "broker/logger.h"
#include "broker/metrics.h"
#include "broker/relay.h"
#include "broker/router.h"
#include "broker/tls.h"
#include "common/status.h"

namespace dsx::broker {

class Server {
 public:
  // Everything passed in must outlive the server. `events` may be null (no control channel),
  // `relay` too (no data routes: they go to the router).
  Server(const BrokerConfig& config, const Router& router, Metrics& metrics, Logger& logger,
         TlsContexts& tls, Events* events = nullptr, RelayAuthority* relay = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; port() is valid afterwards (useful with port 0).
  Status listen();
  uint16_t port() const;
  // Serves until stop() (or SIGINT/SIGTERM when `stop_on_signals`); uses config.io_threads
  // threads including the caller's.
  void run(bool stop_on_signals = false);
  void stop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsx::broker
