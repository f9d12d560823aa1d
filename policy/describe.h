#pragma once
// Renderings of the compiled model and of decisions: the normalised policy that
// `dsx policy check` prints, the decision JSON of `dsx policy eval`, and the readable
// explanation of `--explain`. Pure functions; thread-safe.

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "policy/evaluator.h"
#include "policy/policy.h"

namespace dsx::policy {

// "purpose isAnyOf [http://example.org/research, http://example.org/education]"; ODRL terms
// shortened to their local names, other IRIs in full.
std::string to_string(const Constraint& c);
std::string to_string(const AtomicConstraint& c);
// A logical constraint names its kind and size only ("or of 300 constraints"): its operands
// are listed separately, so that messages grow linearly with the policy.
std::string to_string(const LogicalConstraint& c);

// The policy as the engine understood it: full IRIs, typed values, inherited properties
// applied to each rule.
nlohmann::json to_json(const Policy& policy);
// The same as indented text, one line per rule, constraint and duty.
std::string describe(const Policy& policy);

// {"decision": "permit"|"deny", "policy": ..., "reasons": [...], "rules": [...]}.
nlohmann::json to_json(const Decision& decision);
// The decision for a reader: the verdict, then each rule and why it did or did not apply.
std::string explain(const Decision& decision);

}  // namespace dsx::policy
