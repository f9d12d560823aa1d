#include "policy/parser.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "policy/describe.h"
#include "test_util.h"

using namespace dsx::policy;
using namespace dsx::policy::testing;

namespace {

// A policy with one permission whose constraint is `constraint` (JSON text).
std::string with_constraint(const std::string& constraint) {
  return R"({"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": "urn:p",
             "permission": [{"target": "urn:a", "action": "read", "constraint": [)" +
         constraint + "]}]}";
}

}  // namespace

TEST_CASE("malformed policies name the JSON path of the problem", "[parser]") {
  struct Case {
    std::string policy;
    std::string message;
  };
  const std::vector<Case> cases = {
      {with_constraint(R"({"leftOperand": "count", "operator": "greaterThan", "rightOperand": 5})"),
       "permission[0].constraint[0].operator: unknown operator \"greaterThan\""},
      {with_constraint(R"({"operator": "eq", "rightOperand": 5})"),
       "permission[0].constraint[0].leftOperand: missing"},
      {with_constraint(R"({"leftOperand": "count", "rightOperand": 5})"),
       "permission[0].constraint[0].operator: missing"},
      {with_constraint(R"({"leftOperand": "count", "operator": "eq"})"),
       "permission[0].constraint[0].rightOperand: missing"},
      {with_constraint(
           R"({"leftOperand": "purpose", "operator": "lt", "rightOperand": {"@id": "urn:x"}})"),
       "permission[0].constraint[0].rightOperand: lt needs a number, date/time or duration, not "
       "the IRI"},
      {with_constraint(R"({"leftOperand": "ex:level", "operator": "gt", "rightOperand": "high"})"),
       "permission[0].constraint[0].rightOperand: gt needs a number"},
      {with_constraint(R"({"leftOperand": "dateTime", "operator": "lt", "rightOperand": 5})"),
       "permission[0].constraint[0].rightOperand: dateTime needs an xsd:dateTime or xsd:date"},
      {with_constraint(R"({"leftOperand": "elapsedTime", "operator": "lt", "rightOperand": 5})"),
       "elapsedTime needs an xsd:duration"},
      {with_constraint(R"({"leftOperand": "count", "operator": "lt", "rightOperand": "PT1H"})"),
       "count needs a number"},
      {with_constraint(
           R"({"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": "2024-13-45T00:00:00Z", "@type": "xsd:dateTime"}})"),
       "permission[0].constraint[0].rightOperand.@value: \"2024-13-45T00:00:00Z\" is not a valid "
       "xsd:dateTime"},
      {with_constraint(R"({"leftOperand": "count", "operator": "eq", "rightOperand": [1, 2]})"),
       "eq compares with one value, got a set of 2"},
      {with_constraint(R"({"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": []})"),
       "permission[0].constraint[0].rightOperand: empty set"},
      {with_constraint(R"({"and": {"leftOperand": "count"}})"),
       "permission[0].constraint[0].and: expected an array of constraints"},
      {with_constraint(
           R"({"or": [{"leftOperand": "count", "operator": "lt", "rightOperand": 1}, {"leftOperand": "count", "operator": "??", "rightOperand": 1}]})"),
       "permission[0].constraint[0].or[1].operator: unknown operator"},
      {with_constraint(R"({"and": [], "or": []})"), "exactly one of and, or, xone, andSequence"},
      {with_constraint(
           R"({"leftOperand": "count", "operator": "eq", "rightOperandReference": "urn:x"})"),
       "rightOperandReference is not supported"},
      {with_constraint(R"("count < 5")"),
       "permission[0].constraint[0]: a constraint must be an object"},
      {with_constraint(R"({"leftOperand": "count", "operator": "eq", "rightOperand": null})"),
       "permission[0].constraint[0].rightOperand: null is not a value"},
      {R"({"permission": [{"action": "read", "duty": [{"action": "compensate", "constraint": [{"leftOperand": "x", "operator": "approx", "rightOperand": 1}]}]}]})",
       "permission[0].duty[0].constraint[0].operator: unknown operator \"approx\""},
      {R"({"permission": [{"action": "read"}], "conflict": "maybe"})",
       "conflict: unknown conflict strategy \"maybe\""},
      {R"({"@type": "Contract", "permission": [{"action": "read"}]})",
       "@type: unknown policy type \"Contract\""},
      {R"({"uid": "urn:p"})",
       "(root): a policy needs at least one permission, prohibition or obligation"},
      {R"([1, 2])", "(root): a policy must be a JSON object"},
      {R"({"permission": [{"action": 5}]})",
       "permission[0].action: expected an action IRI or object"},
      {R"({"permission": [{"action": {"refinement": []}}]})",
       "permission[0].action: an action object needs rdf:value"},
      {R"({"permission": [{"action": "read", "target": {"@type": "AssetCollection"}}]})",
       "permission[0].target: needs an @id"},
      {R"({"prohibition": [{"action": "read", "duty": [{"action": "pay"}]}]})",
       "prohibition[0].duty: duty is not allowed on a prohibition"},
      {R"({"permission": [{"action": "read", "remedy": [{"action": "pay"}]}]})",
       "permission[0].remedy: remedy is not allowed on a permission"},
      {R"({"inheritFrom": "urn:parent", "permission": [{"action": "read"}]})",
       "inheritFrom is not supported"},
      {R"({"permission": {"action": "read", "assignee": ""}})",
       "permission.assignee: expected an IRI"},
      {R"({"permission": [{"action": "read", "constraint": {"leftOperand": "count", "operator": "lt", "rightOperand": {"@value": "x", "@type": "xsd:integer"}}}]})",
       "permission[0].constraint.rightOperand.@value: \"x\" is not a valid xsd:integer"},
  };
  for (const Case& c : cases) {
    INFO(c.policy);
    std::string message = policy_error(c.policy);
    INFO(message);
    CHECK(message.find(c.message) != std::string::npos);
  }
}

TEST_CASE("invalid JSON is reported with its byte offset", "[parser]") {
  auto p = parse_policy_text("{\"permission\": [");
  REQUIRE_FALSE(p);
  CHECK(p.status().message().find("invalid JSON at byte") == 0);
}

TEST_CASE("deep nesting is refused, not followed", "[parser]") {
  std::string c = R"({"leftOperand": "count", "operator": "lt", "rightOperand": 1})";
  for (int i = 0; i < 40; ++i)
    c = R"({"and": [)" + c + "]}";  // within the JSON depth limit
  std::string message = policy_error(with_constraint(c));
  CHECK(message.find("nested too deeply") != std::string::npos);
}

TEST_CASE("the three spellings of a term mean the same", "[parser]") {
  Policy compact = policy_from(with_constraint(
      R"({"leftOperand": "purpose", "operator": "eq", "rightOperand": {"@id": "ex:research"}})"));
  Policy prefixed = policy_from(
      R"({"@context": ["http://www.w3.org/ns/odrl.jsonld", {"ex": "http://example.org/"}],
      "uid": "urn:p", "odrl:permission": [{"odrl:target": "urn:a", "action": "odrl:read",
      "constraint": [{"leftOperand": "odrl:purpose", "operator": "odrl:eq", "rightOperand": {"@id": "ex:research"}}]}]})");
  Policy full = policy_from(R"({"@context": {"ex": "http://example.org/"}, "uid": "urn:p",
      "http://www.w3.org/ns/odrl/2/permission": [{"target": "urn:a", "action": "http://www.w3.org/ns/odrl/2/read",
      "constraint": [{"leftOperand": "http://www.w3.org/ns/odrl/2/purpose", "operator": "http://www.w3.org/ns/odrl/2/eq",
                      "rightOperand": {"@id": "http://example.org/research"}}]}]})");
  auto rule = [](const Policy& p) {
    auto r = to_json(p)["permission"][0];
    r.erase("path");  // the path names the spelling the policy used
    return r;
  };
  CHECK(rule(prefixed) == rule(full));
  CHECK(rule(prefixed)["action"][0]["action"] == "http://www.w3.org/ns/odrl/2/read");
  CHECK(rule(prefixed)["constraint"][0]["leftOperand"] == "http://www.w3.org/ns/odrl/2/purpose");
  // Without an "ex" prefix the compact form keeps "ex:research" as it is.
  CHECK(rule(compact)["constraint"][0]["rightOperand"]["@id"] == "ex:research");
}

TEST_CASE("policy-level properties are inherited by every rule", "[parser]") {
  Policy p = policy_from(R"({"uid": "urn:p", "target": "urn:data", "assigner": "urn:provider",
      "assignee": "urn:alice", "action": "use",
      "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "urn:research"}],
      "permission": [{"uid": "urn:r1"}, {"uid": "urn:r2", "target": "urn:other", "action": "read"}],
      "prohibition": [{"uid": "urn:r3"}]})");
  REQUIRE(p.permissions.size() == 2);
  CHECK(p.permissions[0].targets.at(0).id == "urn:data");
  CHECK(p.permissions[0].assignees.at(0).id == "urn:alice");
  CHECK(p.permissions[0].actions.at(0).iri == "http://www.w3.org/ns/odrl/2/use");
  CHECK(p.permissions[0].constraints.size() == 1);
  CHECK(p.permissions[1].targets.at(0).id == "urn:other");
  CHECK(p.permissions[1].actions.at(0).iri == "http://www.w3.org/ns/odrl/2/read");
  CHECK(p.prohibitions.at(0).targets.at(0).id == "urn:data");
}

TEST_CASE("deprecated actions become their replacements", "[parser]") {
  Policy p = policy_from(R"({"permission": [{"action": ["write", "odrl:copy", "pay"]}]})");
  const auto& actions = p.permissions.at(0).actions;
  REQUIRE(actions.size() == 3);
  CHECK(actions[0].iri == "http://www.w3.org/ns/odrl/2/modify");
  CHECK(actions[1].iri == "http://www.w3.org/ns/odrl/2/reproduce");
  CHECK(actions[2].iri == "http://www.w3.org/ns/odrl/2/compensate");
}

TEST_CASE("right operands are typed once, at parse time", "[parser]") {
  Policy p = policy_from(with_constraint(R"({"and": [
      {"leftOperand": "count", "operator": "lteq", "rightOperand": {"@value": "5", "@type": "xsd:integer"}},
      {"leftOperand": "elapsedTime", "operator": "lt", "rightOperand": "PT2H"},
      {"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": "2018-01-01", "@type": "xsd:date"}},
      {"leftOperand": "payAmount", "operator": "eq", "rightOperand": "5.00", "dataType": "xsd:decimal"},
      {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["de", {"@id": "urn:iso:3166:fr"}]}]})"));
  const auto& ops =
      std::get<LogicalConstraint>(p.permissions.at(0).constraints.at(0).node).operands;
  auto right = [&](size_t i) { return std::get<AtomicConstraint>(ops.at(i).node).right; };
  CHECK(right(0).at(0).kind() == Value::Kind::kNumber);
  CHECK(right(1).at(0).kind() == Value::Kind::kDuration);
  CHECK(right(2).at(0).kind() == Value::Kind::kTime);
  CHECK(right(3).at(0).kind() == Value::Kind::kNumber);
  CHECK(right(4).at(0).text() == "urn:iso:3166:DE");
  CHECK(right(4).at(1).text() == "urn:iso:3166:FR");
}

TEST_CASE("requests and states are validated with paths", "[parser]") {
  Policy p = policy_from(R"({"permission": [{"action": "read"}]})");
  auto request_error = [&](const char* text) {
    auto r = parse_request(nlohmann::json::parse(text), p.prefixes);
    REQUIRE_FALSE(r);
    return r.status().message();
  };
  CHECK(request_error(R"({"party": "urn:a"})").find("action: missing") == 0);
  CHECK(request_error(R"({"action": "read", "party": 5})").find("party: expected an IRI") == 0);
  CHECK(request_error(R"({"action": "read", "context": {"purpose": {"x": 1}}})")
            .find("context.purpose: expected a value") == 0);
  CHECK(request_error(R"({"action": "read", "context": {"purpose": [["a"]]}})")
            .find("context.purpose[0]: nested arrays") == 0);
  CHECK(request_error(R"([])").find("(root): a request must be a JSON object") == 0);

  auto state_error = [&](const char* text) {
    auto s = parse_state(nlohmann::json::parse(text), p.prefixes, dsx::Instant{});
    REQUIRE_FALSE(s);
    return s.status().message();
  };
  CHECK(state_error(R"({"duties": {"urn:d": "done"}})")
            .find("duties.urn:d: unknown duty state \"done\"") == 0);
  CHECK(state_error(R"({"currentTime": "yesterday"})")
            .find("currentTime: expected an xsd:dateTime") == 0);
  CHECK(state_error(R"({"partOf": {"urn:a": [5]}})").find("partOf.urn:a[0]: expected an IRI") == 0);
  CHECK(state_error(R"({"values": []})").find("values: expected an object") == 0);
}

TEST_CASE("describe shows what the engine understood", "[parser]") {
  Policy p = policy_from(
      R"({"@context": ["http://www.w3.org/ns/odrl.jsonld", {"ex": "http://example.org/"}],
      "@type": "Offer", "uid": "ex:p", "permission": [{"uid": "ex:r", "target": "ex:data", "action": "use",
      "constraint": [{"leftOperand": "purpose", "operator": "isAnyOf", "rightOperand": [{"@id": "ex:research"}]}],
      "duty": [{"uid": "ex:pay", "action": "compensate"}]}]})");
  std::string text = describe(p);
  CHECK(text.find("policy http://example.org/p (Offer, conflict invalid by default)") !=
        std::string::npos);
  CHECK(text.find("constraint purpose isAnyOf [http://example.org/research]") != std::string::npos);
  CHECK(text.find("duty http://example.org/pay") != std::string::npos);
}

TEST_CASE("JSON nested deeper than any policy is refused before it is parsed", "[parser]") {
  std::string deep(5000, '[');
  deep += std::string(5000, ']');
  auto p = parse_policy_text(deep);
  REQUIRE_FALSE(p);
  CHECK(p.status().message() == "invalid JSON at byte 100: nested deeper than 100 levels");
  // Brackets inside strings do not count.
  auto q = parse_policy_text(R"({"uid": ")" + std::string(500, '[') +
                             R"(", "permission": {"action": "read"}})");
  CHECK(q);
}

TEST_CASE("an empty array is no value, except where no value would widen a rule", "[parser]") {
  // As EDC writes them: empty prohibition, obligation and constraint lists.
  Policy p = policy_from(R"({"@context": {"odrl": "http://www.w3.org/ns/odrl/2/"},
      "odrl:permission": [{"odrl:action": {"@id": "odrl:use"}, "odrl:constraint": [], "odrl:duty": []}],
      "odrl:prohibition": [], "odrl:obligation": []})");
  CHECK(p.permissions.size() == 1);
  CHECK(p.prohibitions.empty());
  CHECK(policy_error(R"({"permission": [{"action": []}]})") ==
        "permission[0].action: empty array: leave the property out, or name at least one");
  CHECK(policy_error(R"({"permission": [{"action": "read", "target": []}]})")
            .find("permission[0].target: empty array") == 0);
  CHECK(policy_error(R"({"permission": [], "prohibition": []})").find("at least one permission") !=
        std::string::npos);
}

TEST_CASE("a small document cannot make the engine hold millions of values", "[parser]") {
  // One policy-level constraint of 2,000 values copied into 100 rules.
  std::string values;
  for (int i = 0; i < 2000; ++i)
    values += (i ? "," : "") + std::to_string(i);
  std::string rules;
  for (int i = 0; i < 100; ++i)
    rules += std::string(i ? "," : "") + "{}";
  std::string message = policy_error(R"({"action": "read", "constraint": [{"leftOperand": "count",
      "operator": "isAnyOf", "rightOperand": [)" +
                                     values + R"(]}], "permission": [)" + rules + "]}");
  CHECK(message.find("too large: more than 100000 values") != std::string::npos);
}

TEST_CASE("partOf, hasPart and isA relate IRIs", "[parser]") {
  CHECK(policy_error(with_constraint(R"({"leftOperand": "dateTime", "operator": "isPartOf",
      "rightOperand": {"@value": "2024-01-01T00:00:00Z", "@type": "xsd:dateTime"}})"))
            .find("isPartOf relates IRIs") != std::string::npos);
  CHECK(
      policy_error(with_constraint(
                       R"({"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": 5})"))
          .find("isPartOf needs an IRI, not the number \"5\"") != std::string::npos);
  policy_from(with_constraint(
      R"({"leftOperand": "spatial", "operator": "isPartOf", "rightOperand": {"@id": "urn:eu"}})"));
}

TEST_CASE("smaller forms: @list operands, decimals without exponents, one-line errors",
          "[parser]") {
  Policy p = policy_from(with_constraint(R"({"leftOperand": "purpose", "operator": "isAnyOf",
      "rightOperand": {"@list": [{"@id": "urn:a"}, {"@id": "urn:b"}]}})"));
  CHECK(std::get<AtomicConstraint>(p.permissions.at(0).constraints.at(0).node).right.size() == 2);
  CHECK(policy_error(with_constraint(R"({"leftOperand": "payAmount", "operator": "eq",
      "rightOperand": {"@value": "1e3", "@type": "xsd:decimal"}})"))
            .find("not a valid xsd:decimal") != std::string::npos);
  std::string message =
      policy_error(R"({"permission": [{"action": "read", "constraint": {"le\nft": 1}}]})");
  CHECK(message.find('\n') == std::string::npos);
}
