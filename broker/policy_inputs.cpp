#include "broker/policy_inputs.h"

#include <set>

#include "policy/iri.h"
#include "policy/parser.h"
#include "policy/vocab.h"

namespace dsx::broker {

using nlohmann::json;

namespace {

json certificate_context(const certs::Identity& id) {
  json context = json::object();
  const std::string dsx(policy::kDsxNs);
  if (id.country) {
    context[dsx + "country"] = *id.country;
    context[std::string(policy::kOdrlNs) + "spatial"] = *id.country;
  }
  context[dsx + "role"] = id.roles;
  for (const auto& [k, values] : id.attributes) {
    json v = json::array();
    for (const auto& s : values)
      v.push_back(k == "memberOf" ? json{{"@id", s}} : json(s));
    const std::string key = k == "memberOf" || k == "organisation" ? dsx + k : dsx + "attr/" + k;
    context[key] = values.size() == 1 ? v[0] : v;
  }
  return context;
}

}  // namespace

Result<policy::Request> participant_request(const certs::Identity& who, const std::string& target,
                                            const std::string& purpose, const json& declared) {
  const policy::Prefixes prefixes;
  json context = certificate_context(who);
  std::set<std::string> from_certificate;
  for (const auto& [k, v] : context.items())
    from_certificate.insert(k);
  json merged = json::object();
  if (declared.is_object())
    for (const auto& [k, v] : declared.items())
      if (!from_certificate.count(prefixes.expand_term(k))) merged[k] = v;
  if (!purpose.empty()) merged[std::string(policy::kOdrlNs) + "purpose"] = json{{"@id", purpose}};
  for (auto& [k, v] : context.items())
    merged[k] = std::move(v);
  return policy::parse_request(
      {{"party", who.participant_id}, {"action", "use"}, {"target", target}, {"context", merged}},
      prefixes);
}

policy::State participant_state(const certs::Identity& who, Instant now) {
  policy::State state;
  state.now = now;
  if (auto it = who.attributes.find("memberOf"); it != who.attributes.end())
    state.part_of[who.participant_id] = it->second;
  return state;
}

std::vector<std::string> decision_reasons(const policy::Decision& decision) {
  std::vector<std::string> out = decision.reasons;
  for (const policy::RuleOutcome& rule : decision.rules)
    for (const std::string& r : rule.reasons)
      out.push_back(rule.rule + ": " + r);
  return out;
}

}  // namespace dsx::broker
