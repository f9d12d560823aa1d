// Contract negotiation in the broker.
//
// Who plays what. The consumer talks DSP to the broker as if the broker were the provider
// (POST /negotiations/request, .../request, .../events, .../agreement/verification,
// .../termination). The real provider talks to the broker as a DSP consumer would talk to a
// provider's callback (.../offers for a counter-offer, .../termination to refuse) plus one
// route of ours, .../approve, which stands for "send the ContractAgreementMessage": the broker
// builds and signs the agreement itself, so that its content is the offer on the table and
// nothing else. The broker answers the consumer's verification with FINALIZED at once.
//
// The state machine is protocol::next_state (protocol/negotiation.cpp); this file adds what the
// broker knows: who the parties are (from certificates and the stored negotiation, never from
// message bodies), the policy decision, the agreement, the events and the log entries.
//
// Durability. One transaction per transition: the negotiation row, the agreement (if any), the
// events for the parties' channels and the provenance entries (the log's outbox). After the
// commit the entries are appended to the log and dropped from the outbox; recover() appends
// whatever a crash left there. An event is thus never sent for a transition that is not stored,
// and no stored transition misses its log entries.
//
// Idempotency. A ContractRequestMessage whose consumerPid the consumer already used answers
// with that negotiation. Any other message equal (as parsed and re-serialised) to the one that
// made the current state, from the same party, answers with the current state.
//
// Stored `reason`: {"code": "...", "reasons": ["..."]} once terminated, else "".
// Stored `context`: {"declared": {...}, "identity": <the consumer's identity>} so that the
// policy can be evaluated again for the consumer when the provider approves.

#include "broker/negotiations.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <variant>

#include "broker/policy_inputs.h"
#include "broker/transitions.h"
#include "common/hex.h"
#include "common/ids.h"
#include "policy/describe.h"
#include "policy/parser.h"
#include "protocol/negotiation.h"
#include "protocol/negotiation_messages.h"
#include "provenance/canonical_json.h"
#include "provenance/merkle.h"

namespace dsx::broker {

using nlohmann::json;
namespace proto = dsx::protocol;

namespace {

constexpr const char* kError = "ContractNegotiationError";

HttpResponse negotiation_error(int status, const std::string& pid, const std::string& cpid,
                               const std::string& code, const std::vector<std::string>& reasons) {
  proto::ContractNegotiationError e;
  e.provider_pid = pid;
  e.consumer_pid = cpid;
  e.code = std::to_string(status) + ":" + code;
  for (const std::string& r : reasons)
    e.reason.push_back(r);
  HttpResponse response = json_response(status, proto::to_json(e));
  response.error_code = code;
  return response;
}

json negotiation_json(const StoredNegotiation& n) {
  proto::ContractNegotiation cn;
  cn.provider_pid = n.provider_pid;
  cn.consumer_pid = n.consumer_pid;
  cn.state = proto::parse_negotiation_state(n.state).value_or(proto::NegotiationState::kTerminated);
  json j = proto::to_json(cn);
  if (!n.agreement_id.empty()) j["dsx:agreementId"] = n.agreement_id;
  if (!n.reason.empty()) j["dsx:reason"] = parse_or_null(n.reason);
  return j;
}

// The negotiation as listed and as events carry it (make_event writes the same by hand).
json summary(const StoredNegotiation& n) {
  json j = {{"providerPid", n.provider_pid},
            {"consumerPid", n.consumer_pid},
            {"state", n.state},
            {"consumer", n.consumer},
            {"provider", n.provider},
            {"dataset", n.dataset},
            {"offerId", n.catalog_offer},
            {"purpose", n.purpose},
            {"created", format_rfc3339(n.created)},
            {"updated", format_rfc3339(n.updated)}};
  if (!n.agreement_id.empty()) j["agreementId"] = n.agreement_id;
  if (!n.reason.empty()) j["reason"] = parse_or_null(n.reason);
  j["offer"] = parse_or_null(n.offer);
  return j;
}

json agreement_json(const StoredAgreement& a) {
  json j = {{"agreement", parse_or_null(a.body)},
            {"sha256", a.sha256},
            {"signature", parse_or_null(a.signature)},
            {"providerPid", a.provider_pid},
            {"dataset", a.dataset},
            {"provider", a.provider},
            {"consumer", a.consumer},
            {"created", format_rfc3339(a.created)},
            {"state", a.retired ? "retired" : "active"}};
  if (a.retired) {
    j["retiredAt"] = format_rfc3339(a.retired_at);
    j["retiredReason"] = a.retired_reason;
  }
  return j;
}

// A member of a JSON object being written by hand ("name":"value"), after a comma unless first.
void append_member(std::string& out, std::string_view name, std::string_view value) {
  if (out.back() != '{') out += ',';
  out += '"';
  out += name;
  out += "\":";
  if (!provenance::append_canonical_string(value, out))  // not UTF-8: never stored, but safe
    out += json(std::string(value)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// {"message": ..., "negotiation": summary(n), "time": ..., "type": ...} as text, written
// directly: the stored JSON members (the offer, the reason) go in as the broker wrote them, and
// building summary(n) as a JSON value to write it out again was a good part of the broker's time
// (two to four events per transition).
StoredEvent make_event(const std::string& recipient, const std::string& type,
                       const StoredNegotiation& n, Instant now, const json& message = nullptr) {
  std::string body = "{";
  if (!message.is_null()) {
    body += "\"message\":";
    body += message.dump();
  }
  if (body.back() != '{') body += ',';
  body += "\"negotiation\":{";
  if (!n.agreement_id.empty()) append_member(body, "agreementId", n.agreement_id);
  append_member(body, "consumer", n.consumer);
  append_member(body, "consumerPid", n.consumer_pid);
  append_member(body, "created", format_rfc3339(n.created));
  append_member(body, "dataset", n.dataset);
  append_member(body, "offerId", n.catalog_offer);
  append_member(body, "provider", n.provider);
  append_member(body, "providerPid", n.provider_pid);
  append_member(body, "purpose", n.purpose);
  if (!n.reason.empty()) {
    body += ",\"reason\":";
    body += n.reason;  // JSON the broker wrote
  }
  append_member(body, "state", n.state);
  append_member(body, "updated", format_rfc3339(n.updated));
  body += ",\"offer\":";
  body += n.offer.empty() ? std::string_view("null") : std::string_view(n.offer);
  body += '}';
  append_member(body, "time", format_rfc3339(now));
  append_member(body, "type", type);
  body += '}';
  return StoredEvent{0, recipient, std::move(body)};
}

// The extensions of a ContractRequestMessage: dsx:purpose (an IRI) and dsx:context (an object).
std::variant<std::pair<std::string, json>, std::string> request_extensions(const json& doc) {
  std::string purpose;
  json declared = json::object();
  if (auto it = doc.find("dsx:purpose"); it != doc.end()) {
    if (it->is_object() && it->contains("@id")) {
      if (!(*it)["@id"].is_string()) return std::string("dsx:purpose: expected an IRI");
      purpose = (*it)["@id"];
    } else if (it->is_string() && !it->get<std::string>().empty()) {
      purpose = *it;
    } else {
      return std::string("dsx:purpose: expected an IRI (a string)");
    }
  }
  if (auto it = doc.find("dsx:context"); it != doc.end()) {
    if (!it->is_object()) return std::string("dsx:context: expected an object of left operands");
    declared = *it;
  }
  return std::pair<std::string, json>(purpose, declared);
}

// A counter-offer or a consumer's proposal must be an ODRL policy about this dataset.
std::optional<std::string> check_offer(json& offer, const StoredNegotiation& n) {
  if (!offer.is_object()) return "offer: expected an ODRL policy (an object)";
  if (offer.contains("target")) {
    const json& t = offer["target"];
    const std::string target = t.is_string() ? t.get<std::string>() : t.value("@id", "");
    if (target != n.dataset) return "offer.target: must be the negotiated dataset, " + n.dataset;
  } else {
    offer["target"] = n.dataset;
  }
  if (!offer.contains("assigner")) offer["assigner"] = n.provider;
  auto compiled = policy::parse_policy(offer);
  if (!compiled) return "offer." + compiled.status().message();
  return std::nullopt;
}

// The agreement for the offer on the table: the offer's rules, with the parties and the time.
json build_agreement(const json& offer, const StoredNegotiation& n, Instant now) {
  json a = offer;
  a.erase("uid");
  a["@id"] = "urn:uuid:" + time_ordered_uuid();
  a["@type"] = "Agreement";
  a["target"] = n.dataset;
  a["assigner"] = n.provider;
  a["assignee"] = n.consumer;
  a["timestamp"] = format_rfc3339(now);
  // DSP: rules inside an agreement carry no target of their own; the catalog made every rule's
  // target the dataset, which the policy-level target already says.
  for (const char* kind : {"permission", "prohibition", "obligation"}) {
    if (!a.contains(kind)) continue;
    json& rules = a[kind];
    auto strip = [&](json& rule) {
      if (!rule.is_object() || !rule.contains("target")) return;
      const json& t = rule["target"];
      const std::string target = t.is_string() ? t.get<std::string>() : t.value("@id", "");
      if (target == n.dataset) rule.erase("target");
    };
    if (rules.is_array())
      for (json& rule : rules)
        strip(rule);
    else
      strip(rules);
  }
  return a;
}

}  // namespace

Negotiations::Negotiations(const BrokerConfig& config, Store& store, provenance::Log& log,
                           provenance::SigningKey key, const Catalog& catalog, const Clock& clock,
                           std::string broker_id)
    : config_(config),
      store_(store),
      log_(log),
      key_(std::move(key)),
      catalog_(catalog),
      clock_(clock),
      broker_id_(std::move(broker_id)) {}

namespace {

// The canonical bytes of an entry without its seq: equal for the same entry wherever it is.
std::string unnumbered(provenance::Entry e) {
  e.seq = 0;
  auto text = provenance::canonical(e);
  return text ? *text : "";
}

}  // namespace

std::mutex& Negotiations::stripe(const std::string& key) {
  return stripes_[std::hash<std::string>()(key) % stripes_.size()];
}

Status Negotiations::commit(Transition& t) {
  const Status s = commit_transition(store_, log_, clock_, t);
  if (const StoredNegotiation* n = t.negotiation) {
    std::lock_guard lock(cache_mutex_);
    const bool over = n->state == "FINALIZED" || n->state == "TERMINATED";
    if (!s || over)  // a failed commit may have left the row either way: read it next time
      cache_.erase(n->provider_pid);
    else if (auto it = cache_.find(n->provider_pid); it != cache_.end())
      it->second = *n;
    else if (cache_.size() < kCached)
      cache_.emplace(n->provider_pid, *n);
  }
  return s;
}

Result<std::optional<StoredNegotiation>> Negotiations::current(const std::string& provider_pid) {
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(provider_pid); it != cache_.end())
      return std::optional<StoredNegotiation>(it->second);
  }
  return store_.negotiation(provider_pid);
}

Status Negotiations::recover() {
  auto pending = store_.pending_log_entries();
  if (!pending) return pending.status();
  if (!pending->empty()) {
    // A crash between an append and the deletion of its outbox row leaves an entry that is
    // already in the log: those are among the log's newest entries, no older than the oldest
    // pending one (less a margin for clocks that stepped back). Append the others.
    std::vector<provenance::Entry> entries;
    Instant oldest = clock_.now();
    for (const PendingLogEntry& p : *pending) {
      entries.push_back(entry_of(p.entry, clock_.now()));
      oldest = std::min(oldest, entries.back().time);
    }
    const long long cutoff = oldest.to_unix_nanos() - 600LL * 1'000'000'000LL;
    std::unordered_set<std::string> in_log;
    for (uint64_t i = log_.size(); i > 0; --i) {
      auto text = log_.entry_text(i - 1);
      if (!text) return text.status();
      auto e = provenance::parse_entry(*text);
      if (!e) return e.status();
      if (e->time.to_unix_nanos() < cutoff) break;
      in_log.insert(unnumbered(*e));
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      if (!in_log.count(unnumbered(entries[i]))) {
        auto receipt = log_.append(entries[i]);
        if (!receipt) return receipt.status();
      }
      if (Status s = store_.log_entry_done((*pending)[i].id); !s) return s;
    }
  }
  auto expired = expire_idle();
  return expired ? Status::ok() : expired.status();
}

Result<size_t> Negotiations::expire_idle() {
  const Instant now = clock_.now();
  const Instant before = Instant::from_unix_nanos(
      now.to_unix_nanos() -
      static_cast<long long>(config_.negotiation_timeout_seconds) * 1'000'000'000LL);
  auto idle = store_.negotiations_idle_since(before);
  if (!idle) return idle.status();
  size_t expired = 0;
  for (const StoredNegotiation& candidate : *idle) {
    std::lock_guard lock(stripe(candidate.provider_pid));
    auto again = store_.negotiation(candidate.provider_pid);  // a message may have come since
    if (!again) return again.status();
    if (!*again || (*again)->updated != candidate.updated) continue;
    StoredNegotiation n = std::move(**again);
    const std::string reason = "timed out: no message for " +
                               std::to_string(config_.negotiation_timeout_seconds) +
                               " seconds in state " + n.state;
    const std::string was = n.state;
    n.state = "TERMINATED";
    n.reason = json{{"code", "timed-out"}, {"reasons", {reason}}}.dump();
    n.last_message.clear();
    n.last_sender.clear();
    n.updated = now;
    Transition t;
    t.negotiation = &n;
    proto::ContractNegotiationTerminationMessage m{
        n.provider_pid, n.consumer_pid, "timed-out", {reason}};
    t.events.push_back(make_event(n.consumer, "negotiation.terminated", n, now, proto::to_json(m)));
    t.events.push_back(make_event(n.provider, "negotiation.terminated", n, now, proto::to_json(m)));
    t.log_entries.push_back(log_entry(
        now, broker_id_, "negotiation.terminated", {n.provider_pid, n.dataset},
        {{"by", "broker"}, {"code", "timed-out"}, {"previousState", was}, {"reasons", {reason}}}));
    if (Status s = commit(t); !s) return s;
    ++expired;
  }
  return expired;
}

void Negotiations::add_routes(Router& router) {
  const std::vector<std::string> any;
  router.add(
      {"POST",
       "/negotiations/request",
       "negotiations.request",
       {"consumer"},
       kError,
       [this](const HttpRequest& r, const Caller& c, const PathParams&) { return request(r, c); }});
  router.add({"GET", "/negotiations/{pid}", "negotiations.get", any, kError,
              [this](const HttpRequest&, const Caller& c, const PathParams& p) {
                return get(c, p.at("pid"));
              }});
  struct Step {
    const char* path;
    const char* name;
    std::vector<std::string> roles;
  };
  for (const Step& s :
       {Step{"/negotiations/{pid}/request", "request", {"consumer"}},
        Step{"/negotiations/{pid}/events", "events", {}},
        Step{"/negotiations/{pid}/agreement/verification", "verification", {"consumer"}},
        Step{"/negotiations/{pid}/termination", "termination", {}},
        Step{"/negotiations/{pid}/offers", "offers", {"provider"}},
        Step{"/negotiations/{pid}/approve", "approve", {"provider"}}}) {
    const std::string step = s.name;
    router.add({"POST", s.path, "negotiations." + step, s.roles, kError,
                [this, step](const HttpRequest& r, const Caller& c, const PathParams& p) {
                  return receive(r, c, p.at("pid"), step);
                }});
  }
  router.add({"GET", "/management/negotiations", "management.negotiations", any, "Error",
              [this](const HttpRequest&, const Caller& c, const PathParams&) { return list(c); }});
  router.add(
      {"GET", "/management/agreements", "management.agreements", any, "Error",
       [this](const HttpRequest&, const Caller& c, const PathParams&) { return agreements(c); }});
  router.add({"GET", "/management/agreements/{id}", "management.agreement", any, "Error",
              [this](const HttpRequest&, const Caller& c, const PathParams& p) {
                return agreement(c, p.at("id"));
              }});
  router.add({"POST",
              "/management/agreements/{id}/retire",
              "management.agreement.retire",
              {"provider"},
              "Error",
              [this](const HttpRequest& r, const Caller& c, const PathParams& p) {
                return retire(r, c, p.at("id"));
              }});
}

HttpResponse Negotiations::request(const HttpRequest& r, const Caller& c) {
  auto body = parse_json_body(r, kError);
  if (auto* e = std::get_if<HttpResponse>(&body)) return *e;
  const json& doc = std::get<json>(body);
  auto msg = proto::parse_contract_request_message(doc);
  if (!msg) return negotiation_error(400, "", "", "invalid-message", {msg.status().message()});
  const std::string& cpid = msg->consumer_pid;
  if (msg->provider_pid)
    return negotiation_error(400, *msg->provider_pid, cpid, "invalid-message",
                             {"providerPid: a first ContractRequestMessage has none; a "
                              "counter-request goes to POST /negotiations/{providerPid}/request"});
  auto ext = request_extensions(doc);
  if (auto* e = std::get_if<std::string>(&ext))
    return negotiation_error(400, "", cpid, "invalid-message", {*e});
  const auto& [purpose, declared] = std::get<std::pair<std::string, json>>(ext);
  const std::string& me = c.identity.participant_id;

  // Two locks: the stripe of the consumerPid (two requests with one consumerPid must not both
  // create a negotiation) and that of the new providerPid, whose first state the commit puts
  // in the cache: the provider may answer as soon as the commit sends it the event, and its
  // message then waits here until the cache holds that state.
  const std::string provider_pid = "urn:uuid:" + time_ordered_uuid();
  std::mutex& by_consumer = stripe(me + " " + cpid);
  std::mutex& by_provider = stripe(provider_pid);
  std::unique_lock consumer_lock(by_consumer, std::defer_lock);
  std::unique_lock provider_lock(by_provider, std::defer_lock);
  if (&by_consumer == &by_provider)
    consumer_lock.lock();
  else
    std::lock(consumer_lock, provider_lock);  // in either order without deadlock
  auto existing = store_.negotiation_by_consumer_pid(me, cpid);
  if (!existing) return status_response(existing.status(), kError, "store-failed");
  if (*existing) {  // a repeated request: the same answer
    const StoredNegotiation& n = **existing;
    const json reason = parse_or_null(n.reason);
    if (reason.is_object() && reason.value("code", "") == "policy-refused" &&
        n.last_sender == "consumer")
      return negotiation_error(403, n.provider_pid, cpid, "policy-refused",
                               reason.value("reasons", std::vector<std::string>()));
    return json_response(201, negotiation_json(n));
  }

  const json& ref = msg->offer.contains("@id") ? msg->offer["@id"] : msg->offer["uid"];
  const std::string offer_id = ref.is_string() ? ref.get<std::string>() : "";
  auto offer = catalog_.find_offer(offer_id);
  if (!offer)
    return negotiation_error(400, "", cpid, "unknown-offer",
                             {"offer: no offer " + offer_id + " in the catalog"});
  if (offer->provider == me)
    return negotiation_error(
        400, "", cpid, "own-offer",
        {"offer " + offer_id + " is your own: you cannot agree with yourself"});

  const Instant now = clock_.now();
  StoredNegotiation n;
  n.provider_pid = provider_pid;
  n.consumer_pid = cpid;
  n.consumer = me;
  n.provider = offer->provider;
  n.dataset = offer->dataset;
  n.catalog_offer = offer_id;
  n.purpose = purpose;
  n.context = json{{"declared", declared}, {"identity", certs::to_json(c.identity)}}.dump();
  n.created = n.updated = now;
  n.last_sender = "consumer";
  n.last_message = proto::to_json(*msg).dump();
  json on_table = offer->doc;
  // A full offer other than the catalog's is the consumer's proposal: the provider decides.
  const bool proposal = msg->offer.size() > 1 && msg->offer != offer->doc;
  if (proposal) {
    on_table = msg->offer;
    if (auto bad = check_offer(on_table, n))
      return negotiation_error(400, "", cpid, "invalid-message", {*bad});
  }
  n.offer = on_table.dump();

  const Verdict v = evaluate(*offer->policy, c.identity, n.dataset, purpose, declared, now);
  Transition t;
  t.negotiation = &n;
  t.log_entries.push_back(log_entry(now, me, "negotiation.requested",
                                    {n.provider_pid, n.dataset, offer_id},
                                    {{"consumerPid", cpid},
                                     {"provider", n.provider},
                                     {"purpose", purpose},
                                     {"proposal", proposal},
                                     {"offerSha256", sha256_of_canonical(on_table)}}));
  t.log_entries.push_back(log_entry(now, broker_id_, "policy.decided",
                                    {n.provider_pid, offer_id, me},
                                    {{"decision", v.permit ? "permit" : "deny"},
                                     {"reasons", v.reasons},
                                     {"evaluation", v.decision}}));
  if (!v.permit) {
    n.state = "TERMINATED";
    n.reason = json{{"code", "policy-refused"}, {"reasons", v.reasons}}.dump();
    t.log_entries.push_back(
        log_entry(now, broker_id_, "negotiation.terminated", {n.provider_pid, n.dataset},
                  {{"by", "broker"}, {"code", "policy-refused"}, {"reasons", v.reasons}}));
    if (Status s = commit(t); !s) return status_response(s, kError, "store-failed");
    return negotiation_error(403, n.provider_pid, cpid, "policy-refused", v.reasons);
  }
  n.state = "REQUESTED";
  json forwarded = proto::to_json(*msg);
  forwarded["providerPid"] = n.provider_pid;
  if (!purpose.empty()) forwarded["dsx:purpose"] = purpose;
  t.events.push_back(make_event(n.provider, "negotiation.requested", n, now, forwarded));
  if (Status s = commit(t); !s) return status_response(s, kError, "store-failed");
  return json_response(201, negotiation_json(n));
}

HttpResponse Negotiations::get(const Caller& c, const std::string& pid) {
  auto found = store_.negotiation(pid);
  if (!found) return status_response(found.status(), kError, "store-failed");
  const std::string& me = c.identity.participant_id;
  if (!is_party(*found, me))
    return negotiation_error(404, pid, "", "not-found", {"no negotiation " + pid});
  return json_response(200, negotiation_json(**found));
}

HttpResponse Negotiations::receive(const HttpRequest& r, const Caller& c, const std::string& pid,
                                   const std::string& step) {
  json doc = json::object();
  if (step != "approve" || !r.body.empty()) {
    auto body = parse_json_body(r, kError);
    if (auto* e = std::get_if<HttpResponse>(&body)) return *e;
    doc = std::move(std::get<json>(body));
  }
  const std::string& me = c.identity.participant_id;
  std::lock_guard lock(stripe(pid));
  auto found = current(pid);
  if (!found) return status_response(found.status(), kError, "store-failed");
  if (!is_party(*found, me))
    return negotiation_error(404, pid, "", "not-found", {"no negotiation " + pid});
  StoredNegotiation n = std::move(**found);
  const std::string cpid = n.consumer_pid;
  auto refuse = [&](const std::string& reason) {
    return negotiation_error(400, pid, cpid, "invalid-message", {reason});
  };

  // The message, its kind, and the role it needs.
  proto::MessageKind kind = proto::MessageKind::kTermination;
  proto::Role expected = proto::Role::kConsumer;
  std::string message_pid = pid, message_cpid = cpid, message_text;
  std::optional<proto::ContractRequestMessage> counter_request;
  std::optional<proto::ContractOfferMessage> counter_offer;
  std::optional<proto::ContractNegotiationTerminationMessage> termination;
  auto take = [&](auto parsed, auto&& then) -> std::optional<HttpResponse> {
    if (!parsed) return refuse(parsed.status().message());
    message_text = proto::to_json(*parsed).dump();
    then(*parsed);
    return std::nullopt;
  };
  std::optional<HttpResponse> bad;
  if (step == "request") {
    kind = proto::MessageKind::kContractRequest;
    bad = take(proto::parse_contract_request_message(doc), [&](auto& m) {
      message_pid = m.provider_pid.value_or("");
      message_cpid = m.consumer_pid;
      counter_request = m;
    });
  } else if (step == "events") {
    bad = take(proto::parse_contract_negotiation_event_message(doc), [&](auto& m) {
      message_pid = m.provider_pid;
      message_cpid = m.consumer_pid;
      kind = m.event_type == proto::NegotiationEvent::kAccepted
                 ? proto::MessageKind::kAcceptedEvent
                 : proto::MessageKind::kFinalizedEvent;
      expected = m.event_type == proto::NegotiationEvent::kAccepted ? proto::Role::kConsumer
                                                                    : proto::Role::kProvider;
    });
  } else if (step == "verification") {
    kind = proto::MessageKind::kAgreementVerification;
    bad = take(proto::parse_contract_agreement_verification_message(doc), [&](auto& m) {
      message_pid = m.provider_pid;
      message_cpid = m.consumer_pid;
    });
  } else if (step == "termination") {
    kind = proto::MessageKind::kTermination;
    expected = me == n.consumer ? proto::Role::kConsumer : proto::Role::kProvider;
    bad = take(proto::parse_contract_negotiation_termination_message(doc), [&](auto& m) {
      message_pid = m.provider_pid;
      message_cpid = m.consumer_pid;
      termination = m;
    });
  } else if (step == "offers") {
    kind = proto::MessageKind::kContractOffer;
    expected = proto::Role::kProvider;
    bad = take(proto::parse_contract_offer_message(doc), [&](auto& m) {
      message_pid = m.provider_pid;
      message_cpid = m.consumer_pid.value_or(cpid);
      counter_offer = m;
    });
  } else {  // approve
    kind = proto::MessageKind::kContractAgreement;
    expected = proto::Role::kProvider;
    message_text = "approve";
  }
  if (bad) return *bad;
  if (message_pid != pid)
    return refuse("providerPid: " + message_pid + " is not this negotiation (" + pid + ")");
  if (message_cpid != cpid)
    return refuse("consumerPid: " + message_cpid + " is not this negotiation's (" + cpid + ")");

  // The sender's role comes from the certificate and the negotiation, never from the message.
  proto::Role role = me == n.consumer ? proto::Role::kConsumer : proto::Role::kProvider;
  if (n.consumer == n.provider) role = expected;
  if (message_text == n.last_message && n.last_sender == role_name(role))
    return json_response(200, negotiation_json(n));  // a repeat: the same answer
  const auto current = proto::parse_negotiation_state(n.state);
  if (!current)
    return status_response(Status::internal("bad stored state " + n.state), kError, "store-failed");
  auto next = proto::next_state(*current, kind, role);
  if (!next)
    return negotiation_error(400, pid, cpid, "invalid-transition", {next.status().message()});

  const Instant now = clock_.now();
  const std::string was = n.state;
  n.state = std::string(proto::to_string(*next));
  n.last_message = message_text;
  n.last_sender = role_name(role);
  n.updated = now;
  Transition t;
  t.negotiation = &n;
  const std::string other = role == proto::Role::kConsumer ? n.provider : n.consumer;
  std::optional<StoredAgreement> agreement;
  int refused_status = 0;  // a policy refusal: the reply's status
  std::vector<std::string> refused_reasons;

  auto terminate_by_policy = [&](const Verdict& v) {
    n.state = "TERMINATED";
    n.reason = json{{"code", "policy-refused"}, {"reasons", v.reasons}}.dump();
    proto::ContractNegotiationTerminationMessage m{pid, cpid, "policy-refused", {}};
    for (const auto& reason : v.reasons)
      m.reason.push_back(reason);
    t.events.push_back(make_event(n.consumer, "negotiation.terminated", n, now, proto::to_json(m)));
    t.events.push_back(make_event(n.provider, "negotiation.terminated", n, now, proto::to_json(m)));
    t.log_entries.push_back(
        log_entry(now, broker_id_, "negotiation.terminated", {pid, n.dataset},
                  {{"by", "broker"}, {"code", "policy-refused"}, {"reasons", v.reasons}}));
    refused_status = 403;
    refused_reasons = v.reasons;
  };
  auto decision_entry = [&](const Verdict& v, const std::string& subject) {
    t.log_entries.push_back(log_entry(now, broker_id_, "policy.decided", {pid, subject, n.consumer},
                                      {{"decision", v.permit ? "permit" : "deny"},
                                       {"reasons", v.reasons},
                                       {"evaluation", v.decision}}));
  };
  auto stored_context = parse_or_null(n.context);
  auto consumer_identity = [&]() -> Result<certs::Identity> {
    if (!stored_context.is_object()) return Status::internal("negotiation context is not JSON");
    return certs::identity_from_json(stored_context["identity"]);
  };

  switch (kind) {
    case proto::MessageKind::kContractRequest: {  // the consumer's counter-request
      auto ext = request_extensions(doc);
      if (auto* e = std::get_if<std::string>(&ext)) return refuse(*e);
      auto [purpose, declared] = std::get<std::pair<std::string, json>>(ext);
      if (!purpose.empty()) n.purpose = purpose;
      if (!declared.empty()) {
        stored_context["declared"] = declared;
        n.context = stored_context.dump();
      }
      json on_table = counter_request->offer;
      if (on_table.size() > 1) {
        if (auto problem = check_offer(on_table, n)) return refuse(*problem);
        n.offer = on_table.dump();
      }
      auto offer = catalog_.find_offer(n.catalog_offer);
      Verdict v;
      if (!offer)
        v = {false, {"the offer " + n.catalog_offer + " is no longer in the catalog"}, {}};
      else
        v = evaluate(*offer->policy, c.identity, n.dataset, n.purpose,
                     stored_context.value("declared", json::object()), now);
      t.log_entries.push_back(
          log_entry(now, me, "negotiation.requested", {pid, n.dataset, n.catalog_offer},
                    {{"consumerPid", cpid},
                     {"counterRequest", true},
                     {"purpose", n.purpose},
                     {"offerSha256", sha256_of_canonical(parse_or_null(n.offer))}}));
      decision_entry(v, n.catalog_offer);
      if (!v.permit) {
        terminate_by_policy(v);
      } else {
        json forwarded = proto::to_json(*counter_request);
        if (!n.purpose.empty()) forwarded["dsx:purpose"] = n.purpose;
        t.events.push_back(make_event(n.provider, "negotiation.requested", n, now, forwarded));
      }
      break;
    }
    case proto::MessageKind::kContractOffer: {  // the provider's counter-offer
      json offer = counter_offer->offer;
      if (auto problem = check_offer(offer, n)) return refuse(*problem);
      n.offer = offer.dump();
      proto::ContractOfferMessage m = *counter_offer;
      m.consumer_pid = cpid;
      m.offer = offer;
      t.events.push_back(make_event(n.consumer, "negotiation.offered", n, now, proto::to_json(m)));
      t.log_entries.push_back(log_entry(now, me, "negotiation.offered", {pid, n.dataset},
                                        {{"offerSha256", sha256_of_canonical(offer)}}));
      break;
    }
    case proto::MessageKind::kAcceptedEvent:
    case proto::MessageKind::kFinalizedEvent: {
      const bool accepted = kind == proto::MessageKind::kAcceptedEvent;
      const json message = parse_or_null(message_text);
      t.events.push_back(make_event(
          other, accepted ? "negotiation.accepted" : "negotiation.finalized", n, now, message));
      t.log_entries.push_back(log_entry(now, me,
                                        accepted ? "negotiation.accepted" : "negotiation.finalized",
                                        {pid, n.dataset}, json::object()));
      break;
    }
    case proto::MessageKind::kContractAgreement: {  // the provider approves
      auto consumer = consumer_identity();
      if (!consumer) return status_response(consumer.status(), kError, "store-failed");
      const json offer = parse_or_null(n.offer);
      auto compiled = policy::parse_policy(offer);
      Verdict v;
      if (!compiled)
        v = {false,
             {"the offer on the table is not a valid policy: " + compiled.status().message()},
             {}};
      else
        v = evaluate(*compiled, *consumer, n.dataset, n.purpose,
                     stored_context.value("declared", json::object()), now);
      decision_entry(v, n.catalog_offer);
      if (!v.permit) {
        terminate_by_policy(v);
        break;
      }
      const json body = build_agreement(offer, n, now);
      auto canonical = provenance::canonical_json(body);
      if (!canonical) return status_response(canonical.status(), kError, "agreement-failed");
      StoredAgreement a;
      a.id = body["@id"];
      a.provider_pid = pid;
      a.dataset = n.dataset;
      a.provider = n.provider;
      a.consumer = n.consumer;
      a.body = body.dump();
      a.sha256 = to_hex(provenance::sha256(*canonical));
      const json signature = {{"keyId", key_.public_key().key_id()},
                              {"algorithm", "Ed25519"},
                              {"value", to_hex(key_.sign(*canonical))}};
      a.signature = signature.dump();
      a.created = now;
      n.agreement_id = a.id;
      agreement = std::move(a);
      t.agreement = &*agreement;
      proto::ContractAgreementMessage m{pid, cpid, body, std::nullopt};
      json message = proto::to_json(m);
      message["dsx:agreementSha256"] = agreement->sha256;
      message["dsx:signature"] = signature;
      t.events.push_back(make_event(n.consumer, "negotiation.agreed", n, now, message));
      t.log_entries.push_back(log_entry(now, broker_id_, "agreement.signed",
                                        {agreement->id, pid, n.dataset, n.catalog_offer},
                                        {{"sha256", agreement->sha256},
                                         {"keyId", key_.public_key().key_id()},
                                         {"assigner", n.provider},
                                         {"assignee", n.consumer},
                                         {"approvedBy", me}}));
      break;
    }
    case proto::MessageKind::kAgreementVerification: {
      // The consumer verified the agreement: the broker, as the provider's side, finalizes.
      t.log_entries.push_back(
          log_entry(now, me, "agreement.verified", {n.agreement_id, pid}, json::object()));
      auto finalized =
          proto::next_state(*next, proto::MessageKind::kFinalizedEvent, proto::Role::kProvider);
      if (finalized) n.state = std::string(proto::to_string(*finalized));
      proto::ContractNegotiationEventMessage m{pid, cpid, proto::NegotiationEvent::kFinalized};
      t.events.push_back(
          make_event(n.consumer, "negotiation.finalized", n, now, proto::to_json(m)));
      t.events.push_back(
          make_event(n.provider, "negotiation.finalized", n, now, proto::to_json(m)));
      t.log_entries.push_back(log_entry(now, broker_id_, "negotiation.finalized",
                                        {pid, n.agreement_id, n.dataset}, json::object()));
      break;
    }
    case proto::MessageKind::kTermination: {
      std::vector<std::string> reasons;
      for (const json& reason : termination->reason)
        reasons.push_back(reason_text(reason));
      const std::string code = termination->code.value_or("terminated");
      n.reason = json{{"code", code}, {"reasons", reasons}}.dump();
      t.events.push_back(
          make_event(other, "negotiation.terminated", n, now, proto::to_json(*termination)));
      t.log_entries.push_back(log_entry(
          now, me, "negotiation.terminated", {pid, n.dataset},
          {{"by", role_name(role)}, {"code", code}, {"previousState", was}, {"reasons", reasons}}));
      break;
    }
  }
  if (Status s = commit(t); !s) return status_response(s, kError, "store-failed");
  if (refused_status)
    return negotiation_error(refused_status, pid, cpid, "policy-refused", refused_reasons);
  return json_response(200, negotiation_json(n));
}

HttpResponse Negotiations::list(const Caller& c) {
  auto all = store_.negotiations_of(c.identity.participant_id);
  if (!all) return status_response(all.status(), "Error", "store-failed");
  json out = json::array();
  for (const StoredNegotiation& n : *all)
    out.push_back(summary(n));
  return json_response(200, {{"negotiations", std::move(out)}});
}

json Negotiations::agreement_view(const StoredAgreement& a) {
  json j = agreement_json(a);
  if (auto n = store_.negotiation(a.provider_pid); n && *n) {
    j["consumerPid"] = (*n)->consumer_pid;
    j["negotiationState"] = (*n)->state;
  }
  return j;
}

HttpResponse Negotiations::agreements(const Caller& c) {
  auto all = store_.agreements_of(c.identity.participant_id);
  if (!all) return status_response(all.status(), "Error", "store-failed");
  json out = json::array();
  for (const StoredAgreement& a : *all)
    out.push_back(agreement_view(a));
  return json_response(200, {{"agreements", std::move(out)}});
}

HttpResponse Negotiations::agreement(const Caller& c, const std::string& id) {
  auto found = store_.agreement(id);
  if (!found) return status_response(found.status(), "Error", "store-failed");
  const std::string& me = c.identity.participant_id;
  if (!is_party(*found, me))
    return error_response(404, "Error", "not-found", {"no agreement " + id});
  return json_response(200, agreement_view(**found));
}

HttpResponse Negotiations::retire(const HttpRequest& r, const Caller& c, const std::string& id) {
  auto body = parse_json_body(r, "Error");
  if (auto* e = std::get_if<HttpResponse>(&body)) return *e;
  const json& doc = std::get<json>(body);
  if (!doc.is_object() || !doc.contains("reason") || !doc["reason"].is_string() ||
      doc["reason"].get<std::string>().empty())
    return error_response(400, "Error", "invalid-request",
                          {"reason: required, a non-empty string saying why"});
  const std::string reason = doc["reason"];
  const std::string& me = c.identity.participant_id;
  auto first = store_.agreement(id);  // for its negotiation, whose lock guards it too
  if (!first) return status_response(first.status(), "Error", "store-failed");
  if (!is_party(*first, me))
    return error_response(404, "Error", "not-found", {"no agreement " + id});
  std::lock_guard lock(stripe((*first)->provider_pid));
  auto found = store_.agreement(id);
  if (!found) return status_response(found.status(), "Error", "store-failed");
  if (!is_party(*found, me))
    return error_response(404, "Error", "not-found", {"no agreement " + id});
  StoredAgreement a = std::move(**found);
  if (a.provider != me)
    return error_response(
        403, "Error", "forbidden",
        {"only the provider of agreement " + id + " (" + a.provider + ") can retire it"});
  if (a.retired) return json_response(200, agreement_json(a));  // already: the same answer
  const Instant now = clock_.now();
  a.retired = true;
  a.retired_reason = reason;
  a.retired_at = now;
  Transition t;
  t.agreement = &a;
  json event = {{"type", "agreement.retired"},
                {"time", format_rfc3339(now)},
                {"agreement", agreement_json(a)}};
  t.events.push_back(StoredEvent{0, a.consumer, event.dump()});
  t.log_entries.push_back(log_entry(now, me, "agreement.retired", {a.id, a.provider_pid, a.dataset},
                                    {{"reason", reason}, {"sha256", a.sha256}}));
  if (Status s = commit(t); !s) return status_response(s, "Error", "store-failed");
  return json_response(200, agreement_json(a));
}

}  // namespace dsx::broker
