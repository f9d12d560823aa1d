// dsx broker: run the broker (flags and an optional JSON config file; flags win).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "broker/broker.h"
#include "broker/config.h"
#include "cli/commands.h"
#include "common/clock.h"

namespace dsx::cli {
namespace {

struct BrokerOptions {
  std::string cert, crl, config, listen, data;
  bool tls12 = false;
};

int run_broker(const BrokerOptions& o) {
  broker::BrokerConfig config;
  if (!o.config.empty())
    if (Status s = broker::load_config_file(o.config, config); !s) {
      std::cerr << "dsx: " << s.message() << "\n";
      return 2;
    }
  if (!o.cert.empty()) config.cert_dir = o.cert;
  if (!o.crl.empty()) config.crl_file = o.crl;
  if (!o.data.empty()) config.data_dir = o.data;
  if (o.tls12) config.allow_tls12 = true;
  if (!o.listen.empty())
    if (Status s = broker::parse_listen(o.listen, config); !s) {
      std::cerr << "dsx: " << s.message() << "\n";
      return 2;
    }
  static SystemClock clock;
  auto b = broker::Broker::create(config, stderr, clock);
  if (!b) {
    std::cerr << "dsx: " << b.status().message() << "\n";
    return 2;
  }
  std::cout << "dsx broker listening on https://" << config.listen_host << ":" << (*b)->port()
            << " (data in " << config.data_dir.string() << "); Ctrl-C stops it\n"
            << std::flush;
  (*b)->run(/*stop_on_signals=*/true);
  return 0;
}

}  // namespace

void add_broker_command(CLI::App& app, int* exit_status) {
  auto o = std::make_shared<BrokerOptions>();
  CLI::App* b = app.add_subcommand(
      "broker",
      "Run the broker: HTTPS with client certificates required (TLS 1.3), the catalog, the\n"
      "auditor API and the provenance log. Structured logs (JSON lines) go to standard error.\n"
      "SIGINT/SIGTERM stop it gracefully. Settings: docs/operations.md.");
  b->add_option("--cert", o->cert,
                "the broker's certificate folder (dsx certs issue --role broker --out DIR)")
      ->type_name("DIR");
  b->add_option("--crl", o->crl, "the CA's CRL (dsx certs crl); re-read when it changes")
      ->type_name("FILE");
  b->add_option("--config", o->config, "a JSON config file (docs/operations.md)")
      ->type_name("FILE");
  b->add_option("--listen", o->listen, "address to listen on (default 127.0.0.1:8443)")
      ->type_name("HOST:PORT");
  b->add_option("--data", o->data,
                "data folder: SQLite files and the log's key (default ./dsx-data)")
      ->type_name("DIR");
  b->add_flag("--tls12", o->tls12, "also accept TLS 1.2 clients (TLS 1.3 only by default)");
  b->callback([o, exit_status] { *exit_status = run_broker(*o); });
}

}  // namespace dsx::cli
