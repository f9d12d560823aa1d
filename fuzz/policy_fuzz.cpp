// libFuzzer target for the readers of untrusted JSON: policies, requests, states and audit
// proofs. Whatever the bytes, parsing must return a value or an error, never crash, hang or leak
// (ASan/UBSan watch), and the same value (or failure) as nlohmann's parser alone. When the bytes
// are a policy, it is also evaluated against a fixed request, and the fast and explained decisions
// must agree; when they are a proof, it is verified. The one-pass canonical-JSON checker must agree
// with parsing and re-canonicalising, on the input and on its canonical form.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "policy/describe.h"
#include "policy/evaluator.h"
#include "policy/parser.h"
#include "provenance/canonical_json.h"
#include "provenance/proof.h"
#include "tests/json_same.h"

namespace {

using namespace dsx::policy;

const nlohmann::json& request_doc() {
  static const nlohmann::json doc = nlohmann::json::parse(R"({
    "party": "http://example.org/alice", "action": "odrl:read",
    "target": "http://example.org/dataset/hospital-admissions",
    "context": {"purpose": ["http://example.org/purpose/research"], "spatial": "DE", "count": 3,
                "elapsedTime": "PT90M", "recipient": "http://example.org/partner/bob"}})");
  return doc;
}

const nlohmann::json& state_doc() {
  static const nlohmann::json doc = nlohmann::json::parse(R"({
    "currentTime": "2024-06-01T12:00:00Z",
    "partOf": {"http://example.org/alice": ["http://example.org/team/analytics"],
               "http://example.org/team/analytics": ["http://example.org/alice"]},
    "duties": {"urn:uuid:a0b12cb7-d3a1-4953-86da-f59a597615d2": "fulfilled"},
    "types": {"http://example.org/alice": ["http://example.org/Person"]}})");
  return doc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = dsx::parse_json_text(text);
  {
    // parse_json_text's fast path (simdjson) must read exactly what nlohmann's parser reads, or
    // fail where it fails (deeper than kMaxJsonDepth: refused before either parses).
    const bool too_deep = !doc && doc.status().message().find("nested deeper") != std::string::npos;
    if (!too_deep) {
      const nlohmann::json plain = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
      if (plain.is_discarded() != !doc) std::abort();
      if (doc && !dsx::testing::same_json(*doc, plain)) std::abort();
    }
  }
  {
    using dsx::provenance::canonical_json, dsx::provenance::is_canonical_json;
    std::optional<std::string> canon;
    if (doc)
      if (auto c = canonical_json(*doc)) canon = std::move(*c);
    if (is_canonical_json(text) != (canon && *canon == text)) std::abort();
    if (canon && !is_canonical_json(*canon)) std::abort();
  }
  if (!doc) return 0;
  if (auto proof = dsx::provenance::parse_proof(*doc)) (void)dsx::provenance::verify(*proof);
  auto policy = parse_policy(*doc);
  // The same bytes as a request and as a state: their readers see hostile input too.
  (void)parse_request(*doc, Prefixes());
  (void)parse_state(*doc, Prefixes(), dsx::Instant{});
  if (!policy) return 0;
  (void)to_json(*policy).dump();
  (void)describe(*policy);
  auto request = parse_request(request_doc(), policy->prefixes);
  auto state = parse_state(state_doc(), policy->prefixes, dsx::Instant{});
  if (!request || !state) std::abort();  // fixed, valid inputs
  Decision decision = decide(*policy, *request, *state);
  if (permits(*policy, *request, *state) != decision.permit) std::abort();
  (void)explain(decision);
  return 0;
}
