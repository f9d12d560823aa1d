// The transfer process state machine of the Dataspace Protocol 2025-1.
//
// SOURCES
//
// The DSP 2025-1 text, "Transfer Process Protocol" (specifications/transfer/
// transfer.process.protocol.md in github.com/eclipse-dataspace-protocol-base/DataspaceProtocol),
// its state machine figure (figures/transfer-process-state-machine.puml) and the HTTPS binding
// (transfer.process.binding.https.md). They disagree in one place, the sender of a
// TransferStartMessage; the upstream issues #167 and #252 name the conflict and the open pull
// request #262 resolves it the way we read it (READINGS, S1).
//
// STATES
//
// A transfer process (TP) moves one dataset under one agreement from a provider to a consumer.
// Like a negotiation it is named by two ids, the consumerPid the consumer chose and the
// providerPid the provider chose, and its state changes only when the counter-party has
// acknowledged the message that changes it, so both sides agree on it:
//
//   REQUESTED   the consumer asked for the dataset under an agreement; the provider ACKed
//   STARTED     the data is available to the consumer, or the provider has begun pushing it
//   SUSPENDED   either party paused the transfer
//   COMPLETED   either party declared the transfer done                      (final)
//   TERMINATED  either party ended the transfer                              (final)
//
// In dsx the broker plays the provider's side towards the consumer and relays each message to
// the real provider, as it does for negotiations; the sender's role comes from its certificate
// and the process's record, never from the message.
//
// TRANSITIONS
//
//   message                      sender     from                          to
//   TransferRequestMessage       consumer   (none)                        REQUESTED
//   TransferStartMessage         provider   REQUESTED                     STARTED
//                                either     SUSPENDED                     STARTED
//   TransferSuspensionMessage    either     STARTED                       SUSPENDED
//   TransferCompletionMessage    either     STARTED                       COMPLETED
//   TransferTerminationMessage   either     REQUESTED, STARTED, SUSPENDED TERMINATED
//
// Everything else is invalid. Only a TransferRequestMessage creates a TP; every other message
// names one that must exist. A final state accepts no message at all, not even a termination:
// the text ("State Machine") says "Terminal states are final; the state machine MUST NOT
// transition to another state".
//
// As for negotiations, the "resulting state" the text lists for each message is the state the
// message leads to when it is accepted. A refused message gets a TransferError, which "does not
// cause a state transition" (text, "ERROR - Transfer Error"); a receiver that wants to end the
// TP because of it sends its own TransferTerminationMessage, a transition of its own.
//
// READINGS
//
// S1 Restart ("Transfer Start Message"; "State Machine"; binding, "Transfer Start Endpoint" of
//    the provider path bindings). The text's table says a TransferStartMessage is sent by the
//    provider. The figure draws SUSPENDED -> STARTED for both parties, and the binding lets the
//    consumer POST one to the provider "to attempt to start a TP after it has been suspended".
//    We follow the figure and the binding: the provider starts a REQUESTED transfer, and either
//    party restarts a SUSPENDED one.
// S2 Who may restart. Neither the text nor the figure ties a restart to the party that
//    suspended, and the machine does not record who that was: either party restarts a
//    suspension made by either. A rule such as "only the party that suspended resumes" would be
//    the broker's, which holds the record.
// S3 Completion only from STARTED (figure). The text says only that the message is sent "when a
//    data transfer has completed", which a SUSPENDED or merely REQUESTED transfer has not: it is
//    restarted or terminated instead.
// S4 Suspension only from STARTED (figure); the text's "temporarily suspend" needs a running
//    transfer. A suspension of a SUSPENDED transfer is not a transition (see IDEMPOTENCY).
// S5 Termination: the text ("at any point except a terminal state") and the figure agree: either
//    party, from REQUESTED, STARTED or SUSPENDED.
// S6 A repeated request ("Transfer Request Message": the provider "SHOULD respond with an
//    appropriate Transfer Start Message" when the same consumer sends the same consumerPid
//    again). The binding answers POST /transfers/request with the TransferProcess (201), so we
//    read this as idempotency, not as a transition: see rule 1 below.
//
// IDEMPOTENCY
//
// Messages travel over a network that loses acknowledgements, so a party may send the same
// message again. The machine itself is strict -- no message is valid in the state it produced --
// and the retry rule belongs to the caller, which holds the TP's record:
//
// 1. A TransferRequestMessage whose consumerPid the broker already holds for the same consumer
//    is not a new TP: the broker answers with the existing one (its TransferProcess, in its
//    current state; when it is STARTED the broker may also send its TransferStartMessage to the
//    callback address again, S6), and does not call next_state().
// 2. When next_state() refuses a message and is_repeat_candidate() holds (the message is one
//    that puts the TP in its current state), the broker compares it with the message it
//    acknowledged last. The same message gets the same answer again; a different one gets the
//    400.
// 3. The candidates are the incoming edges of the current state: in REQUESTED the consumer's
//    request; in STARTED a start from the provider (the first start or a restart) or from the
//    consumer (a restart); in SUSPENDED, COMPLETED and TERMINATED a suspension, completion or
//    termination from either party. The either-party ones also cover the race in which both
//    parties send the same kind of message at once: the second one finds the state it asked
//    for. The DSP text does not say how to answer it; acknowledging it is a courtesy the broker
//    may extend, as it does to crossing terminations of a negotiation.

#include "protocol/transfer.h"

#include <string>
#include <vector>

namespace dsx::protocol {
namespace {

using State = TransferState;
using Kind = TransferMessageKind;

// Who may send the message of an edge.
enum class Senders : uint8_t { kConsumer, kProvider, kEither };

struct Edge {
  std::optional<State> from;  // std::nullopt: the message creates the TP
  Kind kind;
  Senders senders;
  State to;
};

// TRANSITIONS above, row by row. Everything else is refused.
constexpr std::array<Edge, 8> kEdges = {{
    {std::nullopt, Kind::kRequest, Senders::kConsumer, State::kRequested},
    {State::kRequested, Kind::kStart, Senders::kProvider, State::kStarted},
    {State::kSuspended, Kind::kStart, Senders::kEither, State::kStarted},  // S1, S2
    {State::kStarted, Kind::kSuspension, Senders::kEither, State::kSuspended},
    {State::kStarted, Kind::kCompletion, Senders::kEither, State::kCompleted},
    {State::kRequested, Kind::kTermination, Senders::kEither, State::kTerminated},
    {State::kStarted, Kind::kTermination, Senders::kEither, State::kTerminated},
    {State::kSuspended, Kind::kTermination, Senders::kEither, State::kTerminated},
}};

// What a refusal says of each kind of message, in TransferMessageKind order.
struct KindInfo {
  std::string_view name;  // @type
  const char* deed;       // "the consumer <deed> only in state ..."
};
constexpr std::array<KindInfo, kTransferMessageKinds.size()> kKinds = {{
    {"TransferRequestMessage", "requests a transfer"},
    {"TransferStartMessage", "starts a transfer"},
    {"TransferSuspensionMessage", "suspends a transfer"},
    {"TransferCompletionMessage", "completes a transfer"},
    {"TransferTerminationMessage", "terminates a transfer"},
}};

bool may_send(Senders senders, Role role) {
  if (senders == Senders::kEither) return true;
  return (senders == Senders::kConsumer) == (role == Role::kConsumer);
}

// The edges `kind` from `sender` may take, for the refusals: "to start a transfer process",
// "in state REQUESTED or SUSPENDED"; empty when `sender` never sends `kind`.
std::string valid_from(Kind kind, Role sender) {
  std::vector<std::string_view> states;
  bool creates = false;
  for (const Edge& e : kEdges) {
    if (e.kind != kind || !may_send(e.senders, sender)) continue;
    if (e.from)
      states.push_back(to_string(*e.from));
    else
      creates = true;
  }
  if (creates) return "to start a transfer process";
  std::string where;
  for (size_t i = 0; i < states.size(); ++i)
    where += std::string(i == 0                   ? "in state "
                         : i + 1 == states.size() ? " or "
                                                  : ", ") +
             std::string(states[i]);
  return where;
}

Role other(Role role) {
  return role == Role::kConsumer ? Role::kProvider : Role::kConsumer;
}

Status refuse(std::optional<State> current, Kind kind, Role sender, const std::string& why) {
  std::string state = current ? "in state " + std::string(to_string(*current))
                              : std::string("without a transfer process");
  return Status::failed_precondition(std::string(to_string(kind)) + " from the " +
                                     std::string(to_string(sender)) + " " + state + ": " + why);
}

}  // namespace

std::string_view to_string(TransferState state) {
  constexpr std::array<std::string_view, kTransferStates.size()> kNames = {
      "REQUESTED", "STARTED", "SUSPENDED", "COMPLETED", "TERMINATED"};
  return kNames[static_cast<size_t>(state)];
}

std::optional<TransferState> parse_transfer_state(std::string_view text) {
  for (State s : kTransferStates)
    if (to_string(s) == text) return s;
  return std::nullopt;
}

std::string_view to_string(TransferMessageKind kind) {
  return kKinds[static_cast<size_t>(kind)].name;
}

bool is_final(TransferState state) {
  return state == State::kCompleted || state == State::kTerminated;
}

Result<TransferState> next_state(std::optional<TransferState> current, TransferMessageKind kind,
                                 Role sender) {
  for (const Edge& e : kEdges)
    if (e.from == current && e.kind == kind && may_send(e.senders, sender)) return e.to;

  const char* deed = kKinds[static_cast<size_t>(kind)].deed;
  std::string where = valid_from(kind, sender);
  if (where.empty())
    return refuse(current, kind, sender,
                  "only the " + std::string(to_string(other(sender))) + " " + deed);
  if (current && is_final(*current))
    return refuse(current, kind, sender,
                  std::string(to_string(*current)) + " is a final state: it accepts no message");
  if (!current)
    return refuse(current, kind, sender,
                  "only a TransferRequestMessage from the consumer starts a transfer process");
  return refuse(current, kind, sender,
                "the " + std::string(to_string(sender)) + " " + deed + " only " + where);
}

bool is_repeat_candidate(TransferState current, TransferMessageKind kind, Role sender) {
  for (const Edge& e : kEdges)
    if (e.to == current && e.kind == kind && may_send(e.senders, sender)) return true;
  return false;
}

}  // namespace dsx::protocol
