// dsx policy eval | check: the policy engine on files (../shared/spec/policy-eval.md).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/files.h"
#include "common/clock.h"
#include "common/json.h"
#include "policy/describe.h"
#include "policy/evaluator.h"
#include "policy/parser.h"

namespace dsx::cli {
namespace {

constexpr int kBadInput = 2;

// Reads and parses a JSON file; on failure prints "dsx: FILE: problem" and returns nullopt.
std::optional<nlohmann::json> load_json(const std::string& path) {
  Result<std::string> text = read_file(path);
  if (!text) {
    std::cerr << "dsx: " << text.status().message() << "\n";
    return std::nullopt;
  }
  Result<nlohmann::json> doc = dsx::parse_json_text(*text);
  if (!doc) {
    std::cerr << "dsx: " << path << ": " << doc.status().message() << "\n";
    return std::nullopt;
  }
  return std::move(*doc);
}

template <typename T>
std::optional<T> report(const std::string& path, Result<T> r) {
  if (!r) {
    std::cerr << "dsx: " << path << ": " << r.status().message() << "\n";
    return std::nullopt;
  }
  return std::move(*r);
}

// Reads and compiles a policy file; on failure prints the one-line error and returns nullopt.
std::optional<policy::Policy> load_policy(const std::string& path) {
  auto doc = load_json(path);
  if (!doc) return std::nullopt;
  return report(path, policy::parse_policy(*doc));
}

struct EvalOptions {
  std::string policy, request, state;
  bool explain = false;
};

int run_eval(const EvalOptions& o) {
  auto policy = load_policy(o.policy);
  if (!policy) return kBadInput;
  auto request_doc = load_json(o.request);
  if (!request_doc) return kBadInput;
  auto request = report(o.request, policy::parse_request(*request_doc, policy->prefixes));
  if (!request) return kBadInput;

  // Without a state file, or one without currentTime, the real clock decides dateTime.
  const Instant now = SystemClock().now();
  std::optional<policy::State> state;
  if (o.state.empty()) {
    state.emplace();
    state->now = now;
  } else {
    auto state_doc = load_json(o.state);
    if (!state_doc) return kBadInput;
    state = report(o.state, policy::parse_state(*state_doc, policy->prefixes, now));
    if (!state) return kBadInput;
  }

  policy::Decision decision = policy::decide(*policy, *request, *state);
  // Standard output always carries the one JSON object of the spec, so that scripts can rely
  // on it; --explain adds the same decision as text for a reader, on standard error.
  if (o.explain) std::cerr << policy::explain(decision);
  std::cout << policy::to_json(decision).dump(2) << "\n";
  return 0;
}

struct CheckOptions {
  std::string policy;
  bool json = false;
};

int run_check(const CheckOptions& o) {
  auto policy = load_policy(o.policy);
  if (!policy) return kBadInput;
  if (o.json) {
    std::cout << policy::to_json(*policy).dump(2) << "\n";
  } else {
    std::cout << policy::describe(*policy);
  }
  return 0;
}

}  // namespace

void add_policy_commands(CLI::App& app, int* exit_status) {
  CLI::App* group = app.add_subcommand("policy", "Evaluate and check ODRL 2.2 usage policies");
  group->require_subcommand(1);

  auto eval = std::make_shared<EvalOptions>();
  CLI::App* e = group->add_subcommand(
      "eval",
      "Decide a request against a policy and print the decision with its reasons as JSON.\n"
      "Exit status: 0 a decision was made (permit or deny), 2 an input is malformed.");
  e->add_option("--policy", eval->policy, "ODRL 2.2 policy, JSON-LD compact form")
      ->required()
      ->type_name("FILE");
  e->add_option("--request", eval->request, "the request: {party, action, target, context}")
      ->required()
      ->type_name("FILE");
  e->add_option("--state", eval->state,
                "the state of the world: {currentTime, partOf, types, duties, values};\n"
                "without it (or without currentTime) the real clock is used")
      ->type_name("FILE");
  e->add_flag("--explain", eval->explain,
              "also print the decision and every rule's reasons as text, on standard error\n"
              "(standard output keeps the JSON)");
  e->callback([eval, exit_status] { *exit_status = run_eval(*eval); });

  auto check = std::make_shared<CheckOptions>();
  CLI::App* c = group->add_subcommand(
      "check",
      "Validate a policy and print what the engine understood, normalised (full IRIs,\n"
      "typed values, inherited properties applied). Exit status: 0 valid, 2 malformed.");
  c->add_option("POLICY", check->policy, "ODRL 2.2 policy file")->required()->type_name("FILE");
  c->add_flag("--json", check->json, "print the normalised policy as JSON");
  c->callback([check, exit_status] { *exit_status = run_check(*check); });
}

}  // namespace dsx::cli
