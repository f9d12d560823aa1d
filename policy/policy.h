#pragma once
// The compiled form of an ODRL 2.2 policy. parse_policy (policy/parser.h) builds it once from
// JSON-LD; after that it is never modified, so one Policy may be evaluated from many threads at
// once without locking (hold it as PolicyPtr to share it). Every term is a full IRI, every right
// operand an already-parsed Value: evaluation does no parsing and no IRI expansion.

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "policy/iri.h"
#include "policy/value.h"
#include "policy/vocab.h"

namespace dsx::policy {

struct Constraint;

// leftOperand operator rightOperand.
struct AtomicConstraint {
  std::string id;            // uid / @id; empty when the policy gives none
  std::string left_operand;  // full IRI
  Operator op = Operator::kEq;
  std::vector<Value> right;    // one value, or the members of a set
  bool right_is_list = false;  // the right operand was written as an array
  std::string unit;            // full IRI, or empty
};

// and / or / xone / andSequence over other constraints.
struct LogicalConstraint {
  enum class Kind { kAnd, kOr, kXone, kAndSequence };
  std::string id;
  Kind kind = Kind::kAnd;
  std::vector<Constraint> operands;
};

struct Constraint {
  std::variant<AtomicConstraint, LogicalConstraint> node;
};

// A party or an asset, or a PartyCollection / AssetCollection of them.
struct Entity {
  std::string id;           // full IRI; may be empty for an anonymous collection
  std::string source;       // a collection's odrl:source, or empty
  bool collection = false;  // declared a PartyCollection or AssetCollection
  std::vector<Constraint> refinements;
};

struct Action {
  std::string iri;  // full IRI, deprecated actions replaced (odrl:write -> odrl:modify)
  std::vector<Constraint> refinements;
};

enum class RuleKind { kPermission, kProhibition, kObligation, kDuty, kRemedy, kConsequence };
std::string_view rule_kind_name(RuleKind kind);  // "permission", "duty", ...

struct Rule {
  RuleKind kind = RuleKind::kPermission;
  std::string id;                 // uid / @id, or the rule's JSON path when it has none
  bool has_uid = false;           // id came from the policy (duties can only be fulfilled by uid)
  std::vector<Entity> targets;    // the rule matches when any matches; empty matches any
  std::vector<Entity> assignees;  // likewise
  std::vector<Entity> assigners;  // recorded, not matched
  std::vector<Action> actions;    // likewise
  std::vector<Constraint> constraints;  // all must hold (policy-level ones included)
  // Permission: its duties. Prohibition: its remedies. Duty or obligation: its consequences.
  std::vector<Rule> duties;
};

enum class ConflictStrategy { kPerm, kProhibit, kInvalid };
std::string_view conflict_name(ConflictStrategy c);

struct Policy {
  std::string uid;   // empty when the policy has none
  std::string type;  // full IRI: odrl:Set, odrl:Offer, odrl:Agreement, ...
  // ODRL's default is `invalid`; for one policy it decides like `prohibit` (see docs).
  ConflictStrategy conflict = ConflictStrategy::kInvalid;
  bool conflict_given = false;
  std::vector<Rule> permissions;
  std::vector<Rule> prohibitions;
  std::vector<Rule> obligations;
  Prefixes prefixes;  // from @context; also used to read requests against this policy
};

using PolicyPtr = std::shared_ptr<const Policy>;

}  // namespace dsx::policy
