#include "policy/describe.h"

#include <nlohmann/json.hpp>

namespace dsx::policy {
namespace {

using json = nlohmann::json;

std::string_view logical_name(LogicalConstraint::Kind k) {
  switch (k) {
    case LogicalConstraint::Kind::kAnd:
      return "and";
    case LogicalConstraint::Kind::kOr:
      return "or";
    case LogicalConstraint::Kind::kXone:
      return "xone";
    case LogicalConstraint::Kind::kAndSequence:
      return "andSequence";
  }
  return "and";
}

std::string_view xsd_type(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNumber:
      return "xsd:decimal";
    case Value::Kind::kTime:
      return v.text().find('T') == std::string::npos ? "xsd:date" : "xsd:dateTime";
    case Value::Kind::kDuration:
      return "xsd:duration";
    case Value::Kind::kBoolean:
      return "xsd:boolean";
    case Value::Kind::kString:
      return "xsd:string";
    case Value::Kind::kIri:
      return "@id";
  }
  return "xsd:string";
}

json value_json(const Value& v) {
  if (v.kind() == Value::Kind::kIri) return json{{"@id", v.text()}};
  return json{{"@value", v.text()}, {"@type", xsd_type(v)}};
}

json constraint_json(const Constraint& c) {
  if (const auto* a = std::get_if<AtomicConstraint>(&c.node)) {
    json j;
    if (!a->id.empty()) j["uid"] = a->id;
    j["leftOperand"] = a->left_operand;
    j["operator"] = std::string(kOdrlNs) + std::string(operator_name(a->op));
    if (a->right_is_list) {
      json list = json::array();
      for (const Value& v : a->right)
        list.push_back(value_json(v));
      j["rightOperand"] = std::move(list);
    } else {
      j["rightOperand"] = value_json(a->right.front());
    }
    if (!a->unit.empty()) j["unit"] = a->unit;
    return j;
  }
  const auto& l = std::get<LogicalConstraint>(c.node);
  json operands = json::array();
  for (const Constraint& o : l.operands)
    operands.push_back(constraint_json(o));
  json j;
  if (!l.id.empty()) j["uid"] = l.id;
  j[std::string(logical_name(l.kind))] = std::move(operands);
  return j;
}

json constraints_json(const std::vector<Constraint>& cs) {
  json out = json::array();
  for (const Constraint& c : cs)
    out.push_back(constraint_json(c));
  return out;
}

json entities_json(const std::vector<Entity>& es) {
  json out = json::array();
  for (const Entity& e : es) {
    if (!e.collection) {
      out.push_back(e.id);
      continue;
    }
    json j{{"collection", true}};
    if (!e.id.empty()) j["@id"] = e.id;
    if (!e.source.empty()) j["source"] = e.source;
    if (!e.refinements.empty()) j["refinement"] = constraints_json(e.refinements);
    out.push_back(std::move(j));
  }
  return out;
}

json rule_json(const Rule& r) {
  json j;
  j["uid"] = r.has_uid ? json(r.id) : json(nullptr);
  if (!r.has_uid) j["path"] = r.id;
  if (!r.targets.empty()) j["target"] = entities_json(r.targets);
  if (!r.assignees.empty()) j["assignee"] = entities_json(r.assignees);
  if (!r.assigners.empty()) j["assigner"] = entities_json(r.assigners);
  if (!r.actions.empty()) {
    json actions = json::array();
    for (const Action& a : r.actions) {
      json aj{{"action", a.iri}};
      if (!a.refinements.empty()) aj["refinement"] = constraints_json(a.refinements);
      actions.push_back(std::move(aj));
    }
    j["action"] = std::move(actions);
  }
  if (!r.constraints.empty()) j["constraint"] = constraints_json(r.constraints);
  for (const Rule& d : r.duties) {
    std::string key(rule_kind_name(d.kind));
    if (!j.contains(key)) j[key] = json::array();
    j[key].push_back(rule_json(d));
  }
  return j;
}

void describe_constraints(const std::vector<Constraint>& cs, std::string_view label,
                          const std::string& indent, std::string& out) {
  for (const Constraint& c : cs)
    out += indent + std::string(label) + " " + to_string(c) + "\n";
}

void describe_rule(const Rule& r, const std::string& indent, std::string& out) {
  out += indent + std::string(rule_kind_name(r.kind)) + " " + r.id + "\n";
  const std::string in = indent + "  ";
  auto names = [](const std::vector<Entity>& es) {
    std::string s;
    for (const Entity& e : es) {
      if (!s.empty()) s += ", ";
      s += e.id.empty() ? "(collection)" : e.id;
      if (e.collection)
        s += e.source.empty() ? " (collection)" : " (collection, source " + e.source + ")";
      for (const Constraint& c : e.refinements)
        s += " [refinement " + to_string(c) + "]";
    }
    return s;
  };
  if (!r.targets.empty()) out += in + "target " + names(r.targets) + "\n";
  if (!r.assignees.empty()) out += in + "assignee " + names(r.assignees) + "\n";
  if (!r.assigners.empty()) out += in + "assigner " + names(r.assigners) + "\n";
  for (const Action& a : r.actions) {
    out += in + "action " + std::string(display_term(a.iri)) + "\n";
    describe_constraints(a.refinements, "refinement", in + "  ", out);
  }
  if (r.actions.empty() && (r.kind == RuleKind::kPermission || r.kind == RuleKind::kProhibition))
    out += in + "action (any)\n";
  describe_constraints(r.constraints, "constraint", in, out);
  for (const Rule& d : r.duties)
    describe_rule(d, in, out);
}

json outcome_json(const RuleOutcome& o) {
  json j{{"rule", o.rule}, {"kind", rule_kind_name(o.kind)}};
  const bool duty_like = o.kind != RuleKind::kPermission && o.kind != RuleKind::kProhibition;
  if (!duty_like) j["matched"] = o.matched;
  j["active"] = o.active;
  if (o.kind == RuleKind::kPermission) j["exercisable"] = o.exercisable;
  if (duty_like) j["state"] = duty_state_name(o.state);
  j["reasons"] = o.reasons;
  if (!o.duties.empty()) {
    json duties = json::array();
    for (const RuleOutcome& d : o.duties)
      duties.push_back(outcome_json(d));
    j["duties"] = std::move(duties);
  }
  return j;
}

void explain_outcome(const RuleOutcome& o, const std::string& indent, std::string& out) {
  std::string status;
  switch (o.kind) {
    case RuleKind::kPermission:
      status = !o.matched      ? "does not apply"
               : !o.active     ? "applies, but is not active"
               : o.exercisable ? "active and exercisable"
                               : "active, but a duty is not fulfilled";
      break;
    case RuleKind::kProhibition:
      status = !o.matched ? "does not apply"
               : o.active ? "ACTIVE: forbids the request"
                          : "applies, but is not active";
      break;
    default:
      status =
          std::string(o.active ? "due" : "not due") + ", " + std::string(duty_state_name(o.state));
  }
  out += indent + std::string(rule_kind_name(o.kind)) + " " + o.rule + ": " + status + "\n";
  for (const std::string& r : o.reasons)
    out += indent + "  - " + r + "\n";
  for (const RuleOutcome& d : o.duties)
    explain_outcome(d, indent + "  ", out);
}

}  // namespace

std::string to_string(const AtomicConstraint& c) {
  std::string s =
      std::string(display_term(c.left_operand)) + " " + std::string(operator_name(c.op)) + " ";
  if (c.right_is_list || c.right.size() != 1) {
    s += "[";
    for (size_t i = 0; i < c.right.size(); ++i)
      s += (i ? ", " : "") + c.right[i].text();
    s += "]";
  } else {
    s += c.right.front().text();
  }
  if (!c.unit.empty()) s += " (unit " + c.unit + ")";
  return s;
}

std::string to_string(const LogicalConstraint& c) {
  return std::string(logical_name(c.kind)) + " of " + std::to_string(c.operands.size()) +
         (c.operands.size() == 1 ? " constraint" : " constraints");
}

std::string to_string(const Constraint& c) {
  if (const auto* a = std::get_if<AtomicConstraint>(&c.node)) return to_string(*a);
  // In full where the whole constraint is shown once (describe); see the header.
  const auto& l = std::get<LogicalConstraint>(c.node);
  std::string s = std::string(logical_name(l.kind)) + "(";
  for (size_t i = 0; i < l.operands.size(); ++i)
    s += (i ? ", " : "") + to_string(l.operands[i]);
  return s + ")";
}

nlohmann::json to_json(const Policy& p) {
  json j;
  j["uid"] = p.uid.empty() ? json(nullptr) : json(p.uid);
  j["type"] = p.type;
  j["conflict"] = conflict_name(p.conflict);
  auto rules = [](const std::vector<Rule>& rs) {
    json out = json::array();
    for (const Rule& r : rs)
      out.push_back(rule_json(r));
    return out;
  };
  if (!p.permissions.empty()) j["permission"] = rules(p.permissions);
  if (!p.prohibitions.empty()) j["prohibition"] = rules(p.prohibitions);
  if (!p.obligations.empty()) j["obligation"] = rules(p.obligations);
  return j;
}

std::string describe(const Policy& p) {
  std::string out = "policy " + (p.uid.empty() ? std::string("(no uid)") : p.uid) + " (" +
                    std::string(display_term(p.type)) + ", conflict " +
                    std::string(conflict_name(p.conflict)) +
                    (p.conflict_given ? "" : " by default") + ")\n";
  for (const Rule& r : p.permissions)
    describe_rule(r, "", out);
  for (const Rule& r : p.prohibitions)
    describe_rule(r, "", out);
  for (const Rule& r : p.obligations)
    describe_rule(r, "", out);
  return out;
}

nlohmann::json to_json(const Decision& d) {
  json rules = json::array();
  for (const RuleOutcome& o : d.rules)
    rules.push_back(outcome_json(o));
  return json{{"decision", d.permit ? "permit" : "deny"},
              {"policy", d.policy.empty() ? json(nullptr) : json(d.policy)},
              {"reasons", d.reasons},
              {"rules", std::move(rules)}};
}

std::string explain(const Decision& d) {
  std::string out = std::string(d.permit ? "PERMIT" : "DENY") + "  (policy " +
                    (d.policy.empty() ? std::string("without uid") : d.policy) + ")\n";
  for (const std::string& r : d.reasons)
    out += "  " + r + "\n";
  out += "\n";
  for (const RuleOutcome& o : d.rules)
    explain_outcome(o, "", out);
  return out;
}

}  // namespace dsx::policy
