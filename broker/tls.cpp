#include "broker/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/ssl/context.hpp>
#include <system_error>

#include "certs/pem.h"

namespace dsx::broker {

namespace ssl = boost::asio::ssl;

Result<std::unique_ptr<TlsContexts>> TlsContexts::create(const BrokerConfig& config) {
  std::unique_ptr<TlsContexts> t(new TlsContexts(config));
  t->stamp_ = t->crl_stamp();
  auto ctx = t->build();
  if (!ctx) return ctx.status();
  t->context_ = std::move(*ctx);
  return t;
}

std::shared_ptr<ssl::context> TlsContexts::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

std::string TlsContexts::crl_stamp() const {
  if (config_.crl_file.empty()) return {};
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(config_.crl_file, ec);
  const auto size = std::filesystem::file_size(config_.crl_file, ec);
  if (ec) return "missing";
  return std::to_string(time.time_since_epoch().count()) + "/" + std::to_string(size);
}

Result<bool> TlsContexts::reload_if_changed() {
  const std::string stamp = crl_stamp();
  {
    std::lock_guard lock(mutex_);
    if (stamp == stamp_) return false;
  }
  auto ctx = build();
  std::lock_guard lock(mutex_);
  stamp_ = stamp;  // do not retry a broken file until it changes again
  if (!ctx) return ctx.status();
  context_ = std::move(*ctx);
  return true;
}

Result<std::shared_ptr<ssl::context>> TlsContexts::build() const {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, config_.allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  boost::system::error_code ec;
  const auto cert = config_.cert_dir / "cert.pem";
  const auto key = config_.cert_dir / "key.pem";
  const auto ca = config_.cert_dir / "ca.pem";
  ctx->use_certificate_chain_file(cert.string(), ec);
  if (ec) return Status::invalid_argument(cert.string() + ": " + ec.message());
  ctx->use_private_key_file(key.string(), ssl::context::pem, ec);
  if (ec) return Status::invalid_argument(key.string() + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1)
    return Status::invalid_argument(key.string() + ": does not belong to " + cert.string());
  ctx->load_verify_file(ca.string(), ec);
  if (ec) return Status::invalid_argument(ca.string() + ": " + ec.message());
  // Client certificates: required, verified at the handshake.
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  // Which CAs the broker accepts, sent to clients in the CertificateRequest.
  SSL_CTX_set_client_CA_list(native, SSL_load_client_CA_file(ca.string().c_str()));
  // Resumption: a server-side session cache and TLS 1.3 tickets; the session id context is
  // required when client certificates are verified, or resumption fails.
  static constexpr unsigned char kSessionContext[] = "dsx-broker";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(native, 20480);
  if (!config_.crl_file.empty()) {
    auto crl = certs::load_crl(config_.crl_file);
    if (!crl) return Status::invalid_argument("crl: " + crl.status().message());
    X509_STORE* store = SSL_CTX_get_cert_store(native);
    if (X509_STORE_add_crl(store, crl->get()) != 1)
      return Status::invalid_argument("crl: " + config_.crl_file.string() +
                                      ": cannot be added to the trust store");
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  return ctx;
}

std::string handshake_failure_reason(long verify_result, const std::string& error_message) {
  switch (verify_result) {
    case X509_V_OK:
      break;
    case X509_V_ERR_CERT_REVOKED:
      return "revoked";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "not_yet_valid";
    case X509_V_ERR_CRL_HAS_EXPIRED:
      return "crl_expired";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return "unknown_ca";
    default:
      return "verify_failed";
  }
  if (error_message.find("peer did not return a certificate") != std::string::npos ||
      error_message.find("certificate required") != std::string::npos)
    return "no_certificate";
  if (error_message.find("version") != std::string::npos) return "protocol_version";
  if (error_message.find("stream truncated") != std::string::npos ||
      error_message.find("End of file") != std::string::npos ||
      error_message.find("reset") != std::string::npos)
    return "closed";
  return "protocol";
}

}  // namespace dsx::broker
