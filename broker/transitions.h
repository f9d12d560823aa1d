#pragma once
// What the broker's two DSP processes (broker/negotiations.h, broker/transfers.h) share: the
// shape of their provenance entries, committing a Transition with its events and entries, and
// evaluating a policy for a consumer with the broker's own values. Free functions; thread-safe
// as the objects passed to them are (Store and Log are).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "broker/store.h"
#include "certs/identity.h"
#include "common/clock.h"
#include "policy/evaluator.h"
#include "protocol/dsp.h"
#include "provenance/log.h"

namespace dsx::broker {

// "consumer" or "provider", as stored in last_sender and written in log entries.
const char* role_name(protocol::Role r);

// JSON text as stored; null for "" (and a discarded value for text that is not JSON).
nlohmann::json parse_or_null(const std::string& text);

// Whether a stored record exists and `me` is one of its two parties: anyone else gets 404,
// exactly as for one that does not exist (DSP).
template <typename Record>
bool is_party(const std::optional<Record>& record, const std::string& me) {
  return record && (record->consumer == me || record->provider == me);
}

// A provenance entry for a Transition, serialised once for the outbox and the log.
OutboxEntry log_entry(Instant time, const std::string& actor, const std::string& action,
                      std::vector<std::string> subjects, nlohmann::json details);
// The entry back from its outbox text; `fallback` when it has no readable time.
provenance::Entry entry_of(const std::string& text, Instant fallback);
// Hex SHA-256 of the RFC 8785 canonical JSON of `value` ("" if it has none).
std::string sha256_of_canonical(const nlohmann::json& value);
// A DSP reason (a string, or any JSON value) as one sentence.
std::string reason_text(const nlohmann::json& reason);

// Commits `t` (durable on return; the store hands its events to the channels, broker/events.h)
// and queues its entries for the log; each leaves the store's outbox once the log has it (a
// failed append stays there: the next start-up appends it).
// The entries' prepared text is moved to the log.
Status commit_transition(Store& store, provenance::Log& log, const Clock& clock, Transition& t);

// The outcome of evaluating a policy for a consumer.
struct Verdict {
  bool permit = false;
  std::vector<std::string> reasons;
  nlohmann::json decision;  // policy::to_json(Decision), for the log
};

// The values only the broker knows (docs/policy-language.md): count (COMPLETED transfers under
// the agreement, plus the one being decided) and elapsedTime (since the agreement's timestamp).
policy::Context measured_values(uint64_t count, int64_t elapsed_seconds);

// The policy for `consumer` using `dataset` now: the certificate's values, the declared purpose
// and context, and `measured` values the broker supplies (count, elapsedTime); without them (at
// negotiation) those of a first transfer at the moment of agreement (count 1, elapsedTime 0). An
// active permission grants unless an active prohibition forbids: its duties bind the agreement
// and are not a reason to refuse.
Verdict evaluate(const policy::Policy& offer, const certs::Identity& consumer,
                 const std::string& dataset, const std::string& purpose,
                 const nlohmann::json& declared, Instant now,
                 const policy::Context* measured = nullptr);

}  // namespace dsx::broker
