#include "policy/evaluator.h"

#include <optional>
#include <span>

#include "policy/describe.h"

namespace dsx::policy {
namespace {

// How a constraint whose left operand has no value is read (policy-eval.md rule 5): the more
// restrictive reading, so a permission's constraint fails, a prohibition's or a duty's holds.
enum class Missing { kFails, kHolds };

Missing missing_for(RuleKind kind) {
  return kind == RuleKind::kPermission ? Missing::kFails : Missing::kHolds;
}

std::string list_text(std::span<const Value> values, bool as_list) {
  if (!as_list && values.size() == 1) return values.front().text();
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += values[i].text();
  }
  return out + "]";
}

// The value(s) a left operand has in this evaluation; empty when it has none.
struct LeftValues {
  std::span<const Value> values;
  bool is_list = false;
};

// One evaluation of one request. kExplain decides whether reasons are written; the decisions
// are the same either way. Reasons go to the vector passed in, which is null when !kExplain.
template <bool kExplain>
class Evaluation {
 public:
  using Reasons = std::vector<std::string>;

  Evaluation(const Request& request, const State& state) : request_(request), state_(state) {}

  // ---- values ---------------------------------------------------------------------------------

  LeftValues left_value(const std::string& left_operand) {
    if (left_operand == kDateTimeIri) {
      // Built once per evaluation, without heap allocation on the fast path (no text).
      if (!now_)
        now_ = Value::time(state_.now, kExplain ? format_rfc3339(state_.now) : std::string());
      return {std::span<const Value>(&*now_, 1), false};
    }
    const OperandValue* v = state_.values.find(left_operand);
    if (!v) v = request_.context().find(left_operand);
    if (!v) return {};
    return {v->values, v->is_list};
  }

  // `member` is `collection`, or belongs to it through the state's partOf facts (transitively).
  bool part_of(const std::string& member, const std::string& collection) const {
    if (member == collection) return true;
    if (state_.part_of.empty()) return false;
    std::vector<const std::string*> todo{&member}, seen;
    while (!todo.empty() && seen.size() <= state_.part_of.size()) {
      const std::string* m = todo.back();
      todo.pop_back();
      auto it = state_.part_of.find(*m);
      seen.push_back(m);
      if (it == state_.part_of.end()) continue;
      for (const std::string& c : it->second) {
        if (c == collection) return true;
        bool visited = false;
        for (const std::string* s : seen)
          visited = visited || *s == c;
        if (!visited) todo.push_back(&c);
      }
    }
    return false;
  }

  bool is_a(const std::string& value, const std::string& type) const {
    auto it = state_.types.find(value);
    if (it == state_.types.end()) return false;
    for (const std::string& t : it->second)
      if (t == type) return true;
    return false;
  }

  // ---- constraints ----------------------------------------------------------------------------

  bool holds(const Constraint& c, Missing missing, Reasons* reasons) {
    if (const auto* a = std::get_if<AtomicConstraint>(&c.node)) return atomic(*a, missing, reasons);
    return logical(std::get<LogicalConstraint>(c.node), missing, reasons);
  }

  // All of `cs` hold. In explain mode every constraint is evaluated so that every failure is
  // reported; otherwise the first failure ends it.
  bool all_hold(const std::vector<Constraint>& cs, Missing missing, Reasons* failures,
                Reasons* successes) {
    bool ok = true;
    for (const Constraint& c : cs) {
      if constexpr (kExplain) {
        // Decide without words first; build the reasons only where they are kept.
        const bool quick = Evaluation<false>(request_, state_).holds(c, missing, nullptr);
        if (!(quick ? successes : failures)) {
          ok = ok && quick;
          continue;
        }
        Reasons r;
        bool h = holds(c, missing, &r);
        Reasons* into = h ? successes : failures;
        if (into) into->insert(into->end(), r.begin(), r.end());
        ok = ok && h;
      } else {
        if (!holds(c, missing, nullptr)) return false;
      }
    }
    return ok;
  }

  bool logical(const LogicalConstraint& c, Missing missing, Reasons* reasons) {
    using K = LogicalConstraint::Kind;
    size_t satisfied = 0;
    Reasons inner;
    for (const Constraint& operand : c.operands) {
      bool h = holds(operand, missing, kExplain ? &inner : nullptr);
      if (h) ++satisfied;
      if constexpr (!kExplain) {
        if (!h && (c.kind == K::kAnd || c.kind == K::kAndSequence)) return false;
        if (h && c.kind == K::kOr) return true;
        if (c.kind == K::kXone && satisfied > 1) return false;
      }
    }
    bool result = false;
    const size_t n = c.operands.size();
    switch (c.kind) {
      case K::kAnd:
      case K::kAndSequence:
        result = satisfied == n;
        break;
      case K::kOr:
        result = satisfied > 0;
        break;
      case K::kXone:
        result = satisfied == 1;
        break;
    }
    if constexpr (kExplain) {
      std::string head = to_string(c) + (result ? " satisfied: " : " not satisfied: ") +
                         std::to_string(satisfied) + " hold";
      if (c.kind == K::kXone) head += " (exactly one must)";
      reasons->push_back(std::move(head));
      // The operands' own reasons, indented; a long list is cut so that a reply stays readable.
      constexpr size_t kMaxListed = 24;
      for (size_t i = 0; i < inner.size() && i < kMaxListed; ++i)
        reasons->push_back("  " + inner[i]);
      if (inner.size() > kMaxListed)
        reasons->push_back("  ... and " + std::to_string(inner.size() - kMaxListed) + " more");
    }
    return result;
  }

  bool atomic(const AtomicConstraint& c, Missing missing, Reasons* reasons) {
    const LeftValues left = left_value(c.left_operand);
    if (left.values.empty()) {
      bool h = missing == Missing::kHolds;
      if constexpr (kExplain) {
        reasons->push_back(
            "constraint " + to_string(c) +
            (h ? " taken as satisfied: no value for " : " not satisfied: no value for ") +
            std::string(display_term(c.left_operand)) + (h ? " (restrictive reading)" : ""));
      }
      return h;
    }
    std::optional<std::string> problem;  // why the values could not be compared
    bool h = compare_values(c, left, problem);
    if constexpr (kExplain) {
      bool time = c.left_operand == kDateTimeIri;
      std::string r = "constraint " + to_string(c) + (h ? " satisfied " : " not satisfied ") +
                      (time ? "at " : "by ") + list_text(left.values, left.is_list);
      if (problem) r += ": " + *problem;
      reasons->push_back(std::move(r));
    }
    return h;
  }

  bool compare_values(const AtomicConstraint& c, const LeftValues& left,
                      std::optional<std::string>& problem) {
    const std::span<const Value> lv = left.values;
    const std::vector<Value>& rv = c.right;
    switch (c.op) {
      case Operator::kEq:
      case Operator::kNeq:
      case Operator::kLt:
      case Operator::kLteq:
      case Operator::kGt:
      case Operator::kGteq: {
        if (left.is_list) {
          if constexpr (kExplain)
            problem = std::string(operator_name(c.op)) + " compares one value, not a list";
          return false;
        }
        auto order = compare(lv.front(), rv.front());
        if (!order) {
          if constexpr (kExplain)
            problem = "a " + std::string(kind_name(lv.front().kind())) +
                      " cannot be compared with a " + std::string(kind_name(rv.front().kind()));
          return false;
        }
        if (is_ordering(c.op) && *order == std::partial_ordering::unordered) {
          if constexpr (kExplain) problem = "the two values cannot be ordered";
          return false;
        }
        switch (c.op) {
          case Operator::kEq:
            return *order == std::partial_ordering::equivalent;
          case Operator::kNeq:
            return *order != std::partial_ordering::equivalent;
          case Operator::kLt:
            return *order == std::partial_ordering::less;
          case Operator::kLteq:
            return *order == std::partial_ordering::less ||
                   *order == std::partial_ordering::equivalent;
          case Operator::kGt:
            return *order == std::partial_ordering::greater;
          default:
            return *order == std::partial_ordering::greater ||
                   *order == std::partial_ordering::equivalent;
        }
      }
      case Operator::kIsAnyOf:
        for (const Value& l : lv)
          for (const Value& r : rv)
            if (same_value(l, r)) return true;
        return false;
      case Operator::kIsNoneOf:
        for (const Value& l : lv)
          for (const Value& r : rv)
            if (same_value(l, r)) return false;
        return true;
      case Operator::kIsAllOf:
        for (const Value& r : rv) {
          bool found = false;
          for (const Value& l : lv)
            found = found || same_value(l, r);
          if (!found) return false;
        }
        return true;
      case Operator::kIsPartOf:  // every left value is part of one of the right values
        for (const Value& l : lv) {
          bool found = false;
          for (const Value& r : rv)
            found = found || part_of(l.text(), r.text());
          if (!found) return false;
        }
        return true;
      case Operator::kHasPart:  // every left value has every right value as a part
        for (const Value& l : lv)
          for (const Value& r : rv)
            if (!part_of(r.text(), l.text())) return false;
        return true;
      case Operator::kIsA:  // every left value is an instance of one of the right values
        for (const Value& l : lv) {
          bool found = false;
          for (const Value& r : rv)
            found = found || is_a(l.text(), r.text());
          if (!found) return false;
        }
        return true;
    }
    return false;
  }

  // ---- matching -------------------------------------------------------------------------------

  bool entity_matches(const Entity& e, const std::string& who, Missing missing, Reasons* reasons) {
    if (who.empty()) return false;
    bool member =
        (!e.id.empty() && part_of(who, e.id)) || (!e.source.empty() && part_of(who, e.source));
    if (!member) return false;
    if (e.refinements.empty()) return true;
    return all_hold(e.refinements, missing, reasons, nullptr);
  }

  // Whether any of `entities` matches `who`; an empty list matches anyone.
  bool any_entity(const std::vector<Entity>& entities, const std::string& who, Missing missing,
                  std::string_view role, Reasons* reasons) {
    if (entities.empty()) return true;
    Reasons inner;
    for (const Entity& e : entities)
      if (entity_matches(e, who, missing, kExplain ? &inner : nullptr)) return true;
    if constexpr (kExplain) {
      std::string names;
      for (const Entity& e : entities)
        names += (names.empty() ? "" : ", ") + (e.id.empty() ? e.source : e.id);
      reasons->push_back(std::string(role) + " " + names + " does not match " +
                         (who.empty() ? std::string("(none given)") : who));
      for (auto& r : inner)
        reasons->push_back("  " + r);
    }
    return false;
  }

  // The rule's actions that cover the requested action.
  bool action_matches(const Action& a) const {
    for (const std::string& covered : request_.action_chain())
      if (covered == a.iri) return true;
    return false;
  }

  // ---- rules ----------------------------------------------------------------------------------

  // Matches and is active. Fills `out` in explain mode.
  bool rule_active(const Rule& rule, RuleOutcome* out) {
    const Missing missing = missing_for(rule.kind);
    Reasons* reasons = kExplain ? &out->reasons : nullptr;
    bool matched = any_entity(rule.targets, request_.target(), missing, "target", reasons);
    if (kExplain || matched)
      matched =
          any_entity(rule.assignees, request_.party(), missing, "assignee", reasons) && matched;
    const Action* action = nullptr;
    if (kExplain || matched) {
      bool action_ok = rule.actions.empty();
      for (const Action& a : rule.actions) {
        if (action_matches(a)) {
          action = &a;
          action_ok = true;
          break;
        }
      }
      if constexpr (kExplain) {
        if (!action_ok) {
          std::string names;
          for (const Action& a : rule.actions)
            names += (names.empty() ? "" : ", ") + std::string(display_term(a.iri));
          reasons->push_back("action " + std::string(display_term(request_.action())) + " is not " +
                             names + " nor included in it");
        }
      }
      matched = matched && action_ok;
    }
    if constexpr (kExplain) out->matched = matched;
    if (!matched) return false;

    Reasons successes;
    Reasons* why_applies = kExplain && rule.kind != RuleKind::kPermission ? &successes : nullptr;
    bool active = all_hold(rule.constraints, missing, reasons, why_applies);
    if (action && (kExplain || active))
      active = all_hold(action->refinements, missing, reasons, why_applies) && active;
    if constexpr (kExplain) {
      out->active = active;
      if (active) out->reasons.insert(out->reasons.end(), successes.begin(), successes.end());
    }
    return active;
  }

  // A duty (or obligation, remedy, consequence) is due when its constraints hold; the refinements
  // of its action say how to fulfil it, not whether it is due.
  bool duty_due(const Rule& duty, RuleOutcome* out) {
    Reasons* reasons = kExplain ? &out->reasons : nullptr;
    Reasons successes;
    bool due =
        all_hold(duty.constraints, Missing::kHolds, reasons, kExplain ? &successes : nullptr);
    if constexpr (kExplain) {
      out->matched = true;
      out->active = due;
      if (due) out->reasons.insert(out->reasons.end(), successes.begin(), successes.end());
    }
    return due;
  }

  DutyState duty_state(const Rule& duty) const {
    if (!duty.has_uid) return DutyState::kUnset;
    auto it = state_.duties.find(duty.id);
    return it == state_.duties.end() ? DutyState::kUnset : it->second;
  }

  // Whether the duty keeps its permission from being exercised.
  bool duty_blocks(const Rule& duty, RuleOutcome* out) {
    bool due = duty_due(duty, out);
    DutyState s = duty_state(duty);
    if constexpr (kExplain) {
      out->state = s;
      if (due && s != DutyState::kFulfilled)
        out->reasons.push_back(
            std::string(rule_kind_name(duty.kind)) + " is due and " +
            std::string(duty_state_name(s)) +
            (duty.has_uid ? "" : " (it has no uid, so the state cannot report it fulfilled)"));
      else if (!due)
        out->reasons.push_back(std::string(rule_kind_name(duty.kind)) +
                               " is not due: its constraints are not satisfied");
      explain_nested(duty, s == DutyState::kViolated, out);
    }
    return due && s != DutyState::kFulfilled;
  }

  // Consequences of a duty (due once it is violated) and remedies of a prohibition: reported,
  // never part of the decision.
  void explain_nested(const Rule& rule, bool parent_violated, RuleOutcome* out) {
    if constexpr (kExplain) {
      for (const Rule& d : rule.duties) {
        if (d.kind != RuleKind::kConsequence && d.kind != RuleKind::kRemedy) continue;
        RuleOutcome o = outcome_for(d);
        bool due = duty_due(d, &o) && (d.kind == RuleKind::kRemedy || parent_violated);
        o.active = due;
        o.state = duty_state(d);
        if (d.kind == RuleKind::kConsequence && !parent_violated)
          o.reasons.push_back("consequence is due only once its duty is violated");
        explain_nested(d, o.state == DutyState::kViolated, &o);
        out->duties.push_back(std::move(o));
      }
    }
  }

  static RuleOutcome outcome_for(const Rule& r) {
    RuleOutcome o;
    o.rule = r.id;
    o.kind = r.kind;
    return o;
  }

  bool permission_exercisable(const Rule& rule, RuleOutcome* out) {
    if (!rule_active(rule, out)) return false;
    bool exercisable = true;
    for (const Rule& duty : rule.duties) {
      if constexpr (kExplain) {
        RuleOutcome o = outcome_for(duty);
        bool blocks = duty_blocks(duty, &o);
        if (blocks)
          out->reasons.push_back("duty " + duty.id + " is due and " +
                                 std::string(duty_state_name(o.state)) + ", not fulfilled");
        out->duties.push_back(std::move(o));
        exercisable = exercisable && !blocks;
      } else {
        if (duty_blocks(duty, nullptr)) return false;
      }
    }
    if constexpr (kExplain) out->exercisable = exercisable;
    return exercisable;
  }

  // ---- the decision ---------------------------------------------------------------------------

  bool fast(const Policy& policy) {
    bool prohibited = false;
    for (const Rule& r : policy.prohibitions) {
      if (rule_active(r, nullptr)) {
        prohibited = true;
        break;
      }
    }
    if (prohibited && policy.conflict != ConflictStrategy::kPerm) return false;
    for (const Rule& r : policy.permissions)
      if (permission_exercisable(r, nullptr)) return true;
    return false;
  }

  Decision full(const Policy& policy) {
    Decision d;
    d.policy = policy.uid;
    const Rule* permitted_by = nullptr;
    const Rule* prohibited_by = nullptr;
    for (const Rule& r : policy.permissions) {
      RuleOutcome o = outcome_for(r);
      if (permission_exercisable(r, &o) && !permitted_by) permitted_by = &r;
      d.rules.push_back(std::move(o));
    }
    for (const Rule& r : policy.prohibitions) {
      RuleOutcome o = outcome_for(r);
      if (rule_active(r, &o) && !prohibited_by) prohibited_by = &r;
      explain_nested(r, false, &o);
      d.rules.push_back(std::move(o));
    }
    for (const Rule& r : policy.obligations) {
      RuleOutcome o = outcome_for(r);
      bool due = duty_due(r, &o);
      o.state = duty_state(r);
      o.reasons.push_back(std::string("obligation is ") + (due ? "due" : "not due") + " and " +
                          std::string(duty_state_name(o.state)) +
                          "; obligations do not decide requests");
      explain_nested(r, o.state == DutyState::kViolated, &o);
      d.rules.push_back(std::move(o));
    }

    const std::string what =
        std::string(display_term(request_.action())) + " on " +
        (request_.target().empty() ? std::string("(no target)") : request_.target()) + " by " +
        (request_.party().empty() ? std::string("(no party)") : request_.party());
    if (prohibited_by && policy.conflict != ConflictStrategy::kPerm) {
      d.permit = false;
      d.reasons.push_back("prohibition " + prohibited_by->id + " forbids " + what);
      if (permitted_by)
        d.reasons.push_back("permission " + permitted_by->id +
                            " would allow it, but the conflict strategy " +
                            std::string(conflict_name(policy.conflict)) +
                            (policy.conflict == ConflictStrategy::kInvalid
                                 ? " voids a policy whose permission and prohibition both apply"
                                 : " prefers prohibitions"));
    } else if (permitted_by) {
      d.permit = true;
      d.reasons.push_back("permission " + permitted_by->id + " allows " + what);
      if (prohibited_by)
        d.reasons.push_back("prohibition " + prohibited_by->id +
                            " also applies, but the conflict strategy perm prefers permissions");
    } else {
      d.permit = false;
      d.reasons.push_back("no permission allows " + what + " (what is not permitted is denied)");
    }
    return d;
  }

 private:
  static inline const std::string kDateTimeIri = std::string(kOdrlNs) + "dateTime";

  const Request& request_;
  const State& state_;
  std::optional<Value> now_;
};

}  // namespace

bool permits(const Policy& policy, const Request& request, const State& state) {
  return Evaluation<false>(request, state).fast(policy);
}

Decision decide(const Policy& policy, const Request& request, const State& state) {
  Decision d = Evaluation<true>(request, state).full(policy);
  return d;
}

}  // namespace dsx::policy
