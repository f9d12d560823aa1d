#pragma once
// A connector's part in contract negotiations, on top of the routes (negotiation.h) and the
// control channel (channel.h). Responder answers channel events as `dsx connector serve` does:
// a provider decides contract requests by its auto-accept rules or leaves them to a person; a
// consumer checks and verifies agreements. follow_negotiation drives one consumer negotiation
// to its end, as `dsx connector negotiate --wait` does. Both use the Client they are given (one
// thread at a time) and report what happened as one line per step for a person to read.

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "connectors/channel.h"
#include "connectors/client.h"
#include "protocol/negotiation_messages.h"
#include "provenance/signing.h"

namespace dsx::connectors {

// A provider approves a contract request the broker's policy check passed when a rule matches:
// its dataset ("*": any) and, when given, the consumer's participant id ("*": any).
struct AutoAcceptRule {
  std::string dataset;
  std::string consumer = "*";
};
// The "autoAccept" member of a connector config file ([{"dataset": ..., "consumer": ...}]);
// absent: no rules. The error names the entry and member.
Result<std::vector<AutoAcceptRule>> parse_auto_accept(const nlohmann::json& config);
// The first rule matching, or nullptr.
const AutoAcceptRule* find_rule(const std::vector<AutoAcceptRule>& rules,
                                const std::string& dataset, const std::string& consumer);

class Responder {
 public:
  Responder(Client& client, std::vector<AutoAcceptRule> rules)
      : client_(client), rules_(std::move(rules)) {}
  // Acts on one event and says what happened, in one line. A refusal from the broker (the
  // negotiation moved on meanwhile, say) is reported and counts as handled; only a transport
  // failure is an error, so the event comes again after reconnecting.
  Result<std::string> handle(const Event& event);

 private:
  Client& client_;
  const std::vector<AutoAcceptRule> rules_;
  std::optional<provenance::PublicKey> broker_key_;  // read at the first agreement
};

struct FollowOptions {
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  bool use_channel = true;                       // else poll GET /negotiations/{pid} only
  std::function<void(const std::string&)> note;  // progress, one line each
  std::function<bool()> stop;                    // polled; may be empty
};

struct FollowResult {
  protocol::NegotiationState state = protocol::NegotiationState::kRequested;
  std::string agreement_id;          // when FINALIZED, if known
  std::vector<std::string> reasons;  // when TERMINATED, if known
  bool timed_out = false;            // the timeout passed first (state is the last one seen)
};

// Follows the consumer's negotiation `start` until FINALIZED or TERMINATED: over the control
// channel when it opens (events for other negotiations are left unacknowledged for `serve`),
// polling GET /negotiations/{pid} as well, with backoff. When AGREED it checks the agreement's
// hash and sends the verification; a wrong hash terminates the negotiation instead.
Result<FollowResult> follow_negotiation(Client& client, const ClientConfig& config,
                                        const protocol::ContractNegotiation& start,
                                        const FollowOptions& options);

}  // namespace dsx::connectors
