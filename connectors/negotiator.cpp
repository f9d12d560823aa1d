#include "connectors/negotiator.h"

#include <thread>

#include "connectors/negotiation.h"

namespace dsx::connectors {

using json = nlohmann::json;
namespace protocol = dsx::protocol;
using protocol::NegotiationState;
using Clock = std::chrono::steady_clock;

Result<std::vector<AutoAcceptRule>> parse_auto_accept(const json& config) {
  std::vector<AutoAcceptRule> rules;
  if (!config.is_object() || !config.contains("autoAccept")) return rules;
  const json& list = config["autoAccept"];
  if (!list.is_array())
    return Status::invalid_argument("autoAccept: expected an array of {\"dataset\": ...}");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = "autoAccept[" + std::to_string(i) + "]";
    const json& entry = list[i];
    if (!entry.is_object()) return Status::invalid_argument(at + ": expected an object");
    AutoAcceptRule rule;
    for (const auto& [key, value] : entry.items()) {
      if (key != "dataset" && key != "consumer")
        return Status::invalid_argument(at + "." + key +
                                        ": unknown (a rule has \"dataset\" and \"consumer\")");
      if (!value.is_string() || value.get<std::string>().empty())
        return Status::invalid_argument(at + "." + key + ": expected a non-empty string");
      (key == "dataset" ? rule.dataset : rule.consumer) = value.get<std::string>();
    }
    if (rule.dataset.empty())
      return Status::invalid_argument(at + ".dataset: missing (a dataset id, or \"*\" for any)");
    rules.push_back(std::move(rule));
  }
  return rules;
}

const AutoAcceptRule* find_rule(const std::vector<AutoAcceptRule>& rules,
                                const std::string& dataset, const std::string& consumer) {
  for (const auto& r : rules)
    if ((r.dataset == "*" || r.dataset == dataset) && (r.consumer == "*" || r.consumer == consumer))
      return &r;
  return nullptr;
}

namespace {

std::string text_of(const json& object, const char* name) {
  if (!object.is_object()) return {};
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The reasons a message (termination, retirement) carries, as text.
std::vector<std::string> reasons_of(const json& body) {
  std::vector<std::string> out;
  for (const json* holder :
       {&body, body.is_object() && body.contains("message") ? &body["message"] : nullptr}) {
    if (!holder || !holder->is_object()) continue;
    for (const char* name : {"reason", "retiredReason"}) {
      auto it = holder->find(name);
      if (it == holder->end()) continue;
      if (it->is_array()) {
        for (const auto& r : *it)
          out.push_back(r.is_string() ? r.get<std::string>() : r.dump());
      } else if (it->is_string()) {
        out.push_back(it->get<std::string>());
      }
    }
  }
  return out;
}

std::string joined(const std::vector<std::string>& reasons) {
  std::string out;
  for (const auto& r : reasons)
    out += (out.empty() ? "" : "; ") + r;
  return out.empty() ? "no reason given" : out;
}

// The pids of the negotiation an event is about.
protocol::ContractNegotiation pids_of(const json& negotiation) {
  protocol::ContractNegotiation n;
  n.provider_pid = text_of(negotiation, "providerPid");
  n.consumer_pid = text_of(negotiation, "consumerPid");
  if (auto s = protocol::parse_negotiation_state(text_of(negotiation, "state"))) n.state = *s;
  return n;
}

// The negotiation's entry in GET /management/negotiations (null when not listed).
Result<json> find_listed(Client& client, const std::string& provider_pid) {
  auto list = list_negotiations(client);
  if (!list) return list.status();
  if (const json* doc = std::get_if<json>(&*list)) {
    const json& items = doc->is_array() ? *doc : doc->value("negotiations", json::array());
    for (const auto& item : items)
      if (text_of(item, "providerPid") == provider_pid) return item;
  }
  return json();
}

// Checks the agreement of an AGREED negotiation and verifies it, or terminates the negotiation
// when the hash or the broker's signature is wrong. `message`: the ContractAgreementMessage if the
// caller has it (from a channel event), else null and the agreement is fetched. `broker_key`: the
// broker's signing key once read (read here when empty). Returns the line to print, empty when the
// broker names no agreement yet; an error only for transport failures.
Result<std::string> verify_or_terminate(Client& client, const protocol::ContractNegotiation& n,
                                        const json& message, std::string agreement_id,
                                        std::optional<provenance::PublicKey>& broker_key) {
  if (!broker_key) {
    auto key = broker_signing_key(client);
    if (!key && key.status().code() == Status::Code::kFailedPrecondition) return key.status();
    if (!key)
      return n.provider_pid + ": cannot check the agreement's signature (" +
             key.status().message() + "); not verified";
    broker_key = std::move(*key);
  }
  Status checked = Status::ok();
  if (message.is_object()) {
    auto c = check_agreement_message(message, *broker_key);
    checked = c.status();
    if (c) agreement_id = text_of(c->message.agreement, "@id");
  } else {
    if (agreement_id.empty()) {
      auto listed = find_listed(client, n.provider_pid);
      if (!listed) return listed.status();
      agreement_id = text_of(*listed, "agreementId");
    }
    if (agreement_id.empty()) return std::string();  // not named yet
    auto record = get_agreement(client, agreement_id);
    if (!record) return record.status();
    if (auto* refusal = std::get_if<Refusal>(&*record))
      return "cannot read agreement " + agreement_id + ": " + refusal->summary;
    checked = check_agreement_record(std::get<json>(*record), *broker_key);
  }
  if (!checked) {
    const std::string why = "the agreement does not check: " + checked.message();
    auto t = terminate(client, n, why);
    if (!t) return t.status();
    return n.provider_pid + ": " + why + "; terminated the negotiation";
  }
  auto v = verify_agreement(client, n);
  if (!v) return v.status();
  if (auto* refusal = std::get_if<Refusal>(&*v))
    return n.provider_pid + ": could not verify agreement " + agreement_id + ": " +
           refusal->summary;
  return n.provider_pid + ": agreement " + agreement_id +
         " checked (hash, broker's signature), verification sent";
}

}  // namespace

Result<std::string> Responder::handle(const Event& event) {
  const json& neg =
      event.body.is_object() ? event.body.value("negotiation", json::object()) : json::object();
  const json message = event.body.is_object() ? event.body.value("message", json()) : json();
  const protocol::ContractNegotiation n = pids_of(neg);
  const std::string pid = n.provider_pid, dataset = text_of(neg, "dataset"),
                    consumer = text_of(neg, "consumer"), provider = text_of(neg, "provider"),
                    agreement = text_of(neg, "agreementId");
  const std::string& type = event.type;
  if (type == "negotiation.requested" || type == "negotiation.accepted") {
    std::string what = type == "negotiation.requested"
                           ? "contract request " + pid + " from " + consumer + " for " + dataset
                           : consumer + " accepted the offer in " + pid + " for " + dataset;
    if (const std::string purpose = text_of(neg, "purpose"); !purpose.empty())
      what += " (purpose " + purpose + ")";
    const AutoAcceptRule* rule = find_rule(rules_, dataset, consumer);
    if (!rule)
      return what + ": pending; decide with: dsx connector approve " + pid +
             "  or: dsx connector refuse " + pid + " --reason TEXT";
    auto a = approve(client_, pid);
    if (!a) return a.status();
    if (auto* refusal = std::get_if<Refusal>(&*a))
      return what + ": could not approve: " + refusal->summary;
    return what + ": approved (auto-accept rule dataset " + rule->dataset + "), now " +
           std::string(protocol::to_string(std::get<protocol::ContractNegotiation>(*a).state));
  }
  if (type == "negotiation.agreed") {
    auto line = verify_or_terminate(client_, n, message, agreement, broker_key_);
    if (line && line->empty()) return pid + ": AGREED, but the broker names no agreement yet";
    return line;
  }
  if (type == "negotiation.offered")
    return pid + ": " + provider + " offers " + text_of(message.value("offer", json()), "@id") +
           " for " + dataset + "; accept with: dsx connector accept " + pid +
           "  or: dsx connector terminate " + pid + " --reason TEXT";
  if (type == "negotiation.verified")
    return pid + ": " + consumer + " verified agreement " + agreement;
  if (type == "negotiation.finalized")
    return pid + ": FINALIZED, agreement " + agreement + " for " + dataset;
  if (type == "negotiation.terminated")
    return pid + ": TERMINATED: " + joined(reasons_of(event.body));
  if (type == "agreement.retired")
    return "agreement " + agreement + " (" + dataset + ") retired by " + provider + ": " +
           joined(reasons_of(event.body));
  return "event " + std::to_string(event.id) + ": " + type + " (nothing to do)";
}

Result<FollowResult> follow_negotiation(Client& client, const ClientConfig& config,
                                        const protocol::ContractNegotiation& start,
                                        const FollowOptions& o) {
  auto note = [&](const std::string& line) {
    if (o.note) o.note(line);
  };
  const auto deadline = Clock::now() + o.timeout;
  FollowResult result;
  result.state = start.state;
  protocol::ContractNegotiation n = start;
  std::unique_ptr<Channel> channel;
  if (o.use_channel) {
    auto c = Channel::connect(config, std::chrono::seconds(30));
    if (c)
      channel = std::move(*c);
    else
      note("no control channel (" + c.status().message() + "); polling");
  }
  json agreement_message;  // from a negotiation.agreed event
  std::string agreement_id;
  std::optional<provenance::PublicKey> broker_key;
  bool verification_sent = false, offer_noted = false;
  // Without a channel the state is polled with backoff; with one, every 2 s as a safety net
  // (another connector may hold the channel and take the events).
  Channel::Backoff poll(std::chrono::milliseconds(200), std::chrono::seconds(5));
  auto poll_at = Clock::now();
  for (;;) {
    result.state = n.state;
    switch (n.state) {
      case NegotiationState::kFinalized:
      case NegotiationState::kTerminated: {
        // What the events did not say, the management view may.
        if ((n.state == NegotiationState::kFinalized && agreement_id.empty()) ||
            (n.state == NegotiationState::kTerminated && result.reasons.empty())) {
          auto listed = find_listed(client, n.provider_pid);
          if (listed && agreement_id.empty()) agreement_id = text_of(*listed, "agreementId");
          if (listed && result.reasons.empty()) result.reasons = reasons_of(*listed);
        }
        result.agreement_id = agreement_id;
        return result;
      }
      case NegotiationState::kAgreed:
        if (!verification_sent) {
          auto line = verify_or_terminate(client, n, agreement_message, agreement_id, broker_key);
          if (!line) return line.status();
          if (!line->empty()) note(*line);
          verification_sent = !line->empty();
        }
        break;
      case NegotiationState::kOffered:
        if (!offer_noted) {
          offer_noted = true;
          note(n.provider_pid +
               ": the provider made a counter-offer; accept with: dsx connector "
               "accept " +
               n.provider_pid);
        }
        break;
      default:
        break;
    }
    if (Clock::now() >= deadline || (o.stop && o.stop())) {
      result.timed_out = true;
      return result;
    }
    const auto remaining =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (channel && Clock::now() < poll_at + std::chrono::seconds(2)) {
      auto e = channel->next_event(std::min(remaining, std::chrono::milliseconds(200)));
      if (!e && e.status().code() == Status::Code::kFailedPrecondition) {
        note(e.status().message() + "; polling");
        channel.reset();
      }
      if (!e || !e->has_value()) continue;
      const Event& event = **e;
      const json neg = event.body.value("negotiation", json::object());
      if (text_of(neg, "providerPid") != n.provider_pid) continue;  // for `serve`: not acked
      if (event.type == "negotiation.agreed")
        agreement_message = event.body.value("message", json());
      if (const std::string id = text_of(neg, "agreementId"); !id.empty()) agreement_id = id;
      if (event.type == "negotiation.terminated") result.reasons = reasons_of(event.body);
      if (auto s = protocol::parse_negotiation_state(text_of(neg, "state"))) n.state = *s;
      if (Status s = channel->ack(event.id); !s) channel.reset();
      continue;
    }
    if (!channel) {
      const auto delay = std::min(poll.next(), remaining);
      std::this_thread::sleep_for(delay);
    }
    poll_at = Clock::now();
    auto g = get_negotiation(client, n.provider_pid);
    if (!g) return g.status();
    if (auto* refusal = std::get_if<Refusal>(&*g))
      return Status::failed_precondition("reading negotiation " + n.provider_pid + ": " +
                                         refusal->summary);
    const auto previous = n.state;
    n = std::get<protocol::ContractNegotiation>(*g);
    if (n.state != previous) poll.reset();
  }
}

}  // namespace dsx::connectors
