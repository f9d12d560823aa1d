#pragma once
// The Dataspace Protocol 2025-1 contract negotiation state machine as a pure function: given a
// negotiation's current state (or none yet), the kind of message that arrived and who sent it,
// the state it leads to or an error saying why the transition is invalid (the broker answers
// such an error with 400 and a ContractNegotiationError). Stateless: no storage, no clock, safe
// from any thread. negotiation.cpp opens with the design: states, who sends what, idempotency.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "protocol/dsp.h"

namespace dsx::protocol {

enum class NegotiationState : uint8_t {
  kRequested,
  kOffered,
  kAccepted,
  kAgreed,
  kVerified,
  kFinalized,   // terminal
  kTerminated,  // terminal
};
inline constexpr std::array<NegotiationState, 7> kNegotiationStates = {
    NegotiationState::kRequested, NegotiationState::kOffered,  NegotiationState::kAccepted,
    NegotiationState::kAgreed,    NegotiationState::kVerified, NegotiationState::kFinalized,
    NegotiationState::kTerminated};

// The machine's inputs. A ContractNegotiationEventMessage is two inputs, one per eventType,
// because ACCEPTED and FINALIZED are different transitions sent by different parties.
enum class MessageKind : uint8_t {
  kContractRequest,        // ContractRequestMessage
  kContractOffer,          // ContractOfferMessage
  kAcceptedEvent,          // ContractNegotiationEventMessage, eventType ACCEPTED
  kContractAgreement,      // ContractAgreementMessage
  kAgreementVerification,  // ContractAgreementVerificationMessage
  kFinalizedEvent,         // ContractNegotiationEventMessage, eventType FINALIZED
  kTermination,            // ContractNegotiationTerminationMessage
};
inline constexpr std::array<MessageKind, 7> kMessageKinds = {MessageKind::kContractRequest,
                                                             MessageKind::kContractOffer,
                                                             MessageKind::kAcceptedEvent,
                                                             MessageKind::kContractAgreement,
                                                             MessageKind::kAgreementVerification,
                                                             MessageKind::kFinalizedEvent,
                                                             MessageKind::kTermination};

// "REQUESTED", ... as on the wire (ContractNegotiation.state).
std::string_view to_string(NegotiationState state);
std::optional<NegotiationState> parse_negotiation_state(std::string_view text);
// The message's @type, with the eventType for events: "ContractNegotiationEventMessage ACCEPTED".
std::string_view to_string(MessageKind kind);

bool is_terminal(NegotiationState state);

// The state `kind` from `sender` leads to from `current` (std::nullopt: no negotiation yet), or
// a kFailedPrecondition Status whose message says which message, from whom, in which state, and
// why it is refused, e.g.
//   ContractAgreementVerificationMessage from the provider in state AGREED: only the consumer
//   verifies an agreement
Result<NegotiationState> next_state(std::optional<NegotiationState> current, MessageKind kind,
                                    Role sender);

// True when `kind` from `sender` is the message that puts a negotiation into `current`, so that
// receiving it again in `current` may be a retry of a message already acknowledged (its ACK was
// lost). next_state() refuses it; the caller replays its earlier answer when the message is the
// same as the one it acknowledged (see "Idempotency" in negotiation.cpp).
bool is_repeat_candidate(NegotiationState current, MessageKind kind, Role sender);

}  // namespace dsx::protocol
