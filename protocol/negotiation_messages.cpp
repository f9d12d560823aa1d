// JSON codecs for the DSP 2025-1 contract negotiation messages.
//
// The shapes follow the 2025-1 JSON schemas (ids https://w3id.org/dspace/2025/1/negotiation/
// *-schema.json, in artifacts/src/main/resources/negotiation/ of github.com/
// eclipse-dataspace-protocol-base/DataspaceProtocol), their examples, and the text of
// "Contract Negotiation Protocol". Those artifacts changed during the 2025-1 cycle and do not all
// agree; where they differ we accept what any of them documents (and write the most common
// form). The readings, also listed in docs/architecture.md (R1, R9 and R10 hold for every DSP
// message; protocol/dsp_json.h, which reads them, has their text):
//
//  R1 "@context": an array of strings that includes the 2025-1 context, or that string alone.
//  R2 ContractRequestMessage.callbackAddress: the schema always requires it, but the HTTPS
//     binding's counter-request example (the one with providerPid) has none, and the project's
//     issue #200 asks to require it only on the initial request. Required without providerPid,
//     optional with it.
//  R3 ContractRequestMessage.offer: the schema takes either a full Offer or a reference
//     {"@id": ...} without rules; the text says the offer "must have an odrl:target". A full
//     offer (with permission or prohibition) must have "@type": "Offer" and a target; a
//     reference needs only "@id".
//  R4 ContractOfferMessage: one 2025-1 schema version always requires callbackAddress; the later
//     one requires exactly one of callbackAddress and consumerPid, yet the spec's own example of
//     a counter-offer carries both. At least one of them is required.
//  R5 ContractAgreementMessage.callbackAddress: required by the schema, questioned as redundant
//     by the project (issue #154). Optional here, a string when present; written when set.
//  R6 Agreement "timestamp": the schema declares it (with the xsd:dateTime pattern) without
//     requiring it; the text says an agreement "must contain a timestamp". Required, and it must
//     be an xsd:dateTime.
//  R7 Rules inside an offer or agreement must not carry their own "target" (text); checked here
//     for the permission, prohibition and obligation entries. Everything else about the ODRL
//     body is policy/'s job.
//  R8 "eventType" is "ACCEPTED" or "FINALIZED" (the 2025-1 schema's enum); the 2024-1 spelling
//     "dspace:ACCEPTED" is refused like any other value.
//  R9 "reason" (termination, error): absent, or an array of at least one item of any JSON type.
//  R10 Process ids and callback addresses are non-empty strings, except in
//     ContractNegotiationError, whose pids may be empty.

#include "protocol/negotiation_messages.h"

#include <initializer_list>
#include <utility>

#include "common/time.h"
#include "protocol/dsp_json.h"

namespace dsx::protocol {
namespace {

using json = nlohmann::json;
using namespace detail;

// R7: no rule of `policy` has its own target.
Status check_rules(const json& policy, const std::string& prefix) {
  for (const char* kind : {"permission", "prohibition", "obligation"}) {
    auto rules = policy.find(kind);
    if (rules == policy.end()) continue;
    auto check = [](const json& rule, const std::string& path) {
      if (rule.is_object() && rule.contains("target"))
        return bad(path + ".target",
                   "a rule inside a DSP offer or agreement has no target of its "
                   "own (the policy's target applies)");
      return Status::ok();
    };
    if (rules->is_array()) {
      for (size_t i = 0; i < rules->size(); ++i)
        if (Status s = check((*rules)[i], prefix + kind + "[" + std::to_string(i) + "]"); !s)
          return s;
    } else if (Status s = check(*rules, prefix + kind); !s) {
      return s;
    }
  }
  return Status::ok();
}

// The offer of a ContractRequestMessage (R3).
Status check_request_offer(const json& offer) {
  if (!offer.is_object()) return wrong_type("offer", "an object", offer);
  Fields f(offer, "offer.");
  std::string id;
  if (Status s = f.id("@id", id); !s) return s;
  bool full = offer.contains("permission") || offer.contains("prohibition");
  if (Status s = f.type("Offer", full); !s) return s;
  std::optional<std::string> target;
  if (Status s = f.optional_id("target", target); !s) return s;
  if (full && !target) return bad("offer.target", "missing (an offer with rules names its target)");
  return check_rules(offer, "offer.");
}

// The offer of a ContractOfferMessage: a full Offer with its target.
Status check_offer(const json& offer) {
  if (!offer.is_object()) return wrong_type("offer", "an object", offer);
  Fields f(offer, "offer.");
  std::string id, target;
  Status s = f.id("@id", id);
  if (s) s = f.type("Offer", true);
  if (s) s = f.id("target", target);
  if (s) s = check_rules(offer, "offer.");
  return s;
}

// The agreement of a ContractAgreementMessage (R6, R7).
Status check_agreement(const json& agreement) {
  if (!agreement.is_object()) return wrong_type("agreement", "an object", agreement);
  Fields f(agreement, "agreement.");
  std::string value;
  Status s = f.id("@id", value);
  if (s) s = f.type("Agreement", true);
  for (const char* key : {"target", "assigner", "assignee", "timestamp"})
    if (s) s = f.id(key, value);  // the timestamp is last: `value` holds it below
  if (!s) return s;
  if (!parse_xsd_date_time(value))
    return bad("agreement.timestamp", quote(value) + " is not an xsd:dateTime");
  return check_rules(agreement, "agreement.");
}

Result<ContractRequestMessage> read_request(const json& doc) {
  if (Status s = check_envelope(doc, "ContractRequestMessage"); !s) return s;
  Fields f(doc, "");
  ContractRequestMessage m;
  Status s = f.id("consumerPid", m.consumer_pid);
  if (s) s = f.optional_id("providerPid", m.provider_pid);
  if (s && !f.find("offer")) s = bad("offer", "missing");
  if (s) s = check_request_offer(*f.find("offer"));
  if (s) s = f.optional_id("callbackAddress", m.callback_address);
  if (s && !m.provider_pid && !m.callback_address)
    s = bad("callbackAddress",
            "missing (a request that starts a negotiation, without providerPid, must give one)");
  if (!s) return s;
  m.offer = *f.find("offer");
  return m;
}

Result<ContractOfferMessage> read_offer(const json& doc) {
  if (Status s = check_envelope(doc, "ContractOfferMessage"); !s) return s;
  Fields f(doc, "");
  ContractOfferMessage m;
  Status s = f.id("providerPid", m.provider_pid);
  if (s) s = f.optional_id("consumerPid", m.consumer_pid);
  if (s && !f.find("offer")) s = bad("offer", "missing");
  if (s) s = check_offer(*f.find("offer"));
  if (s) s = f.optional_id("callbackAddress", m.callback_address);
  if (s && !m.consumer_pid && !m.callback_address)
    s = bad("callbackAddress",
            "missing (an offer that starts a negotiation, without consumerPid, must give one)");
  if (!s) return s;
  m.offer = *f.find("offer");
  return m;
}

Result<ContractAgreementMessage> read_agreement(const json& doc) {
  if (Status s = check_envelope(doc, "ContractAgreementMessage"); !s) return s;
  Fields f(doc, "");
  ContractAgreementMessage m;
  Status s = read_pids(f, m.provider_pid, m.consumer_pid);
  if (s && !f.find("agreement")) s = bad("agreement", "missing");
  if (s) s = check_agreement(*f.find("agreement"));
  if (s) s = f.optional_id("callbackAddress", m.callback_address);
  if (!s) return s;
  m.agreement = *f.find("agreement");
  return m;
}

Result<ContractAgreementVerificationMessage> read_verification(const json& doc) {
  return read_pids_message<ContractAgreementVerificationMessage>(
      doc, "ContractAgreementVerificationMessage");
}

// R8.
std::optional<NegotiationEvent> parse_event(std::string_view text) {
  for (NegotiationEvent e : {NegotiationEvent::kAccepted, NegotiationEvent::kFinalized})
    if (to_string(e) == text) return e;
  return std::nullopt;
}

Result<ContractNegotiationEventMessage> read_event(const json& doc) {
  if (Status s = check_envelope(doc, "ContractNegotiationEventMessage"); !s) return s;
  Fields f(doc, "");
  ContractNegotiationEventMessage m;
  Status s = read_pids(f, m.provider_pid, m.consumer_pid);
  if (s) s = read_enum(f, "eventType", parse_event, "ACCEPTED or FINALIZED", m.event_type);
  if (!s) return s;
  return m;
}

Result<ContractNegotiationTerminationMessage> read_termination(const json& doc) {
  return read_explained<ContractNegotiationTerminationMessage>(
      doc, "ContractNegotiationTerminationMessage");
}

Result<ContractNegotiation> read_negotiation(const json& doc) {
  return read_process<ContractNegotiation>(doc, "ContractNegotiation", parse_negotiation_state,
                                           "a contract negotiation state");
}

Result<ContractNegotiationError> read_error(const json& doc) {
  return read_explained<ContractNegotiationError>(doc, "ContractNegotiationError",
                                                  /*error_body=*/true);
}

template <typename T>
Result<NegotiationMessage> as_message(Result<T> r) {
  return as_variant<NegotiationMessage>(std::move(r));
}

}  // namespace

std::string_view to_string(NegotiationEvent event) {
  return event == NegotiationEvent::kAccepted ? "ACCEPTED" : "FINALIZED";
}

MessageKind kind_of(const NegotiationMessage& message) {
  if (std::holds_alternative<ContractRequestMessage>(message)) return MessageKind::kContractRequest;
  if (std::holds_alternative<ContractOfferMessage>(message)) return MessageKind::kContractOffer;
  if (std::holds_alternative<ContractAgreementMessage>(message))
    return MessageKind::kContractAgreement;
  if (std::holds_alternative<ContractAgreementVerificationMessage>(message))
    return MessageKind::kAgreementVerification;
  if (const auto* event = std::get_if<ContractNegotiationEventMessage>(&message))
    return event->event_type == NegotiationEvent::kAccepted ? MessageKind::kAcceptedEvent
                                                            : MessageKind::kFinalizedEvent;
  return MessageKind::kTermination;
}

Result<ContractRequestMessage> parse_contract_request_message(const json& doc) {
  return guarded("ContractRequestMessage", read_request, doc);
}
Result<ContractOfferMessage> parse_contract_offer_message(const json& doc) {
  return guarded("ContractOfferMessage", read_offer, doc);
}
Result<ContractAgreementMessage> parse_contract_agreement_message(const json& doc) {
  return guarded("ContractAgreementMessage", read_agreement, doc);
}
Result<ContractAgreementVerificationMessage> parse_contract_agreement_verification_message(
    const json& doc) {
  return guarded("ContractAgreementVerificationMessage", read_verification, doc);
}
Result<ContractNegotiationEventMessage> parse_contract_negotiation_event_message(const json& doc) {
  return guarded("ContractNegotiationEventMessage", read_event, doc);
}
Result<ContractNegotiationTerminationMessage> parse_contract_negotiation_termination_message(
    const json& doc) {
  return guarded("ContractNegotiationTerminationMessage", read_termination, doc);
}
Result<ContractNegotiation> parse_contract_negotiation(const json& doc) {
  return guarded("ContractNegotiation", read_negotiation, doc);
}
Result<ContractNegotiationError> parse_contract_negotiation_error(const json& doc) {
  return guarded("ContractNegotiationError", read_error, doc);
}

Result<NegotiationMessage> parse_negotiation_message(const json& doc) {
  Result<std::string> t = message_type(doc, "a contract negotiation message");
  if (!t) return t.status();
  const std::string& type = *t;
  if (type == "ContractRequestMessage") return as_message(parse_contract_request_message(doc));
  if (type == "ContractOfferMessage") return as_message(parse_contract_offer_message(doc));
  if (type == "ContractAgreementMessage") return as_message(parse_contract_agreement_message(doc));
  if (type == "ContractAgreementVerificationMessage")
    return as_message(parse_contract_agreement_verification_message(doc));
  if (type == "ContractNegotiationEventMessage")
    return as_message(parse_contract_negotiation_event_message(doc));
  if (type == "ContractNegotiationTerminationMessage")
    return as_message(parse_contract_negotiation_termination_message(doc));
  return bad("@type", quote(type) + " is not a contract negotiation message");
}

json to_json(const ContractRequestMessage& m) {
  json j = envelope("ContractRequestMessage");
  j["consumerPid"] = m.consumer_pid;
  put(j, "providerPid", m.provider_pid);
  j["offer"] = m.offer;
  put(j, "callbackAddress", m.callback_address);
  return j;
}

json to_json(const ContractOfferMessage& m) {
  json j = envelope("ContractOfferMessage");
  j["providerPid"] = m.provider_pid;
  put(j, "consumerPid", m.consumer_pid);
  j["offer"] = m.offer;
  put(j, "callbackAddress", m.callback_address);
  return j;
}

json to_json(const ContractAgreementMessage& m) {
  json j = envelope("ContractAgreementMessage", m.provider_pid, m.consumer_pid);
  j["agreement"] = m.agreement;
  put(j, "callbackAddress", m.callback_address);
  return j;
}

json to_json(const ContractAgreementVerificationMessage& m) {
  return envelope("ContractAgreementVerificationMessage", m.provider_pid, m.consumer_pid);
}

json to_json(const ContractNegotiationEventMessage& m) {
  json j = envelope("ContractNegotiationEventMessage", m.provider_pid, m.consumer_pid);
  j["eventType"] = std::string(to_string(m.event_type));
  return j;
}

json to_json(const ContractNegotiationTerminationMessage& m) {
  return write_explained("ContractNegotiationTerminationMessage", m);
}

json to_json(const ContractNegotiation& m) {
  return write_process("ContractNegotiation", m);
}

json to_json(const ContractNegotiationError& m) {
  return write_explained("ContractNegotiationError", m);
}

json to_json(const NegotiationMessage& m) {
  return std::visit([](const auto& message) { return to_json(message); }, m);
}

}  // namespace dsx::protocol
