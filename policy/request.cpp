#include "policy/request.h"

#include "policy/vocab.h"

namespace dsx::policy {

void Context::set(std::string left_operand_iri, OperandValue value) {
  for (auto& [key, v] : entries_) {
    if (key == left_operand_iri) {
      v = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(left_operand_iri), std::move(value));
}

const OperandValue* Context::find(std::string_view left_operand_iri) const {
  for (const auto& [key, v] : entries_)
    if (key == left_operand_iri) return &v;
  return nullptr;
}

Request::Request(std::string party, std::string action, std::string target)
    : party_(std::move(party)), target_(std::move(target)) {
  action_chain_.push_back(canonical_action(action));
  // The includedIn hierarchy is a tree of depth <= 3; the bound guards against a table mistake.
  for (int depth = 0; depth < 8; ++depth) {
    auto parent = parent_action(action_chain_.back());
    if (!parent) break;
    action_chain_.emplace_back(*parent);
  }
}

std::string_view duty_state_name(DutyState s) {
  switch (s) {
    case DutyState::kUnset:
      return "unset";
    case DutyState::kFulfilled:
      return "fulfilled";
    case DutyState::kViolated:
      return "violated";
  }
  return "unset";
}

}  // namespace dsx::policy
