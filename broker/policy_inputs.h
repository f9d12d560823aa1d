#pragma once
// What the broker tells the policy engine about a participant: the left-operand values read
// from its verified certificate (country, roles, memberships, organisation, attributes; see
// docs/policy-language.md, "Values the broker supplies"), the values the participant declares
// itself (purpose, context), and the state of the world (the broker's clock, memberships).
// Values from the certificate always win over declared ones. Pure functions; thread-safe.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "certs/identity.h"
#include "common/status.h"
#include "common/time.h"
#include "policy/evaluator.h"
#include "policy/request.h"

namespace dsx::broker {

// A request by `who` to `use` `target`, with the certificate's values and the declared ones.
// `declared`: a JSON object of left operands (any spelling) to values; `purpose`: an IRI or "".
// An error names the declared value that could not be read.
Result<policy::Request> participant_request(const certs::Identity& who, const std::string& target,
                                            const std::string& purpose,
                                            const nlohmann::json& declared);
policy::State participant_state(const certs::Identity& who, Instant now);

// A decision as one list of sentences: the verdict's reasons, then each rule's
// ("permission[0]: constraint purpose eq ... not satisfied by ...").
std::vector<std::string> decision_reasons(const policy::Decision& decision);

}  // namespace dsx::broker
