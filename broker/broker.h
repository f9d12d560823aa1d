#pragma once
// The broker, wired: configuration -> provenance log (DATA/provenance.db, key DATA/log.key),
// store (DATA/broker.db), TLS contexts, routes (catalog, management, auditor API, health,
// metrics) -> HTTPS server. Owns all of them; main() only builds one and runs it.
// run() blocks until stop() (any thread) or, when asked, SIGINT/SIGTERM; then the server drains
// and the log finishes its queued appends before the broker is destroyed.

#include <cstdio>
#include <memory>

#include "broker/config.h"
#include "common/clock.h"
#include "common/status.h"

namespace dsx::broker {

class Broker {
 public:
  // `log_out`: where structured logs go (nullptr: nowhere). `clock` must outlive the broker.
  static Result<std::unique_ptr<Broker>> create(BrokerConfig config, std::FILE* log_out,
                                                const Clock& clock);
  ~Broker();
  uint16_t port() const;
  void run(bool stop_on_signals = false);
  void stop();

  struct Parts;

 private:
  explicit Broker(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace dsx::broker
