#pragma once
// The inputs of one decision besides the policy: the Request (who wants to do what to which
// asset, with the values it declares) and the State of the world (the time, collection
// membership, duty states, measured values). Built by parse_request / parse_state
// (policy/parser.h) or directly by the broker; plain values, safe to share read-only.

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/time.h"
#include "policy/value.h"

namespace dsx::policy {

// The value supplied for one left operand: one value, or several (an array).
struct OperandValue {
  std::vector<Value> values;
  bool is_list = false;
};

// Values by left-operand IRI. Small and flat: a request declares a handful of values.
class Context {
 public:
  void set(std::string left_operand_iri, OperandValue value);
  const OperandValue* find(std::string_view left_operand_iri) const;
  const std::vector<std::pair<std::string, OperandValue>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, OperandValue>> entries_;
};

class Request {
 public:
  // Full IRIs. `party` or `target` may be empty (then only rules naming none match).
  Request(std::string party, std::string action, std::string target);

  const std::string& party() const { return party_; }
  const std::string& action() const { return action_chain_.front(); }
  const std::string& target() const { return target_; }
  // The action, then every action it is odrl:includedIn, nearest first (read, use).
  const std::vector<std::string>& action_chain() const { return action_chain_; }

  Context& context() { return context_; }
  const Context& context() const { return context_; }

 private:
  std::string party_;
  std::vector<std::string> action_chain_;
  std::string target_;
  Context context_;
};

enum class DutyState { kUnset, kFulfilled, kViolated };
std::string_view duty_state_name(DutyState s);

struct State {
  Instant now;  // the clock for dateTime
  // Collection membership: member IRI -> collection IRIs (by @id or by source). Transitive.
  std::unordered_map<std::string, std::vector<std::string>> part_of;
  // For isA: IRI -> its types.
  std::unordered_map<std::string, std::vector<std::string>> types;
  // Duty states by the duty's uid; absent means unset.
  std::unordered_map<std::string, DutyState> duties;
  // Measured values; they win over the request's context.
  Context values;
};

}  // namespace dsx::policy
