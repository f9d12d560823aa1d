// The transfer process in the broker (the control plane; the bytes go through broker/relay.h).
//
// Who plays what. As for negotiations, the consumer talks DSP to the broker as if the broker were
// the provider (POST /transfers/request, .../start to resume, .../suspension, .../completion,
// .../termination), and the real provider talks to the broker as a DSP consumer would talk to a
// provider's callback (.../start, .../suspension, .../termination). The sender's role comes from
// its certificate and the stored transfer, never from the message. protocol::next_state decides
// every transition; this file adds the agreement, the policy at transfer time, the consumer's
// encryption key, the receipt, the events and the log entries.
//
// Policy at transfer time. At a request and at every resume the agreement's policy is evaluated
// again, now, for the consumer (its identity as the negotiation recorded it, or its current
// certificate when it is the caller), with the purpose and context it declared at negotiation,
// and two values only the broker knows: count (COMPLETED transfers under the agreement, plus
// this one) and elapsedTime (since the agreement's timestamp). A retired agreement, or one whose
// negotiation is not FINALIZED, refuses. expire() applies the same test to STARTED transfers, so
// a closed dateTime window ends them (policy-expired).
//
// Durability and idempotency: exactly as in negotiations.cpp. One Transition per change (the
// transfer row, the events, the log entries); a message equal to the one that made the current
// state, from the same party, answers with the current state; a TransferRequestMessage whose
// consumerPid the consumer already used answers as the first one did (201, or the same 403).
//
// Stored `reason`: {"code", "reasons"} for a suspension or termination, plus "refused": true
// when the broker refused the request itself (so that a repeat gets the same 403).
// Stored `receipt`: {"document", "signature", "certificate"}: the consumer's signed manifest and
// the certificate PEM that verified it. Stored `manifest`: the provider's signed manifest (JSON
// text, as the relay passed it).

#include "broker/transfers.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <variant>

#include "broker/transitions.h"
#include "certs/signature.h"
#include "common/hex.h"
#include "common/ids.h"
#include "policy/parser.h"
#include "protocol/stream_documents.h"
#include "protocol/transfer.h"
#include "protocol/transfer_messages.h"
#include "provenance/merkle.h"

namespace dsx::broker {

using nlohmann::json;
namespace proto = dsx::protocol;

namespace {

constexpr const char* kError = "TransferError";
constexpr const char* kFormat = "dsx-stream-v1";

HttpResponse transfer_error(int status, const std::string& pid, const std::string& cpid,
                            const std::string& code, const std::vector<std::string>& reasons) {
  proto::TransferError e;
  e.provider_pid = pid;
  e.consumer_pid = cpid;
  e.code = std::to_string(status) + ":" + code;
  for (const std::string& r : reasons)
    e.reason.push_back(r);
  HttpResponse response = json_response(status, proto::to_json(e));
  response.error_code = code;
  return response;
}

std::string sha256_hex(std::string_view text) {
  return to_hex(provenance::sha256(text));
}

// The transfer as events and the management list show it.
json summary(const StoredTransfer& x) {
  json j = {{"providerPid", x.provider_pid},
            {"consumerPid", x.consumer_pid},
            {"state", x.state},
            {"agreementId", x.agreement_id},
            {"dataset", x.dataset},
            {"consumer", x.consumer},
            {"provider", x.provider},
            {"fromChunk", x.from_chunk},
            {"created", format_rfc3339(x.created)},
            {"updated", format_rfc3339(x.updated)}};
  if (!x.reason.empty()) j["reason"] = parse_or_null(x.reason);
  return j;
}

// The TransferProcess with the broker's extras (docs/api.md).
json process_json(const StoredTransfer& x) {
  proto::TransferProcess p;
  p.provider_pid = x.provider_pid;
  p.consumer_pid = x.consumer_pid;
  p.state = proto::parse_transfer_state(x.state).value_or(proto::TransferState::kTerminated);
  json j = proto::to_json(p);
  j["dsx:agreementId"] = x.agreement_id;
  j["dsx:dataset"] = x.dataset;
  j["dsx:consumer"] = x.consumer;
  j["dsx:provider"] = x.provider;
  j["dsx:format"] = kFormat;
  j["dsx:fromChunk"] = x.from_chunk;
  if (!x.reason.empty()) j["dsx:reason"] = parse_or_null(x.reason);
  if (!x.relayed_sha256.empty()) j["dsx:relayedSha256"] = x.relayed_sha256;
  if (!x.manifest.empty()) j["dsx:manifest"] = parse_or_null(x.manifest);
  if (!x.receipt.empty()) j["dsx:receipt"] = parse_or_null(x.receipt);
  return j;
}

// A registered key as the key route and the events carry it: the signed binding and the
// certificate that signed it, so that a provider can check it without asking anyone.
json key_json(const StoredEncryptionKey& k) {
  return {{"participant", k.participant},
          {"document", k.binding_text},
          {"signature", parse_or_null(k.signature)},
          {"certificate", k.certificate_pem},
          {"created", format_rfc3339(k.created)}};
}

StoredEvent make_event(const std::string& recipient, const std::string& type,
                       const StoredTransfer& x, Instant now, json message = nullptr,
                       const StoredEncryptionKey* key = nullptr) {
  json body = {{"type", type}, {"time", format_rfc3339(now)}, {"transfer", summary(x)}};
  if (!message.is_null()) body["message"] = std::move(message);
  if (key) body["encryptionKey"] = key_json(*key);
  return StoredEvent{0, recipient, body.dump()};
}

// The optional dsx:fromChunk of a start (resume) or suspension message: the first chunk the
// consumer has not verified. An error names the member.
std::variant<std::optional<uint64_t>, std::string> from_chunk_of(const json& doc) {
  auto it = doc.find("dsx:fromChunk");
  if (it == doc.end()) return std::optional<uint64_t>();
  if (!it->is_number_unsigned()) return std::string("dsx:fromChunk: expected a chunk index (>= 0)");
  return std::optional<uint64_t>(it->get<uint64_t>());
}

// What the policy needs about the consumer besides its identity: the purpose and context it
// declared when it negotiated the agreement, and the identity recorded then.
struct NegotiatedContext {
  std::string state;  // the negotiation's
  std::string purpose;
  json declared = json::object();
  std::optional<certs::Identity> identity;
};

Result<NegotiatedContext> negotiated_context(Store& store, const StoredAgreement& a) {
  auto n = store.negotiation(a.provider_pid);
  if (!n) return n.status();
  NegotiatedContext out;
  if (!*n) return out;
  out.state = (*n)->state;
  out.purpose = (*n)->purpose;
  const json context = parse_or_null((*n)->context);
  if (context.is_object()) {
    if (context.contains("declared") && context["declared"].is_object())
      out.declared = context["declared"];
    if (context.contains("identity")) {
      auto id = certs::identity_from_json(context["identity"]);
      if (id) out.identity = std::move(*id);
    }
  }
  return out;
}

// The agreement's policy for its consumer now. `consumer`: the consumer's identity when it is
// the caller (its current certificate), else the one the negotiation recorded is used.
// `details` receives the values the broker supplied, for the log.
Result<Verdict> decide_now(Store& store, const StoredAgreement& a, const certs::Identity* consumer,
                           Instant now, json& details) {
  if (a.retired)
    return Verdict{false,
                   {"agreement " + a.id + " was retired at " + format_rfc3339(a.retired_at) + ": " +
                    a.retired_reason},
                   {}};
  auto context = negotiated_context(store, a);
  if (!context) return context.status();
  if (context->state != "FINALIZED")
    return Verdict{
        false,
        {"agreement " + a.id + " is not in force: its negotiation is " +
         (context->state.empty() ? std::string("missing") : context->state) + ", not FINALIZED"},
        {}};
  if (!consumer && context->identity) consumer = &*context->identity;
  if (!consumer)
    return Status::internal("the negotiation of agreement " + a.id + " recorded no consumer");
  const json body = parse_or_null(a.body);
  auto compiled = policy::parse_policy(body);
  if (!compiled)
    return Verdict{
        false, {"the agreement is not a valid policy: " + compiled.status().message()}, {}};
  auto completed = store.count_completed(a.id);
  if (!completed) return completed.status();
  Instant signed_at = a.created;
  if (body.is_object() && body.contains("timestamp") && body["timestamp"].is_string())
    signed_at = parse_xsd_date_time(body["timestamp"].get<std::string>()).value_or(a.created);
  const long long elapsed =
      std::max(0LL, (now.to_unix_nanos() - signed_at.to_unix_nanos()) / 1'000'000'000LL);
  const policy::Context measured = measured_values(*completed + 1, elapsed);
  details["count"] = *completed + 1;
  details["elapsedTime"] = "PT" + std::to_string(elapsed) + "S";
  return evaluate(*compiled, *consumer, a.dataset, context->purpose, context->declared, now,
                  &measured);
}

}  // namespace

Transfers::Transfers(const BrokerConfig& config, Store& store, provenance::Log& log,
                     const Clock& clock, std::string broker_id)
    : config_(config), store_(store), log_(log), clock_(clock), broker_id_(std::move(broker_id)) {}

Transfers::~Transfers() = default;

std::mutex& Transfers::stripe(const std::string& key) {
  return stripes_[std::hash<std::string>()(key) % stripes_.size()];
}

Status Transfers::commit(Transition& t) {
  return commit_transition(store_, log_, clock_, t);
}

Status Transfers::recover() {
  // The log's outbox is shared with negotiations, whose recover() replays it.
  auto expired = expire();
  return expired ? Status::ok() : expired.status();
}

void Transfers::add_routes(Router& router) {
  const std::vector<std::string> any;
  router.add(
      {"PUT",
       "/management/keys/encryption",
       "management.keys.put",
       {"consumer"},
       "Error",
       [this](const HttpRequest& r, const Caller& c, const PathParams&) { return put_key(r, c); }});
  router.add({"GET", "/management/keys/encryption/{participant}", "management.keys.get", any,
              "Error", [this](const HttpRequest&, const Caller&, const PathParams& p) {
                return get_key(p.at("participant"));
              }});
  router.add(
      {"POST",
       "/transfers/request",
       "transfers.request",
       {"consumer"},
       kError,
       [this](const HttpRequest& r, const Caller& c, const PathParams&) { return request(r, c); }});
  router.add({"GET", "/transfers/{pid}", "transfers.get", any, kError,
              [this](const HttpRequest&, const Caller& c, const PathParams& p) {
                return get(c, p.at("pid"));
              }});
  struct Step {
    const char* path;
    const char* name;
    std::vector<std::string> roles;
  };
  for (const Step& s : {Step{"/transfers/{pid}/start", "start", {}},
                        Step{"/transfers/{pid}/suspension", "suspension", {}},
                        Step{"/transfers/{pid}/completion", "completion", {"consumer"}},
                        Step{"/transfers/{pid}/termination", "termination", {}}}) {
    const std::string step = s.name;
    router.add({"POST", s.path, "transfers." + step, s.roles, kError,
                [this, step](const HttpRequest& r, const Caller& c, const PathParams& p) {
                  return receive(r, c, p.at("pid"), step);
                }});
  }
  router.add({"GET", "/management/transfers", "management.transfers", any, "Error",
              [this](const HttpRequest&, const Caller& c, const PathParams&) { return list(c); }});
}

HttpResponse Transfers::put_key(const HttpRequest& r, const Caller& c) {
  auto body = parse_json_body(r, "Error");
  if (auto* e = std::get_if<HttpResponse>(&body)) return *e;
  const json& doc = std::get<json>(body);
  auto refuse = [](const std::string& reason) {
    return error_response(400, "Error", "invalid-key-binding", {reason});
  };
  auto signed_text = certs::parse_signed_document(doc);
  if (!signed_text) return refuse(signed_text.status().message());
  if (c.certificate_pem.empty())
    return status_response(Status::internal("the caller's certificate is not available"), "Error",
                           "internal");
  if (Status s = certs::verify_text(c.certificate_pem, signed_text->text, signed_text->signature);
      !s)
    return refuse("the key binding is not signed by your certificate's key: " + s.message());
  auto binding = proto::parse_key_binding(signed_text->text);
  if (!binding) return refuse("document: " + binding.status().message());
  const std::string& me = c.identity.participant_id;
  if (binding->participant != me)
    return refuse("document.participant: " + binding->participant +
                  " is not you (your certificate is " + me + ")");
  if (to_hex(binding->certificate_sha256) != c.identity.fingerprint_sha256_hex)
    return refuse("document.certificateSha256: " + to_hex(binding->certificate_sha256) +
                  " is not your certificate (" + c.identity.fingerprint_sha256_hex + ")");

  std::lock_guard lock(stripe("key " + me));
  auto existing = store_.encryption_key(me);
  if (!existing) return status_response(existing.status(), "Error", "store-failed");
  if (*existing && (*existing)->binding_text == signed_text->text &&
      (*existing)->certificate_pem == c.certificate_pem)
    return json_response(200, key_json(**existing));  // a repeat: the same answer
  const Instant now = clock_.now();
  StoredEncryptionKey k{me, signed_text->text, certs::to_json(signed_text->signature).dump(),
                        c.certificate_pem, now};
  Transition t;
  t.encryption_key = &k;
  t.log_entries.push_back(
      log_entry(now, me, "key.registered", {me},
                {{"bindingSha256", sha256_hex(k.binding_text)},
                 {"certificateSha256", c.identity.fingerprint_sha256_hex},
                 {"algorithm", signed_text->signature.algorithm},
                 {"replaces", *existing ? sha256_hex((*existing)->binding_text) : ""}}));
  if (Status s = commit(t); !s) return status_response(s, "Error", "store-failed");
  return json_response(200, key_json(k));
}

HttpResponse Transfers::get_key(const std::string& participant) {
  auto found = store_.encryption_key(participant);
  if (!found) return status_response(found.status(), "Error", "store-failed");
  if (!*found)
    return error_response(404, "Error", "not-found",
                          {participant + " has registered no encryption key"});
  return json_response(200, key_json(**found));
}

HttpResponse Transfers::request(const HttpRequest& r, const Caller& c) {
  auto body = parse_json_body(r, kError);
  if (auto* e = std::get_if<HttpResponse>(&body)) return *e;
  const json& doc = std::get<json>(body);
  auto msg = proto::parse_transfer_request_message(doc);
  if (!msg) return transfer_error(400, "", "", "invalid-message", {msg.status().message()});
  const std::string& cpid = msg->consumer_pid;
  if (msg->format != kFormat)
    return transfer_error(400, "", cpid, "invalid-message",
                          {"format: " + msg->format + " is not served; the broker relays " +
                           kFormat + " (docs/stream-format.md)"});
  const std::string& me = c.identity.participant_id;

  std::lock_guard lock(stripe(me + " " + cpid));
  auto existing = store_.transfer_by_consumer_pid(me, cpid);
  if (!existing) return status_response(existing.status(), kError, "store-failed");
  if (*existing) {  // a repeated request: the same answer
    const StoredTransfer& x = **existing;
    const json reason = parse_or_null(x.reason);
    if (reason.is_object() && reason.value("refused", false))
      return transfer_error(403, x.provider_pid, cpid, reason.value("code", "policy-refused"),
                            reason.value("reasons", std::vector<std::string>()));
    return json_response(201, process_json(x));
  }

  auto agreement = store_.agreement(msg->agreement_id);
  if (!agreement) return status_response(agreement.status(), kError, "store-failed");
  if (!*agreement || (*agreement)->consumer != me)
    return transfer_error(
        400, "", cpid, "unknown-agreement",
        {"agreementId: you hold no agreement " + msg->agreement_id + " as its consumer"});
  const StoredAgreement& a = **agreement;
  auto key = store_.encryption_key(me);
  if (!key) return status_response(key.status(), kError, "store-failed");
  if (!*key)
    return transfer_error(400, "", cpid, "no-encryption-key",
                          {"register your encryption key first (PUT /management/keys/encryption):"
                           " the provider seals the dataset for it"});
  auto binding = proto::parse_key_binding((*key)->binding_text);
  if (!binding || to_hex(binding->certificate_sha256) != c.identity.fingerprint_sha256_hex)
    return transfer_error(400, "", cpid, "no-encryption-key",
                          {"your registered encryption key is bound to another certificate than "
                           "the one you call with: register it again "
                           "(PUT /management/keys/encryption)"});

  const Instant now = clock_.now();
  StoredTransfer x;
  x.provider_pid = "urn:uuid:" + time_ordered_uuid();
  x.consumer_pid = cpid;
  x.consumer = me;
  x.provider = a.provider;
  x.agreement_id = a.id;
  x.dataset = a.dataset;
  x.last_sender = "consumer";
  x.last_message = proto::to_json(*msg).dump();
  x.created = x.updated = now;

  json supplied = json::object();
  auto verdict = decide_now(store_, a, &c.identity, now, supplied);
  if (!verdict) return status_response(verdict.status(), kError, "store-failed");
  const Verdict& v = *verdict;
  Transition t;
  t.transfer = &x;
  t.log_entries.push_back(log_entry(now, me, "transfer.requested",
                                    {x.provider_pid, a.id, x.dataset},
                                    {{"consumerPid", cpid},
                                     {"provider", x.provider},
                                     {"format", msg->format},
                                     {"keyBindingSha256", sha256_hex((*key)->binding_text)}}));
  t.log_entries.push_back(log_entry(now, broker_id_, "policy.decided", {x.provider_pid, a.id, me},
                                    {{"decision", v.permit ? "permit" : "deny"},
                                     {"reasons", v.reasons},
                                     {"supplied", supplied},
                                     {"evaluation", v.decision}}));
  if (!v.permit) {
    x.state = "TERMINATED";
    x.reason = json{{"code", "policy-refused"}, {"reasons", v.reasons}, {"refused", true}}.dump();
    t.log_entries.push_back(
        log_entry(now, broker_id_, "transfer.terminated", {x.provider_pid, a.id, x.dataset},
                  {{"by", "broker"}, {"code", "policy-refused"}, {"reasons", v.reasons}}));
    if (Status s = commit(t); !s) return status_response(s, kError, "store-failed");
    return transfer_error(403, x.provider_pid, cpid, "policy-refused", v.reasons);
  }
  x.state = "REQUESTED";
  json forwarded = proto::to_json(*msg);
  forwarded["providerPid"] = x.provider_pid;
  t.events.push_back(make_event(x.provider, "transfer.requested", x, now, forwarded, &**key));
  if (Status s = commit(t); !s) return status_response(s, kError, "store-failed");
  return json_response(201, process_json(x));
}

HttpResponse Transfers::get(const Caller& c, const std::string& pid) {
  auto found = store_.transfer(pid);
  if (!found) return status_response(found.status(), kError, "store-failed");
  if (!is_party(*found, c.identity.participant_id))
    return transfer_error(404, pid, "", "not-found", {"no transfer " + pid});
  return json_response(200, process_json(**found));
}

HttpResponse Transfers::receive(const HttpRequest& r, const Caller& c, const std::string& pid,
                                const std::string& step) {
  auto body = parse_json_body(r, kError);
  if (auto* e = std::get_if<HttpResponse>(&body)) return *e;
  const json doc = std::move(std::get<json>(body));
  const std::string& me = c.identity.participant_id;
  std::lock_guard lock(stripe(pid));
  auto found = store_.transfer(pid);
  if (!found) return status_response(found.status(), kError, "store-failed");
  if (!is_party(*found, me))
    return transfer_error(404, pid, "", "not-found", {"no transfer " + pid});
  StoredTransfer x = std::move(**found);
  const std::string cpid = x.consumer_pid;
  auto refuse = [&](const std::string& reason) {
    return transfer_error(400, pid, cpid, "invalid-message", {reason});
  };

  // The message, its kind, and what it carries besides.
  proto::TransferMessageKind kind = proto::TransferMessageKind::kTermination;
  std::string message_pid, message_cpid;
  json message;  // as parsed and written back: what a repeat is compared with
  std::optional<std::string> code;
  std::vector<std::string> reasons;
  auto take = [&](auto parsed) -> std::optional<HttpResponse> {
    if (!parsed) return refuse(parsed.status().message());
    message_pid = parsed->provider_pid;
    message_cpid = parsed->consumer_pid;
    message = proto::to_json(*parsed);
    if constexpr (requires { parsed->reason; }) {
      code = parsed->code;
      for (const json& reason : parsed->reason)
        reasons.push_back(reason_text(reason));
    }
    return std::nullopt;
  };
  std::optional<HttpResponse> bad;
  if (step == "start") {
    kind = proto::TransferMessageKind::kStart;
    bad = take(proto::parse_transfer_start_message(doc));
  } else if (step == "suspension") {
    kind = proto::TransferMessageKind::kSuspension;
    bad = take(proto::parse_transfer_suspension_message(doc));
  } else if (step == "completion") {
    kind = proto::TransferMessageKind::kCompletion;
    bad = take(proto::parse_transfer_completion_message(doc));
  } else {
    bad = take(proto::parse_transfer_termination_message(doc));
  }
  if (bad) return *bad;
  if (message_pid != pid)
    return refuse("providerPid: " + message_pid + " is not this transfer (" + pid + ")");
  if (message_cpid != cpid)
    return refuse("consumerPid: " + message_cpid + " is not this transfer's (" + cpid + ")");
  auto chunk = from_chunk_of(doc);
  if (auto* e = std::get_if<std::string>(&chunk)) return refuse(*e);
  const std::optional<uint64_t> from_chunk = std::get<std::optional<uint64_t>>(chunk);
  if (from_chunk) message["dsx:fromChunk"] = *from_chunk;
  if (doc.contains("dsx:receipt")) message["dsx:receipt"] = doc["dsx:receipt"];

  const proto::Role role = me == x.consumer ? proto::Role::kConsumer : proto::Role::kProvider;
  const std::string message_text = message.dump();
  if (message_text == x.last_message && x.last_sender == role_name(role))
    return json_response(200, process_json(x));  // a repeat: the same answer
  const auto current = proto::parse_transfer_state(x.state);
  if (!current)
    return status_response(Status::internal("bad stored state " + x.state), kError, "store-failed");
  auto next = proto::next_state(*current, kind, role);
  if (!next) return transfer_error(400, pid, cpid, "invalid-transition", {next.status().message()});
  if (kind == proto::TransferMessageKind::kCompletion && role != proto::Role::kConsumer)
    return transfer_error(400, pid, cpid, "invalid-transition",
                          {"TransferCompletionMessage from the provider: in dsx the consumer "
                           "completes a transfer, with its signed receipt (dsx:receipt)"});

  const Instant now = clock_.now();
  const std::string was = x.state;
  x.state = std::string(proto::to_string(*next));
  x.last_message = message_text;
  x.last_sender = role_name(role);
  x.updated = now;
  const std::string other = role == proto::Role::kConsumer ? x.provider : x.consumer;
  const std::vector<std::string> subjects = {pid, x.agreement_id, x.dataset};
  Transition t;
  t.transfer = &x;
  std::optional<HttpResponse> refused;  // a policy refusal at resume: the reply

  switch (kind) {
    case proto::TransferMessageKind::kStart: {
      if (*current == proto::TransferState::kRequested) {  // the provider starts
        t.events.push_back(make_event(x.consumer, "transfer.started", x, now, message));
        t.log_entries.push_back(log_entry(now, me, "transfer.started", subjects,
                                          {{"resumed", false}, {"fromChunk", x.from_chunk}}));
        break;
      }
      // A resume: the policy must still hold.
      auto agreement = store_.agreement(x.agreement_id);
      if (!agreement) return status_response(agreement.status(), kError, "store-failed");
      if (!*agreement)
        return status_response(Status::internal("transfer " + pid + " has no agreement"), kError,
                               "store-failed");
      json supplied = json::object();
      auto verdict =
          decide_now(store_, **agreement, role == proto::Role::kConsumer ? &c.identity : nullptr,
                     now, supplied);
      if (!verdict) return status_response(verdict.status(), kError, "store-failed");
      t.log_entries.push_back(log_entry(now, broker_id_, "policy.decided",
                                        {pid, x.agreement_id, x.consumer},
                                        {{"decision", verdict->permit ? "permit" : "deny"},
                                         {"reasons", verdict->reasons},
                                         {"supplied", supplied},
                                         {"evaluation", verdict->decision}}));
      if (!verdict->permit) {
        x.state = "TERMINATED";
        x.reason = json{{"code", "policy-refused"}, {"reasons", verdict->reasons}}.dump();
        proto::TransferTerminationMessage m{pid, cpid, "policy-refused", {}};
        for (const std::string& reason : verdict->reasons)
          m.reason.push_back(reason);
        t.events.push_back(
            make_event(x.consumer, "transfer.terminated", x, now, proto::to_json(m)));
        t.events.push_back(
            make_event(x.provider, "transfer.terminated", x, now, proto::to_json(m)));
        t.log_entries.push_back(log_entry(now, broker_id_, "transfer.terminated", subjects,
                                          {{"by", "broker"},
                                           {"code", "policy-refused"},
                                           {"previousState", was},
                                           {"reasons", verdict->reasons}}));
        refused = transfer_error(403, pid, cpid, "policy-refused", verdict->reasons);
        break;
      }
      auto key = store_.encryption_key(x.consumer);
      if (!key) return status_response(key.status(), kError, "store-failed");
      if (from_chunk) x.from_chunk = *from_chunk;
      x.reason.clear();
      t.events.push_back(
          make_event(x.provider, "transfer.resumed", x, now, message, *key ? &**key : nullptr));
      t.events.push_back(make_event(x.consumer, "transfer.started", x, now, message));
      t.log_entries.push_back(log_entry(now, me, "transfer.started", subjects,
                                        {{"resumed", true}, {"fromChunk", x.from_chunk}}));
      break;
    }
    case proto::TransferMessageKind::kSuspension: {
      if (from_chunk) x.from_chunk = *from_chunk;
      x.reason = json{{"code", code.value_or("suspended")}, {"reasons", reasons}}.dump();
      t.events.push_back(make_event(other, "transfer.suspended", x, now, message));
      t.log_entries.push_back(log_entry(now, me, "transfer.suspended", subjects,
                                        {{"by", role_name(role)},
                                         {"code", code.value_or("suspended")},
                                         {"reasons", reasons},
                                         {"fromChunk", x.from_chunk}}));
      break;
    }
    case proto::TransferMessageKind::kCompletion: {
      if (!doc.contains("dsx:receipt"))
        return refuse(
            "dsx:receipt: missing; the consumer completes a transfer with the stream manifest it "
            "verified, signed with its certificate's key");
      auto receipt = certs::parse_signed_document(doc["dsx:receipt"]);
      if (!receipt) return refuse("dsx:receipt." + receipt.status().message());
      if (Status s = certs::verify_text(c.certificate_pem, receipt->text, receipt->signature); !s)
        return refuse("dsx:receipt: not signed by your certificate's key: " + s.message());
      auto manifest = proto::parse_stream_manifest(receipt->text);
      if (!manifest) return refuse("dsx:receipt.document: " + manifest.status().message());
      if (manifest->transfer_id != pid)
        return refuse("dsx:receipt.document.transferId: " + manifest->transfer_id +
                      " is not this transfer (" + pid + ")");
      if (manifest->agreement_id != x.agreement_id)
        return refuse("dsx:receipt.document.agreementId: " + manifest->agreement_id +
                      " is not this transfer's agreement (" + x.agreement_id + ")");
      if (manifest->dataset_id != x.dataset)
        return refuse("dsx:receipt.document.datasetId: " + manifest->dataset_id +
                      " is not this transfer's dataset (" + x.dataset + ")");
      json stored = certs::signed_document(receipt->text, receipt->signature);
      stored["certificate"] = c.certificate_pem;
      x.receipt = stored.dump();
      std::string manifest_sha256;
      const json provider_manifest = parse_or_null(x.manifest);
      if (auto signed_manifest = certs::parse_signed_document(provider_manifest))
        manifest_sha256 = sha256_hex(signed_manifest->text);
      const std::string ciphertext = to_hex(manifest->ciphertext_sha256);
      t.events.push_back(make_event(x.provider, "transfer.completed", x, now, message));
      t.log_entries.push_back(
          log_entry(now, me, "transfer.completed", subjects,
                    {{"receiptSha256", sha256_hex(receipt->text)},
                     {"receiptCertificateSha256", receipt->signature.certificate_sha256},
                     {"manifestSha256", manifest_sha256},
                     {"receiptMatchesManifest",
                      !manifest_sha256.empty() && manifest_sha256 == sha256_hex(receipt->text)},
                     {"ciphertextSha256", ciphertext},
                     {"plaintextSha256", to_hex(manifest->plaintext_sha256)},
                     {"plaintextSize", manifest->plaintext_size},
                     {"relayedSha256", x.relayed_sha256}}));
      break;
    }
    case proto::TransferMessageKind::kTermination: {
      x.reason = json{{"code", code.value_or("terminated")}, {"reasons", reasons}}.dump();
      t.events.push_back(make_event(other, "transfer.terminated", x, now, message));
      t.log_entries.push_back(log_entry(now, me, "transfer.terminated", subjects,
                                        {{"by", role_name(role)},
                                         {"code", code.value_or("terminated")},
                                         {"previousState", was},
                                         {"reasons", reasons}}));
      break;
    }
    case proto::TransferMessageKind::kRequest:
      break;  // not a route of its own
  }
  if (Status s = commit(t); !s) return status_response(s, kError, "store-failed");
  if (refused) return *refused;
  return json_response(200, process_json(x));
}

HttpResponse Transfers::list(const Caller& c) {
  auto all = store_.transfers_of(c.identity.participant_id);
  if (!all) return status_response(all.status(), "Error", "store-failed");
  json out = json::array();
  for (const StoredTransfer& x : *all)
    out.push_back(summary(x));
  return json_response(200, {{"transfers", std::move(out)}});
}

Result<size_t> Transfers::expire() {
  auto started = store_.transfers_in_state("STARTED");
  if (!started) return started.status();
  size_t expired = 0;
  for (const StoredTransfer& candidate : *started) {
    std::lock_guard lock(stripe(candidate.provider_pid));
    auto again = store_.transfer(candidate.provider_pid);  // a message may have come since
    if (!again) return again.status();
    if (!*again || (*again)->state != "STARTED") continue;
    StoredTransfer x = std::move(**again);
    auto agreement = store_.agreement(x.agreement_id);
    if (!agreement) return agreement.status();
    if (!*agreement) continue;
    const Instant now = clock_.now();
    json supplied = json::object();
    auto verdict = decide_now(store_, **agreement, nullptr, now, supplied);
    if (!verdict || verdict->permit) continue;  // an unreadable record must not stop the rest
    const std::vector<std::string> subjects = {x.provider_pid, x.agreement_id, x.dataset};
    x.state = "TERMINATED";
    x.reason = json{{"code", "policy-expired"}, {"reasons", verdict->reasons}}.dump();
    x.last_message.clear();
    x.last_sender.clear();
    x.updated = now;
    Transition t;
    t.transfer = &x;
    proto::TransferTerminationMessage m{x.provider_pid, x.consumer_pid, "policy-expired", {}};
    for (const std::string& reason : verdict->reasons)
      m.reason.push_back(reason);
    t.events.push_back(make_event(x.consumer, "transfer.terminated", x, now, proto::to_json(m)));
    t.events.push_back(make_event(x.provider, "transfer.terminated", x, now, proto::to_json(m)));
    t.log_entries.push_back(log_entry(now, broker_id_, "policy.decided",
                                      {x.provider_pid, x.agreement_id, x.consumer},
                                      {{"decision", "deny"},
                                       {"reasons", verdict->reasons},
                                       {"supplied", supplied},
                                       {"evaluation", verdict->decision}}));
    t.log_entries.push_back(log_entry(now, broker_id_, "transfer.terminated", subjects,
                                      {{"by", "broker"},
                                       {"code", "policy-expired"},
                                       {"previousState", "STARTED"},
                                       {"reasons", verdict->reasons}}));
    if (Status s = commit(t); !s) return s;
    ++expired;
  }
  return expired;
}

Result<DataAccess> Transfers::data_access(const Caller& caller, const std::string& provider_pid,
                                          bool upload) {
  auto found = store_.transfer(provider_pid);
  if (!found) return found.status();
  const std::string& me = caller.identity.participant_id;
  if (!*found || (upload ? (*found)->provider : (*found)->consumer) != me)
    return Status::not_found("no transfer " + provider_pid +
                             (upload ? " of yours as provider" : " of yours as consumer"));
  const StoredTransfer& x = **found;
  if (x.state != "STARTED")
    return Status::failed_precondition("transfer " + provider_pid + " is " + x.state +
                                       ", not STARTED: its data moves only while it is STARTED");
  return DataAccess{x.provider_pid, x.consumer_pid, x.provider,  x.consumer,
                    x.agreement_id, x.dataset,      x.from_chunk};
}

Status Transfers::record_relay(const std::string& provider_pid, uint64_t from_chunk, uint64_t bytes,
                               const std::string& sha256_hex_value,
                               const std::string& manifest_json, bool complete) {
  std::lock_guard lock(stripe(provider_pid));
  auto found = store_.transfer(provider_pid);
  if (!found) return found.status();
  if (!*found) return Status::not_found("no transfer " + provider_pid);
  StoredTransfer x = std::move(**found);
  const Instant now = clock_.now();
  x.relayed_sha256 = sha256_hex_value;
  x.updated = now;
  json manifest = nullptr;
  std::string manifest_sha256;
  if (!manifest_json.empty()) {
    manifest = json::parse(manifest_json, nullptr, false);
    if (manifest.is_discarded()) manifest = manifest_json;  // keep what came, as text
    if (auto signed_manifest = certs::parse_signed_document(manifest))
      manifest_sha256 = sha256_hex(signed_manifest->text);
    x.manifest = manifest.dump();
  }
  Transition t;
  t.transfer = &x;
  t.log_entries.push_back(log_entry(now, broker_id_, "transfer.relayed",
                                    {provider_pid, x.agreement_id, x.dataset},
                                    {{"bytes", bytes},
                                     {"sha256", sha256_hex_value},
                                     {"fromChunk", from_chunk},
                                     {"manifest", manifest},
                                     {"manifestSha256", manifest_sha256},
                                     {"complete", complete}}));
  return commit(t);
}

}  // namespace dsx::broker
