#pragma once
// Deciding a request against a compiled policy (the decision rule of
// ../shared/spec/policy-eval.md). Pure functions of their arguments: no clock (the time is
// State::now), no I/O, no shared state, so any number of threads may evaluate the same Policy at
// once.
//
// `permits` is the fast path (no strings built, no allocation in the common case); `decide`
// returns the same decision with every rule's outcome and the reasons behind it. The two share
// one implementation, so they cannot disagree.

#include <string>
#include <vector>

#include "policy/policy.h"
#include "policy/request.h"

namespace dsx::policy {

struct RuleOutcome {
  std::string rule;  // uid, or the rule's JSON path
  RuleKind kind = RuleKind::kPermission;
  bool matched = false;      // target, assignee and action match the request
  bool active = false;       // matched, and its constraints and refinements are satisfied
  bool exercisable = false;  // a permission: active and none of its due duties is unfulfilled
  DutyState state = DutyState::kUnset;  // a duty, obligation, remedy or consequence
  // Why the rule is in this state: what did not match or was not satisfied; for an active
  // prohibition or a due duty, the constraints that made it apply.
  std::vector<std::string> reasons;
  std::vector<RuleOutcome> duties;  // duties of a permission, remedies, consequences
};

struct Decision {
  bool permit = false;
  std::string policy;                // the policy's uid
  std::vector<std::string> reasons;  // the decision in a sentence or two
  std::vector<RuleOutcome> rules;    // permissions, prohibitions, obligations, in policy order
};

bool permits(const Policy& policy, const Request& request, const State& state);
Decision decide(const Policy& policy, const Request& request, const State& state);

// Whether the request could be permitted once the values it leaves out are known: constraints
// that cannot be decided (no value, or values that do not compare) are read the permissive way
// instead of the restrictive one. The catalog uses it to hide an offer from a participant only
// when what is already known rules the offer out (another country, not a member, expired).
bool could_permit(const Policy& policy, const Request& request, const State& state);

}  // namespace dsx::policy
