#include "broker/broker.h"

#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "broker/audit_api.h"
#include "broker/catalog.h"
#include "broker/events.h"
#include "broker/logger.h"
#include "broker/metrics.h"
#include "broker/negotiations.h"
#include "broker/router.h"
#include "broker/server.h"
#include "broker/store.h"
#include "broker/tls.h"
#include "broker/transfers.h"
#include "certs/identity.h"
#include "provenance/log.h"
#include "provenance/signing.h"

namespace dsx::broker {
namespace {

// The relay's questions (broker/relay.h), answered by the transfer control plane.
class TransfersRelayAuthority : public RelayAuthority {
 public:
  explicit TransfersRelayAuthority(Transfers& transfers) : transfers_(transfers) {}
  Result<DataAccess> data_access(const Caller& caller, const std::string& provider_pid,
                                 bool upload) override {
    return transfers_.data_access(caller, provider_pid, upload);
  }
  Status record_relay(const std::string& provider_pid, uint64_t from_chunk, uint64_t bytes,
                      const std::string& sha256_hex, const std::string& manifest_json,
                      bool complete) override {
    return transfers_.record_relay(provider_pid, from_chunk, bytes, sha256_hex, manifest_json,
                                   complete);
  }

 private:
  Transfers& transfers_;
};

}  // namespace

struct Broker::Parts {
  BrokerConfig config;
  const Clock& clock;
  Logger logger;
  Metrics metrics;
  // The store outlives the log: closing the log finishes queued appends, whose callbacks drop
  // their entries from the store's outbox.
  std::unique_ptr<Store> store;
  std::unique_ptr<provenance::Log> log;
  std::unique_ptr<TlsContexts> tls;
  Router router;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<Events> events;
  std::unique_ptr<Negotiations> negotiations;
  std::unique_ptr<Transfers> transfers;
  std::unique_ptr<TransfersRelayAuthority> relay_authority;
  std::unique_ptr<Server> server;

  // Housekeeping: terminates negotiations that waited too long, while the broker runs.
  std::thread housekeeper;
  std::mutex housekeeping_mutex;  // guards stopping
  std::condition_variable housekeeping_cv;
  bool stopping = false;

  void start_housekeeping() {
    const auto interval =
        std::chrono::seconds(std::clamp<uint32_t>(config.negotiation_timeout_seconds / 2, 1, 60));
    housekeeper = std::thread([this, interval] {
      std::unique_lock lock(housekeeping_mutex);
      while (!housekeeping_cv.wait_for(lock, interval, [this] { return stopping; })) {
        lock.unlock();
        if (auto expired = negotiations->expire_idle(); !expired)
          logger.error("negotiations.expiry_failed", {{"error", expired.status().message()}});
        else if (*expired)
          logger.info("negotiations.expired", {{"count", *expired}});
        if (auto expired = transfers->expire(); !expired)
          logger.error("transfers.expiry_failed", {{"error", expired.status().message()}});
        else if (*expired)
          logger.info("transfers.expired", {{"count", *expired}});
        lock.lock();
      }
    });
  }
  void stop_housekeeping() {
    {
      std::lock_guard lock(housekeeping_mutex);
      stopping = true;
    }
    housekeeping_cv.notify_all();
    if (housekeeper.joinable()) housekeeper.join();
  }

  Parts(BrokerConfig c, std::FILE* out, const Clock& clk)
      : config(std::move(c)), clock(clk), logger(out, clk) {}
  ~Parts() {
    stop_housekeeping();
    server.reset();  // connections first, then the services they use
    transfers.reset();
    negotiations.reset();
    events.reset();
    catalog.reset();
    log.reset();  // finishes queued appends
  }
};

Result<std::unique_ptr<Broker>> Broker::create(BrokerConfig config, std::FILE* log_out,
                                               const Clock& clock) {
  if (Status s = validate(config); !s) return s;
  auto p = std::make_unique<Parts>(std::move(config), log_out, clock);
  const BrokerConfig& c = p->config;
  std::error_code ec;
  std::filesystem::create_directories(c.data_dir, ec);
  if (ec)
    return Status::invalid_argument("data: cannot create " + c.data_dir.string() + ": " +
                                    ec.message());
  ::chmod(c.data_dir.c_str(), 0700);  // the log's key lives here

  auto me = certs::load_identity(c.cert_dir / "cert.pem");
  if (!me) return Status::invalid_argument("cert: " + me.status().message());
  auto key = provenance::SigningKey::load_or_create((c.data_dir / "log.key").string());
  if (!key) return key.status();
  provenance::SigningKey agreement_key = *key;  // agreements are signed with the log's key
  auto log = provenance::Log::open((c.data_dir / "provenance.db").string(), std::move(*key),
                                   "dsx-broker " + me->participant_id, clock);
  if (!log) return log.status();
  p->log = std::move(*log);
  auto store = open_sqlite_store((c.data_dir / "broker.db").string());
  if (!store) return store.status();
  p->store = std::move(*store);
  auto tls = TlsContexts::create(c);
  if (!tls) return tls.status();
  p->tls = std::move(*tls);

  p->catalog = std::make_unique<Catalog>(c, *p->store, *p->log, clock, me->participant_id);
  if (Status s = p->catalog->load(); !s) return s;
  p->catalog->add_routes(p->router);
  p->events = std::make_unique<Events>(*p->store);
  p->negotiations =
      std::make_unique<Negotiations>(c, *p->store, *p->log, std::move(agreement_key), *p->catalog,
                                     clock, me->participant_id);
  if (Status s = p->negotiations->recover(); !s) return s;
  p->negotiations->add_routes(p->router);
  p->transfers =
      std::make_unique<Transfers>(c, *p->store, *p->log, clock, me->participant_id);
  if (Status s = p->transfers->recover(); !s) return s;
  p->transfers->add_routes(p->router);
  p->relay_authority = std::make_unique<TransfersRelayAuthority>(*p->transfers);
  add_audit_routes(p->router, *p->log);
  Parts* raw = p.get();
  p->router.add({"GET",
                 "/healthz",
                 "healthz",
                 {},
                 "Error",
                 [raw](const HttpRequest&, const Caller&, const PathParams&) {
                   return json_response(200, {{"status", "ok"},
                                              {"provenanceLogEntries", raw->log->size()},
                                              {"datasets", raw->catalog->size()}});
                 }});
  p->router.add({"GET",
                 "/channel",
                 "channel",
                 {},
                 "Error",
                 [](const HttpRequest&, const Caller&, const PathParams&) {
                   HttpResponse r = error_response(
                       426, "Error", "upgrade-required",
                       {"the control channel is a WebSocket: send the Upgrade: websocket headers "
                        "(docs/api.md)"});
                   r.headers.emplace_back("Upgrade", "websocket");
                   return r;
                 }});
  p->router.add({"GET",
                 "/metrics",
                 "metrics",
                 {"operator", "auditor"},
                 "Error",
                 [raw](const HttpRequest&, const Caller&, const PathParams&) {
                   HttpResponse r;
                   r.content_type = "text/plain; version=0.0.4";
                   r.body = raw->metrics.prometheus_text();
                   return r;
                 }});
  p->router.on_refusal(
      [raw](const Caller& caller, const HttpRequest& req, const HttpResponse& resp,
            const std::string& route) { raw->catalog->log_refusal(caller, req, resp, route); });
  p->metrics.gauge("dsx_provenance_log_entries", "Entries in the provenance log.",
                   [raw] { return static_cast<double>(raw->log->size()); });
  p->metrics.gauge("dsx_catalog_datasets", "Datasets published and not withdrawn.",
                   [raw] { return static_cast<double>(raw->catalog->size()); });

  p->server = std::make_unique<Server>(c, p->router, p->metrics, p->logger, *p->tls,
                                       p->events.get(), p->relay_authority.get());
  if (Status s = p->server->listen(); !s) return s;
  if (c.crl_file.empty())
    p->logger.warn("broker.no_crl", {{"hint", "without --crl, revoked certificates are accepted"}});
  p->logger.info("broker.listening", {{"host", c.listen_host},
                                      {"port", p->server->port()},
                                      {"participantId", me->participant_id},
                                      {"data", c.data_dir.string()},
                                      {"logEntries", p->log->size()},
                                      {"datasets", p->catalog->size()}});
  return std::unique_ptr<Broker>(new Broker(std::move(p)));
}

Broker::Broker(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
Broker::~Broker() = default;

uint16_t Broker::port() const {
  return parts_->server->port();
}

void Broker::run(bool stop_on_signals) {
  parts_->start_housekeeping();
  parts_->server->run(stop_on_signals);
  parts_->stop_housekeeping();
  parts_->logger.info("broker.stopped", {{"logEntries", parts_->log->size()}});
}

void Broker::stop() {
  parts_->server->stop();
}

}  // namespace dsx::broker
