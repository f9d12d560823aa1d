#pragma once
// The Dataspace Protocol 2025-1 transfer process state machine as a pure function: given a
// transfer process's current state (or none yet), the kind of message that arrived and who sent
// it, the state it leads to or an error saying why the transition is invalid (the broker answers
// such an error with 400 and a TransferError). Stateless: no storage, no clock, safe from any
// thread. transfer.cpp opens with the design: states, who sends what, the spec readings,
// idempotency.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "protocol/dsp.h"

namespace dsx::protocol {

enum class TransferState : uint8_t {
  kRequested,
  kStarted,
  kSuspended,
  kCompleted,   // final
  kTerminated,  // final
};
inline constexpr std::array<TransferState, 5> kTransferStates = {
    TransferState::kRequested, TransferState::kStarted, TransferState::kSuspended,
    TransferState::kCompleted, TransferState::kTerminated};

// The machine's inputs, one per message @type.
enum class TransferMessageKind : uint8_t {
  kRequest,      // TransferRequestMessage
  kStart,        // TransferStartMessage
  kSuspension,   // TransferSuspensionMessage
  kCompletion,   // TransferCompletionMessage
  kTermination,  // TransferTerminationMessage
};
inline constexpr std::array<TransferMessageKind, 5> kTransferMessageKinds = {
    TransferMessageKind::kRequest, TransferMessageKind::kStart, TransferMessageKind::kSuspension,
    TransferMessageKind::kCompletion, TransferMessageKind::kTermination};

// "REQUESTED", ... as on the wire (TransferProcess.state).
std::string_view to_string(TransferState state);
std::optional<TransferState> parse_transfer_state(std::string_view text);
// The message's @type: "TransferStartMessage", ...
std::string_view to_string(TransferMessageKind kind);

// COMPLETED and TERMINATED: the process accepts no further message.
bool is_final(TransferState state);

// The state `kind` from `sender` leads to from `current` (std::nullopt: no transfer process
// yet), or a kFailedPrecondition Status whose message says which message, from whom, in which
// state, and why it is refused, e.g.
//   TransferStartMessage from the consumer in state REQUESTED: the consumer starts a transfer
//   only in state SUSPENDED
Result<TransferState> next_state(std::optional<TransferState> current, TransferMessageKind kind,
                                 Role sender);

// True when `kind` from `sender` is a message that puts a transfer process into `current`, so
// that receiving it again in `current` may be a retry of a message already acknowledged (its ACK
// was lost). next_state() refuses it; the caller replays its earlier answer when the message is
// the same as the one it acknowledged (see "Idempotency" in transfer.cpp).
bool is_repeat_candidate(TransferState current, TransferMessageKind kind, Role sender);

}  // namespace dsx::protocol
