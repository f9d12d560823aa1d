// The broker over real TLS on loopback: certificates generated into a temporary folder, a real
// SQLite store and provenance log, the broker on port 0 in this process, clients through the
// connectors library (and raw TLS where a client must misbehave).
#include "broker/broker.h"

#include <openssl/ssl.h>
#include <sys/wait.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "broker/store.h"
#include "certs/ca.h"
#include "common/clock.h"
#include "connectors/client.h"
#include "connectors/negotiation.h"
#include "provenance/proof.h"
#include "tests/broker/space.h"
#include "tests/run_dsx.h"

namespace fs = std::filesystem;
namespace asio = boost::asio;
using dsx::connectors::Client;
using dsx::connectors::Reply;
using json = nlohmann::json;
using dsx::testing::body;
using dsx::testing::call;
using dsx::testing::Space;

namespace {

std::string dataset(const std::string& id, const std::string& title, const json& countries,
                    const json& keywords = json::array({"health"})) {
  return json{
      {"id", id},
      {"title", title},
      {"keywords", keywords},
      {"offers",
       json::array(
           {{{"permission",
              json::array({{{"action", "use"},
                            {"constraint", json::array({{{"leftOperand", "spatial"},
                                                         {"operator", "isAnyOf"},
                                                         {"rightOperand", countries}}})}}})}}})}}
      .dump();
}

const char* kCatalogRequest =
    R"({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"})";

// A TLS handshake with the given folder's certificate (or none): whether the broker accepted it
// and answered a request.
bool handshake_and_request(const Space& s, const std::optional<fs::path>& cert_dir) {
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  if (cert_dir) {
    ctx.use_certificate_chain_file((*cert_dir / "cert.pem").string());
    ctx.use_private_key_file((*cert_dir / "key.pem").string(), asio::ssl::context::pem);
  }
  ctx.set_verify_mode(asio::ssl::verify_none);
  asio::ssl::stream<asio::ip::tcp::socket> stream(ioc, ctx);
  stream.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), s.port()});
  boost::system::error_code ec;
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return false;
  // TLS 1.3: the server checks the client certificate after the client's handshake is done, so
  // a refusal shows on the first read.
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  asio::write(stream, asio::buffer(req), ec);
  if (ec) return false;
  char buf[256];
  const size_t n = stream.read_some(asio::buffer(buf), ec);
  return !ec && n > 0 && std::string(buf, n).rfind("HTTP/1.1 200", 0) == 0;
}

}  // namespace

TEST_CASE("the broker refuses connections without a valid client certificate", "[broker]") {
  Space s;
  CHECK(handshake_and_request(s, s.dir() / "leiden"));
  SECTION("no client certificate") {
    CHECK_FALSE(handshake_and_request(s, std::nullopt));
  }
  SECTION("a certificate from another CA") {
    REQUIRE(dsx::certs::init_ca(s.dir() / "other-ca", {}));
    s.issue("mallory", {"consumer"}, "NL", "mallory", std::nullopt, s.dir() / "other-ca");
    CHECK_FALSE(handshake_and_request(s, s.dir() / "mallory"));
  }
  SECTION("an expired certificate") {
    s.issue("late", {"consumer"}, "NL", "late", dsx::Instant{1'600'000'000, 0});
    CHECK_FALSE(handshake_and_request(s, s.dir() / "late"));
  }
  SECTION("a certificate revoked while the broker runs") {
    REQUIRE(dsx::certs::revoke(s.dir() / "ca", s.dir() / "leiden" / "cert.pem"));
    bool refused = false;
    for (int i = 0; i < 100 && !refused; ++i) {  // the broker re-reads the CRL every 50 ms
      refused = !handshake_and_request(s, s.dir() / "leiden");
      if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(refused);
    CHECK(handshake_and_request(s, s.dir() / "beijing"));  // others still get in
  }
}

TEST_CASE("sessions resume, and refused handshakes are counted by reason", "[broker]") {
  Space s;
  CHECK_FALSE(handshake_and_request(s, std::nullopt));
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.use_certificate_chain_file((s.dir() / "leiden" / "cert.pem").string());
  ctx.use_private_key_file((s.dir() / "leiden" / "key.pem").string(), asio::ssl::context::pem);
  SSL_SESSION* session = nullptr;
  for (int round = 0; round < 2; ++round) {
    asio::ssl::stream<asio::ip::tcp::socket> stream(ioc, ctx);
    stream.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), s.port()});
    if (session) SSL_set_session(stream.native_handle(), session);
    stream.handshake(asio::ssl::stream_base::client);
    if (round == 1) CHECK(SSL_session_reused(stream.native_handle()) == 1);
    const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    asio::write(stream, asio::buffer(req));
    std::string reply;
    char buf[1024];
    boost::system::error_code ec;
    for (size_t n; (n = stream.read_some(asio::buffer(buf), ec)) > 0 && !ec;) {
      reply.append(buf, n);
      // The TLS 1.3 ticket came before the reply; keep it before the connection closes.
      if (!session) session = SSL_get1_session(stream.native_handle());
    }
    CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
    stream.shutdown(ec);  // OpenSSL forgets the session of a connection not shut down cleanly
  }
  SSL_SESSION_free(session);
  auto auditor = s.client("auditor");
  const std::string metrics = call(*auditor, "GET", "/metrics").body;
  INFO(metrics);
  CHECK(metrics.find("dsx_handshake_failures_total{reason=\"no_certificate\"} 1") !=
        std::string::npos);
}

TEST_CASE("a participant's connections are limited", "[broker]") {
  dsx::broker::BrokerConfig c;
  c.limits.max_connections_per_participant = 2;
  Space s(c);
  auto a = s.client("leiden");
  auto b = s.client("leiden");
  CHECK(call(*a, "GET", "/healthz").status == 200);
  CHECK(call(*b, "GET", "/healthz").status == 200);
  auto third = s.client("leiden");
  Reply r = call(*third, "GET", "/healthz");
  CHECK(r.status == 429);
  CHECK(body(r)["code"] == "429:too-many-connections");
  CHECK(call(*s.client("beijing"), "GET", "/healthz").status == 200);  // others are not limited
}

TEST_CASE("roles are enforced and other participants' data reads as 404", "[broker]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto bmw = s.client("bmw");
  Reply refused = call(*leiden, "POST", "/management/datasets",
                       dataset("urn:dsx:dataset:x", "X", json::array({"NL"})));
  CHECK(refused.status == 403);
  CHECK(body(refused)["code"] == "403:forbidden");
  REQUIRE(call(*acme, "POST", "/management/datasets",
               dataset("urn:dsx:dataset:a", "A", json::array({"NL"})))
              .status == 201);
  CHECK(call(*bmw, "GET", "/management/datasets/urn:dsx:dataset:a").status == 404);
  CHECK(call(*bmw, "DELETE", "/management/datasets/urn:dsx:dataset:a").status == 404);
  CHECK(call(*bmw, "PUT", "/management/datasets/urn:dsx:dataset:a",
             dataset("urn:dsx:dataset:a", "B", json::array({"NL"})))
            .status == 404);
  CHECK(call(*leiden, "GET", "/audit/checkpoint").status == 403);
  CHECK(call(*leiden, "GET", "/metrics").status == 403);
  CHECK(call(*leiden, "GET", "/nowhere").status == 404);
  CHECK(call(*leiden, "DELETE", "/catalog/request").status == 405);
}

TEST_CASE("a published dataset appears in the catalog in the DSP shape", "[broker][catalog]") {
  Space s;
  auto acme = s.client("acme");
  Reply pub = call(*acme, "POST", "/management/datasets",
                   dataset("urn:dsx:dataset:admissions", "Admissions", json::array({"DE", "NL"})));
  REQUIRE(pub.status == 201);
  CHECK(pub.header("Location") == "/management/datasets/urn:dsx:dataset:admissions");
  auto leiden = s.client("leiden");
  Reply cat = call(*leiden, "POST", "/catalog/request", kCatalogRequest);
  REQUIRE(cat.status == 200);
  json c = body(cat);
  CHECK(c["@type"] == "Catalog");
  CHECK(c["@context"][0] == "https://w3id.org/dspace/2025/1/context.jsonld");
  REQUIRE(c["dataset"].size() == 1);
  const json& d = c["dataset"][0];
  CHECK(d["@id"] == "urn:dsx:dataset:admissions");
  CHECK(d["@type"] == "Dataset");
  CHECK(d["hasPolicy"][0]["@type"] == "Offer");
  CHECK(d["hasPolicy"][0]["assigner"] == "urn:dsx:participant:acme");
  CHECK(d["hasPolicy"][0]["target"] == "urn:dsx:dataset:admissions");
  CHECK(d["distribution"][0]["@type"] == "Distribution");
  CHECK(d["distribution"][0]["accessService"] == c["service"][0]["@id"]);
  CHECK(call(*leiden, "GET", "/catalog/datasets/urn:dsx:dataset:admissions").status == 200);

  SECTION("restricted datasets are hidden from participants who could never get them") {
    auto beijing = s.client("beijing");
    CHECK(body(call(*beijing, "POST", "/catalog/request", kCatalogRequest))["dataset"].empty());
    CHECK(call(*beijing, "GET", "/catalog/datasets/urn:dsx:dataset:admissions").status == 404);
    auto auditor = s.client("auditor");  // auditors see everything
    CHECK(body(call(*auditor, "POST", "/catalog/request", kCatalogRequest))["dataset"].size() == 1);
  }
  SECTION("withdrawn datasets disappear") {
    REQUIRE(call(*acme, "DELETE", "/management/datasets/urn:dsx:dataset:admissions").status == 200);
    CHECK(body(call(*leiden, "POST", "/catalog/request", kCatalogRequest))["dataset"].empty());
  }
  SECTION("an update replaces the offers") {
    REQUIRE(call(*acme, "PUT", "/management/datasets/urn:dsx:dataset:admissions",
                 dataset("urn:dsx:dataset:admissions", "Admissions", json::array({"DE"})))
                .status == 200);
    CHECK(body(call(*leiden, "POST", "/catalog/request", kCatalogRequest))["dataset"].empty());
  }
}

TEST_CASE("an offer id names one offer of one dataset", "[broker][catalog]") {
  Space s;
  auto acme = s.client("acme");
  auto bmw = s.client("bmw");
  auto with_offer_ids = [](const std::string& id, std::vector<std::string> offer_ids) {
    json d = json::parse(dataset(id, "Titled", json::array({"DE", "NL"})));
    json offers = json::array();
    for (const std::string& oid : offer_ids) {
      json o = d["offers"][0];
      o["@id"] = oid;
      offers.push_back(o);
    }
    d["offers"] = offers;
    return d.dump();
  };
  REQUIRE(call(*acme, "POST", "/management/datasets",
               with_offer_ids("urn:dsx:dataset:a", {"urn:dsx:offer:one"}))
              .status == 201);
  // Another dataset, of another provider or the same one, cannot take the id: a consumer that
  // asks for urn:dsx:offer:one must get acme's dataset a.
  for (auto* who : {&bmw, &acme}) {
    Reply taken = call(**who, "POST", "/management/datasets",
                       with_offer_ids("urn:dsx:dataset:b", {"urn:dsx:offer:one"}));
    CHECK(taken.status == 409);
    CHECK(body(taken)["code"] == "409:offer-id-taken");
    CHECK(taken.body.find("already an offer of dataset urn:dsx:dataset:a") != std::string::npos);
  }
  Reply twice =
      call(*bmw, "POST", "/management/datasets",
           with_offer_ids("urn:dsx:dataset:b", {"urn:dsx:offer:two", "urn:dsx:offer:two"}));
  CHECK(twice.status == 409);
  CHECK(twice.body.find("offers[1]: the offer id urn:dsx:offer:two is also offers[0]'s") !=
        std::string::npos);
  // The dataset itself keeps its ids through an update, and may add offers.
  CHECK(call(*acme, "PUT", "/management/datasets/urn:dsx:dataset:a",
             with_offer_ids("urn:dsx:dataset:a", {"urn:dsx:offer:one", "urn:dsx:offer:three"}))
            .status == 200);
  // An id an update drops, or a withdrawal frees, is free again.
  CHECK(call(*acme, "PUT", "/management/datasets/urn:dsx:dataset:a",
             with_offer_ids("urn:dsx:dataset:a", {"urn:dsx:offer:three"}))
            .status == 200);
  CHECK(call(*bmw, "POST", "/management/datasets",
             with_offer_ids("urn:dsx:dataset:b", {"urn:dsx:offer:one"}))
            .status == 201);
  CHECK(call(*bmw, "POST", "/management/datasets",
             with_offer_ids("urn:dsx:dataset:c", {"urn:dsx:offer:three"}))
            .status == 409);
  REQUIRE(call(*acme, "DELETE", "/management/datasets/urn:dsx:dataset:a").status == 200);
  CHECK(call(*bmw, "POST", "/management/datasets",
             with_offer_ids("urn:dsx:dataset:c", {"urn:dsx:offer:three"}))
            .status == 201);
  // A contract request for an offer reaches the dataset that holds it now.
  auto leiden = s.client("leiden");
  for (const auto& [offer, dataset_id] : {std::pair{"urn:dsx:offer:one", "urn:dsx:dataset:b"},
                                          std::pair{"urn:dsx:offer:three", "urn:dsx:dataset:c"}}) {
    dsx::connectors::ContractRequest r;
    r.offer_id = offer;
    Reply requested = call(*leiden, "POST", "/negotiations/request",
                           dsx::connectors::contract_request_message(r).dump());
    REQUIRE(requested.status == 201);
    const std::string pid = body(requested)["providerPid"];
    json listed = body(call(*bmw, "GET", "/management/negotiations"));
    bool found = false;
    for (const json& n : listed["negotiations"])
      if (n["providerPid"] == pid) found = n["dataset"] == dataset_id;
    CHECK(found);
  }
  CHECK(
      call(
          *leiden, "POST", "/negotiations/request",
          dsx::connectors::contract_request_message({"urn:dsx:offer:gone", "", nullptr, ""}).dump())
          .status == 400);
}

TEST_CASE("an offer id that an older store holds twice passes to the other dataset",
          "[broker][catalog]") {
  // Stores written before offer ids were kept unique may hold one in two active datasets: the
  // first published keeps it, and when it is withdrawn, the other takes it.
  dsx::broker::BrokerConfig c;
  char tmpl[] = "/tmp/dsx-broker-offers-XXXXXX";
  const fs::path keep = mkdtemp(tmpl);
  c.data_dir = keep / "data";
  auto with_offer = [](const std::string& id) {
    json d = json::parse(dataset(id, "Twice", json::array({"DE", "NL"})));
    d["offers"][0]["@id"] = "urn:dsx:offer:twice";
    return d.dump();
  };
  {
    Space s(c);
    REQUIRE(
        call(*s.client("acme"), "POST", "/management/datasets", with_offer("urn:dsx:dataset:first"))
            .status == 201);
  }
  {  // the second dataset as an older broker would have stored it
    auto store = dsx::broker::open_sqlite_store((c.data_dir / "broker.db").string());
    REQUIRE(store);
    auto first = (*store)->active_datasets();
    REQUIRE(first);
    REQUIRE(first->size() == 1);
    json second = json::parse(first->front().body);
    second["id"] = "urn:dsx:dataset:second";
    second["offers"][0]["target"] = "urn:dsx:dataset:second";
    REQUIRE((*store)->put_dataset(
        {"urn:dsx:dataset:second", "urn:dsx:participant:acme", second.dump(), 0}));
  }
  Space s(c);
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto dataset_of_request = [&]() -> std::string {
    dsx::connectors::ContractRequest r;
    r.offer_id = "urn:dsx:offer:twice";
    Reply requested = call(*leiden, "POST", "/negotiations/request",
                           dsx::connectors::contract_request_message(r).dump());
    if (requested.status != 201) return "status " + std::to_string(requested.status);
    const std::string pid = body(requested)["providerPid"];
    const json listed = body(call(*acme, "GET", "/management/negotiations"));
    for (const json& n : listed["negotiations"])
      if (n["providerPid"] == pid) return n["dataset"];
    return "not listed: " + listed.dump();
  };
  CHECK(dataset_of_request() == "urn:dsx:dataset:first");
  REQUIRE(call(*acme, "DELETE", "/management/datasets/urn:dsx:dataset:first").status == 200);
  CHECK(dataset_of_request() == "urn:dsx:dataset:second");
  fs::remove_all(keep);
}

TEST_CASE("the catalog pages with Link headers and filters by keyword and text",
          "[broker][catalog]") {
  Space s;
  auto acme = s.client("acme");
  for (int i = 0; i < 7; ++i)
    REQUIRE(call(*acme, "POST", "/management/datasets",
                 dataset("urn:dsx:dataset:d" + std::to_string(i), "Set " + std::to_string(i),
                         json::array({"NL"}), json::array({i % 2 ? "odd" : "even", "all"})))
                .status == 201);
  auto leiden = s.client("leiden");
  std::vector<std::string> seen;
  std::string target = "/catalog/request?limit=3";
  int pages = 0;
  bool saw_previous = false;
  while (!target.empty() && pages < 10) {
    Reply r = call(*leiden, "POST", target, kCatalogRequest);
    INFO(r.body);
    REQUIRE(r.status == 200);
    ++pages;
    const json page = body(r);
    for (const auto& d : page["dataset"])
      seen.push_back(d["@id"]);
    target.clear();
    for (const auto& link : r.headers_named("Link")) {
      if (link.find("rel=\"previous\"") != std::string::npos) saw_previous = true;
      if (link.find("rel=\"next\"") == std::string::npos) continue;
      const std::string url = link.substr(1, link.find('>') - 1);
      target = url.substr(url.find('/', url.find("://") + 3));
    }
  }
  INFO(target);
  CHECK(pages == 3);
  CHECK(saw_previous);
  REQUIRE(seen.size() == 7);
  for (int i = 0; i < 7; ++i)
    CHECK(seen[static_cast<size_t>(i)] == "urn:dsx:dataset:d" + std::to_string(i));

  auto count = [&](const std::string& filter) {
    json msg = json::parse(kCatalogRequest);
    msg["filter"] = json::parse(filter);
    Reply r = call(*leiden, "POST", "/catalog/request", msg.dump());
    return r.status == 200 ? static_cast<int>(body(r)["dataset"].size()) : -r.status;
  };
  CHECK(count(R"([{"keyword": "odd"}])") == 3);
  CHECK(count(R"([{"keyword": "EVEN"}])") == 4);
  CHECK(count(R"([{"text": "set 5"}])") == 1);
  CHECK(count(R"([{"keyword": "odd"}, {"text": "set 1"}])") == 1);
  CHECK(count(R"([{"sql": "drop table"}])") == -400);
}

TEST_CASE("bad input gets a clear 4xx and the broker keeps serving", "[broker]") {
  dsx::broker::BrokerConfig c;
  c.limits.max_body_bytes = 4096;
  c.limits.read_timeout_seconds = 1;
  Space s(c);
  auto acme = s.client("acme");
  auto expect = [&](const Reply& r, int status, const std::string& code) {
    INFO(r.body);
    CHECK(r.status == status);
    CHECK(body(r)["code"] == std::to_string(status) + ":" + code);
    CHECK_FALSE(body(r)["reason"].empty());
  };
  expect(call(*acme, "POST", "/management/datasets", "{not json"), 400, "invalid-json");
  expect(call(*acme, "POST", "/management/datasets", R"({"title": 5, "offers": []})"), 400,
         "invalid-dataset");
  expect(
      call(
          *acme, "POST", "/management/datasets",
          R"({"title": "t", "offers": [{"permission": [{"action": "use", "constraint": [{"leftOperand": "spatial", "operator": "greaterThan", "rightOperand": "DE"}]}]}]})"),
      400, "invalid-dataset");
  expect(call(*acme, "POST", "/catalog/request", R"({"@type": "Nonsense"})"), 400,
         "invalid-request");
  expect(call(*acme, "POST", "/management/datasets", std::string(10000, ' ')), 413,
         "body-too-large");
  // After a 413 the connection is closed; the client reconnects.
  CHECK(call(*acme, "GET", "/healthz").status == 200);

  SECTION("a slow client is cut off while others are served") {
    asio::io_context ioc;
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.use_certificate_chain_file((s.dir() / "leiden" / "cert.pem").string());
    ctx.use_private_key_file((s.dir() / "leiden" / "key.pem").string(), asio::ssl::context::pem);
    asio::ssl::stream<asio::ip::tcp::socket> slow(ioc, ctx);
    slow.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), s.port()});
    slow.handshake(asio::ssl::stream_base::client);
    asio::write(slow, asio::buffer(std::string("POST /catalog/request HTTP/1.1\r\nHost: x\r\n")));
    auto other = s.client("beijing");
    CHECK(call(*other, "GET", "/healthz").status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the read timeout
    char buf[64];
    boost::system::error_code ec;
    slow.read_some(asio::buffer(buf), ec);
    CHECK(ec);  // closed by the broker
    CHECK(call(*other, "GET", "/healthz").status == 200);
  }
}

TEST_CASE("auditors get checkpoints, entries and proofs that verify", "[broker][audit]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  REQUIRE(call(*acme, "POST", "/management/datasets",
               dataset("urn:dsx:dataset:a", "A", json::array({"NL"})))
              .status == 201);
  REQUIRE(call(*leiden, "POST", "/management/datasets", "{}").status == 403);  // logged
  REQUIRE(call(*acme, "DELETE", "/management/datasets/urn:dsx:dataset:a").status == 200);
  auto auditor = s.client("auditor");
  json cp = body(call(*auditor, "GET", "/audit/checkpoint"));
  CHECK(cp["treeSize"] == 3);
  json entries = body(call(*auditor, "GET", "/audit/entries"));
  REQUIRE(entries["entries"].size() == 3);
  CHECK(entries["entries"][0]["entry"]["action"] == "dataset.published");
  CHECK(entries["entries"][0]["entry"]["actor"] == "urn:dsx:participant:acme");
  CHECK(entries["entries"][1]["entry"]["action"] == "request.refused");
  CHECK(entries["entries"][1]["entry"]["actor"] == "urn:dsx:participant:leiden");
  CHECK(entries["entries"][2]["entry"]["action"] == "dataset.withdrawn");
  json filtered = body(call(*auditor, "GET", "/audit/entries?actor=urn:dsx:participant:leiden"));
  CHECK(filtered["entries"].size() == 1);
  for (uint64_t i = 0; i < 3; ++i) {
    Reply proof = call(*auditor, "GET", "/audit/proof/inclusion?index=" + std::to_string(i));
    REQUIRE(proof.status == 200);
    auto p = dsx::provenance::parse_proof_text(proof.body);
    REQUIRE(p);
    CHECK(dsx::provenance::verify(*p).is_ok());
    CHECK(body(proof)["rootHash"] == cp["rootHash"]);
    CHECK(body(proof)["leafHash"] == entries["entries"][i]["leafHash"]);
  }
  Reply consistency = call(*auditor, "GET", "/audit/proof/consistency?first=1");
  auto p = dsx::provenance::parse_proof_text(consistency.body);
  REQUIRE(p);
  CHECK(dsx::provenance::verify(*p).is_ok());
  CHECK(call(*auditor, "GET", "/audit/proof/inclusion?index=99").status == 400);
  CHECK(call(*auditor, "GET", "/audit/proof/inclusion?index=x").status == 400);
  Reply metrics = call(*auditor, "GET", "/metrics");
  CHECK(metrics.body.find("dsx_requests_total{route=\"management.publish\",status=\"201\"} 1") !=
        std::string::npos);
  // 3 entries above, and the two refused proof requests.
  CHECK(metrics.body.find("dsx_provenance_log_entries 5") != std::string::npos);
}

TEST_CASE("the catalog survives a broker restart", "[broker]") {
  fs::path data;
  dsx::broker::BrokerConfig c;
  char tmpl[] = "/tmp/dsx-broker-restart-XXXXXX";
  const fs::path keep = mkdtemp(tmpl);
  c.data_dir = keep / "data";
  {
    Space s(c);
    auto acme = s.client("acme");
    REQUIRE(call(*acme, "POST", "/management/datasets",
                 dataset("urn:dsx:dataset:kept", "Kept", json::array({"NL"})))
                .status == 201);
  }
  {
    Space s(c);  // new certificates, same data folder
    auto leiden = s.client("leiden");
    json cat = body(call(*leiden, "POST", "/catalog/request", kCatalogRequest));
    INFO(body(call(*leiden, "GET", "/healthz")).dump());
    REQUIRE(cat["dataset"].size() == 1);
    CHECK(cat["dataset"][0]["@id"] == "urn:dsx:dataset:kept");
    auto auditor = s.client("auditor");
    CHECK(body(call(*auditor, "GET", "/audit/checkpoint"))["treeSize"] == 1);
  }
  fs::remove_all(keep);
}

TEST_CASE("dsx connector and dsx audit work against a running broker", "[broker][cli]") {
  using dsx::testing::run_dsx;
  Space s;
  const std::string broker = "--broker https://127.0.0.1:" + std::to_string(s.port());
  auto as = [&](const std::string& who) { return broker + " --cert " + (s.dir() / who).string(); };
  const fs::path file = s.dir() / "dataset.json";
  std::ofstream(file) << dataset("urn:dsx:dataset:cli", "From the CLI", json::array({"NL"}));
  auto [pub, pub_out] = run_dsx("connector publish " + as("acme") + " --dataset " + file.string());
  INFO(pub_out);
  CHECK(pub == 0);
  CHECK(pub_out.find("published urn:dsx:dataset:cli") != std::string::npos);
  auto [again, again_out] =
      run_dsx("connector publish " + as("acme") + " --dataset " + file.string());
  CHECK(again == 0);
  CHECK(again_out.find("updated urn:dsx:dataset:cli") != std::string::npos);
  auto [refused, refused_out] =
      run_dsx("connector publish " + as("leiden") + " --dataset " + file.string());
  CHECK(refused == 2);
  CHECK(refused_out.find("needs the role provider") != std::string::npos);
  auto [cat, cat_out] = run_dsx("connector catalog " + as("leiden"));
  CHECK(cat == 0);
  CHECK(cat_out.find("1 dataset in the catalog") != std::string::npos);
  CHECK(cat_out.find("spatial isAnyOf [urn:iso:3166:NL]") != std::string::npos);
  auto [hidden, hidden_out] = run_dsx("connector catalog " + as("beijing") + " --json");
  CHECK(hidden == 0);
  CHECK(json::parse(hidden_out)["dataset"].empty());
  const fs::path proof = s.dir() / "proof.json";
  auto [pr, pr_out] = run_dsx("audit proof " + as("auditor") + " --index 0");
  REQUIRE(pr == 0);
  std::ofstream(proof) << pr_out;
  auto [ok, ok_out] = run_dsx("audit verify-proof " + proof.string());
  INFO(ok_out);
  CHECK(ok == 0);
  auto [lg, lg_out] = run_dsx("audit log " + as("auditor") + " --action dataset.updated");
  CHECK(lg == 0);
  CHECK(lg_out.find("dataset.updated  by urn:dsx:participant:acme") != std::string::npos);
  auto [no, no_out] = run_dsx("connector catalog --broker https://127.0.0.1:1 --cert " +
                              (s.dir() / "leiden").string());
  CHECK(no == 1);
}

TEST_CASE("oversized headers get 431 and the connection closes", "[broker]") {
  Space s;
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.use_certificate_chain_file((s.dir() / "leiden" / "cert.pem").string());
  ctx.use_private_key_file((s.dir() / "leiden" / "key.pem").string(), asio::ssl::context::pem);
  asio::ssl::stream<asio::ip::tcp::socket> stream(ioc, ctx);
  stream.lowest_layer().connect({asio::ip::make_address("127.0.0.1"), s.port()});
  stream.handshake(asio::ssl::stream_base::client);
  const std::string req =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  boost::system::error_code ec;
  asio::write(stream, asio::buffer(req), ec);
  std::string reply;
  char buf[4096];
  for (size_t n; (n = stream.read_some(asio::buffer(buf), ec)) > 0 && !ec;)
    reply.append(buf, n);
  INFO(reply);
  CHECK(reply.rfind("HTTP/1.1 431", 0) == 0);
  CHECK(reply.find("431:headers-too-large") != std::string::npos);
}

TEST_CASE("the config file sets every limit and refuses unknown keys", "[broker][config]") {
  using dsx::broker::BrokerConfig;
  BrokerConfig c;
  REQUIRE(dsx::broker::apply_config_json(
      json::parse(R"({"listen": "0.0.0.0:9443", "data": "/var/lib/dsx", "tls12": true,
                      "limits": {"maxBodyBytes": 2048, "readTimeoutSeconds": 3,
                                 "maxConnectionsPerParticipant": 7},
                      "catalog": {"pageSize": 20}})"),
      c));
  CHECK(c.listen_host == "0.0.0.0");
  CHECK(c.listen_port == 9443);
  CHECK(c.data_dir == "/var/lib/dsx");
  CHECK(c.allow_tls12);
  CHECK(c.limits.max_body_bytes == 2048);
  CHECK(c.limits.read_timeout_seconds == 3);
  CHECK(c.limits.max_connections_per_participant == 7);
  CHECK(c.catalog_page_size == 20);
  auto error = [](const char* text) {
    BrokerConfig x;
    dsx::Status s = dsx::broker::apply_config_json(json::parse(text), x);
    return s.is_ok() ? std::string() : s.message();
  };
  CHECK(error(R"({"listne": "x:1"})") == "listne: unknown setting");
  CHECK(error(R"({"limits": {"maxBodyBytes": 10}})").find("limits.maxBodyBytes") == 0);
  CHECK(error(R"({"listen": "nohostport"})").find("listen:") == 0);
  CHECK(error(R"({"tls12": "yes"})").find("tls12") == 0);
  BrokerConfig missing;
  CHECK_FALSE(dsx::broker::validate(missing));  // no certificate folder
}
