#include "broker/transitions.h"

#include "broker/policy_inputs.h"
#include "common/hex.h"
#include "common/json.h"
#include "policy/describe.h"
#include "policy/vocab.h"
#include "provenance/canonical_json.h"
#include "provenance/merkle.h"

namespace dsx::broker {

namespace {
// How long a transition's log entries may wait for others to share their commit (the entries are
// already durable in the store's outbox; auditors see them this much later at most).
constexpr std::chrono::milliseconds kLogMayWait{5};
}  // namespace

using nlohmann::json;

const char* role_name(protocol::Role r) {
  return r == protocol::Role::kConsumer ? "consumer" : "provider";
}

json parse_or_null(const std::string& text) {
  if (text.empty()) return nullptr;
  auto parsed = parse_json_text(text);  // simdjson's fast path: these are read on every message
  return parsed ? std::move(*parsed) : json(json::value_t::discarded);
}

OutboxEntry log_entry(Instant time, const std::string& actor, const std::string& action,
                      std::vector<std::string> subjects, json details) {
  provenance::Entry e;
  e.time = time;
  e.actor = actor;
  e.action = action;
  e.subjects = std::move(subjects);
  e.details = std::move(details);
  OutboxEntry out;
  if (auto prepared = provenance::prepare(e)) {
    out.text = prepared->without_seq();
    out.prepared = std::move(*prepared);
  } else {  // kept as it is: the log's append says why it cannot take it
    out.text = json{{"time", format_rfc3339(e.time)},
                    {"actor", e.actor},
                    {"action", e.action},
                    {"subjects", e.subjects},
                    {"details", e.details}}
                   .dump();
  }
  return out;
}

provenance::Entry entry_of(const std::string& text, Instant fallback) {
  auto doc = json::parse(text, nullptr, false);
  provenance::Entry e;
  if (!doc.is_object()) return e;
  e.time = parse_xsd_date_time(doc.value("time", "")).value_or(fallback);
  e.actor = doc.value("actor", "");
  e.action = doc.value("action", "");
  e.subjects = doc.value("subjects", std::vector<std::string>());
  e.details = doc.value("details", json::object());
  return e;
}

std::string sha256_of_canonical(const json& value) {
  auto canon = provenance::canonical_json(value);
  return canon ? to_hex(provenance::sha256(*canon)) : "";
}

std::string reason_text(const json& reason) {
  return reason.is_string() ? reason.get<std::string>() : reason.dump();
}

Status commit_transition(Store& store, provenance::Log& log, const Clock& clock, Transition& t) {
  auto ids = store.commit(t);  // its events are on their way to open channels (Events)
  if (!ids) return ids.status();
  for (size_t i = 0; i < ids->size(); ++i) {
    Store* s = &store;  // outlives the log (broker.cpp): the callback may run at its close
    auto done = [s, id = (*ids)[i]](Result<provenance::Receipt> r) {
      // A failed append stays in the outbox: the next start-up appends it.
      if (r) (void)s->log_entry_done(id);
    };
    OutboxEntry& entry = t.log_entries[i];
    if (!entry.prepared.text.empty())
      log.append_async(std::move(entry.prepared), std::move(done), kLogMayWait);
    else
      log.append_async(entry_of(entry.text, clock.now()), std::move(done), kLogMayWait);
  }
  return Status::ok();
}

policy::Context measured_values(uint64_t count, int64_t elapsed_seconds) {
  const std::string odrl(policy::kOdrlNs);
  policy::Context values;
  values.set(odrl + "count",
             policy::OperandValue{{policy::Value::infer(std::to_string(count))}, false});
  values.set(odrl + "elapsedTime",
             policy::OperandValue{
                 {policy::Value::infer("PT" + std::to_string(elapsed_seconds) + "S")}, false});
  return values;
}

Verdict evaluate(const policy::Policy& offer, const certs::Identity& consumer,
                 const std::string& dataset, const std::string& purpose, const json& declared,
                 Instant now, const policy::Context* measured) {
  auto request = participant_request(consumer, dataset, purpose, declared);
  if (!request)
    return {false, {"the declared context cannot be read: " + request.status().message()}, {}};
  policy::State state = participant_state(consumer, now);
  if (measured) {
    state.values = *measured;
  } else {
    // At negotiation: as for a first transfer at the moment of agreement.
    state.values = measured_values(1, 0);
  }
  const policy::Decision d = policy::decide(offer, *request, state);
  // A permission's duties are what the agreement will oblige the consumer to do: at the
  // negotiation they are not yet fulfilled, and that is no reason to refuse. So an active
  // permission (its constraints hold) grants, unless an active prohibition forbids; the
  // duties are checked when the data is used (transfers).
  bool permission_active = false, prohibited = false;
  for (const policy::RuleOutcome& rule : d.rules) {
    if (rule.kind == policy::RuleKind::kPermission && rule.active) permission_active = true;
    if (rule.kind == policy::RuleKind::kProhibition && rule.active) prohibited = true;
  }
  const bool permit = d.permit || (permission_active && !prohibited);
  std::vector<std::string> reasons = decision_reasons(d);
  if (permit && !d.permit)
    reasons.insert(reasons.begin(),
                   "granted: a permission's constraints hold; its duties bind the agreement");
  return {permit, std::move(reasons), policy::to_json(d)};
}

}  // namespace dsx::broker
