// The transfer process through a real broker over real TLS on loopback (docs/api.md,
// "Transfers"): encryption key registration, the DSP machine's paths with receipts, events,
// 400/404 answers, idempotency, the policy at transfer time (count, a closing dateTime window, a
// retired agreement) and restarts. The data relay itself is tested with the relay.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "broker/store.h"
#include "broker/transfers.h"
#include "certs/identity.h"
#include "certs/signature.h"
#include "common/hex.h"
#include "common/time.h"
#include "protocol/encryption_key.h"
#include "protocol/stream_documents.h"
#include "provenance/log.h"
#include "provenance/signing.h"
#include "tests/broker/dsp_helpers.h"
#include "tests/broker/space.h"

namespace {

using dsx::connectors::Client;
using dsx::connectors::Reply;
using dsx::testing::agree;
using dsx::testing::body;
using dsx::testing::call;
using dsx::testing::Channel;
using dsx::testing::entries;
using dsx::testing::kContext;
using dsx::testing::kResearch;
using dsx::testing::publish;
using dsx::testing::publish_offer;
using dsx::testing::simple;
using dsx::testing::Space;
using json = nlohmann::json;

std::array<uint8_t, 32> fingerprint(const Space& s, const std::string& who) {
  auto id = dsx::certs::load_identity(s.dir() / who / "cert.pem");
  REQUIRE(id);
  auto bytes = dsx::from_hex(id->fingerprint_sha256_hex);
  REQUIRE(bytes);
  REQUIRE(bytes->size() == 32);
  std::array<uint8_t, 32> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// `participant`'s key binding for the certificate of `bound_to`, signed by `signer`.
json key_binding(const Space& s, const std::string& participant, const std::string& bound_to,
                 const std::string& signer) {
  auto key = dsx::protocol::X25519PrivateKey::generate();
  REQUIRE(key);
  dsx::protocol::EncryptionKeyBinding b{"urn:dsx:participant:" + participant,
                                        fingerprint(s, bound_to), key->public_key(),
                                        dsx::Instant{1'800'000'000, 0}};
  auto text = dsx::protocol::key_binding_json(b);
  REQUIRE(text);
  auto sig = dsx::certs::sign_text(s.dir() / signer, *text);
  INFO(sig.status().message());
  REQUIRE(sig);
  return dsx::certs::signed_document(*text, *sig);
}

void register_key(const Space& s, Client& c, const std::string& who) {
  const Reply r =
      call(c, "PUT", "/management/keys/encryption", key_binding(s, who, who, who).dump());
  INFO(r.body);
  REQUIRE(r.status == 200);
}

json transfer_request(const std::string& cpid, const std::string& agreement) {
  return {{"@context", kContext},      {"@type", "TransferRequestMessage"},
          {"consumerPid", cpid},       {"agreementId", agreement},
          {"format", "dsx-stream-v1"}, {"callbackAddress", "urn:dsx:channel"}};
}

Reply request_transfer(Client& c, const std::string& cpid, const std::string& agreement) {
  return call(c, "POST", "/transfers/request", transfer_request(cpid, agreement).dump());
}

// Requests a transfer; its providerPid.
std::string requested(Client& c, const std::string& cpid, const std::string& agreement) {
  const Reply r = request_transfer(c, cpid, agreement);
  INFO(r.body);
  REQUIRE(r.status == 201);
  const json j = body(r);
  CHECK(j["@type"] == "TransferProcess");
  CHECK(j["state"] == "REQUESTED");
  CHECK(j["consumerPid"] == cpid);
  return j["providerPid"];
}

Reply step(Client& c, const std::string& pid, const std::string& path, const json& message) {
  return call(c, "POST", "/transfers/" + pid + "/" + path, message.dump());
}

std::string state_of(Client& c, const std::string& pid) {
  const Reply r = call(c, "GET", "/transfers/" + pid);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return body(r)["state"];
}

json start_message(const std::string& pid, const std::string& cpid) {
  return simple("TransferStartMessage", pid, cpid);
}

// The consumer's receipt: the stream manifest of this transfer, signed by `signer`.
json receipt(const Space& s, const std::string& signer, const std::string& pid,
             const std::string& agreement, const std::string& dataset) {
  dsx::protocol::StreamManifest m;
  m.dataset_id = dataset;
  m.agreement_id = agreement;
  m.transfer_id = pid;
  m.plaintext_size = 42;
  m.plaintext_sha256.fill(7);
  m.ciphertext_sha256.fill(9);
  auto text = dsx::protocol::stream_manifest_json(m);
  REQUIRE(text);
  auto sig = dsx::certs::sign_text(s.dir() / signer, *text);
  REQUIRE(sig);
  return dsx::certs::signed_document(*text, *sig);
}

json completion(const Space& s, const std::string& pid, const std::string& cpid,
                const std::string& agreement, const std::string& dataset) {
  json m = simple("TransferCompletionMessage", pid, cpid);
  m["dsx:receipt"] = receipt(s, "leiden", pid, agreement, dataset);
  return m;
}

// Starts and completes a requested transfer.
void run_to_completion(const Space& s, Client& acme, Client& leiden, const std::string& pid,
                       const std::string& cpid, const std::string& agreement,
                       const std::string& dataset) {
  const Reply started = step(acme, pid, "start", start_message(pid, cpid));
  INFO(started.body);
  REQUIRE(started.status == 200);
  const Reply completed =
      step(leiden, pid, "completion", completion(s, pid, cpid, agreement, dataset));
  INFO(completed.body);
  REQUIRE(completed.status == 200);
  CHECK(body(completed)["state"] == "COMPLETED");
}

// The next event of `type` (others are acknowledged and skipped); null when none comes.
json next_of(Channel& channel, const std::string& type) {
  for (int i = 0; i < 20; ++i) {
    json e = channel.next();
    if (e.is_null()) return e;
    channel.ack(e["id"]);
    if (e["type"] == type) return e;
  }
  return nullptr;
}

std::string code_of(const Reply& r) {
  return body(r)["code"];
}

}  // namespace

TEST_CASE("consumers register encryption keys signed by their certificate", "[transfer]") {
  Space s;
  auto leiden = s.client("leiden");
  auto acme = s.client("acme");
  CHECK(call(*acme, "GET", "/management/keys/encryption/urn:dsx:participant:leiden").status == 404);

  // Signed by another participant's key: refused.
  Reply r = call(*leiden, "PUT", "/management/keys/encryption",
                 key_binding(s, "leiden", "leiden", "beijing").dump());
  CHECK(r.status == 400);
  CHECK(body(r)["reason"].dump().find("not signed by your certificate") != std::string::npos);
  // Naming another participant: refused, though leiden signed it.
  r = call(*leiden, "PUT", "/management/keys/encryption",
           key_binding(s, "beijing", "leiden", "leiden").dump());
  CHECK(r.status == 400);
  CHECK(body(r)["reason"].dump().find("is not you") != std::string::npos);
  // Bound to another certificate: refused.
  r = call(*leiden, "PUT", "/management/keys/encryption",
           key_binding(s, "leiden", "beijing", "leiden").dump());
  CHECK(r.status == 400);
  CHECK(body(r)["reason"].dump().find("is not your certificate") != std::string::npos);
  // Not a signed document.
  CHECK(call(*leiden, "PUT", "/management/keys/encryption", "{}").status == 400);
  // A provider-only participant registers no key.
  CHECK(call(*acme, "PUT", "/management/keys/encryption",
             key_binding(s, "acme", "acme", "acme").dump())
            .status == 403);

  const json good = key_binding(s, "leiden", "leiden", "leiden");
  r = call(*leiden, "PUT", "/management/keys/encryption", good.dump());
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(call(*leiden, "PUT", "/management/keys/encryption", good.dump()).status == 200);
  const Reply got = call(*acme, "GET", "/management/keys/encryption/urn:dsx:participant:leiden");
  REQUIRE(got.status == 200);
  const json k = body(got);
  CHECK(k["document"] == good["document"]);
  CHECK(k["signature"] == good["signature"]);
  // What a provider checks before sealing: the signature against the certificate given.
  auto sig = dsx::certs::parse_signature(k["signature"]);
  REQUIRE(sig);
  CHECK(dsx::certs::verify_text(k["certificate"].get<std::string>(),
                                k["document"].get<std::string>(), *sig));
  auto auditor = s.client("auditor");
  CHECK(entries(*auditor, "key.registered", 1).size() == 1);  // the repeat logged nothing
}

TEST_CASE("a transfer runs from request to completion with a receipt", "[transfer]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto auditor = s.client("auditor");
  const std::string dataset = "urn:dsx:dataset:t-happy";
  const std::string agreement = agree(*leiden, *acme, "urn:uuid:n-1", publish(*acme, dataset));

  // No key yet: refused with a reason that says what to do.
  Reply r = request_transfer(*leiden, "urn:uuid:t-0", agreement);
  CHECK(r.status == 400);
  CHECK(code_of(r) == "400:no-encryption-key");
  CHECK(body(r)["reason"].dump().find("PUT /management/keys/encryption") != std::string::npos);
  register_key(s, *leiden, "leiden");
  // Unknown agreements, and other formats, are refused.
  CHECK(request_transfer(*leiden, "urn:uuid:t-x", "urn:uuid:nope").status == 400);
  json other_format = transfer_request("urn:uuid:t-y", agreement);
  other_format["format"] = "HTTP_PULL";
  CHECK(call(*leiden, "POST", "/transfers/request", other_format.dump()).status == 400);

  Channel acme_channel(s, "acme");
  Channel leiden_channel(s, "leiden");
  const std::string cpid = "urn:uuid:t-1";
  const std::string pid = requested(*leiden, cpid, agreement);
  CHECK(state_of(*acme, pid) == "REQUESTED");
  // A repeated request is the same transfer.
  r = request_transfer(*leiden, cpid, agreement);
  CHECK(r.status == 201);
  CHECK(body(r)["providerPid"] == pid);

  // The provider is told, with the consumer's key.
  const json told = next_of(acme_channel, "transfer.requested");
  REQUIRE(told.is_object());
  CHECK(told["transfer"]["providerPid"] == pid);
  CHECK(told["transfer"]["agreementId"] == agreement);
  CHECK(told["transfer"]["dataset"] == dataset);
  CHECK(told["transfer"]["fromChunk"] == 0);
  CHECK(told["encryptionKey"]["document"].get<std::string>().find("X25519") != std::string::npos);
  CHECK(told["encryptionKey"]["certificate"].get<std::string>().find("BEGIN CERTIFICATE") !=
        std::string::npos);

  r = step(*acme, pid, "start", start_message(pid, cpid));
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(body(r)["state"] == "STARTED");
  CHECK(step(*acme, pid, "start", start_message(pid, cpid)).status == 200);  // a repeat
  CHECK(next_of(leiden_channel, "transfer.started").is_object());

  // A receipt for another transfer, or signed by someone else, is refused.
  json wrong = simple("TransferCompletionMessage", pid, cpid);
  CHECK(step(*leiden, pid, "completion", wrong).status == 400);  // no receipt
  wrong["dsx:receipt"] = receipt(s, "leiden", "urn:uuid:other", agreement, dataset);
  CHECK(step(*leiden, pid, "completion", wrong).status == 400);
  wrong["dsx:receipt"] = receipt(s, "beijing", pid, agreement, dataset);
  CHECK(step(*leiden, pid, "completion", wrong).status == 400);
  CHECK(state_of(*leiden, pid) == "STARTED");

  const json done = completion(s, pid, cpid, agreement, dataset);
  r = step(*leiden, pid, "completion", done);
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(body(r)["state"] == "COMPLETED");
  CHECK(body(r)["dsx:receipt"]["document"] == done["dsx:receipt"]["document"]);
  CHECK(step(*leiden, pid, "completion", done).status == 200);  // a repeat
  const json completed = next_of(acme_channel, "transfer.completed");
  REQUIRE(completed.is_object());
  CHECK(completed["message"]["dsx:receipt"] == done["dsx:receipt"]);

  const json listed = body(call(*acme, "GET", "/management/transfers"))["transfers"];
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["state"] == "COMPLETED");
  CHECK(body(call(*leiden, "GET", "/management/transfers"))["transfers"].size() == 1);

  for (const char* action : {"transfer.requested", "transfer.started", "transfer.completed"}) {
    INFO(action);
    CHECK(entries(*auditor, action, 1).size() == 1);
  }
  const json details = entries(*auditor, "transfer.completed", 1)[0]["entry"]["details"];
  CHECK(details["receiptSha256"].get<std::string>().size() == 64);
  std::string nines;
  for (int i = 0; i < 32; ++i)
    nines += "09";
  CHECK(details["ciphertextSha256"] == nines);
  const json decided =
      entries(*auditor, "policy.decided", 3);  // the negotiation: 2, the transfer: 1
  CHECK(decided.back()["entry"]["details"]["supplied"]["count"] == 1);

  // Restarts keep transfers.
  s.restart();
  auto again = s.client("leiden");
  CHECK(state_of(*again, pid) == "COMPLETED");
}

TEST_CASE("transfers suspend and resume and terminate", "[transfer]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  const std::string dataset = "urn:dsx:dataset:t-suspend";
  const std::string agreement = agree(*leiden, *acme, "urn:uuid:n-2", publish(*acme, dataset));
  register_key(s, *leiden, "leiden");
  Channel acme_channel(s, "acme");
  const std::string cpid = "urn:uuid:t-2";
  const std::string pid = requested(*leiden, cpid, agreement);
  REQUIRE(step(*acme, pid, "start", start_message(pid, cpid)).status == 200);

  json suspension = simple("TransferSuspensionMessage", pid, cpid);
  suspension["code"] = "network";
  suspension["reason"] = json::array({"link down"});
  suspension["dsx:fromChunk"] = 3;
  Reply r = step(*leiden, pid, "suspension", suspension);
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(body(r)["state"] == "SUSPENDED");
  CHECK(body(r)["dsx:fromChunk"] == 3);
  CHECK(step(*leiden, pid, "suspension", suspension).status == 200);  // a repeat
  const json suspended = next_of(acme_channel, "transfer.suspended");
  REQUIRE(suspended.is_object());
  CHECK(suspended["transfer"]["fromChunk"] == 3);

  // The consumer resumes from chunk 5; the provider is told where to upload from, with the key.
  json resume = start_message(pid, cpid);
  resume["dsx:fromChunk"] = 5;
  r = step(*leiden, pid, "start", resume);
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(body(r)["state"] == "STARTED");
  const json resumed = next_of(acme_channel, "transfer.resumed");
  REQUIRE(resumed.is_object());
  CHECK(resumed["transfer"]["fromChunk"] == 5);
  CHECK(resumed["encryptionKey"].is_object());

  // The provider suspends and resumes too.
  REQUIRE(step(*acme, pid, "suspension", simple("TransferSuspensionMessage", pid, cpid)).status ==
          200);
  REQUIRE(step(*acme, pid, "start", start_message(pid, cpid)).status == 200);
  CHECK(state_of(*leiden, pid) == "STARTED");

  json termination = simple("TransferTerminationMessage", pid, cpid);
  termination["code"] = "cancelled";
  r = step(*acme, pid, "termination", termination);
  REQUIRE(r.status == 200);
  CHECK(body(r)["state"] == "TERMINATED");
  CHECK(step(*acme, pid, "termination", termination).status == 200);  // a repeat
  CHECK(body(call(*leiden, "GET", "/transfers/" + pid))["dsx:reason"]["code"] == "cancelled");
  // A final state takes nothing else.
  CHECK(step(*leiden, pid, "termination", termination).status == 400);
  CHECK(step(*leiden, pid, "start", start_message(pid, cpid)).status == 400);
}

TEST_CASE("invalid transfer transitions get 400 and foreign transfers 404", "[transfer]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto bmw = s.client("bmw");
  auto beijing = s.client("beijing");
  const std::string dataset = "urn:dsx:dataset:t-invalid";
  const std::string agreement = agree(*leiden, *acme, "urn:uuid:n-3", publish(*acme, dataset));
  register_key(s, *leiden, "leiden");
  const std::string cpid = "urn:uuid:t-3";
  const std::string pid = requested(*leiden, cpid, agreement);

  auto invalid = [&](Client& who, const std::string& path, const json& message) {
    const Reply r = step(who, pid, path, message);
    INFO(path << ": " << r.body);
    CHECK(r.status == 400);
    CHECK(body(r)["@type"] == "TransferError");
    CHECK(code_of(r) == "400:invalid-transition");
  };
  // REQUESTED: the consumer cannot start it, nobody suspends or completes it.
  invalid(*leiden, "start", start_message(pid, cpid));
  invalid(*leiden, "suspension", simple("TransferSuspensionMessage", pid, cpid));
  invalid(*acme, "suspension", simple("TransferSuspensionMessage", pid, cpid));
  invalid(*leiden, "completion", completion(s, pid, cpid, agreement, dataset));
  REQUIRE(step(*acme, pid, "start", start_message(pid, cpid)).status == 200);
  // STARTED: the provider does not complete (the consumer signs the receipt); the route needs
  // the consumer role anyway.
  CHECK(step(*acme, pid, "completion", simple("TransferCompletionMessage", pid, cpid)).status ==
        403);
  // A message naming another transfer.
  const Reply other = step(*acme, pid, "suspension",
                           simple("TransferSuspensionMessage", pid, "urn:uuid:not-this-one"));
  CHECK(other.status == 400);
  CHECK(code_of(other) == "400:invalid-message");
  REQUIRE(step(*leiden, pid, "suspension", simple("TransferSuspensionMessage", pid, cpid)).status ==
          200);
  // SUSPENDED: no completion.
  invalid(*leiden, "completion", completion(s, pid, cpid, agreement, dataset));

  // Foreign: 404 like a transfer that does not exist.
  for (Client* who : {bmw.get(), beijing.get()}) {
    CHECK(call(*who, "GET", "/transfers/" + pid).status == 404);
    CHECK(step(*who, pid, "termination", simple("TransferTerminationMessage", pid, cpid)).status ==
          404);
    CHECK(body(call(*who, "GET", "/management/transfers"))["transfers"].empty());
  }
  CHECK(call(*leiden, "GET", "/transfers/urn:uuid:nope").status == 404);
  // Another consumer cannot transfer under leiden's agreement.
  register_key(s, *beijing, "beijing");
  CHECK(request_transfer(*beijing, "urn:uuid:t-b", agreement).status == 400);
}

TEST_CASE("the policy is evaluated at every transfer request", "[transfer]") {
  Space s;
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  auto auditor = s.client("auditor");
  register_key(s, *leiden, "leiden");

  SECTION("count: the third transfer of an agreement allowing two is refused") {
    const std::string dataset = "urn:dsx:dataset:t-count";
    const std::string offer = publish_offer(
        *acme, dataset,
        json::array({{{"leftOperand", "count"}, {"operator", "lteq"}, {"rightOperand", 2}}}));
    const std::string agreement = agree(*leiden, *acme, "urn:uuid:n-4", offer);
    for (int i = 1; i <= 2; ++i) {
      const std::string cpid = "urn:uuid:t-count-" + std::to_string(i);
      const std::string pid = requested(*leiden, cpid, agreement);
      run_to_completion(s, *acme, *leiden, pid, cpid, agreement, dataset);
    }
    const Reply refused = request_transfer(*leiden, "urn:uuid:t-count-3", agreement);
    INFO(refused.body);
    REQUIRE(refused.status == 403);
    CHECK(code_of(refused) == "403:policy-refused");
    CHECK(body(refused)["reason"].dump().find("count") != std::string::npos);
    const std::string pid = body(refused)["providerPid"];
    CHECK(state_of(*leiden, pid) == "TERMINATED");
    // The repeat gets the same answer.
    const Reply again = request_transfer(*leiden, "urn:uuid:t-count-3", agreement);
    CHECK(again.status == 403);
    CHECK(body(again)["providerPid"] == pid);
    // One decision per negotiation (and its approval) and per transfer request.
    const json decided = entries(*auditor, "policy.decided", 5).back()["entry"]["details"];
    CHECK(decided["decision"] == "deny");
    CHECK(decided["supplied"]["count"] == 3);
  }

  SECTION("a retired agreement refuses") {
    const std::string dataset = "urn:dsx:dataset:t-retired";
    const std::string agreement = agree(*leiden, *acme, "urn:uuid:n-5", publish(*acme, dataset));
    REQUIRE(call(*acme, "POST", "/management/agreements/" + agreement + "/retire",
                 json{{"reason", "licence withdrawn"}}.dump())
                .status == 200);
    const Reply refused = request_transfer(*leiden, "urn:uuid:t-retired", agreement);
    CHECK(refused.status == 403);
    CHECK(body(refused)["reason"].dump().find("licence withdrawn") != std::string::npos);
  }
}

TEST_CASE("a STARTED transfer ends when its dateTime window closes", "[transfer]") {
  dsx::broker::BrokerConfig config;
  config.negotiation_timeout_seconds = 2;  // housekeeping every second
  Space s(config);
  auto acme = s.client("acme");
  auto leiden = s.client("leiden");
  register_key(s, *leiden, "leiden");
  const std::string dataset = "urn:dsx:dataset:t-window";
  const auto closes = std::chrono::system_clock::now() + std::chrono::seconds(5);
  const dsx::Instant closes_at{
      std::chrono::duration_cast<std::chrono::seconds>(closes.time_since_epoch()).count(), 0};
  const std::string agreement =
      agree(*leiden, *acme, "urn:uuid:n-6", publish(*acme, dataset, format_rfc3339(closes_at)));
  const std::string cpid = "urn:uuid:t-window";
  const std::string pid = requested(*leiden, cpid, agreement);
  REQUIRE(step(*acme, pid, "start", start_message(pid, cpid)).status == 200);
  Channel leiden_channel(s, "leiden");

  std::string state;
  for (int i = 0; i < 150 && state != "TERMINATED"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    state = state_of(*leiden, pid);
  }
  REQUIRE(state == "TERMINATED");
  const json got = body(call(*leiden, "GET", "/transfers/" + pid));
  CHECK(got["dsx:reason"]["code"] == "policy-expired");
  CHECK(got["dsx:reason"]["reasons"].dump().find("dateTime") != std::string::npos);
  const json told = next_of(leiden_channel, "transfer.terminated");
  REQUIRE(told.is_object());
  CHECK(told["message"]["code"] == "policy-expired");
  // And a new request is refused.
  CHECK(request_transfer(*leiden, "urn:uuid:t-window-2", agreement).status == 403);
}

TEST_CASE("the relay asks data_access and reports with record_relay", "[transfer]") {
  // Transfers on its own store and log, without a server: what the relay calls.
  char tmpl[] = "/tmp/dsx-transfers-test-XXXXXX";
  const std::filesystem::path dir = mkdtemp(tmpl);
  dsx::SystemClock clock;
  dsx::broker::BrokerConfig config;
  auto store = dsx::broker::open_sqlite_store((dir / "broker.db").string());
  REQUIRE(store);
  auto key = dsx::provenance::SigningKey::load_or_create((dir / "log.key").string());
  REQUIRE(key);
  auto log =
      dsx::provenance::Log::open((dir / "provenance.db").string(), std::move(*key), "test", clock);
  REQUIRE(log);
  const json manifest = {{"document", "{}"}, {"signature", json::object()}};
  {
    dsx::broker::Transfers transfers(config, **store, **log, clock, "broker");
    dsx::broker::StoredTransfer x;
    x.provider_pid = "urn:uuid:p";
    x.consumer_pid = "urn:uuid:c";
    x.consumer = "urn:dsx:participant:leiden";
    x.provider = "urn:dsx:participant:acme";
    x.agreement_id = "urn:uuid:a";
    x.dataset = "urn:dsx:dataset:d";
    x.state = "REQUESTED";
    x.from_chunk = 4;
    dsx::broker::Transition t;
    t.transfer = &x;
    REQUIRE((*store)->commit(t));

    dsx::broker::Caller leiden, acme, bmw;
    leiden.identity.participant_id = x.consumer;
    acme.identity.participant_id = x.provider;
    bmw.identity.participant_id = "urn:dsx:participant:bmw";
    auto access = transfers.data_access(acme, x.provider_pid, true);
    REQUIRE_FALSE(access);
    CHECK(access.status().code() == dsx::Status::Code::kFailedPrecondition);  // not STARTED
    x.state = "STARTED";
    REQUIRE((*store)->commit(t));
    access = transfers.data_access(acme, x.provider_pid, true);
    REQUIRE(access);
    CHECK(access->consumer_pid == x.consumer_pid);
    CHECK(access->from_chunk == 4);
    CHECK(transfers.data_access(leiden, x.provider_pid, false));
    // The wrong direction, another participant, another transfer: 404.
    for (auto r : {transfers.data_access(leiden, x.provider_pid, true),
                   transfers.data_access(acme, x.provider_pid, false),
                   transfers.data_access(bmw, x.provider_pid, false),
                   transfers.data_access(acme, "urn:uuid:nope", true)}) {
      REQUIRE_FALSE(r);
      CHECK(r.status().code() == dsx::Status::Code::kNotFound);
    }

    REQUIRE(transfers.record_relay(x.provider_pid, 4, 1000, std::string(64, 'a'), manifest.dump(),
                                   true));
    CHECK_FALSE(transfers.record_relay("urn:uuid:nope", 0, 0, "", "", false));
    auto stored = (*store)->transfer(x.provider_pid);
    REQUIRE(stored);
    REQUIRE(*stored);
    CHECK((*stored)->relayed_sha256 == std::string(64, 'a'));
    CHECK(json::parse((*stored)->manifest) == manifest);
    CHECK((*stored)->state == "STARTED");
  }
  // The entry reaches the log (the Log finishes queued appends when it closes).
  log->reset();
  auto reopened = dsx::provenance::Log::open(
      (dir / "provenance.db").string(),
      *dsx::provenance::SigningKey::load_or_create((dir / "log.key").string()), "test", clock);
  REQUIRE(reopened);
  REQUIRE((*reopened)->size() == 1);
  auto text = (*reopened)->entry_text(0);
  REQUIRE(text);
  const json entry = json::parse(*text);
  CHECK(entry["action"] == "transfer.relayed");
  CHECK(entry["details"]["bytes"] == 1000);
  CHECK(entry["details"]["fromChunk"] == 4);
  CHECK(entry["details"]["complete"] == true);
  CHECK(entry["details"]["manifest"] == manifest);
  reopened->reset();
  store->reset();
  std::filesystem::remove_all(dir);
}
