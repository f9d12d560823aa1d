#pragma once
// The ODRL 2.2 vocabulary as the engine needs it: namespaces, the action hierarchy
// (odrl:includedIn, with deprecated actions mapped to their replacements), the operators and the
// left operands whose values have a fixed type. Static tables only; every function is pure and
// thread-safe.

#include <optional>
#include <string>
#include <string_view>

namespace dsx::policy {

inline constexpr std::string_view kOdrlNs = "http://www.w3.org/ns/odrl/2/";
inline constexpr std::string_view kXsdNs = "http://www.w3.org/2001/XMLSchema#";
inline constexpr std::string_view kRdfNs = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
// dsx's own terms (participant attributes the broker supplies, e.g. dsx:organisation).
inline constexpr std::string_view kDsxNs = "https://w3id.org/dsx/policy#";

enum class Operator {
  kEq,
  kNeq,
  kLt,
  kLteq,
  kGt,
  kGteq,
  kIsA,
  kHasPart,
  kIsPartOf,
  kIsAllOf,
  kIsAnyOf,
  kIsNoneOf,
};

// The operator named by a full IRI (odrl:eq ...), or nullopt.
std::optional<Operator> operator_from_iri(std::string_view iri);
std::string_view operator_name(Operator op);  // "eq", "isAnyOf", ...
bool is_ordering(Operator op);                // lt, lteq, gt, gteq
bool is_set_operator(Operator op);            // isAllOf, isAnyOf, isNoneOf, isA, hasPart, isPartOf

// The type a known left operand's values must have, per the ODRL 2.2 vocabulary.
enum class OperandType { kAny, kTime, kDuration, kNumber };
OperandType left_operand_type(std::string_view iri);

// Actions. `canonical_action` maps a deprecated action to its replacement (odrl:write ->
// odrl:modify, odrl:copy -> odrl:reproduce, ...) and returns any other IRI unchanged.
// `parent_action` is the action a canonical action is odrl:includedIn, or nullopt at the top
// (odrl:use, odrl:transfer) and for actions outside the vocabulary.
std::string canonical_action(std::string_view iri);
std::optional<std::string_view> parent_action(std::string_view canonical_iri);

// Shortens an IRI in the ODRL namespace to its local name for messages ("purpose"); others are
// returned whole.
std::string_view display_term(std::string_view iri);

}  // namespace dsx::policy
