#include "connectors/client.h"

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "connectors/tls_connect.h"

namespace dsx::connectors {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

Status parse_broker_url(std::string_view url, ClientConfig& config) {
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return Status::invalid_argument("broker: expected https://HOST[:PORT], got \"" +
                                    std::string(url) + "\"");
  std::string_view rest = url.substr(kScheme.size());
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos)
    rest = rest.substr(0, slash);
  std::string_view host = rest, port_text;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string_view::npos)
      return Status::invalid_argument("broker: unclosed [ in \"" + std::string(url) + "\"");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port_text = rest.substr(close + 2);
  } else if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
  }
  uint16_t port = 8443;
  if (!port_text.empty()) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || v == 0 || v > 65535)
      return Status::invalid_argument("broker: bad port in \"" + std::string(url) + "\"");
    port = static_cast<uint16_t>(v);
  }
  if (host.empty())
    return Status::invalid_argument("broker: no host in \"" + std::string(url) + "\"");
  config.host = std::string(host);
  config.port = port;
  return Status::ok();
}

std::string Reply::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name)) return v;
  return {};
}

std::vector<std::string> Reply::headers_named(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name)) out.push_back(v);
  return out;
}

struct Client::Impl {
  ClientConfig config;
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::optional<detail::TlsStream> stream;
  SSL_SESSION* session = nullptr;  // for resumption on reconnect
  // When the connection last finished an exchange: a streamed request on a connection idle for
  // longer opens a new one first, because it cannot be repeated once its body has begun.
  std::chrono::steady_clock::time_point last_used = std::chrono::steady_clock::now();
  static constexpr std::chrono::seconds kStreamIdleReuse{5};

  ~Impl() {
    if (session) SSL_SESSION_free(session);
  }

  Status setup() { return detail::load_participant_context(ctx, config.cert_dir); }

  // Ends the connection with close_notify (OpenSSL forgets the session of a connection that was
  // not shut down cleanly, and resumption would be lost).
  void close() {
    if (!stream) return;
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(2));
    detail::run_op(ioc, [&](auto handler) { stream->async_shutdown(std::move(handler)); });
    stream.reset();
  }

  Status open() {
    close();
    stream.emplace(ioc, ctx);
    Status s = detail::connect_tls(ioc, *stream, config, session);
    if (!s) stream.reset();
    return s;
  }

  void keep_session() {
    if (!stream) return;
    SSL_SESSION* s = SSL_get1_session(stream->native_handle());
    if (!s) return;
    if (session) SSL_SESSION_free(session);
    session = s;
  }

  Result<Reply> exchange(std::string_view method, std::string_view target, std::string_view body,
                         std::string_view content_type) {
    http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
    req.set(http::field::host, config.host + ":" + std::to_string(config.port));
    req.set(http::field::user_agent, "dsx-connector");
    if (!body.empty()) {
      req.set(http::field::content_type, content_type);
      req.body() = std::string(body);
    }
    req.keep_alive(true);
    req.prepare_payload();
    auto& tcp_stream = beast::get_lowest_layer(*stream);
    tcp_stream.expires_after(config.timeout);
    auto ec = detail::run_op(
        ioc, [&](auto handler) { http::async_write(*stream, req, std::move(handler)); });
    if (ec) return Status::failed_precondition("sending the request: " + ec.message());
    beast::flat_buffer buffer;
    return read_whole_reply(buffer);
  }

  // Opens a connection unless a recently used one is there.
  Status ensure_fresh() {
    if (stream && std::chrono::steady_clock::now() - last_used < kStreamIdleReuse)
      return Status::ok();
    return open();
  }

  template <typename Request>
  void prepare(Request& req, const Client::Headers& headers) {
    req.set(http::field::host, config.host + ":" + std::to_string(config.port));
    req.set(http::field::user_agent, "dsx-connector");
    for (const auto& [name, value] : headers)
      req.set(name, value);
    req.keep_alive(true);
  }

  // Reads a whole reply (a refusal, or the answer to an upload) after the request was sent.
  Result<Reply> read_whole_reply(beast::flat_buffer& buffer) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(uint64_t{1} << 30);
    beast::get_lowest_layer(*stream).expires_after(config.timeout);
    auto ec = detail::run_op(
        ioc, [&](auto handler) { http::async_read(*stream, buffer, parser, std::move(handler)); });
    if (ec) {
      stream.reset();
      return Status::failed_precondition("reading the reply: " + ec.message());
    }
    auto& res = parser.get();
    Reply reply;
    reply.status = static_cast<int>(res.result_int());
    reply.body = std::move(res.body());
    for (const auto& field : res)
      reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    keep_session();
    if (!res.keep_alive()) close();
    last_used = std::chrono::steady_clock::now();
    return reply;
  }

  Result<Reply> upload(std::string_view method, std::string_view target,
                       const Client::Headers& headers, uint64_t content_length,
                       const Client::BodySource& source, size_t piece_size) {
    http::request<http::empty_body> req{http::string_to_verb(method), std::string(target), 11};
    prepare(req, headers);
    req.set(http::field::content_type, "application/octet-stream");
    req.content_length(content_length);
    http::request_serializer<http::empty_body> serializer{req};
    auto& tcp_stream = beast::get_lowest_layer(*stream);
    tcp_stream.expires_after(config.timeout);
    auto ec = detail::run_op(ioc, [&](auto handler) {
      http::async_write_header(*stream, serializer, std::move(handler));
    });
    if (ec) {
      stream.reset();
      return Status::failed_precondition("sending the request: " + ec.message());
    }
    std::vector<uint8_t> piece(std::max<size_t>(piece_size, 1));
    uint64_t sent = 0;
    while (sent < content_length) {
      const size_t want =
          static_cast<size_t>(std::min<uint64_t>(piece.size(), content_length - sent));
      auto n = source(std::span<uint8_t>(piece.data(), want));
      if (!n) {
        stream.reset();  // a half-sent body: the connection cannot be reused
        return n.status();
      }
      if (*n == 0 || *n > want) {
        stream.reset();
        return Status::internal("upload: the body source gave " + std::to_string(*n) +
                                " bytes of the " + std::to_string(want) + " asked for");
      }
      tcp_stream.expires_after(config.timeout);
      ec = detail::run_op(ioc, [&](auto handler) {
        asio::async_write(*stream, asio::buffer(piece.data(), *n), std::move(handler));
      });
      if (ec) {
        // The peer may have answered (and closed) before taking the whole body: its reply
        // says why, and is worth more than "broken pipe".
        beast::flat_buffer buffer;
        if (auto early = read_whole_reply(buffer); early) {
          close();
          return early;
        }
        stream.reset();
        return Status::failed_precondition("sending the body (" + std::to_string(sent) + " of " +
                                           std::to_string(content_length) +
                                           " bytes sent): " + ec.message());
      }
      sent += *n;
    }
    beast::flat_buffer buffer;
    return read_whole_reply(buffer);
  }

  // One GET; `received` tells the caller whether any part of a reply arrived (then it must not
  // be repeated).
  Result<Reply> download(std::string_view target, const Client::Headers& headers,
                         const Client::HeadersSink& on_headers, const Client::BodySink& on_piece,
                         size_t piece_size, bool& received) {
    received = false;
    http::request<http::empty_body> req{http::verb::get, std::string(target), 11};
    prepare(req, headers);
    auto& tcp_stream = beast::get_lowest_layer(*stream);
    tcp_stream.expires_after(config.timeout);
    auto ec = detail::run_op(
        ioc, [&](auto handler) { http::async_write(*stream, req, std::move(handler)); });
    if (ec) {
      stream.reset();
      return Status::failed_precondition("sending the request: " + ec.message());
    }
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> head_parser;
    head_parser.body_limit(std::numeric_limits<uint64_t>::max());
    tcp_stream.expires_after(config.timeout);
    ec = detail::run_op(ioc, [&](auto handler) {
      http::async_read_header(*stream, buffer, head_parser, std::move(handler));
    });
    if (ec) {
      stream.reset();
      return Status::failed_precondition("reading the reply: " + ec.message());
    }
    received = true;
    Reply reply;
    reply.status = static_cast<int>(head_parser.get().result_int());
    for (const auto& field : head_parser.get())
      reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    if (reply.status / 100 != 2) {
      http::response_parser<http::string_body> parser{std::move(head_parser)};
      parser.body_limit(uint64_t{1} << 20);
      tcp_stream.expires_after(config.timeout);
      ec = detail::run_op(ioc, [&](auto handler) {
        http::async_read(*stream, buffer, parser, std::move(handler));
      });
      if (ec) {
        stream.reset();
        return Status::failed_precondition("reading the reply: " + ec.message());
      }
      reply.body = std::move(parser.get().body());
      if (!parser.get().keep_alive()) close();
      last_used = std::chrono::steady_clock::now();
      return reply;
    }
    if (Status s = on_headers ? on_headers(reply) : Status::ok(); !s) {
      stream.reset();
      return s;
    }
    http::response_parser<http::buffer_body> parser{std::move(head_parser)};
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    std::vector<uint8_t> piece(std::max<size_t>(piece_size, 1));
    while (!parser.is_done()) {
      parser.get().body().data = piece.data();
      parser.get().body().size = piece.size();
      tcp_stream.expires_after(config.timeout);  // a timeout per read: a stalled relay ends
      ec = detail::run_op(ioc, [&](auto handler) {
        http::async_read_some(*stream, buffer, parser, std::move(handler));
      });
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        stream.reset();
        return Status::failed_precondition("reading the body: " + ec.message());
      }
      const size_t n = piece.size() - parser.get().body().size;
      if (n > 0) {
        if (Status s = on_piece(std::span<const uint8_t>(piece.data(), n)); !s) {
          stream.reset();
          return s;
        }
      }
    }
    keep_session();
    if (!parser.get().keep_alive()) close();
    last_used = std::chrono::steady_clock::now();
    return reply;
  }
};

Result<std::unique_ptr<Client>> Client::connect(const ClientConfig& config) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (Status s = impl->setup(); !s) return s;
  if (Status s = impl->open(); !s) return s;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() {
  if (impl_) impl_->close();
}

Result<Reply> Client::request(std::string_view method, std::string_view target,
                              std::string_view body, std::string_view content_type) {
  const bool reused = impl_->stream.has_value();
  if (!reused)
    if (Status s = impl_->open(); !s) return s;
  auto reply = impl_->exchange(method, target, body, content_type);
  if (!reply && reused) {  // the broker may have closed an idle connection: once more
    if (Status s = impl_->open(); !s) return s;
    reply = impl_->exchange(method, target, body, content_type);
  }
  return reply;
}

Result<Reply> Client::upload(std::string_view method, std::string_view target,
                             const Headers& headers, uint64_t content_length,
                             const BodySource& source, size_t piece_size) {
  if (Status s = impl_->ensure_fresh(); !s) return s;
  return impl_->upload(method, target, headers, content_length, source, piece_size);
}

Result<Reply> Client::download(std::string_view target, const Headers& headers,
                               const HeadersSink& on_headers, const BodySink& on_piece,
                               size_t piece_size) {
  const bool reused = impl_->stream.has_value() &&
                      std::chrono::steady_clock::now() - impl_->last_used < Impl::kStreamIdleReuse;
  if (Status s = impl_->ensure_fresh(); !s) return s;
  bool received = false;
  auto reply = impl_->download(target, headers, on_headers, on_piece, piece_size, received);
  if (!reply && reused && !received) {  // nothing arrived: a closed connection, once more
    if (Status s = impl_->open(); !s) return s;
    reply = impl_->download(target, headers, on_headers, on_piece, piece_size, received);
  }
  return reply;
}

std::string path_segment(std::string_view id) {
  std::string out;
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) ||
        std::string_view("-._~:@!$&'()*+,;=").find(c) != std::string_view::npos) {
      out += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", u);
      out += buf;
    }
  }
  return out;
}

std::string describe_error(const Reply& reply) {
  std::string out = std::to_string(reply.status);
  auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (doc.is_object()) {
    // The code reads "403:forbidden"; its status part is already there.
    if (doc.contains("code") && doc["code"].is_string()) {
      const std::string code = doc["code"];
      out += " " + code.substr(code.find(':') == std::string::npos ? 0 : code.find(':') + 1);
    }
    if (doc.contains("reason") && doc["reason"].is_array())
      for (const auto& r : doc["reason"])
        if (r.is_string()) out += ": " + r.get<std::string>();
  } else if (!reply.body.empty()) {
    out += ": " + reply.body.substr(0, 200);
  }
  return out;
}

}  // namespace dsx::connectors
