#pragma once
// Helpers for tests of the broker's DSP processes (negotiations, transfers) over real TLS: DSP
// messages, publishing an offer, negotiating an agreement, a control channel client, reading
// the provenance log. Used with the Space fixture (space.h).

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "tests/broker/space.h"

namespace dsx::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

inline const json kContext = json::array({"https://w3id.org/dspace/2025/1/context.jsonld"});
inline const std::string kResearch = "https://w3id.org/dpv#AcademicResearch";

// `provider` publishes dataset `id` with one offer (id ":offer") permitting use under
// `constraints` (an array of ODRL constraints); the offer id.
inline std::string publish_offer(Client& provider, const std::string& id, const json& constraints) {
  const json offer = {
      {"@id", id + ":offer"},
      {"permission", json::array({{{"action", "use"}, {"constraint", constraints}}})}};
  const json dataset = {
      {"id", id}, {"title", "Admissions " + id}, {"offers", json::array({offer})}};
  const Reply r = call(provider, "POST", "/management/datasets", dataset.dump());
  INFO(r.body);
  REQUIRE(r.status == 201);
  return id + ":offer";
}

// acme publishes a dataset whose one offer allows use for research, in NL or DE, before 2100.
inline std::string publish(Client& acme, const std::string& id,
                           const std::string& not_after = "2100-01-01T00:00:00Z") {
  return publish_offer(
      acme, id,
      json::array(
          {{{"leftOperand", "purpose"}, {"operator", "eq"}, {"rightOperand", {{"@id", kResearch}}}},
           {{"leftOperand", "spatial"},
            {"operator", "isAnyOf"},
            {"rightOperand", json::array({"NL", "DE"})}},
           {{"leftOperand", "dateTime"},
            {"operator", "lt"},
            {"rightOperand", {{"@value", not_after}, {"@type", "xsd:dateTime"}}}}}));
}

inline json request_message(const std::string& cpid, const std::string& offer,
                            const std::string& purpose = kResearch) {
  return {{"@context", kContext},
          {"@type", "ContractRequestMessage"},
          {"consumerPid", cpid},
          {"offer", {{"@id", offer}}},
          {"callbackAddress", "urn:dsx:channel"},
          {"dsx:purpose", purpose}};
}

inline json simple(const std::string& type, const std::string& pid, const std::string& cpid) {
  return {{"@context", kContext}, {"@type", type}, {"providerPid", pid}, {"consumerPid", cpid}};
}

inline json event(const std::string& kind, const std::string& pid, const std::string& cpid) {
  json e = simple("ContractNegotiationEventMessage", pid, cpid);
  e["eventType"] = kind;
  return e;
}

inline json termination(const std::string& pid, const std::string& cpid,
                        const std::string& reason) {
  json t = simple("ContractNegotiationTerminationMessage", pid, cpid);
  t["code"] = "refused";
  t["reason"] = json::array({reason});
  return t;
}

inline std::string state_of(Client& c, const std::string& pid) {
  const Reply r = call(c, "GET", "/negotiations/" + pid);
  REQUIRE(r.status == 200);
  return body(r)["state"];
}

// Requests a contract for `offer` as `consumer`; the providerPid.
inline std::string start(Client& consumer, const std::string& cpid, const std::string& offer) {
  const Reply r =
      call(consumer, "POST", "/negotiations/request", request_message(cpid, offer).dump());
  INFO(r.body);
  REQUIRE(r.status == 201);
  const json j = body(r);
  CHECK(j["@type"] == "ContractNegotiation");
  CHECK(j["state"] == "REQUESTED");
  CHECK(j["consumerPid"] == cpid);
  return j["providerPid"];
}

inline std::string reasons_text(const Reply& r) {
  return body(r)["reason"].dump();
}

// A control channel client: WebSocket over mutual TLS with a participant's certificate.
class Channel {
 public:
  Channel(const Space& s, const std::string& who) : ctx_(context(s.dir() / who)), ws_(ioc_, ctx_) {
    beast::get_lowest_layer(ws_).connect({asio::ip::make_address("127.0.0.1"), s.port()});
    ws_.next_layer().handshake(asio::ssl::stream_base::client);
    ws_.handshake("127.0.0.1", "/channel");
  }

  // The next event, or null when none arrives within `wait` (the channel is then unusable: a
  // WebSocket read that was cancelled leaves the stream in an unknown state).
  json next(std::chrono::milliseconds wait = std::chrono::milliseconds(5000)) {
    beast::flat_buffer buffer;
    if (read(buffer, wait)) return nullptr;
    return json::parse(beast::buffers_to_string(buffer.data()));
  }
  void ack(uint64_t id) { send(json{{"ack", id}}.dump()); }
  void send(const std::string& text) { ws_.write(asio::buffer(text)); }
  // Whether the broker closed the channel (within `wait`).
  bool closed_by_broker(std::chrono::milliseconds wait) {
    beast::flat_buffer buffer;
    return read(buffer, wait) == websocket::error::closed;
  }

 private:
  // Before the stream: its SSL object takes the context's certificate when it is made.
  static asio::ssl::context context(const std::filesystem::path& dir) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.use_certificate_chain_file((dir / "cert.pem").string());
    ctx.use_private_key_file((dir / "key.pem").string(), asio::ssl::context::pem);
    ctx.load_verify_file((dir / "ca.pem").string());
    ctx.set_verify_mode(asio::ssl::verify_peer);
    return ctx;
  }
  // A read with a deadline (Asio's synchronous reads have none).
  beast::error_code read(beast::flat_buffer& buffer, std::chrono::milliseconds wait) {
    std::optional<beast::error_code> result;
    ws_.async_read(buffer, [&](beast::error_code ec, size_t) { result = ec; });
    ioc_.restart();
    ioc_.run_for(wait);
    if (!result) {
      beast::get_lowest_layer(ws_).cancel();
      ioc_.restart();
      ioc_.run();
    }
    return *result;
  }

  asio::io_context ioc_;
  asio::ssl::context ctx_;
  websocket::stream<asio::ssl::stream<asio::ip::tcp::socket>> ws_;
};

// The log's entries of `action`, once there are at least `at_least` (or after 2 s): entries
// reach the log a moment after the commit that answered the request (broker/negotiations.h).
inline json entries(Client& auditor, const std::string& action, size_t at_least = 0) {
  json found;
  for (int i = 0; i < 50; ++i) {
    const Reply r = call(auditor, "GET", "/audit/entries?from=0&limit=1000&action=" + action);
    REQUIRE(r.status == 200);
    found = body(r)["entries"];
    if (found.size() >= at_least) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  return found;
}

// Negotiates `offer` from `consumer` with `provider` up to FINALIZED; the agreement id.
inline std::string agree(Client& consumer, Client& provider, const std::string& cpid,
                         const std::string& offer) {
  const std::string pid = start(consumer, cpid, offer);
  const Reply approved = call(provider, "POST", "/negotiations/" + pid + "/approve", "{}");
  INFO(approved.body);
  REQUIRE(approved.status == 200);
  const Reply verified = call(consumer, "POST", "/negotiations/" + pid + "/agreement/verification",
                              simple("ContractAgreementVerificationMessage", pid, cpid).dump());
  INFO(verified.body);
  REQUIRE(verified.status == 200);
  REQUIRE(body(verified)["state"] == "FINALIZED");
  return body(approved)["dsx:agreementId"];
}

}  // namespace dsx::testing
