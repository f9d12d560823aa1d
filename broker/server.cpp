#include "broker/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <unordered_set>

#include "broker/on_pool.h"
#include "broker/relay.h"
#include "broker/store.h"
#include "broker/tls_stream.h"
#include "certs/identity.h"
#include "certs/pem.h"
#include "common/json.h"

namespace dsx::broker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

constexpr auto kDrainTimeout = 10s;  // stop(): how long requests in progress may finish
constexpr auto kTlsCloseTimeout = 2s;

// One connection, as stop() sees it: whether it is inside a request, and how to cut it.
// Shared by the session and the server's set; the cancel posted to the strand holds it too,
// since the session may end (and the server forget it) before that runs.
struct SessionHandle : std::enable_shared_from_this<SessionHandle> {
  std::mutex mutex;  // guards stream
  TlsStream* stream = nullptr;
  asio::any_io_executor executor;  // the session's strand
  std::atomic<bool> busy{false};

  void cancel() {
    std::lock_guard lock(mutex);
    if (!stream) return;
    asio::post(executor, [self = shared_from_this()] {
      std::lock_guard inner(self->mutex);
      if (self->stream) self->stream->cancel();
    });
  }
};

}  // namespace

// The I/O context with execution_context::shutdown() public: see ~Impl.
class IoContext : public asio::io_context {
 public:
  using asio::io_context::io_context;
  using asio::io_context::shutdown;
};

class Server::Impl {
 public:
  Impl(const BrokerConfig& config, const Router& router, Metrics& metrics, Logger& logger,
       TlsContexts& tls, Events* events, RelayAuthority* relay)
      : config_(config),
        router_(router),
        metrics_(metrics),
        logger_(logger),
        tls_(tls),
        events_(events),
        ioc_(static_cast<int>(config.io_threads)),
        workers_(config.worker_threads),
        acceptor_(ioc_),
        crl_timer_(ioc_) {
    if (relay)
      relays_ = std::make_unique<Relays>(config, metrics, logger, *relay, workers_.get_executor());
  }

  // After run() has returned. A coroutine can still be suspended in the stopped context: a
  // session whose call on the worker pool outlived stop()'s deadline has its completion queued
  // there. Shutting the context down destroys those frames now, while the state they release
  // (connection slots, the session list, the relays) still exists; ioc_ is the first member
  // and would otherwise destroy them last, after that state. Objects bound to ioc_ (the
  // acceptor, timers) may be destroyed after a shutdown: its services live until ioc_ goes.
  ~Impl() { ioc_.shutdown(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  Status listen() {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(config_.listen_host, ec);
    if (ec) {
      // A host name: resolve it (at start-up only).
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(config_.listen_host, "", ec);
      if (ec || results.empty())
        return Status::invalid_argument("listen: cannot resolve " + config_.listen_host + ": " +
                                        ec.message());
      address = results.begin()->endpoint().address();
    }
    const tcp::endpoint endpoint(address, config_.listen_port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Status::invalid_argument("listen: cannot listen on " + config_.listen_host + ":" +
                                      std::to_string(config_.listen_port) + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    return Status::ok();
  }

  uint16_t port() const { return port_; }

  void run(bool stop_on_signals) {
    // OpenSSL writes the socket itself (TlsStream), without MSG_NOSIGNAL: a peer gone mid-write
    // (a consumer leaving a relay) must be an EPIPE error, not a SIGPIPE that ends the broker.
    std::signal(SIGPIPE, SIG_IGN);
    asio::signal_set signals(ioc_);
    if (stop_on_signals) {
      signals.add(SIGINT);
      signals.add(SIGTERM);
      signals.async_wait([this](boost::system::error_code ec, int signal) {
        if (ec) return;
        logger_.info("broker.signal", {{"signal", signal == SIGINT ? "SIGINT" : "SIGTERM"}});
        stop();
      });
    }
    asio::co_spawn(ioc_, accept_loop(), asio::detached);
    asio::co_spawn(ioc_, crl_loop(), asio::detached);
    std::vector<std::thread> threads;
    for (uint32_t i = 1; i < config_.io_threads; ++i)
      threads.emplace_back([this] { ioc_.run(); });
    ioc_.run();
    for (auto& t : threads)
      t.join();
    workers_.join();
  }

  void stop() {
    asio::post(ioc_, [this] {
      if (stopping_.exchange(true)) return;
      logger_.info("broker.stopping", {{"connections", metrics_.connections_open()}});
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      crl_timer_.cancel();
      if (relays_) relays_->stop();
      for_each_session([](SessionHandle& s) {
        if (!s.busy) s.cancel();
      });
      asio::co_spawn(ioc_, drain(), asio::detached);
    });
  }

 private:
  template <typename Fn>
  void for_each_session(Fn fn) {
    std::lock_guard lock(sessions_mutex_);
    for (const auto& s : sessions_)
      fn(*s);
  }

  awaitable<void> drain() {
    asio::steady_timer timer(ioc_);
    const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
    for (;;) {
      {
        std::lock_guard lock(sessions_mutex_);
        if (sessions_.empty()) break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        for_each_session([](SessionHandle& s) { s.cancel(); });
        deadline_passed_ = true;
      }
      timer.expires_after(20ms);
      co_await timer.async_wait(kTuple);
      if (deadline_passed_ && std::chrono::steady_clock::now() > deadline + 2s) break;
    }
    ioc_.stop();
  }

  awaitable<void> accept_loop() {
    while (!stopping_) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), kTuple);
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) co_return;
        log_accept_failure(ec);
        continue;
      }
      metrics_.connection_opened();
      // Replies larger than one TLS record would otherwise wait for the client's delayed ACK
      // (Nagle): ~40 ms per catalog page.
      boost::system::error_code nodelay_ec;
      socket.set_option(tcp::no_delay(true), nodelay_ec);
      if (static_cast<uint64_t>(metrics_.connections_open()) > config_.limits.max_connections) {
        metrics_.limit_violation("max_connections");
        metrics_.connection_closed();
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto handle = std::make_shared<SessionHandle>();
      handle->executor = socket.get_executor();
      {
        std::lock_guard lock(sessions_mutex_);
        sessions_.insert(handle);
      }
      auto executor = socket.get_executor();
      asio::co_spawn(executor, session(std::move(socket), handle),
                     [this, handle](std::exception_ptr e) {
                       if (e) {
                         try {
                           std::rethrow_exception(e);
                         } catch (const std::exception& ex) {
                           logger_.error("session.crashed", {{"error", ex.what()}});
                         }
                       }
                       metrics_.connection_closed();
                       std::lock_guard lock(sessions_mutex_);
                       sessions_.erase(handle);
                     });
    }
  }

  // Every crl_check_interval: re-read the CRL when its file changed (on the worker pool: it is
  // disk work).
  awaitable<void> crl_loop() {
    if (config_.crl_file.empty()) co_return;
    for (;;) {
      crl_timer_.expires_after(std::chrono::milliseconds(config_.crl_check_interval_ms));
      auto [ec] = co_await crl_timer_.async_wait(kTuple);
      if (ec || stopping_) co_return;
      co_await on_pool(workers_.get_executor(), [this] { reload_crl(); });
    }
  }

  void reload_crl() {
    Result<bool> reloaded = tls_.reload_if_changed();
    if (!reloaded)
      logger_.error("crl.reload_failed",
                    {{"file", config_.crl_file.string()}, {"error", reloaded.status().message()}});
    else if (*reloaded)
      logger_.info("crl.reloaded", {{"file", config_.crl_file.string()}});
  }

  void log_accept_failure(const boost::system::error_code& ec) {
    logger_.warn("accept.failed", {{"error", ec.message()}});
  }

  // Holds one of a participant's connection slots.
  class Slot {
   public:
    Slot(Impl& impl, std::string id) : impl_(impl), id_(std::move(id)) {}
    ~Slot() {
      if (!taken_) return;
      std::lock_guard lock(impl_.participants_mutex_);
      if (--impl_.per_participant_[id_] == 0) impl_.per_participant_.erase(id_);
    }
    bool take() {
      std::lock_guard lock(impl_.participants_mutex_);
      uint32_t& n = impl_.per_participant_[id_];
      if (n >= impl_.config_.limits.max_connections_per_participant) {
        if (n == 0) impl_.per_participant_.erase(id_);
        return false;
      }
      ++n;
      taken_ = true;
      return true;
    }

   private:
    Impl& impl_;
    std::string id_;
    bool taken_ = false;
  };

  using Stream = TlsStream;

  // Replies and log lines are built in plain functions: GCC 12 miscompiles initializer lists
  // inside coroutines ("array used as initializer").
  static HttpResponse refusal(int status, const char* code, std::string reason) {
    return error_response(status, "Error", code, std::vector<std::string>{std::move(reason)});
  }

  void log_handshake_failure(const std::string& peer, const std::string& reason,
                             const std::string& error) {
    metrics_.handshake_failure(reason);
    logger_.warn("tls.handshake_failed",
                 nlohmann::json{{"peer", peer}, {"reason", reason}, {"error", error}});
  }

  void log_request(const Caller& caller, const HttpRequest& request, const std::string& route,
                   const HttpResponse& response, double ms) {
    metrics_.request(route, response.status);
    nlohmann::json fields = {{"participant", caller.identity.participant_id},
                             {"method", request.method},
                             {"path", request.path},
                             {"route", route},
                             {"status", response.status},
                             {"ms", std::round(ms * 1000) / 1000}};
    if (!response.error_code.empty()) fields["code"] = response.error_code;
    logger_.log(response.status >= 500 ? Logger::Level::kError : Logger::Level::kInfo, "request",
                std::move(fields));
  }

  HttpResponse run_route(const HttpRequest& request, const Caller& caller, std::string& route) {
    try {
      return router_.handle(request, caller, &route);
    } catch (const std::exception& e) {
      logger_.error("handler.failed", nlohmann::json{{"route", route}, {"error", e.what()}});
      return refusal(500, "internal", "the broker failed to answer; the error is logged");
    }
  }

  // Writes `response` and reports whether the connection may stay open.
  awaitable<bool> send(Stream& stream, const HttpResponse& response, unsigned version,
                       bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(response.status), version};
    res.set(http::field::server, "dsx-broker");
    res.set(http::field::content_type, response.content_type);
    for (const auto& [k, v] : response.headers)
      res.insert(k, v);
    res.body() = response.body;
    res.keep_alive(keep_alive && !stopping_);
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(config_.limits.read_timeout_seconds));
    auto [ec, n] = co_await http::async_write(stream, res, kTuple);
    co_return !ec && res.keep_alive();
  }

  awaitable<void> session(tcp::socket socket, std::shared_ptr<SessionHandle> handle) {
    const std::shared_ptr<asio::ssl::context> context = tls_.current();
    Stream stream(std::move(socket), context->native_handle());
    {
      std::lock_guard lock(handle->mutex);
      handle->stream = &stream;
    }
    struct Unregister {
      SessionHandle& h;
      ~Unregister() {
        std::lock_guard lock(h.mutex);
        h.stream = nullptr;
      }
    } unregister{*handle};
    std::string peer;
    {
      boost::system::error_code ec;
      auto ep = stream.socket().remote_endpoint(ec);
      if (!ec) peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    }

    stream.expires_after(std::chrono::seconds(config_.limits.handshake_timeout_seconds));
    auto [hs_ec, hs_n] = co_await stream.async_handshake(kTuple);
    if (hs_ec) {
      const long verify = SSL_get_verify_result(stream.native_handle());
      const std::string reason = hs_ec == beast::error::timeout
                                     ? "timeout"
                                     : handshake_failure_reason(verify, hs_ec.message());
      log_handshake_failure(peer, reason, hs_ec.message());
      co_return;
    }
    auto identity = certs::read_identity(SSL_get0_peer_certificate(stream.native_handle()));
    if (!identity) {
      log_handshake_failure(peer, "bad_identity", identity.status().message());
      co_await send(stream,
                    refusal(403, "bad-certificate",
                            "the client certificate carries no valid dsx identity: " +
                                identity.status().message()),
                    11, false);
      co_return;
    }
    const Caller caller{std::move(*identity),
                        certs::to_pem(SSL_get0_peer_certificate(stream.native_handle()))};
    Slot slot(*this, caller.identity.participant_id);
    if (!slot.take()) {
      metrics_.limit_violation("max_connections_per_participant");
      co_await send(stream,
                    refusal(429, "too-many-connections",
                            caller.identity.participant_id + " already has " +
                                std::to_string(config_.limits.max_connections_per_participant) +
                                " connections open; reuse them (keep-alive) or close some"),
                    11, false);
      co_return;
    }

    beast::flat_buffer buffer;
    bool open = true;
    while (open && !stopping_) {
      handle->busy = false;
      // Idle: wait for the next request without holding a buffer (memory per idle
      // connection, docs/performance.md).
      if (buffer.size() == 0) {
        buffer.shrink_to_fit();
        stream.expires_after(std::chrono::seconds(config_.limits.idle_timeout_seconds));
        auto [ec, n] = co_await stream.async_wait_readable(kTuple);
        if (ec) break;  // idle timeout, or stop()
      }
      handle->busy = true;
      // A request has begun: it must arrive whole within the read timeout. The header first:
      // the data routes stream their bodies (relay_request), the others are read whole.
      http::request_parser<http::string_body> parser;
      parser.header_limit(config_.limits.max_header_bytes);
      parser.body_limit(boost::none);  // known once the route is
      stream.expires_after(std::chrono::seconds(config_.limits.read_timeout_seconds));
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      if (!ec && relays_) {
        HttpRequest request;
        if (parse_target(std::string(parser.get().target()), request) &&
            Relays::data_route(request.path)) {
          open = co_await relay_request(stream, buffer, parser.get(), std::move(request), caller);
          continue;
        }
      }
      if (!ec) {
        const auto length = parser.content_length();
        if (length && *length > config_.limits.max_body_bytes) {
          ec = http::error::body_limit;
        } else {
          parser.body_limit(config_.limits.max_body_bytes);  // counts chunked bodies
          auto [body_ec, body_n] = co_await http::async_read(stream, buffer, parser, kTuple);
          ec = body_ec;
        }
      }
      if (ec) {
        HttpResponse reply;
        if (ec == http::error::body_limit) {
          metrics_.limit_violation("body_size");
          reply = refusal(413, "body-too-large",
                          "the body is larger than " +
                              std::to_string(config_.limits.max_body_bytes) + " bytes");
        } else if (ec == http::error::header_limit) {
          metrics_.limit_violation("header_size");
          reply = refusal(431, "headers-too-large",
                          "the headers are larger than " +
                              std::to_string(config_.limits.max_header_bytes) + " bytes");
        } else if (ec == beast::error::timeout) {
          metrics_.limit_violation("read_timeout");
          log_handshake_failure(caller.identity.participant_id, "read_timeout", ec.message());
          break;  // a slow client gets its connection closed
        } else if (ec == http::error::end_of_stream || ec == asio::ssl::error::stream_truncated) {
          break;
        } else {
          reply = refusal(400, "bad-request", "malformed HTTP request: " + ec.message());
        }
        metrics_.request("invalid", reply.status);
        co_await send(stream, reply, 11, false);
        break;
      }
      auto& req = parser.get();
      if (websocket::is_upgrade(req) && events_ && req.target() == "/channel") {
        handle->busy = false;  // a channel is idle between events: stop() may cut it
        co_await channel(stream, caller, parser.release());
        co_return;
      }
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      request.content_type = std::string(req[http::field::content_type]);
      request.host = std::string(req[http::field::host]);
      request.body = std::move(req.body());
      std::string route = "invalid";
      const auto t0 = std::chrono::steady_clock::now();
      HttpResponse response;
      if (Status s = parse_target(request.target, request); !s) {
        response = refusal(400, "bad-target", s.message());
      } else {
        response = co_await on_pool(workers_.get_executor(),
                                    [&] { return run_route(request, caller, route); });
      }
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      log_request(caller, request, route, response, ms);
      open = co_await send(stream, response, req.version(), req.keep_alive());
    }
    handle->busy = true;
    stream.expires_after(kTlsCloseTimeout);
    co_await stream.async_shutdown(kTuple);
  }

  // PUT/GET /transfers/{pid}/data: the relay serves it; whether the connection stays open.
  awaitable<bool> relay_request(Stream& stream, beast::flat_buffer& buffer,
                                const Relays::RequestHead& header, HttpRequest request,
                                const Caller& caller) {
    request.method = std::string(header.method_string());
    request.target = std::string(header.target());
    const auto t0 = std::chrono::steady_clock::now();
    Relays::Outcome outcome = co_await relays_->serve(stream, buffer, header, request, caller);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    HttpResponse logged;
    if (outcome.reply) logged = *outcome.reply;
    logged.status = outcome.status;
    log_request(caller, request, outcome.route, logged, ms);
    if (outcome.reply && outcome.status >= 400 && outcome.status < 500) {
      // Into the provenance log like every other route's refusals (Router::handle does it
      // for those), on a worker: the log append blocks.
      co_await on_pool(workers_.get_executor(), [&] {
        router_.report_refusal(caller, request, *outcome.reply, outcome.route);
      });
    }
    if (!outcome.reply) co_return outcome.keep_alive;
    co_return co_await send(stream, *outcome.reply, header.version(), outcome.keep_alive);
  }

  // The control channel (docs/api.md): sends the participant's unacknowledged events, oldest
  // first, and reads acknowledgements. Two loops on the connection's strand: this one writes, a
  // spawned one reads; whichever ends first (peer closed, error, stop(), a newer channel of the
  // same participant) ends the other.
  //
  // Where the events come from. On opening, and whenever it fell behind, the writer reads them
  // from the store (on a worker): all those above `sent`, the last id it wrote. Otherwise the
  // store hands each committed event to Events, which posts it here (`queued`), in id order, and
  // the writer sends it without reading it back. The subscription exists before the first read,
  // so nothing committed falls between the two; what both bring (committed before the read,
  // posted after) is skipped by id. More than limits.channel_queue_events or kMaxQueuedBytes
  // waiting means a slow connector: the queue is dropped and the writer reads from the store
  // again (`behind`), so a connector that does not read costs the broker no more memory than
  // that.
  struct ChannelState {
    explicit ChannelState(const asio::any_io_executor& ex)
        : wake(ex, asio::steady_timer::time_point::max()) {}
    asio::steady_timer wake;  // cancelled to wake the writer
    bool closed = false;      // the reader ended, or the channel was replaced
    bool replaced = false;
    bool reader_done = false;
    std::deque<StoredEvent> queued;  // pushed by Events, in id order
    size_t queued_bytes = 0;         // of their bodies
    bool behind = true;              // read from the store before sending `queued`
    // Ids sent on this connection and not yet acknowledged (at most kMaxUnacked): their
    // acknowledgement needs no check against the store.
    std::unordered_set<uint64_t> unacked;
  };
  static constexpr size_t kMaxUnacked = 10000;
  static constexpr size_t kMaxQueuedBytes = 4 << 20;

  // The event as sent: its body with "id" first. The body is a JSON object the broker wrote
  // (without an "id"), so the id is spliced into its text rather than parsed and written again.
  static std::string channel_message(const StoredEvent& e) {
    std::string out = "{\"id\":" + std::to_string(e.id);
    const size_t first = e.body.find_first_not_of(" \t\r\n", 1);
    if (e.body.empty() || e.body.front() != '{' || first == std::string::npos ||
        e.body[first] == '}')
      return out + "}";
    out += ',';
    out.append(e.body, 1);
    return out;
  }

  static void set_cork(Stream& stream, bool on) {
    const int v = on ? 1 : 0;
    (void)::setsockopt(stream.socket().native_handle(), IPPROTO_TCP, TCP_CORK, &v, sizeof v);
  }

  // {"ack": ID} or {"ack": [ID, ...]} (connectors send the ids they handled in batches: one
  // message per event was a TLS record, a wake-up and a read on both sides for nothing else).
  static constexpr size_t kMaxAckIds = 4096;
  static std::optional<std::vector<uint64_t>> parse_ack(const std::string& text) {
    const auto doc = parse_json_text(text);  // a connector's bytes: the depth-checked reader
    if (!doc || !doc->is_object()) return std::nullopt;
    const auto it = doc->find("ack");
    if (it == doc->end()) return std::nullopt;
    if (it->is_number_unsigned()) return std::vector<uint64_t>{it->get<uint64_t>()};
    if (!it->is_array() || it->empty() || it->size() > kMaxAckIds) return std::nullopt;
    std::vector<uint64_t> ids;
    ids.reserve(it->size());
    for (const auto& id : *it) {
      if (!id.is_number_unsigned()) return std::nullopt;
      ids.push_back(id.get<uint64_t>());
    }
    return ids;
  }

  awaitable<void> channel_reader(websocket::stream<Stream&>& ws, std::string participant,
                                 std::shared_ptr<ChannelState> state) {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws.async_read(buffer, kTuple);
      if (ec) break;
      const std::string text = beast::buffers_to_string(buffer.data());
      buffer.consume(buffer.size());
      auto ids = parse_ack(text);
      if (!ids) {
        log_channel("channel.bad_message", participant,
                    "expected {\"ack\": ID} or {\"ack\": [ID, ...]} (at most " +
                        std::to_string(kMaxAckIds) + " ids)");
        continue;
      }
      // Sent on this connection, so theirs: no need to ask the store. The others (sent before a
      // reconnection) are checked against the store, all in one trip to the workers.
      std::erase_if(*ids, [&](uint64_t id) {
        if (state->unacked.erase(id) == 0) return false;
        events_->ack_delivered(id);
        return true;
      });
      if (ids->empty()) continue;
      // Each id on its own: one that fails (it comes again) does not keep the others.
      const std::pair<size_t, Status> failed =
          co_await on_pool(workers_.get_executor(), [this, &participant, &ids] {
            std::pair<size_t, Status> out{0, Status::ok()};
            for (uint64_t id : *ids)
              if (const Result<bool> r = events_->ack(participant, id); !r && out.first++ == 0)
                out.second = r.status();
            return out;
          });
      if (failed.first > 0)
        log_channel("channel.ack_failed", participant,
                    std::to_string(failed.first) + " of " + std::to_string(ids->size()) +
                        " acknowledgements: " + failed.second.message());
    }
    state->closed = true;
    state->wake.cancel();
  }

  void log_channel(const char* event, const std::string& participant, const std::string& what) {
    logger_.info(event, nlohmann::json{{"participant", participant}, {"detail", what}});
  }

  awaitable<void> channel(Stream& stream, const Caller& caller,
                          http::request<http::string_body> req) {
    const std::string participant = caller.identity.participant_id;
    websocket::stream<Stream&> ws(stream);
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(config_.limits.read_timeout_seconds);
    timeouts.idle_timeout = std::chrono::seconds(config_.limits.idle_timeout_seconds);
    timeouts.keep_alive_pings = true;  // a ping at half the idle timeout; no pong: closed
    ws.set_option(timeouts);
    ws.read_message_max(64 * 1024);
    stream.expires_never();  // the websocket keeps its own time
    auto [accept_ec] = co_await ws.async_accept(req, kTuple);
    if (accept_ec) co_return;

    const auto executor = co_await asio::this_coro::executor;
    auto state = std::make_shared<ChannelState>(executor);
    std::weak_ptr<ChannelState> weak = state;
    auto subscription = events_->subscribe(
        participant,
        [executor, weak, max = config_.limits.channel_queue_events](const StoredEvent& e) {
          asio::post(executor, [weak, e, max]() mutable {
            auto s = weak.lock();
            if (!s) return;
            if (s->queued.size() >= max || s->queued_bytes + e.body.size() > kMaxQueuedBytes) {
              s->queued.clear();
              s->queued_bytes = 0;
              s->behind = true;
            } else if (!s->behind) {
              s->queued_bytes += e.body.size();
              s->queued.push_back(std::move(e));
            }
            s->wake.cancel();
          });
        },
        [executor, weak] {
          asio::post(executor, [weak] {
            if (auto s = weak.lock()) {
              s->replaced = s->closed = true;
              s->wake.cancel();
            }
          });
        });
    metrics_.channel_opened();
    log_channel("channel.opened", participant, "");
    asio::co_spawn(executor, channel_reader(ws, participant, state), [state](std::exception_ptr) {
      state->reader_done = state->closed = true;
      state->wake.cancel();
    });

    uint64_t sent = 0;  // after a reconnection everything unacknowledged goes out again
    constexpr size_t kBatch = 100;
    // Writes one event unless it was sent already; false when the connection failed.
    const auto write = [&](const StoredEvent& e, bool from_store) -> awaitable<bool> {
      if (e.id <= sent) co_return true;
      // Before the write: an acknowledgement may be read before the write completes.
      if (state->unacked.size() < kMaxUnacked) state->unacked.insert(e.id);
      auto [ec, n] = co_await ws.async_write(asio::buffer(channel_message(e)), kTuple);
      if (ec) co_return false;
      sent = e.id;
      metrics_.channel_event(from_store);
      co_return true;
    };
    bool failed = false;
    while (!state->closed && !stopping_ && !failed) {
      if (state->behind) {
        // Pushes from here on are queued; the read sees whatever was committed before it.
        state->behind = false;
        const Result<std::vector<StoredEvent>> batch = co_await on_pool(
            workers_.get_executor(),
            [this, &participant, sent] { return events_->read(participant, sent, kBatch); });
        if (!batch) {
          log_channel("channel.read_failed", participant, batch.status().message());
          break;
        }
        for (const StoredEvent& e : *batch) {
          failed = !co_await write(e, true);
          if (failed) break;
        }
        if (batch->size() == kBatch) state->behind = true;  // more may follow
        continue;
      }
      // Several events waiting (a commit's, for a busy provider) leave in as few TCP segments
      // as fit: corked, the kernel sends them when uncorked rather than one by one, and the
      // connector wakes and reads once.
      const bool cork = state->queued.size() > 1;
      if (cork) set_cork(stream, true);
      while (!state->queued.empty() && !state->behind && !failed) {
        const StoredEvent e = std::move(state->queued.front());
        state->queued.pop_front();
        state->queued_bytes -= e.body.size();
        failed = !co_await write(e, false);
      }
      if (cork) set_cork(stream, false);
      // Nothing left to send: wait for a push. Nothing runs on the strand between this check and
      // the wait, so a push cannot come in between unseen.
      if (failed || !state->queued.empty() || state->behind) continue;
      state->wake.expires_at(asio::steady_timer::time_point::max());
      co_await state->wake.async_wait(kTuple);
    }
    // End the reader: a close frame when we may still talk, else cut the socket.
    if (!state->reader_done) {
      if (state->replaced || stopping_) {
        websocket::close_reason why(state->replaced ? websocket::close_code::policy_error
                                                    : websocket::close_code::going_away);
        why.reason = state->replaced ? "replaced by a newer channel" : "the broker is stopping";
        auto [ec] = co_await ws.async_close(why, kTuple);
        (void)ec;
      }
      stream.cancel();
      while (!state->reader_done) {
        state->wake.expires_after(std::chrono::milliseconds(50));
        co_await state->wake.async_wait(kTuple);
        if (!state->reader_done) stream.cancel();
      }
    }
    metrics_.channel_closed();
    log_channel("channel.closed", participant, state->replaced ? "replaced" : "");
  }

  const BrokerConfig& config_;
  const Router& router_;
  Metrics& metrics_;
  Logger& logger_;
  TlsContexts& tls_;
  Events* const events_;

  IoContext ioc_;
  asio::thread_pool workers_;
  tcp::acceptor acceptor_;
  asio::steady_timer crl_timer_;
  std::unique_ptr<Relays> relays_;  // null without a RelayAuthority; its timers use ioc_
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  bool deadline_passed_ = false;  // drain() only

  std::mutex sessions_mutex_;  // guards sessions_
  std::set<std::shared_ptr<SessionHandle>> sessions_;

  std::mutex participants_mutex_;  // guards per_participant_
  std::map<std::string, uint32_t> per_participant_;
};

Server::Server(const BrokerConfig& config, const Router& router, Metrics& metrics, Logger& logger,
               TlsContexts& tls, Events* events, RelayAuthority* relay)
    : impl_(std::make_unique<Impl>(config, router, metrics, logger, tls, events, relay)) {}
Server::~Server() = default;

Status Server::listen() {
  return impl_->listen();
}
uint16_t Server::port() const {
  return impl_->port();
}
void Server::run(bool stop_on_signals) {
  impl_->run(stop_on_signals);
}
void Server::stop() {
  impl_->stop();
}

}  // namespace dsx::broker
