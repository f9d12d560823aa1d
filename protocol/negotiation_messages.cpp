// JSON codecs for the DSP 2025-1 contract negotiation messages.
//
// The shapes follow the 2025-1 JSON schemas (ids https://w3id.org/dspace/2025/1/negotiation/
// *-schema.json, in artifacts/src/main/resources/negotiation/ of github.com/
// eclipse-dataspace-protocol-base/DataspaceProtocol), their examples, and the text of
// "Contract Negotiation Protocol". Those artifacts changed during the 2025-1 cycle and do not all
// agree; where they differ we accept what any of them documents (and write the most common
// form). The readings, also listed in docs/architecture.md:
//
//  R1 "@context": the schema wants an array of strings that includes the 2025-1 context. A
//     single string equal to it means the same in JSON-LD and is accepted too; we write the
//     array.
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
//  R9 "reason" (termination, error): when present, an array of at least one item of any JSON
//     type (schema: minItems 1, items {}); kept as JSON.
//  R10 Process ids and callback addresses are non-empty strings (the schema says string; an
//     empty id names nothing). ContractNegotiationError is the exception: its pids are required
//     but may be empty, since a refused message may have named none.

#include "protocol/negotiation_messages.h"

#include <exception>
#include <initializer_list>
#include <utility>

#include "common/time.h"

namespace dsx::protocol {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxEcho = 64;  // bytes of a refused value repeated in an error message

// `text` in quotes for an error message, cut at a UTF-8 character boundary when long (the
// message may end up in a JSON reply, which must stay valid UTF-8).
std::string quote(std::string_view text) {
  if (text.size() <= kMaxEcho) return "\"" + std::string(text) + "\"";
  size_t n = kMaxEcho;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;
  return "\"" + std::string(text.substr(0, n)) + "...\"";
}

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::null:
      return "null";
    default:
      return "not JSON";
  }
}

Status bad(const std::string& field, std::string_view what) {
  return Status::invalid_argument(field + ": " + std::string(what));
}

Status wrong_type(const std::string& field, std::string_view expected, const json& v) {
  return bad(field, "expected " + std::string(expected) + ", not " + describe(v));
}

// The members of one JSON object, read with their path ("offer.@id") for error messages.
class Fields {
 public:
  Fields(const json& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  std::string path(const char* key) const { return prefix_ + key; }
  const json* find(const char* key) const {
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }

  // A required non-empty string.
  Status id(const char* key, std::string& out) const {
    const json* v = find(key);
    if (!v) return bad(path(key), "missing");
    return non_empty(key, *v, out);
  }
  // A non-empty string when present.
  Status optional_id(const char* key, std::optional<std::string>& out) const {
    out.reset();
    const json* v = find(key);
    if (!v) return Status::ok();
    std::string s;
    Status status = non_empty(key, *v, s);
    if (status) out = std::move(s);
    return status;
  }
  // A required string, possibly empty.
  Status string(const char* key, std::string& out) const {
    const json* v = find(key);
    if (!v) return bad(path(key), "missing");
    if (!v->is_string()) return wrong_type(path(key), "a string", *v);
    out = v->get_ref<const std::string&>();
    return Status::ok();
  }
  // Any string when present.
  Status optional_string(const char* key, std::optional<std::string>& out) const {
    out.reset();
    const json* v = find(key);
    if (!v) return Status::ok();
    if (!v->is_string()) return wrong_type(path(key), "a string", *v);
    out = v->get_ref<const std::string&>();
    return Status::ok();
  }
  // "@type" equal to `expected`; `required` or else only checked when present.
  Status type(std::string_view expected, bool required) const {
    const json* v = find("@type");
    if (!v) return required ? bad(path("@type"), "missing") : Status::ok();
    if (!v->is_string()) return wrong_type(path("@type"), "a string", *v);
    const std::string& t = v->get_ref<const std::string&>();
    if (t != expected) return bad(path("@type"), quote(t) + " is not " + std::string(expected));
    return Status::ok();
  }
  // R9: absent, or an array of at least one item.
  Status reasons(const char* key, std::vector<json>& out) const {
    out.clear();
    const json* v = find(key);
    if (!v) return Status::ok();
    if (!v->is_array()) return wrong_type(path(key), "an array", *v);
    if (v->empty()) return bad(path(key), "must hold at least one item when present");
    out.assign(v->begin(), v->end());
    return Status::ok();
  }

 private:
  Status non_empty(const char* key, const json& v, std::string& out) const {
    if (!v.is_string()) return wrong_type(path(key), "a string", v);
    if (v.get_ref<const std::string&>().empty()) return bad(path(key), "must not be empty");
    out = v.get_ref<const std::string&>();
    return Status::ok();
  }

  const json& obj_;
  std::string prefix_;
};

// The parts every message shares: an object, "@context" (R1) and "@type".
Status check_envelope(const json& doc, std::string_view type) {
  if (!doc.is_object())
    return bad("(root)", "a " + std::string(type) + " is a JSON object, not " + describe(doc));
  auto ctx = doc.find("@context");
  if (ctx == doc.end()) return bad("@context", "missing");
  if (ctx->is_string()) {
    const std::string& c = ctx->get_ref<const std::string&>();
    if (c != kDspContext) return bad("@context", quote(c) + " is not " + quote(kDspContext));
  } else if (ctx->is_array()) {
    bool found = false;
    for (size_t i = 0; i < ctx->size(); ++i) {
      const json& c = (*ctx)[i];
      if (!c.is_string()) return wrong_type("@context[" + std::to_string(i) + "]", "a string", c);
      if (c.get_ref<const std::string&>() == kDspContext) found = true;
    }
    if (!found) return bad("@context", "must include " + quote(kDspContext));
  } else {
    return wrong_type("@context", "an array of strings", *ctx);
  }
  return Fields(doc, "").type(type, true);
}

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

// Both process ids, as every message after the first carries them (R10).
Status read_pids(const Fields& f, std::string& provider_pid, std::string& consumer_pid) {
  Status s = f.id("providerPid", provider_pid);
  if (s) s = f.id("consumerPid", consumer_pid);
  return s;
}

// The optional explanation of a termination or an error (R9).
Status read_explanation(const Fields& f, std::optional<std::string>& code,
                        std::vector<json>& reason) {
  Status s = f.optional_string("code", code);
  if (s) s = f.reasons("reason", reason);
  return s;
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
  if (Status s = check_envelope(doc, "ContractAgreementVerificationMessage"); !s) return s;
  Fields f(doc, "");
  ContractAgreementVerificationMessage m;
  if (Status s = read_pids(f, m.provider_pid, m.consumer_pid); !s) return s;
  return m;
}

Result<ContractNegotiationEventMessage> read_event(const json& doc) {
  if (Status s = check_envelope(doc, "ContractNegotiationEventMessage"); !s) return s;
  Fields f(doc, "");
  ContractNegotiationEventMessage m;
  std::string event;
  Status s = read_pids(f, m.provider_pid, m.consumer_pid);
  if (s) s = f.string("eventType", event);
  if (!s) return s;
  if (event == "ACCEPTED")
    m.event_type = NegotiationEvent::kAccepted;
  else if (event == "FINALIZED")
    m.event_type = NegotiationEvent::kFinalized;
  else
    return bad("eventType", quote(event) + " is not ACCEPTED or FINALIZED");
  return m;
}

Result<ContractNegotiationTerminationMessage> read_termination(const json& doc) {
  if (Status s = check_envelope(doc, "ContractNegotiationTerminationMessage"); !s) return s;
  Fields f(doc, "");
  ContractNegotiationTerminationMessage m;
  Status s = read_pids(f, m.provider_pid, m.consumer_pid);
  if (s) s = read_explanation(f, m.code, m.reason);
  if (!s) return s;
  return m;
}

Result<ContractNegotiation> read_negotiation(const json& doc) {
  if (Status s = check_envelope(doc, "ContractNegotiation"); !s) return s;
  Fields f(doc, "");
  ContractNegotiation m;
  std::string state;
  Status s = read_pids(f, m.provider_pid, m.consumer_pid);
  if (s) s = f.string("state", state);
  if (!s) return s;
  std::optional<NegotiationState> parsed = parse_negotiation_state(state);
  if (!parsed) return bad("state", quote(state) + " is not a contract negotiation state");
  m.state = *parsed;
  return m;
}

Result<ContractNegotiationError> read_error(const json& doc) {
  if (Status s = check_envelope(doc, "ContractNegotiationError"); !s) return s;
  Fields f(doc, "");
  ContractNegotiationError m;
  Status s = f.string("providerPid", m.provider_pid);  // R10: may be empty
  if (s) s = f.string("consumerPid", m.consumer_pid);
  if (s) s = read_explanation(f, m.code, m.reason);
  if (!s) return s;
  return m;
}

// Runs a reader; a JSON accessor misused on hostile input is a bug, but never a crash.
template <typename T>
Result<T> guarded(const char* what, Result<T> (*reader)(const json&), const json& doc) {
  try {
    return reader(doc);
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("unreadable ") + what + ": " + e.what());
  }
}

template <typename T>
Result<NegotiationMessage> as_message(Result<T> r) {
  if (!r) return r.status();
  return NegotiationMessage(std::move(*r));
}

json envelope(std::string_view type) {
  json j = json::object();
  j["@context"] = json::array({std::string(kDspContext)});
  j["@type"] = std::string(type);
  return j;
}

// The envelope with both process ids, which every message after the first carries.
json envelope(std::string_view type, const std::string& provider_pid,
              const std::string& consumer_pid) {
  json j = envelope(type);
  j["providerPid"] = provider_pid;
  j["consumerPid"] = consumer_pid;
  return j;
}

void put(json& j, const char* key, const std::optional<std::string>& value) {
  if (value) j[key] = *value;
}

json with_explanation(json j, const std::optional<std::string>& code,
                      const std::vector<json>& reason) {
  put(j, "code", code);
  if (!reason.empty()) j["reason"] = json(reason);
  return j;
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
  if (!doc.is_object())
    return bad("(root)", "a contract negotiation message is a JSON object, not " + describe(doc));
  auto t = doc.find("@type");
  if (t == doc.end()) return bad("@type", "missing");
  if (!t->is_string()) return wrong_type("@type", "a string", *t);
  const std::string& type = t->get_ref<const std::string&>();
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
  return with_explanation(
      envelope("ContractNegotiationTerminationMessage", m.provider_pid, m.consumer_pid), m.code,
      m.reason);
}

json to_json(const ContractNegotiation& m) {
  json j = envelope("ContractNegotiation", m.provider_pid, m.consumer_pid);
  j["state"] = std::string(to_string(m.state));
  return j;
}

json to_json(const ContractNegotiationError& m) {
  return with_explanation(envelope("ContractNegotiationError", m.provider_pid, m.consumer_pid),
                          m.code, m.reason);
}

json to_json(const NegotiationMessage& m) {
  return std::visit([](const auto& message) { return to_json(message); }, m);
}

}  // namespace dsx::protocol
