#include "protocol/negotiation.h"

#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "protocol/negotiation_messages.h"
#include "test_util.h"

using namespace dsx;
using namespace dsx::protocol;
using namespace dsx::protocol::testing;
using json = nlohmann::json;

namespace {

// Messages in the shape of the DSP 2025-1 examples (artifacts/src/main/resources/negotiation/
// example/*.json in eclipse-dataspace-protocol-base/DataspaceProtocol): the same members and
// nesting, our own identifiers and values.
const char* kRequestInitial = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractRequestMessage",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "offer": {
    "@type": "Offer",
    "@id": "urn:uuid:0ffe4000-0000-4000-8000-000000000001",
    "target": "urn:uuid:da7a5e70-0000-4000-8000-000000000001",
    "permission": [{"action": "use"}]
  },
  "callbackAddress": "https://consumer.example/dsp"
})";

const char* kRequestCounter = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractRequestMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "offer": {
    "@type": "Offer",
    "@id": "urn:uuid:0ffe4000-0000-4000-8000-000000000002",
    "target": "urn:uuid:da7a5e70-0000-4000-8000-000000000001",
    "permission": [{
      "action": "use",
      "constraint": [{"leftOperand": "dateTime", "operator": "lteq",
                      "rightOperand": "2027-06-30T00:00Z"}]
    }]
  },
  "callbackAddress": "https://consumer.example/dsp"
})";

const char* kOfferInitial = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractOfferMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "offer": {
    "@type": "Offer",
    "@id": "urn:uuid:0ffe4000-0000-4000-8000-000000000003",
    "assigner": "urn:participant:provider-1",
    "target": "urn:uuid:da7a5e70-0000-4000-8000-000000000001",
    "permission": [{"action": "use"}]
  },
  "callbackAddress": "https://provider.example/dsp"
})";

const char* kOfferCounter = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractOfferMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "offer": {
    "@type": "Offer",
    "@id": "urn:uuid:0ffe4000-0000-4000-8000-000000000004",
    "target": "urn:uuid:da7a5e70-0000-4000-8000-000000000001",
    "permission": [{
      "action": "use",
      "constraint": [{"leftOperand": "dateTime", "operator": "lteq",
                      "rightOperand": "2027-03-31T00:00Z"}]
    }]
  },
  "callbackAddress": "https://provider.example/dsp"
})";

const char* kAgreement = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractAgreementMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "agreement": {
    "@id": "urn:uuid:a9ee0000-0000-4000-8000-000000000005",
    "@type": "Agreement",
    "target": "urn:uuid:da7a5e70-0000-4000-8000-000000000001",
    "timestamp": "2026-11-29T10:00:00Z",
    "assigner": "urn:participant:provider-1",
    "assignee": "urn:participant:consumer-1",
    "permission": [{
      "action": "use",
      "constraint": [{"leftOperand": "dateTime", "operator": "lteq",
                      "rightOperand": "2027-03-31T00:00Z"}]
    }]
  },
  "callbackAddress": "https://provider.example/dsp"
})";

// The "full" agreement example's features: a profile, logical constraints, a duty.
const char* kAgreementFull = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractAgreementMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "agreement": {
    "@id": "urn:uuid:a9ee0000-0000-4000-8000-000000000006",
    "@type": "Agreement",
    "target": "urn:uuid:da7a5e70-0000-4000-8000-000000000001",
    "profile": "https://profile.example/dsx",
    "timestamp": "2026-11-29T10:00:00.250+01:00",
    "assigner": "urn:participant:provider-1",
    "assignee": "urn:participant:consumer-1",
    "permission": [
      {"action": "use",
       "constraint": [{"or": [
         {"leftOperand": "partner", "operator": "eq", "rightOperand": "gold"},
         {"and": [{"leftOperand": "region", "operator": "eq", "rightOperand": "eu"},
                  {"leftOperand": "partner", "operator": "eq", "rightOperand": "silver"}]}]}]},
      {"action": "use",
       "constraint": [{"xone": [
         {"leftOperand": "partner", "operator": "eq", "rightOperand": "gold"},
         {"leftOperand": "partner", "operator": "eq", "rightOperand": "silver"}]}],
       "duty": {"action": "report",
                "constraint": [{"leftOperand": "event", "operator": "gt", "rightOperand": "use"}]}}
    ]
  },
  "callbackAddress": "https://provider.example/dsp"
})";

const char* kVerification = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractAgreementVerificationMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001"
})";

const char* kEvent = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractNegotiationEventMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "eventType": "ACCEPTED"
})";

const char* kTermination = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractNegotiationTerminationMessage",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "code": "policy.refused",
  "reason": ["The purpose does not match the offer."]
})";

const char* kNegotiation = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractNegotiation",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "state": "REQUESTED"
})";

const char* kError = R"({
  "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
  "@type": "ContractNegotiationError",
  "providerPid": "urn:uuid:9a0b1de0-0000-4000-8000-000000000002",
  "consumerPid": "urn:uuid:c0a5e000-0000-4000-8000-000000000001",
  "code": "invalid.transition",
  "reason": ["The negotiation is FINALIZED."]
})";

const std::vector<DocKind>& doc_kinds() {
  static const std::vector<DocKind> kinds = {
      {"ContractRequestMessage", kRequestInitial, checker(parse_contract_request_message)},
      {"ContractOfferMessage", kOfferCounter, checker(parse_contract_offer_message)},
      {"ContractAgreementMessage", kAgreement, checker(parse_contract_agreement_message)},
      {"ContractAgreementVerificationMessage", kVerification,
       checker(parse_contract_agreement_verification_message)},
      {"ContractNegotiationEventMessage", kEvent,
       checker(parse_contract_negotiation_event_message)},
      {"ContractNegotiationTerminationMessage", kTermination,
       checker(parse_contract_negotiation_termination_message)},
      {"ContractNegotiation", kNegotiation, checker(parse_contract_negotiation)},
      {"ContractNegotiationError", kError, checker(parse_contract_negotiation_error)},
  };
  return kinds;
}

const DocKind& doc_kind(const std::string& type) {
  return find_kind(doc_kinds(), type);
}

constexpr auto kNone = std::nullopt;
using S = NegotiationState;
using K = MessageKind;
constexpr Role kC = Role::kConsumer;
constexpr Role kP = Role::kProvider;

}  // namespace

TEST_CASE("the DSP 2025-1 example shapes parse and write back unchanged", "[protocol]") {
  auto request = parsed(parse_contract_request_message, kRequestInitial);
  CHECK(request.consumer_pid == "urn:uuid:c0a5e000-0000-4000-8000-000000000001");
  CHECK_FALSE(request.provider_pid);
  CHECK(request.offer.at("@id") == "urn:uuid:0ffe4000-0000-4000-8000-000000000001");
  CHECK(request.callback_address == "https://consumer.example/dsp");

  auto counter = parsed(parse_contract_request_message, kRequestCounter);
  CHECK(counter.provider_pid == "urn:uuid:9a0b1de0-0000-4000-8000-000000000002");

  auto offer = parsed(parse_contract_offer_message, kOfferInitial);
  CHECK_FALSE(offer.consumer_pid);
  CHECK(offer.offer.at("assigner") == "urn:participant:provider-1");
  auto counter_offer = parsed(parse_contract_offer_message, kOfferCounter);
  CHECK(counter_offer.consumer_pid == "urn:uuid:c0a5e000-0000-4000-8000-000000000001");

  auto agreement = parsed(parse_contract_agreement_message, kAgreement);
  CHECK(agreement.agreement.at("assignee") == "urn:participant:consumer-1");
  CHECK(agreement.callback_address == "https://provider.example/dsp");
  auto full = parsed(parse_contract_agreement_message, kAgreementFull);
  CHECK(full.agreement.at("permission").size() == 2);

  auto verification = parsed(parse_contract_agreement_verification_message, kVerification);
  CHECK(verification.provider_pid == "urn:uuid:9a0b1de0-0000-4000-8000-000000000002");
  auto event = parsed(parse_contract_negotiation_event_message, kEvent);
  CHECK(event.event_type == NegotiationEvent::kAccepted);
  auto termination = parsed(parse_contract_negotiation_termination_message, kTermination);
  CHECK(termination.code == "policy.refused");
  CHECK(termination.reason == std::vector<json>{"The purpose does not match the offer."});
  auto negotiation = parsed(parse_contract_negotiation, kNegotiation);
  CHECK(negotiation.state == NegotiationState::kRequested);
  auto error = parsed(parse_contract_negotiation_error, kError);
  CHECK(error.code == "invalid.transition");

  // Every member is known, so writing the value back gives the document itself.
  CHECK(to_json(request) == json::parse(kRequestInitial));
  CHECK(to_json(counter) == json::parse(kRequestCounter));
  CHECK(to_json(offer) == json::parse(kOfferInitial));
  CHECK(to_json(counter_offer) == json::parse(kOfferCounter));
  CHECK(to_json(agreement) == json::parse(kAgreement));
  CHECK(to_json(full) == json::parse(kAgreementFull));
  CHECK(to_json(verification) == json::parse(kVerification));
  CHECK(to_json(event) == json::parse(kEvent));
  CHECK(to_json(termination) == json::parse(kTermination));
  CHECK(to_json(negotiation) == json::parse(kNegotiation));
  CHECK(to_json(error) == json::parse(kError));
}

TEST_CASE("parse_negotiation_message picks the reader by @type", "[protocol]") {
  check_dispatch<NegotiationMessage, MessageKind>(parse_negotiation_message,
                                                  "a contract negotiation message",
                                                  {
                                                      {kRequestInitial, K::kContractRequest},
                                                      {kRequestCounter, K::kContractRequest},
                                                      {kOfferInitial, K::kContractOffer},
                                                      {kAgreement, K::kContractAgreement},
                                                      {kVerification, K::kAgreementVerification},
                                                      {kEvent, K::kAcceptedEvent},
                                                      {kTermination, K::kTermination},
                                                  });
  json finalized = edited(json::parse(kEvent), "/eventType", json("FINALIZED"));
  Result<NegotiationMessage> f = parse_negotiation_message(finalized);
  REQUIRE(f);
  CHECK(kind_of(*f) == K::kFinalizedEvent);

  // The dispatcher's own refusals; a known @type is refused by its reader.
  CHECK(parse_negotiation_message(json::parse(kNegotiation)).status().message() ==
        "@type: \"ContractNegotiation\" is not a contract negotiation message");
  CHECK(parse_negotiation_message(edited(json::parse(kEvent), "/consumerPid", kNone))
            .status()
            .message() == "consumerPid: missing");
}

TEST_CASE("every message round-trips through JSON text", "[protocol]") {
  const json offer = json::parse(kRequestCounter).at("offer");
  const json agreement = json::parse(kAgreementFull).at("agreement");
  const json reason_object = {{"rule", "permission[0]"}, {"constraint", 1}};

  check_round_trip(ContractRequestMessage{"urn:c", std::nullopt, offer, "https://c.example/"},
                   parse_contract_request_message, "ContractRequestMessage");
  check_round_trip(ContractRequestMessage{"urn:c", "urn:p", offer, std::nullopt},
                   parse_contract_request_message, "ContractRequestMessage");
  check_round_trip(
      ContractRequestMessage{"urn:c", "urn:p", json{{"@id", "urn:offer"}}, "https://c"},
      parse_contract_request_message, "ContractRequestMessage");
  check_round_trip(ContractOfferMessage{"urn:p", std::nullopt, offer, "https://p.example/"},
                   parse_contract_offer_message, "ContractOfferMessage");
  check_round_trip(ContractOfferMessage{"urn:p", "urn:c", offer, std::nullopt},
                   parse_contract_offer_message, "ContractOfferMessage");
  check_round_trip(ContractAgreementMessage{"urn:p", "urn:c", agreement, "https://p.example/"},
                   parse_contract_agreement_message, "ContractAgreementMessage");
  check_round_trip(ContractAgreementMessage{"urn:p", "urn:c", agreement, std::nullopt},
                   parse_contract_agreement_message, "ContractAgreementMessage");
  check_round_trip(ContractAgreementVerificationMessage{"urn:p", "urn:c"},
                   parse_contract_agreement_verification_message,
                   "ContractAgreementVerificationMessage");
  for (NegotiationEvent e : {NegotiationEvent::kAccepted, NegotiationEvent::kFinalized})
    check_round_trip(ContractNegotiationEventMessage{"urn:p", "urn:c", e},
                     parse_contract_negotiation_event_message, "ContractNegotiationEventMessage");
  check_round_trip(ContractNegotiationTerminationMessage{"urn:p", "urn:c", std::nullopt, {}},
                   parse_contract_negotiation_termination_message,
                   "ContractNegotiationTerminationMessage");
  check_round_trip(
      ContractNegotiationTerminationMessage{"urn:p", "urn:c", "", {json("why"), reason_object}},
      parse_contract_negotiation_termination_message, "ContractNegotiationTerminationMessage");
  for (NegotiationState s : kNegotiationStates)
    check_round_trip(ContractNegotiation{"urn:p", "urn:c", s}, parse_contract_negotiation,
                     "ContractNegotiation");
  check_round_trip(ContractNegotiationError{"urn:p", "urn:c", "400", {reason_object}},
                   parse_contract_negotiation_error, "ContractNegotiationError");
  check_round_trip(ContractNegotiationError{"", "", std::nullopt, {}},
                   parse_contract_negotiation_error, "ContractNegotiationError");

  // The writers spell every member as the schemas do.
  json w = to_json(ContractNegotiationTerminationMessage{"urn:p", "urn:c", "7", {json("x")}});
  CHECK(w == json::parse(R"({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
      "@type": "ContractNegotiationTerminationMessage", "providerPid": "urn:p",
      "consumerPid": "urn:c", "code": "7", "reason": ["x"]})"));
  CHECK(to_json(ContractNegotiationEventMessage{"urn:p", "urn:c", NegotiationEvent::kFinalized})
            .at("eventType") == "FINALIZED");
  CHECK_FALSE(to_json(ContractOfferMessage{"urn:p", "urn:c", offer, std::nullopt})
                  .contains("callbackAddress"));
}

TEST_CASE("documented variants the readers accept", "[protocol]") {
  auto accepts = [](const char* type, const json& doc) {
    std::string why = refusal(doc_kind(type).check, doc);
    INFO(doc.dump() << "\n" << why);
    CHECK(why.empty());
  };
  // R1: the context as one string, or among other contexts.
  for (const DocKind& k : doc_kinds()) {
    accepts(k.type, edited(json::parse(k.example), "/@context", json(kDspContext)));
    accepts(k.type,
            edited(json::parse(k.example), "/@context",
                   json::array({"https://profile.example/ctx.jsonld", std::string(kDspContext)})));
    // Unknown members are ignored.
    accepts(k.type, edited(json::parse(k.example), "/extension", json{{"x", 1}}));
  }
  // R2: a counter-request without callbackAddress (the HTTPS binding's example).
  accepts("ContractRequestMessage",
          edited(json::parse(kRequestCounter), "/callbackAddress", kNone));
  // R3: the offer as a reference to a catalog offer, with or without its @type and target.
  accepts("ContractRequestMessage",
          edited(json::parse(kRequestInitial), "/offer", json{{"@id", "urn:offer:1"}}));
  accepts("ContractRequestMessage",
          edited(json::parse(kRequestInitial), "/offer",
                 json{{"@id", "urn:offer:1"}, {"@type", "Offer"}, {"target", "urn:data:1"}}));
  // R4: a counter-offer without callbackAddress; an initial offer without consumerPid.
  accepts("ContractOfferMessage", edited(json::parse(kOfferCounter), "/callbackAddress", kNone));
  accepts("ContractOfferMessage", json::parse(kOfferInitial));
  // R5: an agreement message without callbackAddress.
  accepts("ContractAgreementMessage", edited(json::parse(kAgreement), "/callbackAddress", kNone));
  // Termination and error without code or reason; any JSON as a reason; an empty code.
  for (const char* type : {"ContractNegotiationTerminationMessage", "ContractNegotiationError"}) {
    json doc = json::parse(doc_kind(type).example);
    accepts(type, edited(edited(doc, "/code", kNone), "/reason", kNone));
    accepts(type, edited(doc, "/reason", json::array({json::object({{"rule", 1}}), 2, nullptr})));
    accepts(type, edited(doc, "/code", json("")));
  }
  // R10: the error's pids may be empty.
  accepts("ContractNegotiationError",
          edited(edited(json::parse(kError), "/providerPid", json("")), "/consumerPid", json("")));
}

TEST_CASE("malformed messages are refused with the field's name", "[protocol]") {
  Refusals cases(doc_kinds());
  auto add = [&](const char* type, const char* base, const std::string& pointer,
                 std::optional<json> value, std::string message) {
    cases.add(type, base, pointer, std::move(value), std::move(message));
  };
  cases.add_envelopes("ContractNegotiationMessage");
  for (const char* type : {"ContractAgreementMessage", "ContractAgreementVerificationMessage",
                           "ContractNegotiationEventMessage",
                           "ContractNegotiationTerminationMessage", "ContractNegotiation"})
    cases.add_required_ids(type, {"providerPid", "consumerPid"});
  cases.add_required_ids("ContractRequestMessage", {"consumerPid"});
  cases.add_required_ids("ContractOfferMessage", {"providerPid"});
  cases.add_optional_ids("ContractRequestMessage", {"providerPid", "callbackAddress"});
  cases.add_optional_ids("ContractOfferMessage", {"consumerPid", "callbackAddress"});
  cases.add_optional_ids("ContractAgreementMessage", {"callbackAddress"});
  cases.add_error_ids("ContractNegotiationError");
  cases.add_explanation("ContractNegotiationTerminationMessage");
  cases.add_explanation("ContractNegotiationError");
  cases.add_states("ContractNegotiation", "a contract negotiation state");

  // ContractRequestMessage.
  const char* rq = "ContractRequestMessage";
  add(rq, kRequestInitial, "/callbackAddress", kNone,
      "callbackAddress: missing (a request that starts a negotiation, without providerPid, must "
      "give one)");
  add(rq, kRequestInitial, "/offer", kNone, "offer: missing");
  add(rq, kRequestInitial, "/offer", json("urn:offer:1"),
      "offer: expected an object, not a string");
  add(rq, kRequestInitial, "/offer/@id", kNone, "offer.@id: missing");
  add(rq, kRequestInitial, "/offer/@id", json(3), "offer.@id: expected a string, not a number");
  add(rq, kRequestInitial, "/offer/@id", json(""), "offer.@id: must not be empty");
  add(rq, kRequestInitial, "/offer/@type", kNone, "offer.@type: missing");
  add(rq, kRequestInitial, "/offer/@type", json("Agreement"),
      "offer.@type: \"Agreement\" is not Offer");
  add(rq, kRequestInitial, "/offer/@type", json("odrl:Offer"),
      "offer.@type: \"odrl:Offer\" is not Offer");
  add(rq, kRequestInitial, "/offer/target", kNone,
      "offer.target: missing (an offer with rules names its target)");
  add(rq, kRequestInitial, "/offer/target", json::object(),
      "offer.target: expected a string, not an object");
  add(rq, kRequestInitial, "/offer/permission/0/target", json("urn:data:2"),
      "offer.permission[0].target: a rule inside a DSP offer or agreement has no target of its "
      "own (the policy's target applies)");
  add(rq, kRequestInitial, "/offer", json{{"@id", "urn:offer:1"}, {"@type", "Set"}},
      "offer.@type: \"Set\" is not Offer");
  add(rq, kRequestInitial, "/offer", json{{"@id", "urn:offer:1"}, {"target", 5}},
      "offer.target: expected a string, not a number");

  // ContractOfferMessage.
  const char* of = "ContractOfferMessage";
  add(of, kOfferInitial, "/callbackAddress", kNone,
      "callbackAddress: missing (an offer that starts a negotiation, without consumerPid, must "
      "give one)");
  add(of, kOfferCounter, "/offer", kNone, "offer: missing");
  add(of, kOfferCounter, "/offer", json::array(), "offer: expected an object, not an array");
  add(of, kOfferCounter, "/offer/@id", kNone, "offer.@id: missing");
  add(of, kOfferCounter, "/offer/@type", kNone, "offer.@type: missing");
  add(of, kOfferCounter, "/offer/@type", json(true),
      "offer.@type: expected a string, not a boolean");
  add(of, kOfferCounter, "/offer/target", kNone, "offer.target: missing");
  add(of, kOfferCounter, "/offer/target", json(""), "offer.target: must not be empty");
  add(of, kOfferCounter, "/offer/prohibition",
      json::array({json{{"action", "share"}}, json{{"action", "sell"}, {"target", "urn:z"}}}),
      "offer.prohibition[1].target: a rule inside a DSP offer or agreement has no target of its "
      "own (the policy's target applies)");
  add(of, kOfferCounter, "/offer/obligation", json{{"action", "delete"}, {"target", "urn:z"}},
      "offer.obligation.target: a rule inside a DSP offer or agreement has no target of its own "
      "(the policy's target applies)");

  // ContractAgreementMessage.
  const char* ag = "ContractAgreementMessage";
  add(ag, kAgreement, "/agreement", kNone, "agreement: missing");
  add(ag, kAgreement, "/agreement", json("urn:a"), "agreement: expected an object, not a string");
  for (std::string f : {"@id", "@type", "target", "assigner", "assignee", "timestamp"}) {
    add(ag, kAgreement, "/agreement/" + f, kNone, "agreement." + f + ": missing");
    add(ag, kAgreement, "/agreement/" + f, json(12),
        "agreement." + f + ": expected a string, not a number");
  }
  for (std::string f : {"@id", "target", "assigner", "assignee", "timestamp"})
    add(ag, kAgreement, "/agreement/" + f, json(""), "agreement." + f + ": must not be empty");
  add(ag, kAgreement, "/agreement/@type", json("Offer"),
      "agreement.@type: \"Offer\" is not Agreement");
  add(ag, kAgreement, "/agreement/timestamp", json("yesterday"),
      "agreement.timestamp: \"yesterday\" is not an xsd:dateTime");
  add(ag, kAgreement, "/agreement/timestamp", json("2027-02-29T00:00:00Z"),
      "agreement.timestamp: \"2027-02-29T00:00:00Z\" is not an xsd:dateTime");
  add(ag, kAgreement, "/agreement/timestamp", json("2026-11-29"),
      "agreement.timestamp: \"2026-11-29\" is not an xsd:dateTime");
  add(ag, kAgreement, "/agreement/permission/0/target", json("urn:data:2"),
      "agreement.permission[0].target: a rule inside a DSP offer or agreement has no target of its "
      "own (the policy's target applies)");

  // ContractNegotiationEventMessage.
  const char* ev = "ContractNegotiationEventMessage";
  add(ev, kEvent, "/eventType", kNone, "eventType: missing");
  add(ev, kEvent, "/eventType", json(1), "eventType: expected a string, not a number");
  add(ev, kEvent, "/eventType", json("FOO"), "eventType: \"FOO\" is not ACCEPTED or FINALIZED");
  add(ev, kEvent, "/eventType", json("accepted"),
      "eventType: \"accepted\" is not ACCEPTED or FINALIZED");
  add(ev, kEvent, "/eventType", json("dspace:ACCEPTED"),
      "eventType: \"dspace:ACCEPTED\" is not ACCEPTED or FINALIZED");
  add(ev, kEvent, "/eventType", json("TERMINATED"),
      "eventType: \"TERMINATED\" is not ACCEPTED or FINALIZED");

  CHECK(cases.check() > 200);
}

TEST_CASE("refusals quote long values cut at a character boundary", "[protocol]") {
  std::string long_value;
  for (int i = 0; i < 100; ++i)
    long_value += "\xc3\xa9";  // é, two bytes each
  std::string why = refusal(doc_kind("ContractNegotiationEventMessage").check,
                            edited(json::parse(kEvent), "/eventType", json(long_value)));
  CHECK(why == "eventType: \"" + long_value.substr(0, 64) + "...\" is not ACCEPTED or FINALIZED");
  CHECK_NOTHROW(json(why).dump());  // still valid UTF-8

  std::string odd = "a" + long_value;  // byte 64 falls inside a character
  why = refusal(doc_kind("ContractNegotiationEventMessage").check,
                edited(json::parse(kEvent), "/eventType", json(odd)));
  CHECK(why == "eventType: \"" + odd.substr(0, 63) + "...\" is not ACCEPTED or FINALIZED");
  CHECK_NOTHROW(json(why).dump());
}

TEST_CASE("the readers never throw, whatever stands in any member", "[protocol]") {
  std::vector<std::string> pointers = {
      "/@context",  "/@context/0", "/@type", "/providerPid", "/consumerPid", "/callbackAddress",
      "/eventType", "/state",      "/code",  "/reason",      "/reason/0"};
  for (const char* container : {"/offer", "/agreement"})
    for (const char* member :
         {"", "/@id", "/@type", "/target", "/assigner", "/assignee", "/timestamp", "/permission",
          "/permission/0", "/permission/0/target", "/prohibition", "/obligation"})
      pointers.push_back(std::string(container) + member);
  CHECK(check_readers_never_throw(doc_kinds(), pointers, checker(parse_negotiation_message)) > 500);
}

TEST_CASE("state, role and message names", "[protocol]") {
  const std::vector<std::string> names = {"REQUESTED", "OFFERED",   "ACCEPTED",  "AGREED",
                                          "VERIFIED",  "FINALIZED", "TERMINATED"};
  for (size_t i = 0; i < kNegotiationStates.size(); ++i) {
    CHECK(to_string(kNegotiationStates[i]) == names[i]);
    CHECK(parse_negotiation_state(names[i]) == kNegotiationStates[i]);
  }
  CHECK_FALSE(parse_negotiation_state("requested"));
  CHECK_FALSE(parse_negotiation_state(""));
  CHECK_FALSE(parse_negotiation_state("INITIAL"));
  CHECK(to_string(Role::kConsumer) == "consumer");
  CHECK(to_string(Role::kProvider) == "provider");
  CHECK(to_string(K::kAcceptedEvent) == "ContractNegotiationEventMessage ACCEPTED");
  CHECK(to_string(K::kFinalizedEvent) == "ContractNegotiationEventMessage FINALIZED");
  CHECK(to_string(NegotiationEvent::kAccepted) == "ACCEPTED");
  CHECK(to_string(NegotiationEvent::kFinalized) == "FINALIZED");
  for (NegotiationState s : kNegotiationStates)
    CHECK(is_terminal(s) == (s == S::kFinalized || s == S::kTerminated));
}

TEST_CASE("the full transition table of the DSP 2025-1 negotiation machine", "[protocol]") {
  // Written out from the DSP 2025-1 text and figure, independently of negotiation.cpp: every
  // valid (state, message, sender) and the state it leads to. Everything else is invalid.
  const std::vector<Transition<NegotiationState, MessageKind>> valid = {
      {kNone, K::kContractRequest, kC, S::kRequested},         // consumer starts
      {S::kOffered, K::kContractRequest, kC, S::kRequested},   // counter-request
      {kNone, K::kContractOffer, kP, S::kOffered},             // provider starts
      {S::kRequested, K::kContractOffer, kP, S::kOffered},     // counter-offer
      {S::kOffered, K::kAcceptedEvent, kC, S::kAccepted},      // consumer accepts the offer
      {S::kRequested, K::kContractAgreement, kP, S::kAgreed},  // provider agrees at once
      {S::kAccepted, K::kContractAgreement, kP, S::kAgreed},   // provider agrees after acceptance
      {S::kAgreed, K::kAgreementVerification, kC, S::kVerified},
      {S::kVerified, K::kFinalizedEvent, kP, S::kFinalized},
      // Termination: either party, any non-terminal state (the text; see negotiation.cpp).
      {S::kRequested, K::kTermination, kC, S::kTerminated},
      {S::kRequested, K::kTermination, kP, S::kTerminated},
      {S::kOffered, K::kTermination, kC, S::kTerminated},
      {S::kOffered, K::kTermination, kP, S::kTerminated},
      {S::kAccepted, K::kTermination, kC, S::kTerminated},
      {S::kAccepted, K::kTermination, kP, S::kTerminated},
      {S::kAgreed, K::kTermination, kC, S::kTerminated},
      {S::kAgreed, K::kTermination, kP, S::kTerminated},
      {S::kVerified, K::kTermination, kC, S::kTerminated},
      {S::kVerified, K::kTermination, kP, S::kTerminated},
  };

  CHECK(check_transitions(kNegotiationStates, kMessageKinds, valid, "without a negotiation") == 93);
}

TEST_CASE("refused transitions say why", "[protocol]") {
  auto why = [](std::optional<NegotiationState> from, MessageKind kind, Role sender) {
    return refusal_of(from, kind, sender);
  };
  CHECK(why(S::kAgreed, K::kAgreementVerification, kP) ==
        "ContractAgreementVerificationMessage from the provider in state AGREED: only the "
        "consumer verifies an agreement");
  CHECK(why(S::kVerified, K::kFinalizedEvent, kC) ==
        "ContractNegotiationEventMessage FINALIZED from the consumer in state VERIFIED: only the "
        "provider finalizes an agreement");
  CHECK(why(S::kOffered, K::kAcceptedEvent, kP) ==
        "ContractNegotiationEventMessage ACCEPTED from the provider in state OFFERED: only the "
        "consumer accepts an offer");
  CHECK(why(S::kFinalized, K::kTermination, kC) ==
        "ContractNegotiationTerminationMessage from the consumer in state FINALIZED: FINALIZED "
        "is a terminal state: it accepts no message");
  CHECK(why(S::kTerminated, K::kContractRequest, kC) ==
        "ContractRequestMessage from the consumer in state TERMINATED: TERMINATED is a terminal "
        "state: it accepts no message");
  CHECK(why(kNone, K::kTermination, kP) ==
        "ContractNegotiationTerminationMessage from the provider without a negotiation: only a "
        "ContractRequestMessage (consumer) or a ContractOfferMessage (provider) starts a "
        "negotiation");
  CHECK(why(S::kOffered, K::kContractAgreement, kP) ==
        "ContractAgreementMessage from the provider in state OFFERED: the provider sends an "
        "agreement only in state REQUESTED or ACCEPTED");
  CHECK(why(S::kRequested, K::kContractRequest, kC) ==
        "ContractRequestMessage from the consumer in state REQUESTED: the consumer requests a "
        "contract only to start a negotiation or in state OFFERED (a counter-request)");
  CHECK(why(S::kRequested, K::kAcceptedEvent, kC) ==
        "ContractNegotiationEventMessage ACCEPTED from the consumer in state REQUESTED: the "
        "consumer accepts an offer only in state OFFERED (the provider's latest offer)");
}

TEST_CASE("whole negotiations run through the machine", "[protocol]") {
  auto run = [](std::optional<NegotiationState> state,
                const std::vector<std::pair<MessageKind, Role>>& steps) {
    return run_machine(state, steps);
  };
  // Request, agreement at once.
  CHECK(run(kNone, {{K::kContractRequest, kC},
                    {K::kContractAgreement, kP},
                    {K::kAgreementVerification, kC},
                    {K::kFinalizedEvent, kP}}) == S::kFinalized);
  // Request, counter-offer, counter-request, counter-offer, acceptance.
  CHECK(run(kNone, {{K::kContractRequest, kC},
                    {K::kContractOffer, kP},
                    {K::kContractRequest, kC},
                    {K::kContractOffer, kP},
                    {K::kAcceptedEvent, kC},
                    {K::kContractAgreement, kP},
                    {K::kAgreementVerification, kC},
                    {K::kFinalizedEvent, kP}}) == S::kFinalized);
  // Provider-initiated, consumer gives up after accepting.
  CHECK(run(kNone, {{K::kContractOffer, kP}, {K::kAcceptedEvent, kC}, {K::kTermination, kC}}) ==
        S::kTerminated);
}

TEST_CASE("repeat candidates are the messages that produced the state", "[protocol]") {
  // Written out independently: the (message, sender) pairs whose retry may arrive in each state.
  const std::vector<Repeat<NegotiationState, MessageKind>> repeats = {
      {S::kRequested, K::kContractRequest, kC},      {S::kOffered, K::kContractOffer, kP},
      {S::kAccepted, K::kAcceptedEvent, kC},         {S::kAgreed, K::kContractAgreement, kP},
      {S::kVerified, K::kAgreementVerification, kC}, {S::kFinalized, K::kFinalizedEvent, kP},
      {S::kTerminated, K::kTermination, kC},         {S::kTerminated, K::kTermination, kP},
  };
  check_repeat_candidates(kNegotiationStates, kMessageKinds, repeats);
}
