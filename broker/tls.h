#pragma once
// The broker's TLS server contexts: its certificate and key, TLS 1.3 (1.2 only when configured),
// client certificates required and verified against the data space CA and its CRL, session
// resumption (session cache and TLS 1.3 tickets) on.
//
// A changed CRL file is picked up without a restart: reload_if_changed() builds a fresh context
// and new connections use it, while connections already open keep theirs. A fresh context also
// means fresh ticket keys, so no session from before the change is resumed without a full
// handshake (and a revocation check). An unreadable new CRL keeps the old context and reports
// the error. Thread-safe.

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "broker/config.h"
#include "common/status.h"

namespace boost::asio::ssl {
class context;
}

namespace dsx::broker {

class TlsContexts {
 public:
  static Result<std::unique_ptr<TlsContexts>> create(const BrokerConfig& config);

  std::shared_ptr<boost::asio::ssl::context> current() const;
  // True when the CRL file changed and the new context is in use.
  Result<bool> reload_if_changed();

 private:
  explicit TlsContexts(const BrokerConfig& config) : config_(config) {}
  Result<std::shared_ptr<boost::asio::ssl::context>> build() const;
  std::string crl_stamp() const;  // mtime and size of the CRL file

  const BrokerConfig config_;
  mutable std::mutex mutex_;  // guards context_ and stamp_
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::string stamp_;
};

// Why a handshake failed, for metrics and logs: "no_certificate", "revoked", "expired",
// "unknown_ca", "crl_expired", "timeout", "protocol", ...
std::string handshake_failure_reason(long verify_result, const std::string& error_message);

}  // namespace dsx::broker
