#include "bench/fixtures.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/json.h"
#include "common/time.h"
#include "policy/evaluator.h"
#include "policy/parser.h"

namespace dsx::bench {
namespace {

[[noreturn]] void die(std::string_view what, std::string_view why) {
  std::fprintf(stderr, "dsx_policy_bench: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(why.size()), why.data());
  std::abort();
}

constexpr std::string_view kSmallPolicy = R"({
  "@context": ["http://www.w3.org/ns/odrl.jsonld", {"ex": "http://example.org/"}],
  "@type": "Offer",
  "uid": "ex:policy/bench-small",
  "assigner": "ex:org/city-hospital",
  "target": "ex:dataset/hospital-admissions-2024",
  "permission": [{
    "uid": "ex:policy/bench-small/use",
    "action": "use",
    "constraint": [
      {"leftOperand": "purpose", "operator": "isAnyOf",
       "rightOperand": [{"@id": "ex:purpose/research"}, {"@id": "ex:purpose/public-health"}]},
      {"and": [
        {"leftOperand": "dateTime", "operator": "gteq",
         "rightOperand": {"@value": "2024-01-01T00:00:00Z", "@type": "xsd:dateTime"}},
        {"leftOperand": "dateTime", "operator": "lt",
         "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]},
      {"leftOperand": "spatial", "operator": "eq", "rightOperand": {"@id": "urn:iso:3166:NL"}}
    ]
  }]
})";

// Read for research from NL; `read` is included in the permitted `use`.
constexpr std::string_view kSmallRequest = R"({
  "party": "ex:org/leiden-university", "action": "read",
  "target": "ex:dataset/hospital-admissions-2024",
  "context": {"purpose": "ex:purpose/research", "spatial": "NL"}})";
constexpr std::string_view kSmallNow = "2026-06-01T12:00:00Z";

constexpr int64_t kDay = 86'400;
// 2024-01-01T00:00:00Z. Window i is one day long and starts 3 * i days after it.
constexpr int64_t kFirstWindow = 1'704'067'200;

std::string large_policy_text() {
  std::string text = R"({
  "@context": ["http://www.w3.org/ns/odrl.jsonld", {"ex": "http://example.org/"}],
  "@type": "Offer",
  "uid": "ex:policy/bench-large",
  "target": "ex:dataset/hospital-admissions-2024",
  "permission": [{
    "uid": "ex:policy/bench-large/use",
    "action": "use",
    "constraint": [{"or": [)";
  for (std::size_t i = 0; i < kLargeWindows; ++i) {
    const int64_t start = kFirstWindow + static_cast<int64_t>(3 * i) * kDay;
    text += i ? ",\n" : "\n";
    text +=
        R"(      {"and": [{"leftOperand": "dateTime", "operator": "gteq", "rightOperand": {"@value": ")";
    text += format_rfc3339(Instant{start, 0});
    text +=
        R"(", "@type": "xsd:dateTime"}}, {"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": ")";
    text += format_rfc3339(Instant{start + kDay, 0});
    text += R"(", "@type": "xsd:dateTime"}}]})";
  }
  text += "]}]\n  }]\n}\n";
  return text;
}

constexpr std::string_view kLargeRequest = R"({
  "party": "ex:org/leiden-university", "action": "read",
  "target": "ex:dataset/hospital-admissions-2024"})";

// An Agreement as a data space would sign it; sized to about 2 KiB.
constexpr std::string_view kParsePolicy = R"({
  "@context": ["http://www.w3.org/ns/odrl.jsonld", {"ex": "http://example.org/", "dsx": "https://w3id.org/dsx/policy#"}],
  "@type": "Agreement",
  "uid": "ex:agreement/2024-0117/hospital-admissions",
  "assigner": "ex:org/city-hospital",
  "assignee": "ex:org/leiden-university",
  "target": "ex:dataset/hospital-admissions-2024",
  "conflict": "prohibit",
  "permission": [{
    "uid": "ex:agreement/2024-0117/use",
    "action": [{"rdf:value": {"@id": "odrl:use"}}],
    "constraint": [
      {"leftOperand": "purpose", "operator": "isAnyOf",
       "rightOperand": [{"@id": "ex:purpose/research"}, {"@id": "ex:purpose/public-health"}]},
      {"leftOperand": "spatial", "operator": "isAnyOf",
       "rightOperand": [{"@id": "urn:iso:3166:DE"}, {"@id": "urn:iso:3166:FR"}, {"@id": "urn:iso:3166:NL"}]},
      {"and": [
        {"leftOperand": "dateTime", "operator": "gteq", "rightOperand": {"@value": "2024-01-01T00:00:00Z", "@type": "xsd:dateTime"}},
        {"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]},
      {"leftOperand": "count", "operator": "lteq", "rightOperand": {"@value": "1000", "@type": "xsd:integer"}}
    ],
    "duty": [{
      "uid": "ex:agreement/2024-0117/attribute",
      "action": "attribute",
      "constraint": [{"leftOperand": "event", "operator": "eq", "rightOperand": {"@id": "odrl:policyUsage"}}]
    }]
  }],
  "prohibition": [{
    "uid": "ex:agreement/2024-0117/no-transfer",
    "action": "transfer",
    "constraint": [{"leftOperand": "recipient", "operator": "isNoneOf",
                    "rightOperand": [{"@id": "ex:org/leiden-university"}, {"@id": "ex:org/city-hospital"}]}],
    "remedy": [{"uid": "ex:agreement/2024-0117/delete-copies", "action": "delete"}]
  }],
  "obligation": [{
    "uid": "ex:agreement/2024-0117/report",
    "assigner": "ex:org/city-hospital",
    "assignee": "ex:org/leiden-university",
    "action": "inform",
    "constraint": [{"leftOperand": "dateTime", "operator": "lt",
                    "rightOperand": {"@value": "2027-02-01T00:00:00Z", "@type": "xsd:dateTime"}}]
  }]
})";

Case make_case(std::string text, std::string_view request, std::string_view now,
               std::string_view name) {
  auto parsed = policy::parse_policy_text(text);
  if (!parsed) die(name, "policy: " + parsed.status().message());
  auto doc = dsx::parse_json_text(request);
  if (!doc) die(name, "request: " + doc.status().message());
  auto req = policy::parse_request(*doc, parsed->prefixes);
  if (!req) die(name, "request: " + req.status().message());
  auto at = parse_xsd_date_time(now);
  if (!at) die(name, "bad time " + std::string(now));
  Case c{std::move(text), std::move(*parsed), std::move(*req), {}};
  c.state.now = *at;
  // The benchmarks measure the permit path; a fixture that denies measures something else.
  if (!policy::permits(c.policy, c.request, c.state))
    die(name, "permits() denies; expected permit");
  if (!policy::decide(c.policy, c.request, c.state).permit)
    die(name, "decide() denies; expected permit");
  return c;
}

}  // namespace

Fixtures make_fixtures() {
  // The middle of the last window: every earlier window's start holds and its end fails.
  const int64_t last_start = kFirstWindow + static_cast<int64_t>(3 * (kLargeWindows - 1)) * kDay;
  const std::string large_now = format_rfc3339(Instant{last_start + kDay / 2, 0});

  Fixtures f{make_case(std::string(kSmallPolicy), kSmallRequest, kSmallNow, "small policy"),
             make_case(large_policy_text(), kLargeRequest, large_now, "large policy"),
             std::string(kParsePolicy)};
  if (auto p = policy::parse_policy_text(f.parse_text); !p)
    die("2 KiB policy", p.status().message());

  // The large case must need the last window: at the time just before it, it denies.
  policy::State before = f.large.state;
  before.now = Instant{last_start - 1, 0};
  if (policy::permits(f.large.policy, f.large.request, before))
    die("large policy",
        "permits before the last window; the windows do not cover what they should");
  return f;
}

}  // namespace dsx::bench
