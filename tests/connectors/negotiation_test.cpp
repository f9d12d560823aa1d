// The connector's negotiation helpers that need no broker: the contract request it sends, the
// agreement check, auto-accept rules, refusals, the control channel's events, backoff and the
// handled-events file.
#include "connectors/negotiation.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "certs/ca.h"
#include "common/hex.h"
#include "connectors/channel.h"
#include "connectors/negotiator.h"
#include "protocol/negotiation_messages.h"
#include "provenance/canonical_json.h"
#include "provenance/signing.h"

namespace fs = std::filesystem;
namespace conn = dsx::connectors;
using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

json agreement() {
  return json::parse(R"({
    "@id": "urn:uuid:0c4e0000-0000-4000-8000-000000000001", "@type": "Agreement",
    "target": "urn:dsx:dataset:admissions", "assigner": "urn:dsx:participant:acme",
    "assignee": "urn:dsx:participant:leiden", "timestamp": "2026-11-29T15:20:00Z",
    "permission": [{"action": "use", "constraint": [
      {"leftOperand": "purpose", "operator": "eq", "rightOperand": "https://w3id.org/dpv#AcademicResearch"}]}]})");
}

fs::path temp_dir() {
  char tmpl[] = "/tmp/dsx-connector-test-XXXXXX";
  return mkdtemp(tmpl);
}

// A broker's signing key, as the broker makes one (in a fresh folder, removed on destruction).
struct BrokerKey {
  fs::path dir = temp_dir();
  dsx::provenance::SigningKey key =
      *dsx::provenance::SigningKey::load_or_create((dir / "log.key").string());
  ~BrokerKey() { fs::remove_all(dir); }
  // The broker's dsx:signature over `agreement`'s canonical JSON.
  json sign(const json& agreement) const {
    auto canonical = dsx::provenance::canonical_json(agreement);
    REQUIRE(canonical);
    return {{"keyId", key.public_key().key_id()},
            {"algorithm", "Ed25519"},
            {"value", dsx::to_hex(key.sign(*canonical))}};
  }
};

json agreement_message(const std::string& sha256, const BrokerKey& signer) {
  json m = dsx::protocol::to_json(dsx::protocol::ContractAgreementMessage{
      "urn:uuid:p", "urn:uuid:c", agreement(), std::nullopt});
  m["dsx:agreementSha256"] = sha256;
  m["dsx:signature"] = signer.sign(agreement());
  return m;
}

}  // namespace

TEST_CASE("a contract request is a valid DSP message with the dsx extensions", "[connectors]") {
  conn::ContractRequest r;
  r.offer_id = "urn:dsx:offer:admissions:research";
  r.purpose = "https://w3id.org/dpv#AcademicResearch";
  r.context = {{"dsx:attr/project", "cohort-7"}};
  const json m = conn::contract_request_message(r);
  auto parsed = dsx::protocol::parse_contract_request_message(m);
  INFO(parsed.status().message());
  REQUIRE(parsed);
  CHECK(parsed->offer == json{{"@id", "urn:dsx:offer:admissions:research"}});
  CHECK(parsed->callback_address == std::string(conn::kChannelCallback));
  CHECK_FALSE(parsed->provider_pid);
  CHECK(
      std::regex_match(parsed->consumer_pid,
                       std::regex("urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                  "[0-9a-f]{12}")));
  CHECK(m["dsx:purpose"] == r.purpose);
  CHECK(m["dsx:context"]["dsx:attr/project"] == "cohort-7");
  // A fresh consumerPid each time, unless one is given; no purpose, no member.
  CHECK(conn::contract_request_message(r)["consumerPid"] != m["consumerPid"]);
  r.consumer_pid = "urn:uuid:mine";
  r.purpose.clear();
  r.context = nullptr;
  const json again = conn::contract_request_message(r);
  CHECK(again["consumerPid"] == "urn:uuid:mine");
  CHECK_FALSE(again.contains("dsx:purpose"));
  CHECK_FALSE(again.contains("dsx:context"));
}

TEST_CASE(
    "an agreement checks when its hash is that of its canonical JSON and the broker signed it",
    "[connectors]") {
  const BrokerKey broker;
  const dsx::provenance::PublicKey& key = broker.key.public_key();
  auto sha = conn::agreement_sha256(agreement());
  REQUIRE(sha);
  CHECK(sha->size() == 64);
  auto ok = conn::check_agreement_message(agreement_message(*sha, broker), key);
  INFO(ok.status().message());
  REQUIRE(ok);
  CHECK(ok->sha256 == *sha);
  CHECK(ok->signature["keyId"] == key.key_id());
  CHECK(ok->message.agreement == agreement());
  // The same bytes in another member order and spacing hash the same (RFC 8785).
  json reordered = json::parse(agreement().dump(4));
  CHECK(*conn::agreement_sha256(reordered) == *sha);

  std::string wrong = *sha;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  auto bad = conn::check_agreement_message(agreement_message(wrong, broker), key);
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message().find("is not the SHA-256 of the agreement's canonical JSON") !=
        std::string::npos);
  json tampered = agreement_message(*sha, broker);
  tampered["agreement"]["assignee"] = "urn:dsx:participant:mallory";
  CHECK_FALSE(conn::check_agreement_message(tampered, key));
  json unhashed = agreement_message(*sha, broker);
  unhashed.erase("dsx:agreementSha256");
  CHECK(conn::check_agreement_message(unhashed, key).status().message() ==
        "dsx:agreementSha256: missing (the agreement's hash)");
  json no_timestamp = agreement_message(*sha, broker);
  no_timestamp["agreement"].erase("timestamp");
  CHECK_FALSE(conn::check_agreement_message(no_timestamp, key));

  CHECK(conn::check_agreement_record(
      {{"agreement", agreement()}, {"sha256", *sha}, {"signature", broker.sign(agreement())}},
      key));
  CHECK_FALSE(conn::check_agreement_record(
      {{"agreement", agreement()}, {"sha256", wrong}, {"signature", broker.sign(agreement())}},
      key));
  CHECK_FALSE(conn::check_agreement_record({{"sha256", *sha}}, key));
}

TEST_CASE("an agreement whose signature is not the broker's does not check", "[connectors]") {
  const BrokerKey broker, other;
  const dsx::provenance::PublicKey& key = broker.key.public_key();
  auto sha = conn::agreement_sha256(agreement());
  REQUIRE(sha);
  auto message_failing = [&](json m) {
    auto r = conn::check_agreement_message(m, key);
    REQUIRE_FALSE(r);
    return r.status().message();
  };
  json m = agreement_message(*sha, broker);

  json unsigned_message = m;
  unsigned_message.erase("dsx:signature");
  CHECK(message_failing(unsigned_message) == "dsx:signature: missing (the broker's signature)");
  // Signed by another key, named as such or as the broker's.
  json foreign = m;
  foreign["dsx:signature"] = other.sign(agreement());
  CHECK(message_failing(foreign).find("is not the broker's key") != std::string::npos);
  foreign["dsx:signature"]["keyId"] = key.key_id();
  CHECK(message_failing(foreign).find("does not verify") != std::string::npos);
  // The broker's signature over something else: a changed agreement with a matching hash.
  json changed = m;
  changed["agreement"]["assignee"] = "urn:dsx:participant:mallory";
  changed["dsx:agreementSha256"] = *conn::agreement_sha256(changed["agreement"]);
  CHECK(message_failing(changed).find("does not verify") != std::string::npos);
  json flipped = m;
  std::string value = flipped["dsx:signature"]["value"];
  value[10] = value[10] == '0' ? '1' : '0';
  flipped["dsx:signature"]["value"] = value;
  CHECK(message_failing(flipped).find("does not verify") != std::string::npos);
  json not_hex = m;
  not_hex["dsx:signature"]["value"] = "zz";
  CHECK(message_failing(not_hex) == "dsx:signature.value: expected hex");
  json other_algorithm = m;
  other_algorithm["dsx:signature"]["algorithm"] = "ES256";
  CHECK(message_failing(other_algorithm) == "dsx:signature.algorithm: expected Ed25519");
  other_algorithm["dsx:signature"]["algorithm"] = 25519;  // wrong types are errors, not throws
  CHECK(message_failing(other_algorithm) == "dsx:signature.algorithm: expected Ed25519");
  json numbered_key = m;
  numbered_key["dsx:signature"]["keyId"] = 7;
  CHECK(message_failing(numbered_key) ==
        "dsx:signature.keyId: expected the id of the broker's key");
  // The record form names its own members.
  auto record = conn::check_agreement_record(
      {{"agreement", agreement()}, {"sha256", *sha}, {"signature", other.sign(agreement())}}, key);
  REQUIRE_FALSE(record);
  CHECK(record.message().find("signature.keyId") == 0);
}

TEST_CASE("auto-accept rules are read strictly and matched in order", "[connectors]") {
  auto rules = conn::parse_auto_accept(json::parse(R"({"broker": "https://x", "autoAccept": [
      {"dataset": "urn:dsx:dataset:a", "consumer": "urn:dsx:participant:leiden"},
      {"dataset": "urn:dsx:dataset:b"}]})"));
  REQUIRE(rules);
  REQUIRE(rules->size() == 2);
  CHECK(conn::find_rule(*rules, "urn:dsx:dataset:a", "urn:dsx:participant:leiden") == &(*rules)[0]);
  CHECK(conn::find_rule(*rules, "urn:dsx:dataset:a", "urn:dsx:participant:beijing") == nullptr);
  CHECK(conn::find_rule(*rules, "urn:dsx:dataset:b", "urn:dsx:participant:beijing") ==
        &(*rules)[1]);
  auto any = conn::parse_auto_accept(json::parse(R"({"autoAccept": [{"dataset": "*"}]})"));
  REQUIRE(any);
  CHECK(conn::find_rule(*any, "urn:dsx:dataset:z", "urn:dsx:participant:z") != nullptr);
  auto none = conn::parse_auto_accept(json::object());
  REQUIRE(none);
  CHECK(none->empty());

  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {R"({"autoAccept": {"dataset": "*"}})",
            "autoAccept: expected an array of {\"dataset\": ...}"},
           {R"({"autoAccept": ["*"]})", "autoAccept[0]: expected an object"},
           {R"({"autoAccept": [{"dataset": "*"}, {"consumer": "x"}]})",
            "autoAccept[1].dataset: missing (a dataset id, or \"*\" for any)"},
           {R"({"autoAccept": [{"dataset": "*", "purpose": "x"}]})",
            "autoAccept[0].purpose: unknown (a rule has \"dataset\" and \"consumer\")"},
           {R"({"autoAccept": [{"dataset": ""}]})",
            "autoAccept[0].dataset: expected a non-empty string"}}) {
    INFO(text);
    auto bad = conn::parse_auto_accept(json::parse(text));
    REQUIRE_FALSE(bad);
    CHECK(bad.status().message() == message);
  }
}

TEST_CASE("a refusal keeps the broker's code and every reason", "[connectors]") {
  conn::Reply reply;
  reply.status = 403;
  reply.body = json{{"@type", "ContractNegotiationError"},
                    {"code", "403:policy-refused"},
                    {"reason", {"permission[0] is not active: purpose", json{{"x", 1}}}}}
                   .dump();
  const conn::Refusal r = conn::refusal_of(reply);
  CHECK(r.status == 403);
  CHECK(r.code == "policy-refused");
  CHECK(r.reasons == std::vector<std::string>{"permission[0] is not active: purpose", "{\"x\":1}"});
  CHECK(r.summary.find("403") == 0);
  reply.body = "<html>";
  CHECK(conn::refusal_of(reply).reasons.empty());
}

TEST_CASE("channel events are read strictly", "[connectors][channel]") {
  auto e = conn::parse_event(
      R"({"id": 42, "type": "negotiation.requested", "negotiation": {"providerPid": "p"}})");
  REQUIRE(e);
  CHECK(e->id == 42);
  CHECK(e->type == "negotiation.requested");
  CHECK(e->body["negotiation"]["providerPid"] == "p");
  for (const char* bad :
       {"[]", "{", R"({"type": "x"})", R"({"id": -1, "type": "x"})", R"({"id": "1", "type": "x"})",
        R"({"id": 1})", R"({"id": 1, "type": 2})"}) {
    INFO(bad);
    auto r = conn::parse_event(bad);
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == dsx::Status::Code::kInvalidArgument);
  }
}

TEST_CASE("reconnection backs off exponentially with jitter, capped", "[connectors][channel]") {
  conn::Channel::Backoff b(milliseconds(500), milliseconds(30000), 7);
  const std::vector<long> ceilings = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
  std::set<long> seen;
  for (long ceiling : ceilings) {
    const long d = b.next().count();
    INFO(ceiling << " " << d);
    CHECK(d >= ceiling / 2);
    CHECK(d <= ceiling);
    seen.insert(d);
  }
  CHECK(seen.size() > 3);  // jittered, not a fixed ladder
  b.reset();
  CHECK(b.next().count() <= 500);
  // The same seed, the same delays; another seed, others.
  conn::Channel::Backoff x(milliseconds(500), milliseconds(30000), 99),
      y(milliseconds(500), milliseconds(30000), 99), z(milliseconds(500), milliseconds(30000), 100);
  std::vector<long> dx, dy, dz;
  for (int i = 0; i < 8; ++i) {
    dx.push_back(x.next().count());
    dy.push_back(y.next().count());
    dz.push_back(z.next().count());
  }
  CHECK(dx == dy);
  CHECK(dx != dz);
}

TEST_CASE("handled events survive a restart, written atomically", "[connectors][channel]") {
  const fs::path dir = temp_dir();
  const fs::path file = dir / "state.json";
  {
    auto h = conn::Channel::HandledEvents::open(file);
    REQUIRE(h);
    CHECK(h->size() == 0);
    CHECK_FALSE(fs::exists(file));
    REQUIRE(h->add(3));
    REQUIRE(h->add(5));
    REQUIRE(h->add(9));
  }
  CHECK((fs::status(file).permissions() & fs::perms::others_read) == fs::perms::none);
  CHECK_FALSE(fs::exists(dir / "state.json.tmp"));
  {
    auto h = conn::Channel::HandledEvents::open(file);
    REQUIRE(h);
    CHECK(h->contains(3));
    CHECK(h->contains(5));
    CHECK_FALSE(h->contains(4));
    // The first event of a connection is the oldest unacknowledged one: ids below it are done.
    REQUIRE(h->forget_below(5));
    CHECK_FALSE(h->contains(3));
    CHECK(h->contains(9));
  }
  auto reread = conn::Channel::HandledEvents::open(file);
  REQUIRE(reread);
  CHECK(reread->size() == 2);
  // Bounded: the oldest go first.
  auto small = conn::Channel::HandledEvents::open(file, 3);
  REQUIRE(small);
  for (uint64_t id = 100; id < 103; ++id)
    REQUIRE(small->add(id));
  CHECK(small->size() == 3);
  CHECK_FALSE(small->contains(5));
  CHECK_FALSE(small->contains(9));
  CHECK(small->contains(100));

  std::ofstream(dir / "bad.json") << R"({"handled": ["x"]})";
  auto bad = conn::Channel::HandledEvents::open(dir / "bad.json");
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message() ==
        (dir / "bad.json").string() + ": handled: expected unsigned integers");
  std::ofstream(dir / "other.json") << "[]";
  CHECK_FALSE(conn::Channel::HandledEvents::open(dir / "other.json"));
  // No file name: memory only.
  auto memory = conn::Channel::HandledEvents::open({});
  REQUIRE(memory);
  REQUIRE(memory->add(1));
  CHECK(memory->contains(1));
  fs::remove_all(dir);
}

TEST_CASE("an unreachable broker is worth a retry, missing certificates are not",
          "[connectors][channel]") {
  conn::ClientConfig c;
  c.port = 1;
  c.cert_dir = "/nonexistent";
  auto no_cert = conn::Channel::connect(c);
  REQUIRE_FALSE(no_cert);
  CHECK(no_cert.status().code() == dsx::Status::Code::kInvalidArgument);
  CHECK(no_cert.status().message().find("/nonexistent/cert.pem") != std::string::npos);

  const fs::path dir = temp_dir();
  REQUIRE(dsx::certs::init_ca(dir / "ca", {}));
  dsx::certs::IssueRequest r;
  r.name = "acme";
  r.roles = {"provider"};
  REQUIRE(dsx::certs::issue(dir / "ca", r, dir / "acme"));
  c.cert_dir = dir / "acme";
  auto down = conn::Channel::connect(c);
  REQUIRE_FALSE(down);
  CHECK(down.status().code() == dsx::Status::Code::kFailedPrecondition);
  CHECK(down.status().message().find("cannot connect to 127.0.0.1:1") != std::string::npos);

  // The loop: once mode gives up at once; otherwise it backs off until stopped.
  auto handled = conn::Channel::HandledEvents::open({});
  REQUIRE(handled);
  int calls = 0;
  auto handler = [&](const conn::Event&) {
    ++calls;
    return dsx::Status::ok();
  };
  conn::Channel::RunOptions once;
  once.return_when_quiet = milliseconds(100);
  CHECK(conn::Channel::run(c, once, *handled, handler).code() ==
        dsx::Status::Code::kFailedPrecondition);
  conn::Channel::RunOptions looping;
  looping.backoff = conn::Channel::Backoff(milliseconds(10), milliseconds(40), 1);
  std::vector<std::string> notes;
  looping.note = [&](const std::string& line) { notes.push_back(line); };
  looping.stop = [&] { return notes.size() >= 3; };
  CHECK(conn::Channel::run(c, looping, *handled, handler));
  REQUIRE(notes.size() == 3);
  CHECK(notes[0].find("cannot connect to 127.0.0.1:1") != std::string::npos);
  CHECK(notes[0].find("; reconnecting in 0.0") != std::string::npos);
  CHECK(calls == 0);
  fs::remove_all(dir);
}
