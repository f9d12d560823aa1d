#include "connectors/client.h"

#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
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
    http::response_parser<http::string_body> parser;
    parser.body_limit(uint64_t{1} << 30);
    ec = detail::run_op(
        ioc, [&](auto handler) { http::async_read(*stream, buffer, parser, std::move(handler)); });
    if (ec) return Status::failed_precondition("reading the reply: " + ec.message());
    auto& res = parser.get();
    Reply reply;
    reply.status = static_cast<int>(res.result_int());
    reply.body = std::move(res.body());
    for (const auto& field : res)
      reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    keep_session();
    if (!res.keep_alive()) close();
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
