#pragma once
// The broker test fixture: a data space on loopback (a CA, certificates for a broker, two
// providers, two consumers and an auditor in a temporary folder, a broker on port 0 in this
// process, on a real SQLite store and provenance log), and small helpers for requests.

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "broker/broker.h"
#include "certs/ca.h"
#include "common/clock.h"
#include "connectors/client.h"

namespace dsx::testing {

namespace fs = std::filesystem;
using dsx::connectors::Client;
using dsx::connectors::Reply;
using json = nlohmann::json;

// A data space on loopback: a CA, certificates, and a running broker.
class Space {
 public:
  explicit Space(dsx::broker::BrokerConfig overrides = {}) {
    char tmpl[] = "/tmp/dsx-broker-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    REQUIRE(dsx::certs::init_ca(dir_ / "ca", {}));
    issue("127.0.0.1", {"broker"}, std::nullopt, "broker");
    issue("acme", {"provider"}, "DE", "acme");
    issue("bmw", {"provider"}, "DE", "bmw");
    issue("leiden", {"consumer"}, "NL", "leiden");
    issue("beijing", {"consumer"}, "CN", "beijing");
    issue("audit", {"auditor"}, std::nullopt, "auditor");
    dsx::broker::BrokerConfig c = overrides;
    c.listen_port = 0;
    c.cert_dir = dir_ / "broker";
    c.crl_file = dir_ / "ca" / "crl.pem";
    if (c.data_dir == dsx::broker::BrokerConfig().data_dir) c.data_dir = dir_ / "data";
    c.crl_check_interval_ms = 50;
    c.io_threads = 2;
    c.worker_threads = 2;
    config_ = c;
    start();
  }
  ~Space() {
    stop();
    fs::remove_all(dir_);
  }

  // Stops the broker and starts a new one on the same data (and a new port).
  void restart() {
    stop();
    start();
  }

  fs::path dir() const { return dir_; }
  uint16_t port() const { return broker_->port(); }

  dsx::Result<dsx::certs::Issued> issue(const std::string& name, std::vector<std::string> roles,
                                        std::optional<std::string> country, const std::string& out,
                                        std::optional<dsx::Instant> not_after = std::nullopt,
                                        const fs::path& ca = {}) {
    dsx::certs::IssueRequest r;
    r.name = name;
    r.roles = std::move(roles);
    r.country = std::move(country);
    if (not_after) {
      r.not_before = dsx::Instant{not_after->seconds - 86400, 0};
      r.not_after = not_after;
    }
    auto issued = dsx::certs::issue(ca.empty() ? dir_ / "ca" : ca, r, dir_ / out);
    INFO(issued.status().message());
    REQUIRE(issued);
    return issued;
  }

  // How `who`'s connector reaches this broker.
  dsx::connectors::ClientConfig config(const std::string& who) const {
    dsx::connectors::ClientConfig c;
    c.port = port();
    c.cert_dir = dir_ / who;
    c.timeout = std::chrono::seconds(10);
    return c;
  }

  dsx::Result<std::unique_ptr<Client>> connect(const std::string& who) const {
    return Client::connect(config(who));
  }

  std::unique_ptr<Client> client(const std::string& who) const {
    auto c = connect(who);
    INFO(c.status().message());
    REQUIRE(c);
    return std::move(*c);
  }

 private:
  void start() {
    auto b = dsx::broker::Broker::create(config_, std::getenv("DSX_TEST_LOGS") ? stderr : nullptr,
                                         clock_);
    INFO(b.status().message());
    REQUIRE(b);
    broker_ = std::move(*b);
    thread_ = std::thread([this] { broker_->run(); });
  }
  void stop() {
    broker_->stop();
    thread_.join();
    broker_.reset();
  }

  dsx::broker::BrokerConfig config_;
  fs::path dir_;
  dsx::SystemClock clock_;
  std::unique_ptr<dsx::broker::Broker> broker_;
  std::thread thread_;
};

inline Reply call(Client& c, const std::string& method, const std::string& target,
                  const std::string& body = {}) {
  auto r = c.request(method, target, body);
  INFO(r.status().message());
  REQUIRE(r);
  return std::move(*r);
}

inline json body(const Reply& r) {
  auto j = json::parse(r.body, nullptr, false);
  INFO(r.body);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

}  // namespace dsx::testing
