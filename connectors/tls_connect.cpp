#include "connectors/tls_connect.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

namespace dsx::connectors::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

Status load_participant_context(ssl::context& ctx, const std::filesystem::path& dir) {
  boost::system::error_code ec;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.use_certificate_chain_file((dir / "cert.pem").string(), ec);
  if (ec) return Status::invalid_argument((dir / "cert.pem").string() + ": " + ec.message());
  ctx.use_private_key_file((dir / "key.pem").string(), ssl::context::pem, ec);
  if (ec) return Status::invalid_argument((dir / "key.pem").string() + ": " + ec.message());
  ctx.load_verify_file((dir / "ca.pem").string(), ec);
  if (ec) return Status::invalid_argument((dir / "ca.pem").string() + ": " + ec.message());
  ctx.set_verify_mode(ssl::verify_peer);
  return Status::ok();
}

Status connect_tls(asio::io_context& ioc, TlsStream& stream, const ClientConfig& config,
                   SSL_SESSION* session) {
  const std::string where = config.host + ":" + std::to_string(config.port);
  boost::system::error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(config.host, std::to_string(config.port), ec);
  if (ec) return Status::invalid_argument("cannot resolve " + config.host + ": " + ec.message());
  auto& tcp_stream = beast::get_lowest_layer(stream);
  tcp_stream.expires_after(config.timeout);
  ec = run_op(ioc, [&](auto handler) { tcp_stream.async_connect(endpoints, std::move(handler)); });
  if (!ec) tcp_stream.socket().set_option(tcp::no_delay(true), ec);  // no Nagle stalls
  if (ec) return Status::failed_precondition("cannot connect to " + where + ": " + ec.message());
  SSL* ssl_handle = stream.native_handle();
  SSL_set_tlsext_host_name(ssl_handle, config.host.c_str());
  // The broker's certificate must name the host we dialled (DNS or IP SAN).
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  boost::system::error_code addr_ec;
  asio::ip::make_address(config.host, addr_ec);
  if (addr_ec)
    X509_VERIFY_PARAM_set1_host(param, config.host.c_str(), 0);
  else
    X509_VERIFY_PARAM_set1_ip_asc(param, config.host.c_str());
  if (session) SSL_set_session(ssl_handle, session);
  ec = run_op(ioc, [&](auto handler) {
    stream.async_handshake(ssl::stream_base::client, std::move(handler));
  });
  if (ec) {
    std::string why = ec.message();
    const long verify = SSL_get_verify_result(ssl_handle);
    if (verify != X509_V_OK)
      why += " (broker certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
    return Status::failed_precondition("TLS handshake with " + where + " failed: " + why);
  }
  return Status::ok();
}

}  // namespace dsx::connectors::detail
