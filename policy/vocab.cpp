#include "policy/vocab.h"

#include <algorithm>
#include <array>
#include <utility>

namespace dsx::policy {
namespace {

using Pair = std::pair<std::string_view, std::string_view>;

// odrl:includedIn, from the ODRL 2.2 vocabulary (ODRL22.ttl); local names in the ODRL namespace.
// Sorted by the first element. odrl:use and odrl:transfer are the roots.
constexpr std::array<Pair, 40> kIncludedIn{{
    {"acceptTracking", "use"}, {"aggregate", "use"},
    {"annotate", "use"},       {"anonymize", "use"},
    {"archive", "use"},        {"attribute", "use"},
    {"compensate", "use"},     {"concurrentUse", "use"},
    {"delete", "use"},         {"derive", "use"},
    {"digitize", "use"},       {"display", "play"},
    {"distribute", "use"},     {"ensureExclusivity", "use"},
    {"execute", "use"},        {"extract", "reproduce"},
    {"give", "transfer"},      {"grantUse", "use"},
    {"include", "use"},        {"index", "use"},
    {"inform", "use"},         {"install", "use"},
    {"modify", "use"},         {"move", "use"},
    {"nextPolicy", "use"},     {"obtainConsent", "use"},
    {"play", "use"},           {"present", "use"},
    {"print", "use"},          {"read", "use"},
    {"reproduce", "use"},      {"reviewPolicy", "use"},
    {"sell", "transfer"},      {"stream", "use"},
    {"synchronize", "use"},    {"textToSpeech", "use"},
    {"transform", "use"},      {"translate", "use"},
    {"uninstall", "use"},      {"watermark", "use"},
}};

// Deprecated actions with a replacement (skos:exactMatch in ODRL22.ttl). Sorted.
constexpr std::array<Pair, 8> kReplacedBy{{
    {"append", "modify"},
    {"appendTo", "modify"},
    {"copy", "reproduce"},
    {"export", "transform"},
    {"license", "grantUse"},
    {"pay", "compensate"},
    {"write", "modify"},
    {"writeTo", "modify"},
}};

constexpr std::array<std::pair<std::string_view, Operator>, 12> kOperators{{
    {"eq", Operator::kEq},
    {"gt", Operator::kGt},
    {"gteq", Operator::kGteq},
    {"hasPart", Operator::kHasPart},
    {"isA", Operator::kIsA},
    {"isAllOf", Operator::kIsAllOf},
    {"isAnyOf", Operator::kIsAnyOf},
    {"isNoneOf", Operator::kIsNoneOf},
    {"isPartOf", Operator::kIsPartOf},
    {"lt", Operator::kLt},
    {"lteq", Operator::kLteq},
    {"neq", Operator::kNeq},
}};

// Left operands whose right operand has a fixed type in the ODRL 2.2 vocabulary.
constexpr std::array<std::pair<std::string_view, OperandType>, 8> kOperandTypes{{
    {"count", OperandType::kNumber},
    {"dateTime", OperandType::kTime},
    {"delayPeriod", OperandType::kDuration},
    {"elapsedTime", OperandType::kDuration},
    {"meteredTime", OperandType::kDuration},
    {"payAmount", OperandType::kNumber},
    {"percentage", OperandType::kNumber},
    {"timeInterval", OperandType::kDuration},
}};

template <typename Table>
auto lookup(const Table& table, std::string_view key) -> const typename Table::value_type* {
  auto it = std::lower_bound(table.begin(), table.end(), key,
                             [](const auto& entry, std::string_view k) { return entry.first < k; });
  return it != table.end() && it->first == key ? &*it : nullptr;
}

// The local name of an IRI in the ODRL namespace, or nullopt.
std::optional<std::string_view> odrl_local(std::string_view iri) {
  if (iri.size() <= kOdrlNs.size() || iri.substr(0, kOdrlNs.size()) != kOdrlNs) return std::nullopt;
  return iri.substr(kOdrlNs.size());
}

// Full IRIs of the parents, so that parent_action can return a view into static storage.
struct ParentIris {
  std::array<std::string, kIncludedIn.size()> iris;
  ParentIris() {
    for (size_t i = 0; i < kIncludedIn.size(); ++i)
      iris[i] = std::string(kOdrlNs) + std::string(kIncludedIn[i].second);
  }
};

}  // namespace

std::optional<Operator> operator_from_iri(std::string_view iri) {
  auto local = odrl_local(iri);
  if (!local) return std::nullopt;
  const auto* entry = lookup(kOperators, *local);
  if (!entry) return std::nullopt;
  return entry->second;
}

std::string_view operator_name(Operator op) {
  for (const auto& [name, o] : kOperators)
    if (o == op) return name;
  return "?";
}

bool is_ordering(Operator op) {
  return op == Operator::kLt || op == Operator::kLteq || op == Operator::kGt ||
         op == Operator::kGteq;
}

bool is_set_operator(Operator op) {
  return op == Operator::kIsA || op == Operator::kHasPart || op == Operator::kIsPartOf ||
         op == Operator::kIsAllOf || op == Operator::kIsAnyOf || op == Operator::kIsNoneOf;
}

OperandType left_operand_type(std::string_view iri) {
  auto local = odrl_local(iri);
  if (!local) return OperandType::kAny;
  const auto* entry = lookup(kOperandTypes, *local);
  return entry ? entry->second : OperandType::kAny;
}

std::string canonical_action(std::string_view iri) {
  if (auto local = odrl_local(iri)) {
    if (const auto* entry = lookup(kReplacedBy, *local))
      return std::string(kOdrlNs) + std::string(entry->second);
  }
  return std::string(iri);
}

std::optional<std::string_view> parent_action(std::string_view canonical_iri) {
  static const ParentIris parents;  // immutable after first use (thread-safe static init)
  auto local = odrl_local(canonical_iri);
  if (!local) return std::nullopt;
  const auto* entry = lookup(kIncludedIn, *local);
  if (!entry) return std::nullopt;
  return std::string_view(parents.iris[static_cast<size_t>(entry - kIncludedIn.data())]);
}

std::string_view display_term(std::string_view iri) {
  auto local = odrl_local(iri);
  return local ? *local : iri;
}

}  // namespace dsx::policy
