#include "connectors/channel.h"

#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdio>
#include <random>
#include <thread>

#include "certs/atomic_file.h"
#include "common/json.h"
#include "connectors/tls_connect.h"

namespace dsx::connectors {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

Result<Event> parse_event(std::string_view text) {
  auto doc = parse_json_text(text);
  if (!doc) return Status::invalid_argument("channel message: " + doc.status().message());
  if (!doc->is_object()) return Status::invalid_argument("channel message: not a JSON object");
  const auto id = doc->find("id");
  if (id == doc->end() || !id->is_number_unsigned())
    return Status::invalid_argument("channel message: id: expected an unsigned integer");
  const auto type = doc->find("type");
  if (type == doc->end() || !type->is_string())
    return Status::invalid_argument("channel message: type: expected a string");
  Event e;
  e.id = id->get<uint64_t>();
  e.type = type->get<std::string>();
  e.body = std::move(*doc);
  return e;
}

// ---- Channel -------------------------------------------------------------------------------

struct Channel::Impl {
  asio::io_context ioc;
  asio::ssl::context ctx{asio::ssl::context::tls_client};
  std::optional<websocket::stream<detail::TlsStream>> ws;
  // The read in flight, if any: one is always pending while the channel is open, so that pings
  // are answered and the idle timeout notices a dead broker even while the caller writes.
  beast::flat_buffer buffer;
  bool read_pending = false, read_done = false;
  boost::system::error_code read_error;
  bool dead = false;
  // Handled events not yet acknowledged to the broker, and when the oldest of them must go.
  std::vector<uint64_t> acks;
  Clock::time_point acks_due;

  void start_read() {
    if (read_pending || dead) return;
    read_pending = true;
    read_done = false;
    ws->async_read(buffer, detail::OpDone{&read_error, &read_done});
  }

  // Runs handlers until `flag` is set or `deadline` passes; false on the deadline.
  bool run_until(const bool& flag, Clock::time_point deadline) {
    ioc.restart();
    while (!flag) {
      if (Clock::now() >= deadline) return false;
      if (ioc.run_one_until(deadline) == 0 && ioc.stopped()) return flag;
    }
    return true;
  }

  Status lost(const boost::system::error_code& ec) {
    dead = true;
    std::string why = ec.message();
    if (ec == websocket::error::closed && ws && !ws->reason().reason.empty())
      why += " (" + std::string(ws->reason().reason.c_str()) + ")";
    return Status::failed_precondition("the control channel was lost: " + why);
  }
};

Result<std::unique_ptr<Channel>> Channel::connect(const ClientConfig& config,
                                                  std::chrono::seconds idle_timeout) {
  auto impl = std::make_unique<Impl>();
  if (Status s = detail::load_participant_context(impl->ctx, config.cert_dir); !s) return s;
  impl->ws.emplace(impl->ioc, impl->ctx);
  auto& ws = *impl->ws;
  if (Status s = detail::connect_tls(impl->ioc, ws.next_layer(), config, nullptr); !s) return s;
  // From here on the WebSocket's own timeouts apply, not the TCP stream's.
  beast::get_lowest_layer(ws).expires_never();
  websocket::stream_base::timeout timeouts;
  timeouts.handshake_timeout = config.timeout;
  timeouts.idle_timeout = idle_timeout;
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "dsx-connector");
  }));
  websocket::response_type res;
  const std::string host = config.host + ":" + std::to_string(config.port);
  auto ec = detail::run_op(impl->ioc, [&](auto handler) {
    ws.async_handshake(res, host, "/channel", std::move(handler));
  });
  if (ec == websocket::error::upgrade_declined) {
    Reply reply;
    reply.status = static_cast<int>(res.result_int());
    reply.body = res.body();
    return Status::invalid_argument("the broker refused the control channel: " +
                                    describe_error(reply));
  }
  if (ec)
    return Status::failed_precondition("opening the control channel with " + host + ": " +
                                       ec.message());
  ws.text(true);
  impl->start_read();
  return std::unique_ptr<Channel>(new Channel(std::move(impl)));
}

Channel::Channel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Channel::~Channel() {
  close();
}

Result<std::optional<Event>> Channel::next_event(std::chrono::milliseconds wait) {
  Impl& m = *impl_;
  if (m.dead) return Status::failed_precondition("the control channel is closed");
  m.start_read();
  const auto deadline = Clock::now() + wait;
  // Acknowledgements wait at most kAckDelay: overdue ones go first, and a wait past their due
  // time is cut there, they go, and the wait goes on.
  if (!m.acks.empty() && Clock::now() >= m.acks_due) {
    if (Status s = flush_acks(); !s) return s;
  }
  while (!m.run_until(m.read_done, m.acks.empty() ? deadline : std::min(deadline, m.acks_due))) {
    if (m.acks.empty() || Clock::now() >= deadline) return std::optional<Event>();
    if (Status s = flush_acks(); !s) return s;
  }
  m.read_pending = false;
  if (m.read_error) return m.lost(m.read_error);
  const std::string text = beast::buffers_to_string(m.buffer.data());
  m.buffer.consume(m.buffer.size());
  m.start_read();
  auto event = parse_event(text);
  if (!event) return event.status();
  return std::optional<Event>(std::move(*event));
}

Status Channel::ack(uint64_t id) {
  Impl& m = *impl_;
  if (m.dead) return Status::failed_precondition("the control channel is closed");
  if (m.acks.empty()) m.acks_due = Clock::now() + kAckDelay;
  m.acks.push_back(id);
  if (m.acks.size() >= kAckBatch || Clock::now() >= m.acks_due) return flush_acks();
  return Status::ok();
}

Status Channel::flush_acks() {
  Impl& m = *impl_;
  if (m.dead) return Status::failed_precondition("the control channel is closed");
  if (m.acks.empty()) return Status::ok();
  m.start_read();
  // One id as a number, as brokers before the lists read it; several as a list.
  const std::string text =
      m.acks.size() == 1 ? json{{"ack", m.acks.front()}}.dump() : json{{"ack", m.acks}}.dump();
  // The pending read's idle timeout bounds the write: a dead broker fails both.
  const auto ec = detail::run_op(
      m.ioc, [&](auto handler) { m.ws->async_write(asio::buffer(text), std::move(handler)); });
  if (ec) return m.lost(ec);
  m.acks.clear();
  return Status::ok();
}

void Channel::close() {
  Impl& m = *impl_;
  if (!m.ws || m.dead) return;
  (void)flush_acks();  // what it fails to send comes again on the next connection
  if (m.dead) return;
  m.dead = true;
  detail::run_op(m.ioc, [&](auto handler) {
    m.ws->async_close(websocket::close_code::normal, std::move(handler));
  });
  // Let the pending read finish with the close (it ends the moment the broker answers).
  if (m.read_pending) m.run_until(m.read_done, Clock::now() + std::chrono::seconds(2));
}

// ---- Backoff -------------------------------------------------------------------------------

Channel::Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                          uint64_t seed)
    : initial_(initial), max_(max), state_(seed != 0 ? seed : std::random_device{}()) {}

std::chrono::milliseconds Channel::Backoff::next() {
  auto delay = initial_;
  for (unsigned i = 0; i < attempt_ && delay < max_; ++i)
    delay *= 2;
  delay = std::min(delay, max_);
  if (delay < max_) ++attempt_;
  // splitmix64: small, seedable, good enough for jitter.
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  const auto half = delay.count() / 2;
  return std::chrono::milliseconds(half +
                                   static_cast<int64_t>(z % static_cast<uint64_t>(half + 1)));
}

// ---- HandledEvents -------------------------------------------------------------------------

Result<Channel::HandledEvents> Channel::HandledEvents::open(std::filesystem::path file,
                                                            size_t max_remembered) {
  HandledEvents h;
  h.file_ = std::move(file);
  h.max_ = max_remembered;
  std::error_code ec;
  if (h.file_.empty() || !std::filesystem::exists(h.file_, ec)) return h;
  auto text = certs::read_text_file(h.file_);
  if (!text) return text.status();
  auto doc = parse_json_text(*text);
  const json* ids = nullptr;
  if (doc && doc->is_object() && doc->contains("handled")) ids = &(*doc)["handled"];
  if (!ids || !ids->is_array())
    return Status::invalid_argument(h.file_.string() +
                                    ": not a state file (expected {\"handled\": [ids]})");
  for (const auto& id : *ids) {
    if (!id.is_number_unsigned())
      return Status::invalid_argument(h.file_.string() + ": handled: expected unsigned integers");
    h.ids_.insert(id.get<uint64_t>());
  }
  while (h.ids_.size() > h.max_)
    h.ids_.erase(h.ids_.begin());
  return h;
}

Status Channel::HandledEvents::add(uint64_t id) {
  ids_.insert(id);
  while (ids_.size() > max_)
    ids_.erase(ids_.begin());
  return save();
}

Status Channel::HandledEvents::forget_below(uint64_t id) {
  const auto end = ids_.lower_bound(id);
  if (end == ids_.begin()) return Status::ok();
  ids_.erase(ids_.begin(), end);
  return save();
}

Status Channel::HandledEvents::save() const {
  if (file_.empty()) return Status::ok();
  return certs::write_file_atomic(
      file_, json{{"handled", ids_}}.dump() + "\n",
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      certs::Overwrite::kYes);
}

// ---- run -----------------------------------------------------------------------------------

namespace {

// Sleeps for `d`, waking early when `stop` says so; false when stopped.
bool sleep_unless_stopped(std::chrono::milliseconds d, const std::function<bool()>& stop) {
  const auto until = Clock::now() + d;
  while (Clock::now() < until) {
    if (stop && stop()) return false;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(100), until - Clock::now()));
  }
  return !(stop && stop());
}

std::string seconds_text(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

Status Channel::run(const ClientConfig& config, RunOptions& o, HandledEvents& handled,
                    const Handler& handler) {
  auto stopped = [&] { return o.stop && o.stop(); };
  auto note = [&](const std::string& line) {
    if (o.note) o.note(line);
  };
  // A connection that lived this long, or delivered an event, resets the backoff; one closed at
  // once (another connector with the same certificate took the channel over) does not.
  constexpr auto kHealthy = std::chrono::seconds(10);
  while (!stopped()) {
    auto channel = connect(config, o.idle_timeout);
    Status lost;
    if (!channel) {
      if (channel.status().code() != Status::Code::kFailedPrecondition || o.return_when_quiet)
        return channel.status();
      lost = channel.status();
    } else {
      note("control channel open");
      const auto opened = Clock::now();
      auto quiet_since = opened;
      bool first = true;
      while (!stopped()) {
        auto next = (*channel)->next_event(std::chrono::milliseconds(200));
        if (!next && next.status().code() == Status::Code::kInvalidArgument) {
          note("ignored: " + next.status().message());
          continue;
        }
        if (!next) {
          lost = next.status();
          break;
        }
        if (!next->has_value()) {
          if (o.return_when_quiet && Clock::now() - quiet_since >= *o.return_when_quiet)
            return Status::ok();
          if (Clock::now() - opened >= kHealthy) o.backoff.reset();
          continue;
        }
        const Event& event = **next;
        if (first) {
          first = false;
          if (Status s = handled.forget_below(event.id); !s) return s;
        }
        if (!handled.contains(event.id)) {
          if (Status s = handler(event); !s) {
            lost = s;  // not acknowledged: it comes again on the next connection
            break;
          }
          if (Status s = handled.add(event.id); !s) return s;
        }
        if (Status s = (*channel)->ack(event.id); !s) {
          lost = s;
          break;
        }
        o.backoff.reset();
        quiet_since = Clock::now();
      }
    }
    if (stopped()) break;
    if (o.return_when_quiet) return lost;
    const auto delay = o.backoff.next();
    note(lost.message() + "; reconnecting in " + seconds_text(delay));
    if (!sleep_unless_stopped(delay, o.stop)) break;
  }
  return Status::ok();
}

}  // namespace dsx::connectors
