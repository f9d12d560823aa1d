#pragma once
// Reading policies, requests and states from JSON (the formats of
// ../shared/spec/policy-eval.md). Everything is validated before it is used: malformed input is
// an error Status whose message starts with the JSON path of the problem, e.g.
//   permission[0].constraint[1].operator: unknown operator "greaterThan"
// and never an exception or a crash. Stateless functions; safe to call from any thread.

#include <nlohmann/json_fwd.hpp>
#include <string_view>

#include "common/status.h"
#include "common/time.h"
#include "policy/policy.h"
#include "policy/request.h"

namespace dsx::policy {

// An ODRL 2.2 policy in JSON-LD compact form.
Result<Policy> parse_policy(const nlohmann::json& doc);
// Same, from text; invalid JSON is reported with its byte offset.
Result<Policy> parse_policy_text(std::string_view text);

// A request; IRIs are expanded with the policy's prefixes, so that a request may use the same
// spellings as the policy it is evaluated against.
Result<Request> parse_request(const nlohmann::json& doc, const Prefixes& prefixes);
// The state of the world; `default_now` is used when it has no currentTime.
Result<State> parse_state(const nlohmann::json& doc, const Prefixes& prefixes, Instant default_now);

}  // namespace dsx::policy
