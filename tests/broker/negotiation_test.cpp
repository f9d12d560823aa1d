// Contract negotiation through a real broker over real TLS on loopback (docs/api.md, "Contract
// negotiation"): the DSP machine's paths, policy refusals with reasons, 400/404 answers,
// idempotency, agreements and their signatures, the control channel, restarts and timeouts.
#include "protocol/negotiation.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/hex.h"
#include "connectors/channel.h"
#include "provenance/canonical_json.h"
#include "provenance/merkle.h"
#include "provenance/signing.h"
#include "tests/broker/dsp_helpers.h"
#include "tests/broker/space.h"

namespace {

using dsx::connectors::Client;
using dsx::connectors::Reply;
using dsx::testing::body;
using dsx::testing::call;
using dsx::testing::Space;
using json = nlohmann::json;

using dsx::testing::Channel;
using dsx::testing::entries;
using dsx::testing::event;
using dsx::testing::kContext;
using dsx::testing::kResearch;
using dsx::testing::publish;
using dsx::testing::reasons_text;
using dsx::testing::request_message;
using dsx::testing::simple;
using dsx::testing::start;
using dsx::testing::state_of;
using dsx::testing::termination;

}  // namespace

TEST_CASE("a negotiation runs to FINALIZED with a signed agreement in the log", "[negotiation]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto auditor = s.client("auditor");
  const std::string offer = publish(*acme, "urn:dsx:dataset:happy");
  const std::string pid = start(*leiden, "urn:uuid:c-1", offer);

  // The provider sees it, decides, and the broker signs the agreement.
  const json listed = body(call(*acme, "GET", "/management/negotiations"))["negotiations"];
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["providerPid"] == pid);
  CHECK(listed[0]["purpose"] == kResearch);
  const Reply approved = call(*acme, "POST", "/negotiations/" + pid + "/approve", "{}");
  INFO(approved.body);
  REQUIRE(approved.status == 200);
  CHECK(body(approved)["state"] == "AGREED");
  const std::string agreement_id = body(approved)["dsx:agreementId"];
  CHECK(state_of(*leiden, pid) == "AGREED");

  // The consumer verifies; the broker finalizes.
  const Reply verified =
      call(*leiden, "POST", "/negotiations/" + pid + "/agreement/verification",
           simple("ContractAgreementVerificationMessage", pid, "urn:uuid:c-1").dump());
  INFO(verified.body);
  REQUIRE(verified.status == 200);
  CHECK(body(verified)["state"] == "FINALIZED");
  CHECK(state_of(*acme, pid) == "FINALIZED");

  // The agreement: the parties, the offer's rules, a signature by the log's key over its
  // canonical JSON.
  const Reply got = call(*leiden, "GET", "/management/agreements/" + agreement_id);
  REQUIRE(got.status == 200);
  const json a = body(got);
  CHECK(a["state"] == "active");
  CHECK(a["negotiationState"] == "FINALIZED");
  CHECK(a["agreement"]["@type"] == "Agreement");
  CHECK(a["agreement"]["assignee"] == "urn:dsx:participant:leiden");
  CHECK(a["agreement"]["assigner"] == "urn:dsx:participant:acme");
  CHECK(a["agreement"]["target"] == "urn:dsx:dataset:happy");
  CHECK(a["agreement"]["permission"][0]["action"] == "use");
  auto canonical = dsx::provenance::canonical_json(a["agreement"]);
  REQUIRE(canonical);
  CHECK(a["sha256"] == dsx::to_hex(dsx::provenance::sha256(*canonical)));
  const json key = body(call(*auditor, "GET", "/audit/public-key"));
  // Every participant may read the key (connectors check agreements with it).
  CHECK(body(call(*leiden, "GET", "/audit/public-key")) == key);
  auto public_key = dsx::provenance::PublicKey::from_pem(key["publicKey"].get<std::string>());
  REQUIRE(public_key);
  CHECK(a["signature"]["keyId"] == key["keyId"]);
  auto signature = dsx::from_hex(a["signature"]["value"].get<std::string>());
  REQUIRE(signature);
  CHECK(public_key->verify(*canonical, *signature));
  std::string tampered = *canonical;
  tampered[tampered.find("leiden")] = 'L';
  CHECK_FALSE(public_key->verify(tampered, *signature));

  CHECK(body(call(*acme, "GET", "/management/agreements"))["agreements"].size() == 1);
  CHECK(body(call(*leiden, "GET", "/management/agreements"))["agreements"].size() == 1);
  // Another participant sees neither the negotiation nor the agreement.
  auto bmw = s.client("bmw");
  CHECK(call(*bmw, "GET", "/negotiations/" + pid).status == 404);
  CHECK(call(*bmw, "GET", "/management/agreements/" + agreement_id).status == 404);
  CHECK(body(call(*bmw, "GET", "/management/agreements"))["agreements"].empty());

  // Every step is in the provenance log, the agreement with its hash.
  for (const char* action :
       {"negotiation.requested", "agreement.signed", "agreement.verified", "negotiation.finalized"})
    CHECK(entries(*auditor, action, 1).size() == 1);
  CHECK(entries(*auditor, "policy.decided", 2).size() == 2);  // at the request and at the approval
  const json signed_entry = entries(*auditor, "agreement.signed", 1)[0]["entry"];
  CHECK(signed_entry["details"]["sha256"] == a["sha256"]);
  CHECK(signed_entry["subjects"][0] == agreement_id);
}

TEST_CASE("counter-offers and acceptance and terminations", "[negotiation]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  const std::string offer = publish(*acme, "urn:dsx:dataset:counter");

  SECTION("the provider counter-offers, the consumer accepts, the provider agrees") {
    const std::string pid = start(*leiden, "urn:uuid:c-2", offer);
    json counter = {
        {"@context", kContext},
        {"@type", "ContractOfferMessage"},
        {"providerPid", pid},
        {"consumerPid", "urn:uuid:c-2"},
        {"offer",
         {{"@id", "urn:dsx:offer:counter-2"},
          {"@type", "Offer"},
          {"target", "urn:dsx:dataset:counter"},
          {"permission",
           json::array({{{"action", "use"},
                         {"constraint", json::array({{{"leftOperand", "purpose"},
                                                      {"operator", "eq"},
                                                      {"rightOperand", {{"@id", kResearch}}}}})},
                         {"duty", json::array({{{"action", "attribute"}}})}}})}}}};
    const Reply offered = call(*acme, "POST", "/negotiations/" + pid + "/offers", counter.dump());
    INFO(offered.body);
    REQUIRE(offered.status == 200);
    CHECK(body(offered)["state"] == "OFFERED");
    const Reply accepted = call(*leiden, "POST", "/negotiations/" + pid + "/events",
                                event("ACCEPTED", pid, "urn:uuid:c-2").dump());
    INFO(accepted.body);
    REQUIRE(accepted.status == 200);
    CHECK(body(accepted)["state"] == "ACCEPTED");
    const Reply approved = call(*acme, "POST", "/negotiations/" + pid + "/approve", "");
    INFO(approved.body);
    REQUIRE(approved.status == 200);
    const json a = body(
        call(*leiden, "GET",
             "/management/agreements/" + body(approved)["dsx:agreementId"].get<std::string>()));
    // The agreement holds the counter-offer's rules, duty included.
    CHECK(a["agreement"]["permission"][0]["duty"][0]["action"] == "attribute");
  }

  SECTION("the consumer counter-requests after an offer") {
    const std::string pid = start(*leiden, "urn:uuid:c-3", offer);
    json counter = {{"@context", kContext},
                    {"@type", "ContractOfferMessage"},
                    {"providerPid", pid},
                    {"consumerPid", "urn:uuid:c-3"},
                    {"offer",
                     {{"@id", "urn:dsx:offer:c3"},
                      {"@type", "Offer"},
                      {"target", "urn:dsx:dataset:counter"},
                      {"permission", json::array({{{"action", "use"}}})}}}};
    REQUIRE(call(*acme, "POST", "/negotiations/" + pid + "/offers", counter.dump()).status == 200);
    json again = request_message("urn:uuid:c-3", offer);
    again["providerPid"] = pid;
    again.erase("callbackAddress");
    const Reply r = call(*leiden, "POST", "/negotiations/" + pid + "/request", again.dump());
    INFO(r.body);
    REQUIRE(r.status == 200);
    CHECK(body(r)["state"] == "REQUESTED");
  }

  SECTION("the consumer terminates") {
    const std::string pid = start(*leiden, "urn:uuid:c-4", offer);
    const Reply r = call(*leiden, "POST", "/negotiations/" + pid + "/termination",
                         termination(pid, "urn:uuid:c-4", "changed our mind").dump());
    REQUIRE(r.status == 200);
    CHECK(body(r)["state"] == "TERMINATED");
    CHECK(state_of(*acme, pid) == "TERMINATED");
    // Nothing more is accepted.
    CHECK(call(*acme, "POST", "/negotiations/" + pid + "/approve", "{}").status == 400);
  }

  SECTION("the provider refuses, with a reason the consumer reads") {
    const std::string pid = start(*leiden, "urn:uuid:c-5", offer);
    const Reply r = call(*acme, "POST", "/negotiations/" + pid + "/termination",
                         termination(pid, "urn:uuid:c-5", "not for this project").dump());
    REQUIRE(r.status == 200);
    const json j = body(call(*leiden, "GET", "/negotiations/" + pid));
    CHECK(j["state"] == "TERMINATED");
    CHECK(j["dsx:reason"]["reasons"][0] == "not for this project");
  }
}

TEST_CASE("policy refusals terminate with the rule, the constraint and the values",
          "[negotiation]") {
  Space s;
  auto acme = s.client("acme");
  auto auditor = s.client("auditor");
  const std::string offer = publish(*acme, "urn:dsx:dataset:policy");

  SECTION("wrong purpose") {
    auto leiden = s.client("leiden");
    const Reply r =
        call(*leiden, "POST", "/negotiations/request",
             request_message("urn:uuid:p-1", offer, "https://w3id.org/dpv#Marketing").dump());
    INFO(r.body);
    REQUIRE(r.status == 403);
    const json j = body(r);
    CHECK(j["@type"] == "ContractNegotiationError");
    CHECK(j["code"] == "403:policy-refused");
    CHECK_THAT(reasons_text(r),
               Catch::Contains("purpose eq https://w3id.org/dpv#AcademicResearch") &&
                   Catch::Contains("https://w3id.org/dpv#Marketing"));
    // The negotiation exists, TERMINATED; asking again gives the same answer.
    CHECK(state_of(*leiden, j["providerPid"]) == "TERMINATED");
    const Reply again =
        call(*leiden, "POST", "/negotiations/request",
             request_message("urn:uuid:p-1", offer, "https://w3id.org/dpv#Marketing").dump());
    CHECK(again.status == 403);
    CHECK(body(again)["providerPid"] == j["providerPid"]);
    // The provider was never asked.
    CHECK(body(call(*acme, "GET", "/management/negotiations"))["negotiations"][0]["state"] ==
          "TERMINATED");
    const json decided = entries(*auditor, "policy.decided", 1);
    REQUIRE(decided.size() == 1);
    CHECK(decided[0]["entry"]["details"]["decision"] == "deny");
  }

  SECTION("wrong country (from the certificate, whatever the consumer declares)") {
    auto beijing = s.client("beijing");
    json message = request_message("urn:uuid:p-2", offer);
    message["dsx:context"] = {{"spatial", "NL"}};  // a declared country does not count
    const Reply r = call(*beijing, "POST", "/negotiations/request", message.dump());
    INFO(r.body);
    REQUIRE(r.status == 403);
    CHECK_THAT(reasons_text(r), Catch::Contains("spatial isAnyOf") && Catch::Contains("CN"));
  }

  SECTION("outside the time window") {
    const std::string old_offer = publish(*acme, "urn:dsx:dataset:expired", "2020-01-01T00:00:00Z");
    auto leiden = s.client("leiden");
    const Reply r = call(*leiden, "POST", "/negotiations/request",
                         request_message("urn:uuid:p-3", old_offer).dump());
    INFO(r.body);
    REQUIRE(r.status == 403);
    CHECK_THAT(reasons_text(r), Catch::Contains("dateTime lt 2020-01-01T00:00:00Z"));
  }
}

TEST_CASE("invalid transitions get 400 and foreign negotiations 404 and repeats the same answer",
          "[negotiation]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto beijing = s.client("beijing");
  const std::string offer = publish(*acme, "urn:dsx:dataset:rules");
  const std::string pid = start(*leiden, "urn:uuid:r-1", offer);
  const std::string cpid = "urn:uuid:r-1";

  // Verifying before an agreement, accepting without an offer, a provider's ACCEPTED.
  for (const auto& [who, path, message] :
       {std::tuple{leiden.get(), "/agreement/verification",
                   simple("ContractAgreementVerificationMessage", pid, cpid)},
        std::tuple{leiden.get(), "/events", event("ACCEPTED", pid, cpid)},
        std::tuple{acme.get(), "/events", event("ACCEPTED", pid, cpid)},
        std::tuple{acme.get(), "/events", event("FINALIZED", pid, cpid)}}) {
    const Reply r = call(*who, "POST", "/negotiations/" + pid + path, message.dump());
    INFO(path << " " << r.body);
    CHECK(r.status == 400);
    CHECK(body(r)["@type"] == "ContractNegotiationError");
    CHECK(body(r)["code"] == "400:invalid-transition");
  }
  // Roles: a consumer cannot approve or counter-offer.
  CHECK(call(*leiden, "POST", "/negotiations/" + pid + "/approve", "{}").status == 403);
  // Wrong pids in the body.
  const Reply wrong = call(*leiden, "POST", "/negotiations/" + pid + "/termination",
                           termination(pid, "urn:uuid:other", "x").dump());
  CHECK(wrong.status == 400);
  CHECK_THAT(wrong.body, Catch::Contains("consumerPid"));
  // Malformed messages name the field.
  const Reply malformed =
      call(*leiden, "POST", "/negotiations/request", R"({"@type": "ContractRequestMessage"})");
  CHECK(malformed.status == 400);
  CHECK_THAT(malformed.body, Catch::Contains("consumerPid"));

  // Someone else's negotiation does not exist for them.
  CHECK(call(*beijing, "GET", "/negotiations/" + pid).status == 404);
  CHECK(call(*beijing, "POST", "/negotiations/" + pid + "/termination",
             termination(pid, cpid, "x").dump())
            .status == 404);
  CHECK(call(*beijing, "GET", "/negotiations/urn:uuid:nothing").status == 404);

  // The same request twice: the same negotiation.
  const Reply again =
      call(*leiden, "POST", "/negotiations/request", request_message(cpid, offer).dump());
  CHECK(again.status == 201);
  CHECK(body(again)["providerPid"] == pid);
  // The same approval and verification twice: the same answer.
  REQUIRE(call(*acme, "POST", "/negotiations/" + pid + "/approve", "{}").status == 200);
  CHECK(call(*acme, "POST", "/negotiations/" + pid + "/approve", "{}").status == 200);
  const std::string verification = simple("ContractAgreementVerificationMessage", pid, cpid).dump();
  REQUIRE(call(*leiden, "POST", "/negotiations/" + pid + "/agreement/verification", verification)
              .status == 200);
  const Reply repeated =
      call(*leiden, "POST", "/negotiations/" + pid + "/agreement/verification", verification);
  CHECK(repeated.status == 200);
  CHECK(body(repeated)["state"] == "FINALIZED");
  CHECK(body(call(*leiden, "GET", "/management/agreements"))["agreements"].size() == 1);
}

TEST_CASE("the control channel delivers events once across reconnections and restarts",
          "[negotiation]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  const std::string offer = publish(*acme, "urn:dsx:dataset:channel");
  // Requested while the provider has no channel: delivered when it connects.
  const std::string pid = start(*leiden, "urn:uuid:ch-1", offer);
  uint64_t first_id = 0;
  {
    Channel channel(s, "acme");
    const json e = channel.next();
    REQUIRE(e.is_object());
    CHECK(e["type"] == "negotiation.requested");
    CHECK(e["negotiation"]["providerPid"] == pid);
    CHECK(e["negotiation"]["consumer"] == "urn:dsx:participant:leiden");
    CHECK(e["message"]["@type"] == "ContractRequestMessage");
    // The event's negotiation (written by hand) is the management list's (a JSON value).
    const Reply listed = call(*acme, "GET", "/management/negotiations");
    REQUIRE(listed.status == 200);
    const json all = json::parse(listed.body);
    json summary;
    for (const json& n : all["negotiations"])
      if (n["providerPid"] == pid) summary = n;
    CHECK(summary["state"] == "REQUESTED");
    CHECK(e["negotiation"] == summary);
    first_id = e["id"];
    // Not acknowledged: it comes again on the next connection.
  }
  {
    Channel channel(s, "acme");
    const json e = channel.next();
    REQUIRE(e.is_object());
    CHECK(e["id"] == first_id);
    channel.ack(first_id);
    // A live event while connected.
    const std::string pid2 = start(*leiden, "urn:uuid:ch-2", offer);
    const json live = channel.next();
    REQUIRE(live.is_object());
    CHECK(live["negotiation"]["providerPid"] == pid2);
    CHECK(live["id"].get<uint64_t>() > first_id);
    channel.ack(live["id"]);
    CHECK(channel.next(std::chrono::milliseconds(300)).is_null());
  }
  // The consumer's channel gets the agreement, across a broker restart.
  REQUIRE(call(*acme, "POST", "/negotiations/" + pid + "/approve", "{}").status == 200);
  s.restart();
  {
    Channel channel(s, "leiden");
    const json e = channel.next();
    REQUIRE(e.is_object());
    CHECK(e["type"] == "negotiation.agreed");
    CHECK(e["message"]["@type"] == "ContractAgreementMessage");
    CHECK(e["message"]["dsx:agreementSha256"].is_string());
    channel.ack(e["id"]);
    // A newer channel of the same participant replaces this one.
    Channel newer(s, "leiden");
    CHECK(channel.closed_by_broker(std::chrono::milliseconds(3000)));
    CHECK(newer.next(std::chrono::milliseconds(300)).is_null());  // acknowledged: gone
  }
  // The provider's channel saw nothing it acknowledged again.
  Channel provider(s, "acme");
  CHECK(provider.next(std::chrono::milliseconds(300)).is_null());
}

TEST_CASE("acknowledgements of several events go in one message, while waiting and on close",
          "[negotiation]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  const std::string offer = publish(*acme, "urn:dsx:dataset:acks");
  int n = 0;
  const auto request = [&] {
    return start(*leiden, "urn:uuid:acks-" + std::to_string(++n), offer);
  };
  request();
  request();
  request();
  std::vector<uint64_t> ids;
  {
    // The broker: {"ack": [ids]}; malformed acknowledgements are ignored, the channel goes on.
    Channel raw(s, "acme");
    for (int i = 0; i < 3; ++i) {
      const json e = raw.next();
      REQUIRE(e.is_object());
      ids.push_back(e["id"]);
    }
    raw.send(R"({"ack": []})");
    raw.send(json{{"ack", {ids[0], "x"}}}.dump());
    raw.send(R"({"ack": -1})");
    raw.send(json{{"ack", {ids[0], ids[1]}}}.dump());
    CHECK(raw.next(std::chrono::milliseconds(300)).is_null());
  }
  {
    Channel raw(s, "acme");
    const json e = raw.next();
    REQUIRE(e.is_object());
    CHECK(e["id"] == ids[2]);  // the first two were acknowledged, in one message
    CHECK(raw.next(std::chrono::milliseconds(300)).is_null());
  }
  // The connector's channel: acknowledgements wait to go together, at most kAckDelay while it
  // waits for events or until its next call, and whatever is left goes before it closes.
  using dsx::connectors::Event;
  const auto open = [&] {
    auto c = dsx::connectors::Channel::connect(s.config("acme"));
    REQUIRE(c);
    return std::move(*c);
  };
  // The next event within `wait` (nullopt: none came).
  const auto next = [](dsx::connectors::Channel& c, std::chrono::milliseconds wait) {
    auto e = c.next_event(wait);
    REQUIRE(e);
    return std::move(*e);
  };
  request();
  request();
  auto first = open();
  for (int i = 0; i < 3; ++i) {
    const std::optional<Event> e = next(*first, std::chrono::milliseconds(5000));
    REQUIRE(e);
    if (i == 0) CHECK(e->id == ids[2]);
    REQUIRE(first->ack(e->id));
  }
  CHECK_FALSE(next(*first, std::chrono::milliseconds(300)));  // the acks go meanwhile
  // A newer channel (the first stays open, so nothing of it is sent at its close).
  auto second = open();
  CHECK_FALSE(next(*second, std::chrono::milliseconds(500)));
  const std::string last = request();
  const std::optional<Event> e = next(*second, std::chrono::milliseconds(5000));
  REQUIRE(e);
  CHECK(e->body["negotiation"]["providerPid"] == last);
  REQUIRE(second->ack(e->id));
  // Overdue by the next call, even one that does not wait: it goes first.
  std::this_thread::sleep_for(dsx::connectors::Channel::kAckDelay + std::chrono::milliseconds(50));
  CHECK_FALSE(next(*second, std::chrono::milliseconds(0)));
  CHECK(Channel(s, "acme").next(std::chrono::milliseconds(500)).is_null());
  // What is still waiting goes at close().
  auto third = open();
  const std::string final_one = request();
  const std::optional<Event> f = next(*third, std::chrono::milliseconds(5000));
  REQUIRE(f);
  CHECK(f->body["negotiation"]["providerPid"] == final_one);
  REQUIRE(third->ack(f->id));
  third->close();
  CHECK(Channel(s, "acme").next(std::chrono::milliseconds(500)).is_null());
}

TEST_CASE("a channel that falls behind catches up from the store: every event once, in order",
          "[negotiation]") {
  // One event in memory per channel: a burst of requests overflows it again and again, and the
  // channel reads what it missed from the store.
  dsx::broker::BrokerConfig config;
  config.limits.channel_queue_events = 1;
  Space s(config);
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  const std::string offer = publish(*acme, "urn:dsx:dataset:burst");
  // Both ways, certainly: an event committed before the channel opens comes from the store, one
  // committed while it idles is pushed.
  const std::string before = start(*leiden, "urn:uuid:burst-before", offer);
  Channel provider(s, "acme");
  json e = provider.next();
  REQUIRE(e.is_object());
  CHECK(e["negotiation"]["providerPid"] == before);
  provider.ack(e["id"]);
  const std::string idle = start(*leiden, "urn:uuid:burst-idle", offer);
  e = provider.next();
  REQUIRE(e.is_object());
  CHECK(e["negotiation"]["providerPid"] == idle);
  provider.ack(e["id"]);
  uint64_t last = e["id"];

  constexpr size_t kThreads = 4, kEach = 25;
  std::vector<std::vector<std::string>> pids(kThreads);  // no Catch macros on these threads
  std::vector<std::thread> consumers;
  for (size_t t = 0; t < kThreads; ++t)
    consumers.emplace_back([&, t] {
      auto client = s.client("leiden");  // one each: a Client is not shared between threads
      for (size_t i = 0; i < kEach; ++i) {
        auto r = client->request(
            "POST", "/negotiations/request",
            request_message("urn:uuid:burst-" + std::to_string(t) + "-" + std::to_string(i), offer)
                .dump());
        if (!r || r->status != 201) continue;
        auto j = json::parse(r->body, nullptr, false);
        if (j.is_object()) pids[t].push_back(j.value("providerPid", ""));
      }
    });
  std::set<std::string> requested, delivered;
  bool ordered = true;
  for (size_t n = 0; n < kThreads * kEach; ++n) {
    e = provider.next();
    if (!e.is_object()) break;
    const uint64_t id = e["id"];
    ordered = ordered && id > last;
    last = id;
    delivered.insert(e["negotiation"]["providerPid"].get<std::string>());
    provider.ack(id);
  }
  for (std::thread& t : consumers)
    t.join();
  for (const auto& v : pids)
    requested.insert(v.begin(), v.end());
  CHECK(requested.size() == kThreads * kEach);
  CHECK(ordered);
  CHECK(delivered == requested);
  CHECK(provider.next(std::chrono::milliseconds(300)).is_null());  // nothing twice
  // Acknowledged, all of them: a new channel gets none again.
  Channel again(s, "acme");
  CHECK(again.next(std::chrono::milliseconds(300)).is_null());
  // Both ways were taken.
  auto auditor = s.client("auditor");
  const std::string metrics = call(*auditor, "GET", "/metrics").body;
  const auto count = [&](const std::string& source) {
    const std::string key = "dsx_channel_events_total{source=\"" + source + "\"} ";
    const size_t at = metrics.find(key);
    return at == std::string::npos ? 0 : std::stoull(metrics.substr(at + key.size()));
  };
  INFO(metrics);
  CHECK(count("pushed") > 0);
  CHECK(count("store") > 0);
  CHECK(count("pushed") + count("store") == kThreads * kEach + 2);
}

TEST_CASE("a negotiation survives a restart and an idle one times out", "[negotiation]") {
  dsx::broker::BrokerConfig config;
  config.negotiation_timeout_seconds = 4;
  Space s(config);
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  const std::string offer = publish(*acme, "urn:dsx:dataset:restart");
  const std::string pid = start(*leiden, "urn:uuid:t-1", offer);
  s.restart();
  acme = s.client("acme");
  leiden = s.client("leiden");
  CHECK(state_of(*leiden, pid) == "REQUESTED");
  // Nobody answers: TERMINATED with the reason, within a few housekeeping rounds.
  json j;
  for (int i = 0; i < 200; ++i) {
    j = body(call(*leiden, "GET", "/negotiations/" + pid));
    if (j["state"] == "TERMINATED") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(j["state"] == "TERMINATED");
  CHECK(j["dsx:reason"]["code"] == "timed-out");
}

TEST_CASE("providers retire agreements", "[negotiation]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto auditor = s.client("auditor");
  const std::string offer = publish(*acme, "urn:dsx:dataset:retire");
  const std::string pid = start(*leiden, "urn:uuid:x-1", offer);
  const Reply approved = call(*acme, "POST", "/negotiations/" + pid + "/approve", "{}");
  REQUIRE(approved.status == 200);
  const std::string id = body(approved)["dsx:agreementId"];
  CHECK(call(*leiden, "POST", "/management/agreements/" + id + "/retire", R"({"reason": "x"})")
            .status == 403);
  CHECK(call(*acme, "POST", "/management/agreements/" + id + "/retire", "{}").status == 400);
  const Reply retired = call(*acme, "POST", "/management/agreements/" + id + "/retire",
                             R"({"reason": "licence withdrawn"})");
  REQUIRE(retired.status == 200);
  const json a = body(call(*leiden, "GET", "/management/agreements/" + id));
  CHECK(a["state"] == "retired");
  CHECK(a["retiredReason"] == "licence withdrawn");
  const json logged = entries(*auditor, "agreement.retired", 1);
  REQUIRE(logged.size() == 1);
  CHECK(logged[0]["entry"]["details"]["reason"] == "licence withdrawn");
}

TEST_CASE("every invalid transition of the DSP machine gets 400 over HTTP", "[negotiation]") {
  namespace proto = dsx::protocol;
  using proto::MessageKind;
  using proto::NegotiationState;
  using proto::Role;
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  const std::string offer = publish(*acme, "urn:dsx:dataset:table");
  int serial = 0;

  // A fresh negotiation driven to `state`; its providerPid and consumerPid.
  auto reach = [&](NegotiationState state) {
    const std::string cpid = "urn:uuid:table-" + std::to_string(++serial);
    const std::string pid = start(*leiden, cpid, offer);
    auto post = [&](Client& who, const std::string& path, const json& message) {
      const Reply r = call(who, "POST", "/negotiations/" + pid + path, message.dump());
      INFO(path << " " << r.body);
      REQUIRE(r.status == 200);
    };
    json counter = {{"@context", kContext},
                    {"@type", "ContractOfferMessage"},
                    {"providerPid", pid},
                    {"consumerPid", cpid},
                    {"offer",
                     {{"@id", "urn:dsx:offer:table-" + std::to_string(serial)},
                      {"@type", "Offer"},
                      {"target", "urn:dsx:dataset:table"},
                      {"permission", json::array({{{"action", "use"}}})}}}};
    if (state == NegotiationState::kOffered || state == NegotiationState::kAccepted)
      post(*acme, "/offers", counter);
    if (state == NegotiationState::kAccepted)
      post(*leiden, "/events", event("ACCEPTED", pid, cpid));
    if (state == NegotiationState::kAgreed || state == NegotiationState::kFinalized)
      post(*acme, "/approve", json::object());
    if (state == NegotiationState::kFinalized)
      post(*leiden, "/agreement/verification",
           simple("ContractAgreementVerificationMessage", pid, cpid));
    if (state == NegotiationState::kTerminated)
      post(*leiden, "/termination", termination(pid, cpid, "stop"));
    REQUIRE(state_of(*leiden, pid) == proto::to_string(state));
    return std::pair(pid, cpid);
  };

  // The route and body of each message; whether the sender's certificate has the route's role.
  auto send = [&](MessageKind kind, Role role, const std::string& pid, const std::string& cpid) {
    Client& who = role == Role::kConsumer ? *leiden : *acme;
    std::string path;
    json message;
    switch (kind) {
      case MessageKind::kContractRequest:
        path = "/request";
        message = request_message(cpid, offer);
        message["providerPid"] = pid;
        break;
      case MessageKind::kContractOffer:
        path = "/offers";
        message = {{"@context", kContext},
                   {"@type", "ContractOfferMessage"},
                   {"providerPid", pid},
                   {"consumerPid", cpid},
                   {"offer",
                    {{"@id", "urn:dsx:offer:x"},
                     {"@type", "Offer"},
                     {"target", "urn:dsx:dataset:table"},
                     {"permission", json::array({{{"action", "use"}}})}}}};
        break;
      case MessageKind::kAcceptedEvent:
        path = "/events";
        message = event("ACCEPTED", pid, cpid);
        break;
      case MessageKind::kContractAgreement:
        path = "/approve";
        message = json::object();
        break;
      case MessageKind::kAgreementVerification:
        path = "/agreement/verification";
        message = simple("ContractAgreementVerificationMessage", pid, cpid);
        break;
      case MessageKind::kFinalizedEvent:
        path = "/events";
        message = event("FINALIZED", pid, cpid);
        break;
      case MessageKind::kTermination:
        path = "/termination";
        message = termination(pid, cpid, "another reason");
        break;
    }
    return call(who, "POST", "/negotiations/" + pid + path, message.dump());
  };
  // Routes only one role may call (the router answers 403 before the machine is asked).
  auto role_gated = [](MessageKind kind, Role role) {
    switch (kind) {
      case MessageKind::kContractRequest:
      case MessageKind::kAgreementVerification:
        return role == Role::kProvider;
      case MessageKind::kContractOffer:
      case MessageKind::kContractAgreement:
        return role == Role::kConsumer;
      default:
        return false;
    }
  };

  size_t checked = 0;
  for (NegotiationState state :
       {NegotiationState::kRequested, NegotiationState::kOffered, NegotiationState::kAccepted,
        NegotiationState::kAgreed, NegotiationState::kFinalized, NegotiationState::kTerminated}) {
    const auto [pid, cpid] = reach(state);
    for (MessageKind kind : proto::kMessageKinds)
      for (Role role : proto::kRoles) {
        if (proto::next_state(state, kind, role)) continue;  // valid: the other tests walk those
        if (proto::is_repeat_candidate(state, kind, role)) continue;  // may replay the answer
        // The broker finalizes right after the verification it answers, so a repeated
        // verification arrives in FINALIZED and is replayed (tested above).
        if (state == NegotiationState::kFinalized && kind == MessageKind::kAgreementVerification &&
            role == Role::kConsumer)
          continue;
        const Reply r = send(kind, role, pid, cpid);
        INFO(proto::to_string(state) << " " << proto::to_string(kind) << " from "
                                     << proto::to_string(role) << ": " << r.body);
        CHECK(r.status == (role_gated(kind, role) ? 403 : 400));
        CHECK(state_of(*leiden, pid) == proto::to_string(state));  // nothing changed
        ++checked;
      }
  }
  CHECK(checked > 50);
}
