// The relay, as two copy loops joined by a bounded pipe (see relay.h for the why).
//
// Rendezvous. Each side's fromChunk must be the transfer's dsx:fromChunk when it arrives. The
// first of a transfer's upload and download registers a Pairing under the providerPid in
// `waiting_` and sleeps on the Pairing's timer (on its own strand) for at most
// transferRendezvousSeconds. The second takes the Pairing out of `waiting_`, fills in its side,
// marks it paired and wakes the first by posting a cancel of the timer to the first's strand.
// A second whose fromChunk differs from the waiting first's was checked later, so the transfer
// was resumed meanwhile: the first is marked superseded (and woken, to answer 409) and the
// second takes its place in `waiting_`. Whoever looks at the state after the wait does so under the
// locks, so a timer that fires as the partner arrives is not a timeout. Lock order: mutex_, then
// Pairing::mutex. A second upload (or download) while one waits is 409; once paired, the
// Pairing leaves `waiting_`, so a new pair of requests may form while an old one ends.
//
// After pairing. Upload: read min(64 KiB, what is left) with the read timeout, push it into the
// pipe (waits while 4 chunks wait), until Content-Length bytes went through; then wait for the
// download's report. Download: write the response header, then pop, hash and write chunks with
// the read timeout until Content-Length bytes went out; then report (bytes, SHA-256) to the
// upload, success or not: every download that paired reports exactly once. A failure on either
// side aborts the pipe, which fails the other side's next push or pop. The upload side records
// the relay (complete or not) with the authority and answers the provider: 200
// {"relayedBytes", "sha256"}, or 502 when the consumer failed; after a failure of its own
// (timeout, reset) the provider's connection is cut.
//
// While data moves, a watch on the upload's strand asks the authority about once a second
// (kWatchInterval) whether the transfer is still STARTED from the same chunk. When it is not
// (terminated by either party or by the broker's policy check, suspended, resumed from
// elsewhere), the watch aborts the pipe: the consumer's download is cut short and the provider
// gets 409 transfer-ended with the reason. (A stalled pair is ended by the read timeout.)

#include "broker/relay.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>
#include <cmath>

#include "broker/on_pool.h"
#include "broker/transfers.h"
#include "common/base64.h"
#include "common/hex.h"
#include "common/sha256.h"

namespace dsx::broker {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using error_code = boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

constexpr const char* kRoutePut = "transfers.data.put";
constexpr const char* kRouteGet = "transfers.data.get";

HttpResponse refusal(int status, const std::string& code, const std::string& reason) {
  return error_response(status, "TransferError", code, std::vector<std::string>{reason});
}

HttpResponse relayed_reply(uint64_t bytes, const std::string& sha256) {
  return json_response(200, nlohmann::json{{"relayedBytes", bytes}, {"sha256", sha256}});
}

std::optional<uint64_t> parse_u64(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RelayPipe

RelayPipe::RelayPipe(const asio::any_io_executor& executor, std::atomic<int64_t>* gauge)
    : channel_(executor, kCapacity), gauge_(gauge) {}

RelayPipe::~RelayPipe() {
  if (gauge_) *gauge_ -= static_cast<int64_t>(buffered_.load());
}

awaitable<error_code> RelayPipe::push(std::string chunk) {
  const uint64_t n = chunk.size();
  const uint64_t now = buffered_ += n;
  if (gauge_) *gauge_ += static_cast<int64_t>(n);
  uint64_t peak = peak_.load();
  while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
  }
  auto [ec] = co_await channel_.async_send(error_code{}, std::move(chunk), kTuple);
  if (ec) release(n);  // never delivered
  co_return ec;
}

awaitable<std::tuple<error_code, std::string>> RelayPipe::pop() {
  auto [ec, chunk] = co_await channel_.async_receive(kTuple);
  co_return std::make_tuple(ec, std::move(chunk));
}

void RelayPipe::release(size_t n) {
  buffered_ -= n;
  if (gauge_) *gauge_ -= static_cast<int64_t>(n);
}

void RelayPipe::abort() {
  // close() fails later operations and wakes blocked receivers, not blocked senders: cancel()
  // wakes those (and any receiver queued before the close).
  channel_.close();
  channel_.cancel();
}

// ---------------------------------------------------------------------------------------------
// Relays

struct Relays::Offer {
  uint64_t from_chunk = 0;
  uint64_t content_length = 0;  // the upload's
  std::string manifest_b64;     // the upload's X-Dsx-Manifest, passed on to the consumer
  std::string manifest_json;    // decoded, for the record
};

struct Relays::Pairing {
  enum class State { kWaiting, kPaired, kSuperseded, kTimedOut, kStopped };
  Pairing(const asio::any_io_executor& first, std::atomic<int64_t>* gauge)
      : waiter(first), wake(first), pipe(first, gauge), report(first, 1) {}

  const asio::any_io_executor waiter;  // the first arriver's strand
  asio::steady_timer wake;             // the first arriver sleeps on it; touched on `waiter` only
  std::mutex mutex;                    // guards the members below
  State state = State::kWaiting;
  bool first_is_upload = false;
  Offer upload, download;  // what each side brought (download: from_chunk only)

  RelayPipe pipe;
  // The download's one report to the upload: error, bytes delivered, their SHA-256 (hex).
  asio::experimental::concurrent_channel<void(error_code, uint64_t, std::string)> report;

  // The watch of the transfer's state while data moves (watch()); on the upload's strand only.
  std::optional<asio::steady_timer> watch_timer;
  bool over = false;  // the upload loop ended: the watch stops
  std::string ended;  // why the transfer ended meanwhile (empty: it did not)
};

Relays::Relays(const BrokerConfig& config, Metrics& metrics, Logger& logger,
               RelayAuthority& authority, asio::any_io_executor workers)
    : config_(config),
      metrics_(metrics),
      logger_(logger),
      authority_(authority),
      workers_(std::move(workers)) {}

Relays::~Relays() = default;

std::optional<std::string> Relays::data_route(std::string_view path) {
  constexpr std::string_view kPrefix = "/transfers/", kSuffix = "/data";
  if (path.size() <= kPrefix.size() + kSuffix.size() || !path.starts_with(kPrefix) ||
      !path.ends_with(kSuffix))
    return std::nullopt;
  const std::string_view pid =
      path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size());
  if (pid.find('/') != std::string_view::npos) return std::nullopt;
  return std::string(pid);
}

void Relays::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  for (auto& [pid, p] : waiting_) {
    std::lock_guard inner(p->mutex);
    if (p->state == Pairing::State::kWaiting) p->state = Pairing::State::kStopped;
    asio::post(p->waiter, [p = p] { p->wake.cancel(); });
  }
  waiting_.clear();
}

void Relays::log_relay(const std::string& provider_pid, const Offer& offer, uint64_t bytes,
                       double ms, const std::string& sha256, const std::string& outcome) {
  logger_.log(outcome == "complete" ? Logger::Level::kInfo : Logger::Level::kWarn, "relay",
              nlohmann::json{{"providerPid", provider_pid},
                             {"fromChunk", offer.from_chunk},
                             {"contentLength", offer.content_length},
                             {"bytes", bytes},
                             {"ms", std::round(ms * 1000) / 1000},
                             {"sha256", sha256},
                             {"outcome", outcome}});
}

awaitable<Relays::Outcome> Relays::serve(TlsStream& stream, beast::flat_buffer& buffer,
                                         const RequestHead& header, const HttpRequest& request,
                                         const Caller& caller) {
  const bool is_upload = header.method() == http::verb::put;
  Outcome out;
  out.route = is_upload ? kRoutePut : kRouteGet;
  // An upload refused before its body was read leaves the connection mid-request: close it.
  auto refuse = [&](int status, const std::string& code, const std::string& reason) {
    Outcome o;
    o.route = is_upload ? kRoutePut : kRouteGet;
    o.reply = refusal(status, code, reason);
    o.status = status;
    o.keep_alive = !is_upload && header.keep_alive();
    return o;
  };
  const std::optional<std::string> pid = data_route(request.path);
  if (!pid || (header.method() != http::verb::put && header.method() != http::verb::get))
    co_return refuse(405, "method-not-allowed",
                     "the data route takes PUT (provider) and GET "
                     "(consumer)");
  Offer offer;
  if (is_upload) {
    if (!caller.has_role("provider"))
      co_return refuse(403, "forbidden", "uploading data needs the role provider");
    const auto te = header[http::field::transfer_encoding];
    const auto length = parse_u64(header[http::field::content_length]);
    if (!te.empty() || !length)
      co_return refuse(411, "length-required",
                       "the upload needs a Content-Length (the whole stream's size)");
    offer.content_length = *length;
    const auto from = header["X-Dsx-From-Chunk"];
    const auto from_chunk = from.empty() ? std::optional<uint64_t>(0) : parse_u64(from);
    if (!from_chunk)
      co_return refuse(400, "bad-from-chunk", "X-Dsx-From-Chunk: expected an unsigned integer");
    offer.from_chunk = *from_chunk;
    offer.manifest_b64 = std::string(header["X-Dsx-Manifest"]);
    const auto manifest = base64_decode(offer.manifest_b64);
    if (offer.manifest_b64.empty() || !manifest)
      co_return refuse(400, "bad-manifest",
                       "X-Dsx-Manifest: expected the signed manifest JSON in base64");
    offer.manifest_json.assign(manifest->begin(), manifest->end());
  } else {
    if (!caller.has_role("consumer"))
      co_return refuse(403, "forbidden", "downloading data needs the role consumer");
    auto from = request.query_u64("fromChunk");
    if (!from) co_return refuse(400, "bad-from-chunk", from.status().message());
    offer.from_chunk = from->value_or(0);
  }

  const Result<DataAccess> access =
      co_await on_pool(workers_, [&] { return authority_.data_access(caller, *pid, is_upload); });
  if (!access) {
    const Status s = access.status();
    if (s.code() == Status::Code::kNotFound) co_return refuse(404, "not-found", s.message());
    if (s.code() == Status::Code::kFailedPrecondition)
      co_return refuse(409, "not-started", s.message());
    co_return refuse(500, "internal", s.message());
  }
  // Both sides must begin where the control plane says the transfer (re)started: a stream sent
  // from another chunk would be refused by the consumer anyway, after the relay.
  if (offer.from_chunk != access->from_chunk)
    co_return refuse(
        409, "from-chunk-mismatch",
        std::string(is_upload ? "the upload starts at chunk " : "the download asks for chunk ") +
            std::to_string(offer.from_chunk) + " but transfer " + *pid +
            " was started from chunk " + std::to_string(access->from_chunk) +
            " (dsx:fromChunk of its last start)");

  auto paired = co_await rendezvous(*pid, is_upload, offer);
  if (auto* reply = std::get_if<HttpResponse>(&paired)) {
    out.status = reply->status;
    out.reply = std::move(*reply);
    out.keep_alive = !is_upload && header.keep_alive();
    co_return out;
  }
  std::shared_ptr<Pairing> p = std::get<std::shared_ptr<Pairing>>(std::move(paired));
  if (is_upload) co_return co_await upload(stream, buffer, header, caller, *pid, offer, p);
  co_return co_await download(stream, header, p);
}

awaitable<std::variant<std::shared_ptr<Relays::Pairing>, HttpResponse>> Relays::rendezvous(
    const std::string& provider_pid, bool upload, const Offer& offer) {
  const auto executor = co_await asio::this_coro::executor;
  std::shared_ptr<Pairing> p;
  Pairing::State state = Pairing::State::kWaiting;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      state = Pairing::State::kStopped;
    } else if (auto it = waiting_.find(provider_pid); it == waiting_.end()) {
      p = std::make_shared<Pairing>(executor, &metrics_.relay_buffered());
      p->first_is_upload = upload;
      (upload ? p->upload : p->download) = offer;
      waiting_.emplace(provider_pid, p);
    } else if (it->second->first_is_upload == upload) {
      co_return refusal(409, upload ? "upload-in-progress" : "download-in-progress",
                        std::string(upload ? "an upload" : "a download") + " of transfer " +
                            provider_pid + " is already waiting for its " +
                            (upload ? "consumer" : "provider"));
    } else if (const std::shared_ptr<Pairing> partner = it->second;
               (upload ? partner->download : partner->upload).from_chunk != offer.from_chunk) {
      // Both sides were checked against the transfer's dsx:fromChunk when they arrived; the
      // newcomer's check is the later one, so the transfer was resumed from another chunk
      // while the partner waited (a provider acting on an older transfer.resumed event). The
      // partner gives way and the newcomer waits for its own partner.
      {
        std::lock_guard inner(partner->mutex);
        partner->state = Pairing::State::kSuperseded;
        (upload ? partner->upload : partner->download) = offer;  // for the partner's message
      }
      asio::post(partner->waiter, [partner] { partner->wake.cancel(); });
      p = std::make_shared<Pairing>(executor, &metrics_.relay_buffered());
      p->first_is_upload = upload;
      (upload ? p->upload : p->download) = offer;
      it->second = p;
    } else {
      p = it->second;
      waiting_.erase(it);
      std::lock_guard inner(p->mutex);
      (upload ? p->upload : p->download) = offer;
      p->state = Pairing::State::kPaired;
      state = p->state;
      asio::post(p->waiter, [p] { p->wake.cancel(); });
    }
  }
  if (state == Pairing::State::kWaiting) {
    // The first: wait for the partner (or the timeout, or stop()).
    p->wake.expires_after(std::chrono::seconds(config_.transfer_rendezvous_seconds));
    co_await p->wake.async_wait(kTuple);
    std::lock_guard lock(mutex_);
    std::lock_guard inner(p->mutex);
    if (p->state == Pairing::State::kWaiting) {
      p->state = Pairing::State::kTimedOut;
      if (auto it = waiting_.find(provider_pid); it != waiting_.end() && it->second == p)
        waiting_.erase(it);
    }
    state = p->state;
  }
  switch (state) {
    case Pairing::State::kPaired:
      co_return p;
    case Pairing::State::kSuperseded: {
      const uint64_t mine = (upload ? p->upload : p->download).from_chunk;
      const uint64_t now = (upload ? p->download : p->upload).from_chunk;
      co_return refusal(
          409, "from-chunk-mismatch",
          std::string(upload ? "the upload starts at chunk " : "the download asks for chunk ") +
              std::to_string(mine) + " but transfer " + provider_pid + " was resumed from chunk " +
              std::to_string(now) +
              " meanwhile; both sides must begin at the consumer's first missing "
              "chunk");
    }
    case Pairing::State::kTimedOut:
      log_relay(provider_pid, offer, 0, config_.transfer_rendezvous_seconds * 1000.0, "",
                upload ? "no_consumer" : "no_provider");
      co_return refusal(
          504, "rendezvous-timeout",
          std::string("no ") + (upload ? "download by the consumer" : "upload by the provider") +
              " of transfer " + provider_pid + " arrived within " +
              std::to_string(config_.transfer_rendezvous_seconds) +
              " s (transferRendezvousSeconds); the transfer stays STARTED: try again");
    case Pairing::State::kStopped:
    case Pairing::State::kWaiting:
      break;
  }
  co_return refusal(503, "stopping", "the broker is stopping; try again later");
}

awaitable<void> Relays::watch(Caller caller, std::string provider_pid, uint64_t from_chunk,
                              std::shared_ptr<Pairing> p) {
  while (!p->over) {
    p->watch_timer->expires_after(kWatchInterval);
    co_await p->watch_timer->async_wait(kTuple);
    if (p->over) co_return;
    const Result<DataAccess> access = co_await on_pool(
        workers_, [&] { return authority_.data_access(caller, provider_pid, true); });
    if (p->over) co_return;
    if (!access) {
      // Not STARTED, or gone: the relay ends. A failure to look (the store busy or failing) is
      // no reason to cut a healthy transfer: look again next time.
      const Status::Code code = access.status().code();
      if (code == Status::Code::kFailedPrecondition || code == Status::Code::kNotFound)
        p->ended = access.status().message();
    } else if (access->from_chunk != from_chunk)
      p->ended = "transfer " + provider_pid + " was resumed from chunk " +
                 std::to_string(access->from_chunk) + " meanwhile";
    if (!p->ended.empty()) {
      p->pipe.abort();
      co_return;
    }
  }
}

awaitable<Relays::Outcome> Relays::upload(TlsStream& stream, beast::flat_buffer& buffer,
                                          const RequestHead& header, const Caller& caller,
                                          const std::string& provider_pid, const Offer& offer,
                                          std::shared_ptr<Pairing> p) {
  metrics_.relay_started();
  // The transfer must stay STARTED from this chunk while its data moves.
  p->watch_timer.emplace(stream.get_executor());
  asio::co_spawn(stream.get_executor(), watch(caller, provider_pid, offer.from_chunk, p),
                 asio::detached);
  const auto t0 = std::chrono::steady_clock::now();
  const auto timeout = std::chrono::seconds(config_.limits.read_timeout_seconds);
  Outcome out;
  out.route = kRoutePut;
  bool read_failed = false;
  if (beast::iequals(header[http::field::expect], "100-continue") && offer.content_length > 0) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    stream.expires_after(timeout);
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
    read_failed = static_cast<bool>(ec);
  }
  uint64_t remaining = read_failed ? 0 : offer.content_length;
  bool consumer_gone = false;
  while (remaining > 0) {
    std::string chunk(std::min<uint64_t>(remaining, RelayPipe::kChunkBytes), '\0');
    // First what the header's read left in the buffer, then the socket.
    const size_t have = asio::buffer_copy(asio::buffer(chunk), buffer.data());
    buffer.consume(have);
    if (have < chunk.size()) {
      stream.expires_after(timeout);
      auto [ec, n] = co_await asio::async_read(
          stream, asio::buffer(chunk.data() + have, chunk.size() - have), kTuple);
      if (ec) {
        read_failed = true;
        break;
      }
    }
    remaining -= chunk.size();
    if (co_await p->pipe.push(std::move(chunk))) {
      consumer_gone = true;
      break;
    }
  }
  p->over = true;
  p->watch_timer->cancel();
  if (read_failed || consumer_gone) p->pipe.abort();
  // Not a structured binding: clang 14 cannot capture those in the lambda below.
  std::tuple<error_code, uint64_t, std::string> report = co_await p->report.async_receive(kTuple);
  const error_code report_ec = std::get<0>(report);
  const uint64_t bytes = std::get<1>(report);
  const std::string sha256 = std::move(std::get<2>(report));
  const bool complete =
      !read_failed && !consumer_gone && !report_ec && bytes == offer.content_length;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  metrics_.relay_ended();

  const Status recorded = co_await on_pool(workers_, [&] {
    return authority_.record_relay(provider_pid, offer.from_chunk, bytes, sha256,
                                   offer.manifest_json, complete);
  });
  const bool ended = !complete && !p->ended.empty();
  log_relay(provider_pid, offer, bytes, ms, sha256,
            complete      ? "complete"
            : ended       ? "transfer_ended"
            : read_failed ? "provider_failed"
                          : "consumer_failed");
  if (!recorded)
    logger_.error("relay.record_failed",
                  nlohmann::json{{"providerPid", provider_pid}, {"error", recorded.message()}});
  if (read_failed) {
    out.status = 408;  // for the log: the provider did not send its body in time (or left)
    co_return out;     // its connection failed: cut it
  }
  if (ended) {
    out.reply = refusal(409, "transfer-ended",
                        p->ended + "; the relay stopped after " + std::to_string(bytes) + " of " +
                            std::to_string(offer.content_length) + " bytes");
    out.status = 409;
    co_return out;  // the body was not read to its end: close
  }
  if (!complete) {
    out.reply = refusal(502, "consumer-failed",
                        "the consumer's download ended after " + std::to_string(bytes) + " of " +
                            std::to_string(offer.content_length) +
                            " bytes; the transfer stays STARTED: upload again when the consumer "
                            "resumes");
    out.status = 502;
    co_return out;  // the body was not read to its end: close
  }
  if (!recorded) {
    out.reply = refusal(500, "internal",
                        "the relay completed but could not be recorded: " + recorded.message());
    out.status = 500;
    co_return out;
  }
  out.reply = relayed_reply(bytes, sha256);
  out.status = 200;
  out.keep_alive = header.keep_alive();
  co_return out;
}

awaitable<Relays::Outcome> Relays::download(TlsStream& stream, const RequestHead& header,
                                            std::shared_ptr<Pairing> p) {
  const auto timeout = std::chrono::seconds(config_.limits.read_timeout_seconds);
  const uint64_t total = p->upload.content_length;
  Outcome out;
  out.route = kRouteGet;
  out.status = 200;
  Sha256 hash;
  uint64_t delivered = 0;
  error_code failure;

  http::response<http::empty_body> res{http::status::ok, header.version()};
  res.set(http::field::server, "dsx-broker");
  res.set(http::field::content_type, "application/octet-stream");
  res.set("X-Dsx-Manifest", p->upload.manifest_b64);
  res.content_length(total);
  res.keep_alive(header.keep_alive());
  http::response_serializer<http::empty_body> serializer{res};
  stream.expires_after(timeout);
  {
    auto [ec, n] = co_await http::async_write_header(stream, serializer, kTuple);
    failure = ec;
  }
  while (!failure && delivered < total) {
    auto [ec, chunk] = co_await p->pipe.pop();
    if (ec) {
      failure = ec;
      break;
    }
    hash.update(chunk);
    stream.expires_after(timeout);
    auto [write_ec, n] = co_await asio::async_write(stream, asio::buffer(chunk), kTuple);
    p->pipe.release(chunk.size());
    if (write_ec) {
      failure = write_ec;
      break;
    }
    delivered += chunk.size();
    metrics_.relay_bytes(chunk.size());
  }
  if (failure) p->pipe.abort();
  p->report.try_send(failure, delivered, to_hex(hash.finish()));
  out.keep_alive = !failure && header.keep_alive();
  co_return out;
}

}  // namespace dsx::broker
