#include "connectors/negotiation.h"

#include <cctype>
#include <cstdio>

#include "common/hex.h"
#include "common/ids.h"
#include "common/json.h"
#include "provenance/canonical_json.h"
#include "provenance/merkle.h"

namespace dsx::connectors {

using json = nlohmann::json;
namespace protocol = dsx::protocol;

Refusal refusal_of(const Reply& reply) {
  Refusal r;
  r.status = reply.status;
  r.summary = describe_error(reply);
  auto doc = parse_json_text(reply.body);
  if (!doc || !doc->is_object()) return r;
  if (auto code = doc->find("code"); code != doc->end() && code->is_string()) {
    // The broker writes "403:policy-refused"; the status is already in `status`.
    r.code = code->get<std::string>();
    if (const size_t colon = r.code.find(':');
        colon != std::string::npos && r.code.find_first_not_of("0123456789") == colon)
      r.code.erase(0, colon + 1);
  }
  if (auto reason = doc->find("reason"); reason != doc->end() && reason->is_array())
    for (const auto& item : *reason)
      r.reasons.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  return r;
}

std::string new_process_id() {
  return "urn:uuid:" + time_ordered_uuid();
}

json contract_request_message(const ContractRequest& r) {
  protocol::ContractRequestMessage m;
  m.consumer_pid = r.consumer_pid.empty() ? new_process_id() : r.consumer_pid;
  m.offer = json{{"@id", r.offer_id}};
  m.callback_address = std::string(kChannelCallback);
  json j = protocol::to_json(m);
  if (!r.purpose.empty()) j["dsx:purpose"] = r.purpose;
  if (r.context.is_object()) j["dsx:context"] = r.context;
  return j;
}

namespace {

Result<Reply> send(Client& client, std::string_view method, const std::string& target,
                   const json& body = nullptr) {
  return client.request(method, target, body.is_null() ? std::string() : body.dump());
}

// A 2xx reply's body as JSON; any other reply as a Refusal.
JsonAnswer json_answer(const Result<Reply>& reply) {
  if (!reply) return reply.status();
  if (reply->status / 100 != 2) return Answer<json>(refusal_of(*reply));
  auto doc = parse_json_text(reply->body);
  if (!doc)
    return Status::failed_precondition("the broker's reply is not JSON: " + doc.status().message());
  return Answer<json>(std::move(*doc));
}

NegotiationAnswer negotiation_answer(const Result<Reply>& reply) {
  auto doc = json_answer(reply);
  if (!doc) return doc.status();
  if (auto* refusal = std::get_if<Refusal>(&*doc))
    return Answer<protocol::ContractNegotiation>(std::move(*refusal));
  auto n = protocol::parse_contract_negotiation(std::get<json>(*doc));
  if (!n)
    return Status::failed_precondition("the broker's reply is not a ContractNegotiation: " +
                                       n.status().message());
  return Answer<protocol::ContractNegotiation>(std::move(*n));
}

std::string negotiation_path(std::string_view provider_pid, std::string_view rest = {}) {
  return "/negotiations/" + path_segment(provider_pid) + std::string(rest);
}

}  // namespace

NegotiationAnswer request_contract(Client& client, const ContractRequest& r) {
  return negotiation_answer(
      send(client, "POST", "/negotiations/request", contract_request_message(r)));
}

NegotiationAnswer get_negotiation(Client& client, std::string_view provider_pid) {
  return negotiation_answer(send(client, "GET", negotiation_path(provider_pid)));
}

NegotiationAnswer approve(Client& client, std::string_view provider_pid) {
  return negotiation_answer(
      send(client, "POST", negotiation_path(provider_pid, "/approve"), json::object()));
}

NegotiationAnswer counter_offer(Client& client, const protocol::ContractOfferMessage& offer) {
  return negotiation_answer(send(client, "POST", negotiation_path(offer.provider_pid, "/offers"),
                                 protocol::to_json(offer)));
}

NegotiationAnswer accept_offer(Client& client, const protocol::ContractNegotiation& n) {
  protocol::ContractNegotiationEventMessage m{n.provider_pid, n.consumer_pid,
                                              protocol::NegotiationEvent::kAccepted};
  return negotiation_answer(
      send(client, "POST", negotiation_path(n.provider_pid, "/events"), protocol::to_json(m)));
}

NegotiationAnswer verify_agreement(Client& client, const protocol::ContractNegotiation& n) {
  protocol::ContractAgreementVerificationMessage m{n.provider_pid, n.consumer_pid};
  return negotiation_answer(send(client, "POST",
                                 negotiation_path(n.provider_pid, "/agreement/verification"),
                                 protocol::to_json(m)));
}

NegotiationAnswer terminate(Client& client, const protocol::ContractNegotiation& n,
                            const std::string& reason) {
  protocol::ContractNegotiationTerminationMessage m;
  m.provider_pid = n.provider_pid;
  m.consumer_pid = n.consumer_pid;
  if (!reason.empty()) m.reason.emplace_back(reason);
  return negotiation_answer(
      send(client, "POST", negotiation_path(n.provider_pid, "/termination"), protocol::to_json(m)));
}

JsonAnswer list_negotiations(Client& client) {
  return json_answer(send(client, "GET", "/management/negotiations"));
}

JsonAnswer list_agreements(Client& client) {
  return json_answer(send(client, "GET", "/management/agreements"));
}

JsonAnswer get_agreement(Client& client, std::string_view agreement_id) {
  return json_answer(send(client, "GET", "/management/agreements/" + path_segment(agreement_id)));
}

JsonAnswer retire_agreement(Client& client, std::string_view agreement_id,
                            const std::string& reason) {
  return json_answer(send(client, "POST",
                          "/management/agreements/" + path_segment(agreement_id) + "/retire",
                          json{{"reason", reason}}));
}

Result<std::string> agreement_sha256(const json& agreement) {
  auto canonical = provenance::canonical_json(agreement);
  if (!canonical) return Status::invalid_argument("agreement: " + canonical.status().message());
  return to_hex(provenance::sha256(*canonical));
}

namespace {

const json* member(const json& object, const char* name) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

}  // namespace

Result<provenance::PublicKey> broker_signing_key(Client& client) {
  auto answer = json_answer(send(client, "GET", "/audit/public-key"));
  if (!answer) return answer.status();
  if (auto* refusal = std::get_if<Refusal>(&*answer)) {
    // Busy or failing (429, 5xx): worth another try, like a transport failure.
    const std::string why = "the broker's signing key: " + refusal->summary;
    if (refusal->status == 429 || refusal->status >= 500) return Status::failed_precondition(why);
    return Status::invalid_argument(why);
  }
  const json& doc = std::get<json>(*answer);
  const json* pem = member(doc, "publicKey");
  if (!pem || !pem->is_string())
    return Status::invalid_argument("the broker's signing key: no publicKey in its answer");
  auto key = provenance::PublicKey::from_pem(pem->get<std::string>());
  if (!key) return Status::invalid_argument("the broker's signing key: " + key.status().message());
  const json* key_id = member(doc, "keyId");
  if (!key_id || *key_id != key->key_id())
    return Status::invalid_argument("the broker's signing key: its keyId is not the key's");
  return key;
}

namespace {

// Whether `claimed` (the hash the broker sent) is the hash of `agreement`, and `signature` (the
// broker's, as sent) verifies over the agreement's canonical JSON with `key`. `hash_member` and
// `signature_member` name them in errors.
Status check(const json& agreement, const json* claimed, const json* signature,
             const provenance::PublicKey& key, std::string_view hash_member,
             std::string_view signature_member) {
  if (!claimed || !claimed->is_string())
    return Status::invalid_argument(std::string(hash_member) + ": missing (the agreement's hash)");
  auto canonical = provenance::canonical_json(agreement);
  if (!canonical) return Status::invalid_argument("agreement: " + canonical.status().message());
  const std::string actual = to_hex(provenance::sha256(*canonical));
  if (actual != claimed->get<std::string>())
    return Status::invalid_argument(std::string(hash_member) + " " + claimed->get<std::string>() +
                                    " is not the SHA-256 of the agreement's canonical JSON (" +
                                    actual + ")");
  const std::string name(signature_member);
  if (!signature || !signature->is_object())
    return Status::invalid_argument(name + ": missing (the broker's signature)");
  const json* algorithm = member(*signature, "algorithm");
  if (!algorithm || *algorithm != "Ed25519")
    return Status::invalid_argument(name + ".algorithm: expected Ed25519");
  const json* key_id = member(*signature, "keyId");
  if (!key_id || !key_id->is_string())
    return Status::invalid_argument(name + ".keyId: expected the id of the broker's key");
  if (*key_id != key.key_id())
    return Status::invalid_argument(name + ".keyId " + key_id->get<std::string>() +
                                    " is not the broker's key (" + key.key_id() + ")");
  const json* value = member(*signature, "value");
  std::optional<std::vector<uint8_t>> bytes;
  if (value && value->is_string()) bytes = from_hex(value->get<std::string>());
  if (!bytes) return Status::invalid_argument(name + ".value: expected hex");
  if (!key.verify(*canonical, *bytes))
    return Status::invalid_argument(name +
                                    ": the broker's signature does not verify over the "
                                    "agreement's canonical JSON");
  return Status::ok();
}

}  // namespace

Result<CheckedAgreement> check_agreement_message(const json& message,
                                                 const provenance::PublicKey& broker_key) {
  auto m = protocol::parse_contract_agreement_message(message);
  if (!m) return m.status();
  if (Status s = check(m->agreement, member(message, "dsx:agreementSha256"),
                       member(message, "dsx:signature"), broker_key, "dsx:agreementSha256",
                       "dsx:signature");
      !s)
    return s;
  CheckedAgreement out;
  out.sha256 = message["dsx:agreementSha256"].get<std::string>();
  out.signature = message["dsx:signature"];
  out.message = std::move(*m);
  return out;
}

Status check_agreement_record(const json& record, const provenance::PublicKey& broker_key) {
  const json* agreement = member(record, "agreement");
  if (!agreement || !agreement->is_object()) return Status::invalid_argument("agreement: missing");
  return check(*agreement, member(record, "sha256"), member(record, "signature"), broker_key,
               "sha256", "signature");
}

}  // namespace dsx::connectors
