// dsx_json_bench: parse_json_text (simdjson, converted to nlohmann's values) beside nlohmann's
// own parser, on a channel event as the broker sends it (2 KB, a negotiation.agreed). Prints the
// time per parse of each, measured alternately in the same run, and their ratio
// (docs/performance.md, "Contract negotiation"). Figures only.
//
//   dsx_json_bench [--parses=N] [--rounds=N]   (defaults 50,000 and 5)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace {

// A negotiation.agreed event, as dsx_negotiation_bench's broker stored it.
constexpr std::string_view kEvent =
    R"json({"message":{"@context":["https://w3id.org/dspace/2025/1/context.jsonld"],"@type":"ContractAgreementMessage","agreement":{"@id":"urn:uuid:01a22c62-8603-72a7-8a3d-a861e6cc8311","@type":"Agreement","assignee":"urn:dsx:participant:consumer-28","assigner":"urn:dsx:participant:acme","permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":{"@id":"https://w3id.org/dpv#ResearchAndDevelopment"}},{"leftOperand":"spatial","operator":"isAnyOf","rightOperand":["NL","DE"]}]}],"target":"urn:dsx:dataset:bench-admissions","timestamp":"2026-11-30T12:16:24.067013263Z"},"consumerPid":"urn:uuid:01a22c62-85f0-7c17-a6c8-8a4ed1b1507c","dsx:agreementSha256":"e9407196a9f9f96ab782b1fdbd95e5e2065f2825366ca8149032f4ce804b8d5e","dsx:signature":{"algorithm":"Ed25519","keyId":"8afdaec538a76827df1995a375359b5d42afdb7a477de36d27d72aefc60960a0","value":"c885863f38ef352b30019910a558f59cb70d5c144be564f0a2672dad9f89788d5ac566ebf258932592b10d100257b15ddf4cbe58634136fb44c107ba92c91b0a"},"providerPid":"urn:uuid:01a22c62-85f1-7469-b4ee-4304b8057d7b"},"negotiation":{"agreementId":"urn:uuid:01a22c62-8603-72a7-8a3d-a861e6cc8311","consumer":"urn:dsx:participant:consumer-28","consumerPid":"urn:uuid:01a22c62-85f0-7c17-a6c8-8a4ed1b1507c","created":"2026-11-30T12:16:24.049908963Z","dataset":"urn:dsx:dataset:bench-admissions","offerId":"urn:dsx:offer:bench-admissions","provider":"urn:dsx:participant:acme","providerPid":"urn:uuid:01a22c62-85f1-7469-b4ee-4304b8057d7b","purpose":"https://w3id.org/dpv#ResearchAndDevelopment","state":"AGREED","updated":"2026-11-30T12:16:24.067013263Z","offer":{"@id":"urn:dsx:offer:bench-admissions","@type":"Offer","assigner":"urn:dsx:participant:acme","permission":[{"action":"use","constraint":[{"leftOperand":"purpose","operator":"eq","rightOperand":{"@id":"https://w3id.org/dpv#ResearchAndDevelopment"}},{"leftOperand":"spatial","operator":"isAnyOf","rightOperand":["NL","DE"]}]}],"target":"urn:dsx:dataset:bench-admissions"}},"time":"2026-11-30T12:16:24.067013263Z","type":"negotiation.agreed"})json";

// Microseconds per parse over `n` parses; `sink` keeps the work from being optimised away.
template <typename Parse>
double per_parse_us(uint64_t n, Parse parse, size_t& sink) {
  const auto t0 = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < n; ++i)
    sink += parse().size();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
         static_cast<double>(n);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t parses = 50000, rounds = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.rfind("--parses=", 0) == 0) {
      parses = std::strtoull(argv[i] + 9, nullptr, 10);
    } else if (a.rfind("--rounds=", 0) == 0) {
      rounds = std::strtoull(argv[i] + 9, nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: dsx_json_bench [--parses=N] [--rounds=N]\n");
      return 2;
    }
  }
  if (parses == 0 || rounds == 0) return 2;
  if (!dsx::parse_json_text(kEvent) ||
      *dsx::parse_json_text(kEvent) != nlohmann::json::parse(kEvent)) {
    std::fprintf(stderr, "dsx_json_bench: the two parsers disagree on the event\n");
    return 1;
  }
  size_t sink = 0;
  std::vector<double> plain, fast;
  for (uint64_t r = 0; r < rounds; ++r) {
    plain.push_back(per_parse_us(
        parses, [] { return nlohmann::json::parse(kEvent.begin(), kEvent.end()); }, sink));
    fast.push_back(per_parse_us(
        parses, [] { return *dsx::parse_json_text(kEvent); }, sink));
  }
  std::printf("A %zu-byte channel event, %llu parses per round, %llu rounds (median):\n",
              kEvent.size(), static_cast<unsigned long long>(parses),
              static_cast<unsigned long long>(rounds));
  std::printf("  nlohmann::json::parse      %6.2f us\n", median(plain));
  std::printf("  dsx::parse_json_text       %6.2f us   (simdjson + conversion)\n", median(fast));
  std::printf("  ratio                      %6.2f x\n", median(plain) / median(fast));
  return sink == 0 ? 1 : 0;
}
