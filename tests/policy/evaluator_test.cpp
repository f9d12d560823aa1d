#include "policy/evaluator.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "policy/describe.h"
#include "test_util.h"

using namespace dsx::policy;
using namespace dsx::policy::testing;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool has_reason(const std::vector<std::string>& reasons, const std::string& text) {
  for (const auto& r : reasons)
    if (r.find(text) != std::string::npos) return true;
  return false;
}

const char* kWindowPolicy = R"({
  "uid": "urn:policy", "permission": [{"uid": "urn:perm", "target": "urn:data", "action": "use"}],
  "prohibition": [{"uid": "urn:proh", "target": "urn:data", "action": "read",
    "constraint": [{"leftOperand": "dateTime", "operator": "lt",
                    "rightOperand": {"@value": "2024-01-01T17:00:00Z", "@type": "xsd:dateTime"}}]}]})";

}  // namespace

TEST_CASE("the fast path and the explained path always agree", "[evaluator]") {
  // Every case we have, through both entry points.
  namespace fs = std::filesystem;
  int compared = 0;
  for (const char* dir : {"/tests/cases/policy", "/tests/conformance/odrl-w3c"}) {
    for (const auto& entry : fs::directory_iterator(fs::path(DSX_SOURCE_DIR) / (dir + 1))) {
      if (!entry.is_directory() || slurp(entry.path() / "expected.txt") == "error") continue;
      auto policy = parse_policy_text(slurp(entry.path() / "policy.json"));
      REQUIRE(policy);
      auto request = parse_request(nlohmann::json::parse(slurp(entry.path() / "request.json")),
                                   policy->prefixes);
      REQUIRE(request);
      auto state = parse_state(nlohmann::json::parse(slurp(entry.path() / "state.json")),
                               policy->prefixes, dsx::Instant{});
      REQUIRE(state);
      INFO(entry.path());
      Decision d = decide(*policy, *request, *state);
      CHECK(permits(*policy, *request, *state) == d.permit);
      CHECK((d.permit ? "permit" : "deny") == slurp(entry.path() / "expected.txt"));
      ++compared;
    }
  }
  CHECK(compared > 100);
}

TEST_CASE("reasons name the constraint and the values compared", "[evaluator]") {
  Policy p = policy_from(kWindowPolicy);
  Request r = request_from(p, R"({"party": "urn:alice", "action": "read", "target": "urn:data"})");

  Decision before = decide(p, r, state_at("2024-01-01T16:00:00Z"));
  CHECK_FALSE(before.permit);
  CHECK(has_reason(before.reasons, "prohibition urn:proh forbids read on urn:data by urn:alice"));
  CHECK(
      has_reason(before.rules.at(1).reasons,
                 "constraint dateTime lt 2024-01-01T17:00:00Z satisfied at 2024-01-01T16:00:00Z"));

  Decision after = decide(p, r, state_at("2024-02-12T11:20:10.999Z"));
  CHECK(after.permit);
  CHECK(has_reason(after.reasons, "permission urn:perm allows read"));
  const RuleOutcome& prohibition = after.rules.at(1);
  CHECK(prohibition.matched);
  CHECK_FALSE(prohibition.active);
  CHECK(
      prohibition.reasons ==
      std::vector<std::string>{
          "constraint dateTime lt 2024-01-01T17:00:00Z not satisfied at 2024-02-12T11:20:10.999Z"});
  auto json = to_json(after);
  CHECK(json["decision"] == "permit");
  CHECK(json["rules"][0]["kind"] == "permission");
  CHECK(json["rules"][0]["active"] == true);
  CHECK(json["rules"][0]["reasons"].empty());
}

TEST_CASE("a missing value takes the restrictive reading", "[evaluator]") {
  Policy p = policy_from(R"({"uid": "urn:p",
    "permission": [{"uid": "urn:perm", "action": "read",
      "constraint": [{"leftOperand": "purpose", "operator": "isNoneOf", "rightOperand": ["urn:marketing"]}]}],
    "prohibition": [{"uid": "urn:proh", "action": "read",
      "constraint": [{"leftOperand": "spatial", "operator": "eq", "rightOperand": "US"}]}]})");
  Request none = request_from(p, R"({"action": "read", "context": {"purpose": []}})");
  Decision d = decide(p, none, state_at("2024-01-01T00:00:00Z"));
  CHECK_FALSE(d.permit);
  CHECK(has_reason(
      d.rules.at(0).reasons,
      "constraint purpose isNoneOf [urn:marketing] cannot be decided: no value for purpose"));
  CHECK(has_reason(d.rules.at(0).reasons, "so it is taken as not satisfied"));
  CHECK(has_reason(d.rules.at(1).reasons, "cannot be decided: no value for spatial"));
  CHECK(has_reason(d.rules.at(1).reasons, "so it is taken as satisfied (the restrictive reading)"));

  Request given = request_from(
      p, R"({"action": "read", "context": {"purpose": "urn:research", "spatial": "de"}})");
  CHECK(permits(p, given, state_at("2024-01-01T00:00:00Z")));
}

TEST_CASE("could_permit reads undecidable constraints the permissive way", "[evaluator]") {
  Policy p = policy_from(R"({"uid": "urn:p",
    "permission": [{"uid": "urn:perm", "action": "use",
      "constraint": [{"leftOperand": "spatial", "operator": "eq", "rightOperand": "DE"},
                     {"leftOperand": "purpose", "operator": "eq", "rightOperand": "urn:research"}]}],
    "prohibition": [{"uid": "urn:proh", "action": "use",
      "constraint": [{"leftOperand": "recipient", "operator": "eq", "rightOperand": "urn:rival"}]}]})");
  const State now = state_at("2024-01-01T00:00:00Z");
  // Country known and right, purpose unknown: could be permitted, is not yet.
  Request de = request_from(p, R"({"action": "use", "context": {"spatial": "DE"}})");
  CHECK(could_permit(p, de, now));
  CHECK_FALSE(permits(p, de, now));
  // Country known and wrong: no purpose can help.
  Request fr = request_from(p, R"({"action": "use", "context": {"spatial": "FR"}})");
  CHECK_FALSE(could_permit(p, fr, now));
  // Known to trigger the prohibition.
  Request rival = request_from(
      p, R"({"action": "use", "context": {"spatial": "DE", "recipient": "urn:rival"}})");
  CHECK_FALSE(could_permit(p, rival, now));
  // Everything known and fine: both agree.
  Request ok =
      request_from(p, R"({"action": "use", "context": {"spatial": "DE", "purpose": "urn:research",
                                        "recipient": "urn:friend"}})");
  CHECK(could_permit(p, ok, now));
  CHECK(permits(p, ok, now));
}

TEST_CASE("conflict strategies decide between an active permission and prohibition",
          "[evaluator]") {
  auto make = [](const char* conflict) {
    return policy_from(std::string(R"({"uid": "urn:p", "conflict": ")") + conflict + R"(",
      "permission": [{"uid": "urn:perm", "action": "distribute"}],
      "prohibition": [{"uid": "urn:proh", "action": "distribute"}]})");
  };
  for (const char* conflict : {"perm", "prohibit", "invalid"}) {
    Policy p = make(conflict);
    Request r = request_from(p, R"({"action": "distribute"})");
    Decision d = decide(p, r, state_at("2024-01-01T00:00:00Z"));
    INFO(conflict);
    CHECK(d.permit == (std::string(conflict) == "perm"));
    CHECK(permits(p, r, state_at("2024-01-01T00:00:00Z")) == d.permit);
    CHECK(d.reasons.size() == 2);  // both rules are named
  }
}

TEST_CASE("duties block until fulfilled; a duty without uid can never be fulfilled",
          "[evaluator]") {
  Policy p = policy_from(R"({"uid": "urn:p", "permission": [{"uid": "urn:perm", "action": "play",
      "duty": [{"uid": "urn:pay", "action": "compensate"}, {"action": "attribute",
                "constraint": [{"leftOperand": "recipient", "operator": "eq", "rightOperand": "urn:public"}]}]}]})");
  Request r = request_from(p, R"({"action": "display", "context": {"recipient": "urn:friend"}})");
  dsx::policy::State s = state_from(
      p, R"({"currentTime": "2024-01-01T00:00:00Z", "duties": {"urn:pay": "fulfilled"}})");
  CHECK(permits(p, r, s));  // display is included in play; the attribution duty is not due
  Request pub = request_from(p, R"({"action": "display", "context": {"recipient": "urn:public"}})");
  Decision d = decide(p, pub, s);
  CHECK_FALSE(d.permit);
  CHECK(has_reason(d.rules.at(0).reasons, "duty permission[0].duty[1] is due and unset"));
  CHECK(has_reason(d.rules.at(0).duties.at(1).reasons, "it has no uid"));
}

TEST_CASE("participant attributes are ordinary left operands", "[evaluator]") {
  Policy p = policy_from(R"({"@context": ["http://www.w3.org/ns/odrl.jsonld"], "uid": "urn:p",
    "permission": [{"action": "read", "constraint": [
      {"leftOperand": "dsx:role", "operator": "isAnyOf", "rightOperand": ["consumer", "auditor"]},
      {"leftOperand": "dsx:memberOf", "operator": "isAllOf", "rightOperand": [{"@id": "urn:alliance"}]},
      {"leftOperand": "industry", "operator": "eq", "rightOperand": "automotive"}]}]})");
  Request r("urn:alice", "http://www.w3.org/ns/odrl/2/read", "urn:data");
  r.context().set(std::string(kDsxNs) + "role", {{Value::string("consumer")}, true});
  r.context().set(std::string(kDsxNs) + "memberOf",
                  {{Value::iri("urn:alliance"), Value::iri("urn:other")}, true});
  r.context().set(std::string(kOdrlNs) + "industry", {{Value::string("automotive")}, false});
  CHECK(permits(p, r, state_at("2024-01-01T00:00:00Z")));
  r.context().set(std::string(kDsxNs) + "memberOf", {{Value::iri("urn:other")}, true});
  CHECK_FALSE(permits(p, r, state_at("2024-01-01T00:00:00Z")));
}

TEST_CASE("one compiled policy serves many threads", "[evaluator]") {
  auto parsed = parse_policy_text(kWindowPolicy);
  REQUIRE(parsed);
  PolicyPtr shared = std::make_shared<const Policy>(std::move(*parsed));
  Request r =
      request_from(*shared, R"({"party": "urn:alice", "action": "read", "target": "urn:data"})");
  const dsx::policy::State early = state_at("2024-01-01T16:00:00Z");
  const dsx::policy::State late = state_at("2024-01-02T00:00:00Z");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        bool use_late = (i + t) % 2 == 0;
        bool permit = (i % 3 == 0) ? decide(*shared, r, use_late ? late : early).permit
                                   : permits(*shared, r, use_late ? late : early);
        if (permit != use_late) ++wrong;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  CHECK(wrong == 0);
}

TEST_CASE("explain prints the verdict and every rule", "[evaluator]") {
  Policy p = policy_from(kWindowPolicy);
  Request r = request_from(p, R"({"party": "urn:alice", "action": "read", "target": "urn:data"})");
  std::string text = explain(decide(p, r, state_at("2023-06-01T00:00:00Z")));
  CHECK(text.rfind("DENY  (policy urn:policy)", 0) == 0);
  CHECK(text.find("prohibition urn:proh: ACTIVE: forbids the request") != std::string::npos);
  CHECK(text.find("permission urn:perm: active and exercisable") != std::string::npos);
}

TEST_CASE("undecidable constraints are resolved as a whole, not leaf by leaf", "[evaluator]") {
  // xone of two constraints without values: reading each leaf as satisfied would make the xone
  // false and let the prohibition lapse; the restrictive reading applies to the whole.
  Policy p = policy_from(R"({"uid": "urn:p", "permission": [{"uid": "urn:perm", "action": "use"}],
    "prohibition": [{"uid": "urn:proh", "action": "read", "constraint": [{"xone": [
      {"leftOperand": "purpose", "operator": "eq", "rightOperand": "urn:a"},
      {"leftOperand": "purpose", "operator": "eq", "rightOperand": "urn:b"}]}]}]})");
  Request r = request_from(p, R"({"action": "read"})");
  CHECK_FALSE(permits(p, r, state_at("2024-01-01T00:00:00Z")));
  Decision d = decide(p, r, state_at("2024-01-01T00:00:00Z"));
  CHECK_FALSE(d.permit);
  CHECK(has_reason(d.rules.at(1).reasons,
                   "xone of 2 constraints cannot be decided: 0 hold, 2 cannot be decided"));
}

TEST_CASE("values that cannot be compared never satisfy neq or isNoneOf", "[evaluator]") {
  Policy p = policy_from(R"({"uid": "urn:p", "permission": [{"action": "read", "constraint": [
      {"leftOperand": "count", "operator": "neq", "rightOperand": 5}]}],
    "prohibition": [{"action": "read", "constraint": [
      {"leftOperand": "ex:level", "operator": "isNoneOf", "rightOperand": [5, 6]}]}]})");
  const auto now = state_at("2024-01-01T00:00:00Z");
  // count "five" neq 5 cannot be decided: the permission's constraint fails.
  CHECK_FALSE(permits(
      p, request_from(p, R"({"action": "read", "context": {"count": "five", "ex:level": 5}})"),
      now));
  // "high" isNoneOf [5, 6] cannot be decided: the prohibition applies.
  CHECK_FALSE(permits(
      p, request_from(p, R"({"action": "read", "context": {"count": 4, "ex:level": "high"}})"),
      now));
  CHECK(permits(p, request_from(p, R"({"action": "read", "context": {"count": 4, "ex:level": 5}})"),
                now));
}

TEST_CASE("partOf is followed through long lists, chains and cycles", "[evaluator]") {
  Policy p = policy_from(R"({"uid": "urn:p",
    "permission": [{"action": "read", "assignee": {"@type": "PartyCollection", "@id": "urn:org"}}],
    "prohibition": [{"action": "read", "assignee": {"@type": "PartyCollection", "@id": "urn:sanctioned"}}]})");
  Request r = request_from(p, R"({"party": "urn:alice", "action": "read"})");
  dsx::policy::State s = state_from(p, R"({"currentTime": "2024-01-01T00:00:00Z", "partOf": {
      "urn:alice": ["urn:teamA", "urn:g1", "urn:g2", "urn:g3"], "urn:g1": ["urn:alice"],
      "urn:teamA": ["urn:org"]}})");
  CHECK(permits(p, r, s));
  s.part_of["urn:g3"] = {"urn:x1"};
  for (int i = 1; i < 5000; ++i)
    s.part_of["urn:x" + std::to_string(i)] = {"urn:x" + std::to_string(i + 1)};
  s.part_of["urn:x5000"] = {"urn:sanctioned"};
  CHECK_FALSE(permits(p, r, s));  // five thousand links away, and still found
  CHECK_FALSE(decide(p, r, s).permit);
}

TEST_CASE("a rule applies when any of its covering actions has its refinements met",
          "[evaluator]") {
  Policy p = policy_from(R"({"uid": "urn:p", "permission": [{"action": "read"}],
    "prohibition": [{"action": [{"rdf:value": {"@id": "odrl:read"}, "refinement": [
      {"leftOperand": "purpose", "operator": "eq", "rightOperand": "urn:marketing"}]}, "use"]}]})");
  Request r = request_from(p, R"({"action": "read", "context": {"purpose": "urn:research"}})");
  CHECK_FALSE(permits(p, r, state_at("2024-01-01T00:00:00Z")));  // "use" covers read, unrefined
  CHECK_FALSE(decide(p, r, state_at("2024-01-01T00:00:00Z")).permit);
}
