#pragma once
// Typed calls to the broker's contract negotiation routes (docs/api.md, "Contract negotiation")
// over a Client. DSP messages are built and read with protocol/; every call answers the typed
// value, or the broker's Refusal (a non-2xx reply: status, code, reasons), or a transport error
// (the Result's Status). Free functions over the caller's Client, so the Client's rule holds:
// one thread at a time. Checking an agreement is pure (given the broker's key).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "connectors/client.h"
#include "protocol/negotiation_messages.h"
#include "provenance/signing.h"

namespace dsx::connectors {

// A reply that is not 2xx.
struct Refusal {
  int status = 0;
  std::string code;  // "policy-refused", "forbidden", ... (without the "403:"; "" when none)
  std::vector<std::string> reasons;  // each reason (strings as they are, other JSON dumped)
  std::string summary;               // describe_error: the whole refusal on one line
};
Refusal refusal_of(const Reply& reply);

template <typename T>
using Answer = std::variant<T, Refusal>;
using NegotiationAnswer = Result<Answer<protocol::ContractNegotiation>>;
using JsonAnswer = Result<Answer<nlohmann::json>>;

// The address DSP requires in a first ContractRequestMessage: the broker never calls it, events
// come over the control channel (docs/api.md, "The contract request").
inline constexpr std::string_view kChannelCallback = "urn:dsx:channel";

// "urn:uuid:" and a random (version 4) UUID: a fresh consumerPid.
std::string new_process_id();

struct ContractRequest {
  std::string offer_id;      // an offer of the catalog, sent as {"@id": offer_id}
  std::string purpose;       // dsx:purpose; empty: none declared
  nlohmann::json context;    // dsx:context: null, or an object of left-operand values
  std::string consumer_pid;  // empty: new_process_id()
};
// The ContractRequestMessage for `r`, with the dsx:purpose and dsx:context extensions.
nlohmann::json contract_request_message(const ContractRequest& r);

NegotiationAnswer request_contract(Client& client, const ContractRequest& r);
NegotiationAnswer get_negotiation(Client& client, std::string_view provider_pid);
// Provider: agree (REQUESTED or ACCEPTED -> AGREED); the broker builds and signs the agreement.
NegotiationAnswer approve(Client& client, std::string_view provider_pid);
// Provider: a counter-offer (REQUESTED -> OFFERED).
NegotiationAnswer counter_offer(Client& client, const protocol::ContractOfferMessage& offer);
// Consumer: accept the provider's offer (OFFERED -> ACCEPTED).
NegotiationAnswer accept_offer(Client& client, const protocol::ContractNegotiation& n);
// Consumer: the agreement is verified (AGREED -> VERIFIED, and the broker finalizes).
NegotiationAnswer verify_agreement(Client& client, const protocol::ContractNegotiation& n);
// Either party: end the negotiation with a reason (-> TERMINATED).
NegotiationAnswer terminate(Client& client, const protocol::ContractNegotiation& n,
                            const std::string& reason);

// The management views, as the broker sends them.
JsonAnswer list_negotiations(Client& client);
JsonAnswer list_agreements(Client& client);
JsonAnswer get_agreement(Client& client, std::string_view agreement_id);
// Provider: retire (revoke) an agreement; later transfers under it are refused.
JsonAnswer retire_agreement(Client& client, std::string_view agreement_id,
                            const std::string& reason);

// The broker's signing key (GET /audit/public-key: the provenance log's Ed25519 key, which also
// signs agreements), read over the caller's authenticated connection; its key id is checked
// against the key. A transport failure, or a refusal worth another try (429, 5xx), is
// failed_precondition (as for every call here); another refusal (an older broker that gives the
// key to auditors only: 403) or an unreadable key is invalid_argument.
Result<provenance::PublicKey> broker_signing_key(Client& client);

// What a consumer checks of an agreement before verifying it: that the hash the broker sent is
// the SHA-256 of the RFC 8785 canonical JSON of the agreement it sent, and that the broker's
// Ed25519 signature (`{"keyId", "algorithm": "Ed25519", "value": HEX}`) over the same bytes
// verifies with `broker_key` (docs/cli.md, "What the consumer checks"). So what it keeps is an
// agreement it can show to anyone who knows the broker's key.
struct CheckedAgreement {
  protocol::ContractAgreementMessage message;
  std::string sha256;        // lowercase hex
  nlohmann::json signature;  // dsx:signature, as sent (verified)
};
// Lowercase hex SHA-256 of the canonical JSON of `agreement`.
Result<std::string> agreement_sha256(const nlohmann::json& agreement);
// A ContractAgreementMessage (as a negotiation.agreed event carries it), checked.
Result<CheckedAgreement> check_agreement_message(const nlohmann::json& message,
                                                 const provenance::PublicKey& broker_key);
// GET /management/agreements/{id}'s body ({"agreement", "sha256", "signature", ...}), checked.
Status check_agreement_record(const nlohmann::json& record,
                              const provenance::PublicKey& broker_key);

}  // namespace dsx::connectors
