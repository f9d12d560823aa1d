#pragma once
// The Dataspace Protocol 2025-1 contract negotiation messages as plain values, and their JSON
// codecs in the compact JSON-LD shape of the DSP 2025-1 schemas, read as plain JSON: "@context"
// names https://w3id.org/dspace/2025/1/context.jsonld, "@type" has no prefix. Readers return an
// error naming the field (`consumerPid: missing`); they never throw. Offers and agreements stay
// ODRL JSON, checked here only for what DSP itself requires (policy/ reads them). Pure functions.

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "protocol/dsp.h"
#include "protocol/negotiation.h"

namespace dsx::protocol {

// Consumer -> provider: start a negotiation (no providerPid) or counter an offer (providerPid).
struct ContractRequestMessage {
  std::string consumer_pid;
  std::optional<std::string> provider_pid;
  // An ODRL Offer ("@type": "Offer", "@id", "target", rules) or a reference {"@id": ...} to an
  // offer of the provider's catalog.
  nlohmann::json offer;
  std::optional<std::string> callback_address;  // required when provider_pid is absent
  bool operator==(const ContractRequestMessage&) const = default;
};

// Provider -> consumer: start a negotiation (no consumerPid) or counter a request.
struct ContractOfferMessage {
  std::string provider_pid;
  std::optional<std::string> consumer_pid;
  nlohmann::json offer;                         // ODRL Offer with "@id" and "target"
  std::optional<std::string> callback_address;  // required when consumer_pid is absent
  bool operator==(const ContractOfferMessage&) const = default;
};

// Provider -> consumer: the agreement.
struct ContractAgreementMessage {
  std::string provider_pid;
  std::string consumer_pid;
  // ODRL Agreement: "@id", "@type": "Agreement", "target", "assigner", "assignee", "timestamp".
  nlohmann::json agreement;
  std::optional<std::string> callback_address;
  bool operator==(const ContractAgreementMessage&) const = default;
};

// Consumer -> provider: the consumer verified the agreement.
struct ContractAgreementVerificationMessage {
  std::string provider_pid;
  std::string consumer_pid;
  bool operator==(const ContractAgreementVerificationMessage&) const = default;
};

enum class NegotiationEvent : uint8_t { kAccepted, kFinalized };

// ACCEPTED: consumer -> provider; FINALIZED: provider -> consumer.
struct ContractNegotiationEventMessage {
  std::string provider_pid;
  std::string consumer_pid;
  NegotiationEvent event_type = NegotiationEvent::kAccepted;
  bool operator==(const ContractNegotiationEventMessage&) const = default;
};

// Either party ends the negotiation; code and reasons are optional.
struct ContractNegotiationTerminationMessage {
  std::string provider_pid;
  std::string consumer_pid;
  std::optional<std::string> code;
  std::vector<nlohmann::json> reason;  // empty: absent (when present it holds at least one)
  bool operator==(const ContractNegotiationTerminationMessage&) const = default;
};

// The negotiation as GET /negotiations/{pid} returns it, and the ACK body of every message.
struct ContractNegotiation {
  std::string provider_pid;
  std::string consumer_pid;
  NegotiationState state = NegotiationState::kRequested;
  bool operator==(const ContractNegotiation&) const = default;
};

// The error body of a refused message (4xx). It causes no transition.
struct ContractNegotiationError {
  std::string provider_pid;
  std::string consumer_pid;
  std::optional<std::string> code;
  std::vector<nlohmann::json> reason;  // empty: absent
  bool operator==(const ContractNegotiationError&) const = default;
};

// The six messages that drive the state machine.
using NegotiationMessage =
    std::variant<ContractRequestMessage, ContractOfferMessage, ContractAgreementMessage,
                 ContractAgreementVerificationMessage, ContractNegotiationEventMessage,
                 ContractNegotiationTerminationMessage>;

std::string_view to_string(NegotiationEvent event);  // "ACCEPTED", "FINALIZED"

// The machine's input for a message (events split by eventType).
MessageKind kind_of(const NegotiationMessage& message);

// Readers: the document as the JSON value the transport parsed (common/json.h's parse_json_text
// for untrusted text). Unknown members are ignored, as JSON-LD allows.
Result<ContractRequestMessage> parse_contract_request_message(const nlohmann::json& doc);
Result<ContractOfferMessage> parse_contract_offer_message(const nlohmann::json& doc);
Result<ContractAgreementMessage> parse_contract_agreement_message(const nlohmann::json& doc);
Result<ContractAgreementVerificationMessage> parse_contract_agreement_verification_message(
    const nlohmann::json& doc);
Result<ContractNegotiationEventMessage> parse_contract_negotiation_event_message(
    const nlohmann::json& doc);
Result<ContractNegotiationTerminationMessage> parse_contract_negotiation_termination_message(
    const nlohmann::json& doc);
Result<ContractNegotiation> parse_contract_negotiation(const nlohmann::json& doc);
Result<ContractNegotiationError> parse_contract_negotiation_error(const nlohmann::json& doc);
// Any of the six messages, chosen by its "@type".
Result<NegotiationMessage> parse_negotiation_message(const nlohmann::json& doc);

// Writers: the compact shape with "@context" and "@type". They write what the value holds and
// check nothing; a value the readers accepted writes back to an equal value.
nlohmann::json to_json(const ContractRequestMessage& m);
nlohmann::json to_json(const ContractOfferMessage& m);
nlohmann::json to_json(const ContractAgreementMessage& m);
nlohmann::json to_json(const ContractAgreementVerificationMessage& m);
nlohmann::json to_json(const ContractNegotiationEventMessage& m);
nlohmann::json to_json(const ContractNegotiationTerminationMessage& m);
nlohmann::json to_json(const ContractNegotiation& m);
nlohmann::json to_json(const ContractNegotiationError& m);
nlohmann::json to_json(const NegotiationMessage& m);

}  // namespace dsx::protocol
