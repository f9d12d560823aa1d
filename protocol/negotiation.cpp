// The contract negotiation state machine of the Dataspace Protocol 2025-1.
//
// SOURCES
//
// The DSP 2025-1 text, "Contract Negotiation Protocol" (specifications/negotiation/
// contract.negotiation.protocol.md in github.com/eclipse-dataspace-protocol-base/
// DataspaceProtocol), its state machine figure (figures/contract.negotiation.state.machine.puml)
// and the HTTPS binding (contract.negotiation.binding.https.md). Where the figure and the text
// disagree, the text wins; the one place they do is listed under READINGS.
//
// STATES
//
// A negotiation (CN) is one exchange between a consumer and a provider, named by two ids: the
// consumerPid the consumer chose and the providerPid the provider chose. Its state is the same
// on both sides, because a state changes only when the counter-party has acknowledged the
// message that changes it:
//
//   REQUESTED   the consumer asked for a contract on an offer (first request or counter-request)
//   OFFERED     the provider sent an offer (first offer or counter-offer)
//   ACCEPTED    the consumer accepted the provider's latest offer
//   AGREED      the provider sent the agreement
//   VERIFIED    the consumer verified the agreement
//   FINALIZED   the provider confirmed; the data may now flow              (terminal)
//   TERMINATED  either party ended the negotiation                         (terminal)
//
// A terminal state accepts no message at all, not even a termination: the DSP text says
// "terminal states are final" and calls any event after one an error.
//
// TRANSITIONS
//
// Who may send a message is fixed by its kind, whatever the state:
//
//   message                                   sender     from                 to
//   ContractRequestMessage                    consumer   (none)               REQUESTED
//                                                        OFFERED              REQUESTED
//   ContractOfferMessage                      provider   (none)               OFFERED
//                                                        REQUESTED            OFFERED
//   ContractNegotiationEventMessage ACCEPTED  consumer   OFFERED              ACCEPTED
//   ContractAgreementMessage                  provider   REQUESTED, ACCEPTED  AGREED
//   ContractAgreementVerificationMessage      consumer   AGREED               VERIFIED
//   ContractNegotiationEventMessage FINALIZED provider   VERIFIED             FINALIZED
//   ContractNegotiationTerminationMessage     either     any non-terminal     TERMINATED
//
// Everything else is invalid. In words: the consumer and the provider take turns. A request
// gives the provider the turn: it may counter-offer or agree at once. An offer gives the
// consumer the turn: it may counter-request or accept, and acceptance gives the provider the
// turn to agree. After the agreement, the consumer verifies and the provider finalizes. Only a
// ContractRequestMessage (consumer-initiated) or a ContractOfferMessage (provider-initiated)
// starts a negotiation; every other message names one that must exist.
//
// The "resulting state TERMINATED" that the DSP text lists for every message is not a
// transition of that message: it is the receiver refusing it (for instance the broker's policy
// check failing on a request), which the receiver expresses with its own termination message, a
// second transition of its own. This function sees one message at a time.
//
// The ACCEPTED event and the FINALIZED event share one @type; the machine treats them as two
// inputs because they are sent by different parties in different states. The text makes each
// one an error from the wrong party ("it is an error for a Consumer to send ... FINALIZED").
//
// READINGS
//
// - Termination. The figure draws TERMINATED edges from both parties only out of REQUESTED and
//   OFFERED, and from one party elsewhere (ACCEPTED and VERIFIED: provider; AGREED: consumer).
//   The text says the termination message is sent by the consumer or the provider and "can be
//   sent at any state of a CN". We follow the text: either party may terminate in any
//   non-terminal state. (A consumer waiting in ACCEPTED for an agreement that never comes must be
//   able to give up.)
// - A repeated message is not a transition (the figure has no self-loops); see below.
//
// IDEMPOTENCY
//
// Messages travel over a network that loses acknowledgements, so a party may send the same
// message again. The machine itself is strict -- no message is valid in the state it produced --
// and the retry rule belongs to the caller, which holds the negotiation's record:
//
// 1. An initial ContractRequestMessage whose consumerPid the broker already holds for the same
//    consumer is not a new negotiation: the broker answers with the existing one (its current
//    state), and does not call next_state().
// 2. When next_state() refuses a message and is_repeat_candidate() holds (the message is the
//    one that put the negotiation in its current state), the broker compares it with the message
//    it acknowledged last. The same message gets the same answer again; a different one (a
//    second, conflicting request in REQUESTED, say) gets the 400.
// 3. A termination of a negotiation already TERMINATED is such a repeat candidate, from either
//    party: both may have given up at the same moment. The DSP text lets the sender of a
//    termination ignore an error in reply, so answering with the ACK is a courtesy, not a
//    requirement.
//
// Nothing else changes state twice: FINALIZED and TERMINATED are final.

#include "protocol/negotiation.h"

#include <string>

namespace dsx::protocol {
namespace {

using State = NegotiationState;

// What the machine knows of each kind of message, in MessageKind order.
struct KindInfo {
  std::string_view name;       // @type, with the eventType for events
  std::optional<Role> sender;  // who sends it; std::nullopt: either party
  State target;                // the state it leads to, from every state it is valid in
  const char* deed;            // for refusals: "only the consumer <deed>"
  const char* valid_in;        // for refusals: "the consumer <deed> <valid_in>"
};
constexpr std::array<KindInfo, kMessageKinds.size()> kKinds = {{
    {"ContractRequestMessage", Role::kConsumer, State::kRequested, "requests a contract",
     "only to start a negotiation or in state OFFERED (a counter-request)"},
    {"ContractOfferMessage", Role::kProvider, State::kOffered, "makes an offer",
     "only to start a negotiation or in state REQUESTED (a counter-offer)"},
    {"ContractNegotiationEventMessage ACCEPTED", Role::kConsumer, State::kAccepted,
     "accepts an offer", "only in state OFFERED (the provider's latest offer)"},
    {"ContractAgreementMessage", Role::kProvider, State::kAgreed, "sends an agreement",
     "only in state REQUESTED or ACCEPTED"},
    {"ContractAgreementVerificationMessage", Role::kConsumer, State::kVerified,
     "verifies an agreement", "only in state AGREED"},
    {"ContractNegotiationEventMessage FINALIZED", Role::kProvider, State::kFinalized,
     "finalizes an agreement", "only in state VERIFIED"},
    {"ContractNegotiationTerminationMessage", std::nullopt, State::kTerminated, "terminates",
     "in any non-terminal state"},
}};

const KindInfo& info(MessageKind kind) {
  return kKinds[static_cast<size_t>(kind)];
}

Status refuse(std::optional<State> current, MessageKind kind, Role sender, std::string why) {
  std::string where = current ? std::string("in state ") + std::string(to_string(*current))
                              : std::string("without a negotiation");
  return Status::failed_precondition(std::string(to_string(kind)) + " from the " +
                                     std::string(to_string(sender)) + " " + where + ": " + why);
}

bool valid_from(std::optional<State> current, MessageKind kind) {
  switch (kind) {
    case MessageKind::kContractRequest:
      return !current || *current == State::kOffered;
    case MessageKind::kContractOffer:
      return !current || *current == State::kRequested;
    case MessageKind::kAcceptedEvent:
      return current == State::kOffered;
    case MessageKind::kContractAgreement:
      return current == State::kRequested || current == State::kAccepted;
    case MessageKind::kAgreementVerification:
      return current == State::kAgreed;
    case MessageKind::kFinalizedEvent:
      return current == State::kVerified;
    case MessageKind::kTermination:
      return current.has_value();  // terminal states are refused before
  }
  return false;
}

}  // namespace

std::string_view to_string(NegotiationState state) {
  switch (state) {
    case State::kRequested:
      return "REQUESTED";
    case State::kOffered:
      return "OFFERED";
    case State::kAccepted:
      return "ACCEPTED";
    case State::kAgreed:
      return "AGREED";
    case State::kVerified:
      return "VERIFIED";
    case State::kFinalized:
      return "FINALIZED";
    case State::kTerminated:
      return "TERMINATED";
  }
  return "TERMINATED";
}

std::optional<NegotiationState> parse_negotiation_state(std::string_view text) {
  for (State s : kNegotiationStates)
    if (to_string(s) == text) return s;
  return std::nullopt;
}

std::string_view to_string(MessageKind kind) {
  return info(kind).name;
}

bool is_terminal(NegotiationState state) {
  return state == State::kFinalized || state == State::kTerminated;
}

Result<NegotiationState> next_state(std::optional<NegotiationState> current, MessageKind kind,
                                    Role sender) {
  const KindInfo& k = info(kind);
  if (k.sender && *k.sender != sender)
    return refuse(current, kind, sender,
                  "only the " + std::string(to_string(*k.sender)) + " " + k.deed);
  if (current && is_terminal(*current))
    return refuse(current, kind, sender,
                  std::string(to_string(*current)) + " is a terminal state: it accepts no message");
  if (!valid_from(current, kind)) {
    if (!current)
      return refuse(current, kind, sender,
                    "only a ContractRequestMessage (consumer) or a ContractOfferMessage "
                    "(provider) starts a negotiation");
    return refuse(current, kind, sender,
                  "the " + std::string(to_string(sender)) + " " + k.deed + " " + k.valid_in);
  }
  return k.target;
}

bool is_repeat_candidate(NegotiationState current, MessageKind kind, Role sender) {
  const KindInfo& k = info(kind);
  return (!k.sender || *k.sender == sender) && k.target == current;
}

}  // namespace dsx::protocol
