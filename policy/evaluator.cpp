#include "policy/evaluator.h"

#include <optional>
#include <span>
#include <string_view>
#include <unordered_set>

#include "policy/describe.h"

namespace dsx::policy {
namespace {

// How a constraint that cannot be decided (no value, or values that cannot be compared) is read
// (policy-eval.md rule 5): the more restrictive reading, so a permission's constraint fails, a
// prohibition's or a duty's holds.
enum class Missing { kFails, kHolds };

enum class Truth { kFalse, kTrue, kUnknown };

Missing missing_for(RuleKind kind) {
  return kind == RuleKind::kPermission ? Missing::kFails : Missing::kHolds;
}

// The values a request supplied, for a reason; a long list is cut, so that a reply stays short
// however many values the request declares.
std::string list_text(std::span<const Value> values, bool as_list) {
  if (!as_list && values.size() == 1) return values.front().text();
  constexpr size_t kMaxShown = 8;
  std::string out = "[";
  for (size_t i = 0; i < values.size() && i < kMaxShown; ++i) {
    if (i) out += ", ";
    out += values[i].text();
  }
  if (values.size() > kMaxShown)
    out += ", ... and " + std::to_string(values.size() - kMaxShown) + " more";
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

  // `optimistic`: read undecidable constraints the permissive way (could_permit).
  Evaluation(const Request& request, const State& state, bool optimistic = false)
      : request_(request), state_(state), optimistic_(optimistic) {}

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

  // `member` is `collection`, or belongs to it through the state's partOf facts, followed
  // transitively (breadth-first, each node once, so cycles and long chains stay linear).
  bool part_of(const std::string& member, const std::string& collection) const {
    if (member == collection) return true;
    if (state_.part_of.empty()) return false;
    std::vector<const std::string*> queue{&member};
    std::unordered_set<std::string_view> seen{member};
    for (size_t next = 0; next < queue.size(); ++next) {
      auto it = state_.part_of.find(*queue[next]);
      if (it == state_.part_of.end()) continue;
      for (const std::string& c : it->second) {
        if (c == collection) return true;
        if (seen.insert(c).second) queue.push_back(&c);
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
  //
  // Constraints are decided in three-valued (Kleene) logic: a constraint whose left operand has
  // no value, or whose values cannot be compared, is Unknown, and logical constraints combine
  // Unknown as "could be either" (and: false wins; or: true wins; xone: more than one true is
  // false). Only a whole top-level constraint is resolved, by the rule's restrictive reading
  // (policy-eval.md rule 5): Unknown fails a permission's constraint and satisfies a
  // prohibition's or a duty's. Resolving at the leaves instead would let xone turn the
  // restrictive reading around.

  // The top-level constraint `c`, resolved by `missing`.
  bool holds(const Constraint& c, Missing missing, Reasons* reasons) {
    Truth t = truth(c, reasons);
    if (t != Truth::kUnknown) return t == Truth::kTrue;
    const bool h = (missing == Missing::kHolds) != optimistic_;
    if constexpr (kExplain)
      reasons->push_back(h ? "  ... so it is taken as satisfied (the restrictive reading)"
                           : "  ... so it is taken as not satisfied");
    return h;
  }

  Truth truth(const Constraint& c, Reasons* reasons) {
    if (const auto* a = std::get_if<AtomicConstraint>(&c.node)) return atomic(*a, reasons);
    return logical(std::get<LogicalConstraint>(c.node), reasons);
  }

  // All of `cs` hold. In explain mode every constraint is evaluated so that every failure is
  // reported; otherwise the first failure ends it.
  bool all_hold(const std::vector<Constraint>& cs, Missing missing, Reasons* failures,
                Reasons* successes) {
    bool ok = true;
    for (const Constraint& c : cs) {
      if constexpr (kExplain) {
        // Decide without words first; build the reasons only where they are kept.
        const bool quick =
            Evaluation<false>(request_, state_, optimistic_).holds(c, missing, nullptr);
        ok = ok && quick;
        Reasons* into = quick ? successes : failures;
        if (!into) continue;
        holds(c, missing, into);
      } else {
        if (!holds(c, missing, nullptr)) return false;
      }
    }
    return ok;
  }

  Truth logical(const LogicalConstraint& c, Reasons* reasons) {
    using K = LogicalConstraint::Kind;
    size_t satisfied = 0, unknown = 0;
    Reasons inner;
    for (const Constraint& operand : c.operands) {
      Truth t = truth(operand, kExplain ? &inner : nullptr);
      satisfied += t == Truth::kTrue;
      unknown += t == Truth::kUnknown;
      if constexpr (!kExplain) {
        if (t == Truth::kFalse && (c.kind == K::kAnd || c.kind == K::kAndSequence))
          return Truth::kFalse;
        if (t == Truth::kTrue && c.kind == K::kOr) return Truth::kTrue;
        if (c.kind == K::kXone && satisfied > 1) return Truth::kFalse;
      }
    }
    const size_t n = c.operands.size();
    const size_t unsatisfied = n - satisfied - unknown;
    Truth result = Truth::kFalse;
    switch (c.kind) {
      case K::kAnd:
      case K::kAndSequence:
        result = unsatisfied > 0 ? Truth::kFalse : unknown > 0 ? Truth::kUnknown : Truth::kTrue;
        break;
      case K::kOr:
        result = satisfied > 0 ? Truth::kTrue : unknown > 0 ? Truth::kUnknown : Truth::kFalse;
        break;
      case K::kXone:
        result = satisfied > 1    ? Truth::kFalse
                 : unknown > 0    ? Truth::kUnknown
                 : satisfied == 1 ? Truth::kTrue
                                  : Truth::kFalse;
        break;
    }
    if constexpr (kExplain) {
      std::string head =
          to_string(c) + " " + truth_text(result) + ": " + std::to_string(satisfied) + " hold";
      if (unknown) head += ", " + std::to_string(unknown) + " cannot be decided";
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

  Truth atomic(const AtomicConstraint& c, Reasons* reasons) {
    const LeftValues left = left_value(c.left_operand);
    if (left.values.empty()) {
      if constexpr (kExplain)
        reasons->push_back("constraint " + to_string(c) + " cannot be decided: no value for " +
                           std::string(display_term(c.left_operand)));
      return Truth::kUnknown;
    }
    std::optional<std::string> problem;  // why the values could not be compared
    Truth t = compare_values(c, left, problem);
    if constexpr (kExplain) {
      bool time = c.left_operand == kDateTimeIri;
      std::string r = "constraint " + to_string(c) + " " + truth_text(t) +
                      (time ? " at " : " by ") + list_text(left.values, left.is_list);
      if (problem) r += ": " + *problem;
      reasons->push_back(std::move(r));
    }
    return t;
  }

  static std::string truth_text(Truth t) {
    return t == Truth::kTrue    ? "satisfied"
           : t == Truth::kFalse ? "not satisfied"
                                : "cannot be decided";
  }

  Truth compare_values(const AtomicConstraint& c, const LeftValues& left,
                       std::optional<std::string>& problem) {
    const std::span<const Value> lv = left.values;
    const std::vector<Value>& rv = c.right;
    auto incomparable = [&](const Value& l, const Value& r) {
      if constexpr (kExplain)
        problem = "a " + std::string(kind_name(l.kind())) + " cannot be compared with a " +
                  std::string(kind_name(r.kind()));
      return Truth::kUnknown;
    };
    switch (c.op) {
      case Operator::kEq:
      case Operator::kNeq:
      case Operator::kLt:
      case Operator::kLteq:
      case Operator::kGt:
      case Operator::kGteq: {
        if (left.is_list) {
          // policy-eval.md rule 4: a list on the left fails these operators. It cannot be
          // decided rather than false, so that wrapping a value in a list never lifts a
          // prohibition or makes a duty not due.
          if constexpr (kExplain)
            problem = std::string(operator_name(c.op)) + " compares one value, not a list";
          return Truth::kUnknown;
        }
        auto order = compare(lv.front(), rv.front());
        if (!order) return incomparable(lv.front(), rv.front());
        if (is_ordering(c.op) && *order == std::partial_ordering::unordered) {
          if constexpr (kExplain) problem = "the two values cannot be ordered";
          return Truth::kUnknown;
        }
        bool h = false;
        switch (c.op) {
          case Operator::kEq:
            h = *order == std::partial_ordering::equivalent;
            break;
          case Operator::kNeq:
            h = *order != std::partial_ordering::equivalent;
            break;
          case Operator::kLt:
            h = *order == std::partial_ordering::less;
            break;
          case Operator::kLteq:
            h = *order == std::partial_ordering::less ||
                *order == std::partial_ordering::equivalent;
            break;
          case Operator::kGt:
            h = *order == std::partial_ordering::greater;
            break;
          default:
            h = *order == std::partial_ordering::greater ||
                *order == std::partial_ordering::equivalent;
        }
        return h ? Truth::kTrue : Truth::kFalse;
      }
      case Operator::kIsAnyOf:
      case Operator::kIsNoneOf: {
        // Some left value equals some right value; Unknown when none does but a pair could not
        // be compared.
        const Value* bad_l = nullptr;
        const Value* bad_r = nullptr;
        bool found = false;
        for (const Value& l : lv) {
          for (const Value& r : rv) {
            auto order = compare(l, r);
            if (!order) {
              bad_l = &l;
              bad_r = &r;
            } else if (*order == std::partial_ordering::equivalent) {
              found = true;
            }
          }
        }
        if (!found && bad_l) return incomparable(*bad_l, *bad_r);
        return found == (c.op == Operator::kIsAnyOf) ? Truth::kTrue : Truth::kFalse;
      }
      case Operator::kIsAllOf: {
        // Every right value is among the left values.
        Truth result = Truth::kTrue;
        for (const Value& r : rv) {
          bool found = false;
          const Value* bad = nullptr;
          for (const Value& l : lv) {
            auto order = compare(l, r);
            if (!order) bad = &l;
            found = found || (order && *order == std::partial_ordering::equivalent);
          }
          if (found) continue;
          if (!bad) return Truth::kFalse;
          result = incomparable(*bad, r);
        }
        return result;
      }
      case Operator::kIsPartOf:  // every left value is part of one of the right values
        for (const Value& l : lv) {
          bool found = false;
          for (const Value& r : rv)
            found = found || part_of(l.text(), r.text());
          if (!found) return Truth::kFalse;
        }
        return Truth::kTrue;
      case Operator::kHasPart:  // every left value has every right value as a part
        for (const Value& l : lv)
          for (const Value& r : rv)
            if (!part_of(r.text(), l.text())) return Truth::kFalse;
        return Truth::kTrue;
      case Operator::kIsA:  // every left value is an instance of one of the right values
        for (const Value& l : lv) {
          bool found = false;
          for (const Value& r : rv)
            found = found || is_a(l.text(), r.text());
          if (!found) return Truth::kFalse;
        }
        return Truth::kTrue;
    }
    return Truth::kFalse;
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
    bool action_ok = rule.actions.empty();
    for (const Action& a : rule.actions)
      action_ok = action_ok || action_matches(a);
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
    if constexpr (kExplain) out->matched = matched;
    if (!matched) return false;

    Reasons successes;
    Reasons* why_applies = kExplain && rule.kind != RuleKind::kPermission ? &successes : nullptr;
    bool active = all_hold(rule.constraints, missing, reasons, why_applies);
    if (kExplain || active)
      active = refinements_hold(rule, missing, reasons, why_applies) && active;
    if constexpr (kExplain) {
      out->active = active;
      if (active) out->reasons.insert(out->reasons.end(), successes.begin(), successes.end());
    }
    return active;
  }

  // When several of the rule's actions cover the request (read and use both cover read), the
  // rule applies if the refinements of any one of them hold.
  bool refinements_hold(const Rule& rule, Missing missing, Reasons* failures, Reasons* successes) {
    Reasons fail_reasons;
    for (const Action& a : rule.actions) {
      if (!action_matches(a)) continue;
      if constexpr (kExplain) {
        Reasons ok_reasons;
        if (all_hold(a.refinements, missing, &fail_reasons, successes ? &ok_reasons : nullptr)) {
          if (successes) successes->insert(successes->end(), ok_reasons.begin(), ok_reasons.end());
          return true;
        }
      } else {
        if (all_hold(a.refinements, missing, nullptr, nullptr)) return true;
      }
    }
    if (rule.actions.empty()) return true;
    if constexpr (kExplain)
      failures->insert(failures->end(), fail_reasons.begin(), fail_reasons.end());
    return false;
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
  const bool optimistic_ = false;
  std::optional<Value> now_;
};

}  // namespace

bool permits(const Policy& policy, const Request& request, const State& state) {
  return Evaluation<false>(request, state).fast(policy);
}

bool could_permit(const Policy& policy, const Request& request, const State& state) {
  return Evaluation<false>(request, state, /*optimistic=*/true).fast(policy);
}

Decision decide(const Policy& policy, const Request& request, const State& state) {
  Decision d = Evaluation<true>(request, state).full(policy);
  return d;
}

}  // namespace dsx::policy
