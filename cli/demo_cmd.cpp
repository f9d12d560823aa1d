// dsx demo: for now, the policy engine at work on the bundled example policies
// (examples/policies): each scenario's policy, then each participant's request and the decision
// with its reasons. Later issues grow this into a whole exchange on loopback.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/files.h"
#include "common/json.h"
#include "policy/describe.h"
#include "policy/evaluator.h"
#include "policy/parser.h"

namespace dsx::cli {

int run_exchange_demo(bool keep);  // cli/exchange_demo.cpp

namespace {

std::string indent(const std::string& text, const std::string& by) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    out += line.empty() ? "\n" : by + line + "\n";
  return out;
}

// Parses an embedded example file; the examples are part of the build, so a broken one is a bug
// reported with its name.
Result<nlohmann::json> example_json(const std::string& path) {
  std::string_view text = embedded_file(path);
  if (text.empty()) return Status::not_found("example file " + path + " is missing");
  Result<nlohmann::json> doc = dsx::parse_json_text(text);
  if (!doc) return Status::invalid_argument(path + ": " + doc.status().message());
  return doc;
}

// Runs one scenario; returns how many steps did not reach the decision the scenario expects, or
// an error.
Result<int> run_scenario(const std::string& dir, int number) {
  auto meta = example_json(dir + "/meta.json");
  if (!meta) return meta.status();
  auto policy_doc = example_json(dir + "/policy.json");
  if (!policy_doc) return policy_doc.status();
  auto policy = policy::parse_policy(*policy_doc);
  if (!policy) return Status::invalid_argument(dir + "/policy.json: " + policy.status().message());

  std::cout << "\n=== " << number << ". " << meta->value("title", dir) << "\n\n";
  std::cout << "  The offer, as the policy engine understood it:\n"
            << indent(policy::describe(*policy), "    ") << "\n";
  int unexpected = 0;
  for (const auto& step : meta->value("steps", nlohmann::json::array())) {
    const std::string request_path = dir + "/" + step.value("request", "");
    const std::string state_path = dir + "/" + step.value("state", "");
    auto request_doc = example_json(request_path);
    if (!request_doc) return request_doc.status();
    auto request = policy::parse_request(*request_doc, policy->prefixes);
    if (!request) return Status::invalid_argument(request_path + ": " + request.status().message());
    auto state_doc = example_json(state_path);
    if (!state_doc) return state_doc.status();
    auto state = policy::parse_state(*state_doc, policy->prefixes, Instant{});
    if (!state) return Status::invalid_argument(state_path + ": " + state.status().message());

    policy::Decision decision = policy::decide(*policy, *request, *state);
    std::cout << "  --- " << step.value("who", "?") << "  (at " << format_rfc3339(state->now)
              << ")\n";
    std::cout << indent(policy::explain(decision), "      ");
    const std::string expected = step.value("expect", "");
    if (!expected.empty() && expected != (decision.permit ? "permit" : "deny")) {
      std::cout << "      !!! expected " << expected << "\n";
      ++unexpected;
    }
  }
  return unexpected;
}

int run_demo() {
  std::set<std::string> scenarios;
  for (const EmbeddedFile& f : embedded_files()) {
    auto slash = f.path.find('/');
    if (slash != std::string_view::npos) scenarios.emplace(f.path.substr(0, slash));
  }
  std::cout << "dsx demo: usage-policy decisions on the bundled example offers and agreements\n"
               "(examples/policies; try them yourself with `dsx policy eval --explain`).\n";
  int number = 0, unexpected = 0;
  for (const std::string& dir : scenarios) {
    Result<int> r = run_scenario(dir, ++number);
    if (!r) {
      std::cerr << "dsx demo: " << r.status().message() << "\n";
      return 1;
    }
    unexpected += *r;
  }
  if (unexpected) {
    std::cerr << "dsx demo: " << unexpected
              << " decision(s) differ from what the scenarios expect\n";
    return 1;
  }
  std::cout << "\nAll " << number << " scenarios decided as expected.\n";
  return 0;
}

}  // namespace

void add_demo_command(CLI::App& app, int* exit_status) {
  struct Options {
    bool keep = false, policies = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* demo = app.add_subcommand(
      "demo",
      "Show the data space at work: a CA, a broker, a provider, two consumers and an auditor\n"
      "on this machine (127.0.0.1, a temporary folder), each step the real dsx command:\n"
      "publish under a usage policy, negotiate, fetch end-to-end encrypted, a refusal for\n"
      "the use count and one for the place, and the auditor's proofs. Exit status 0 when\n"
      "every step behaved as expected.");
  demo->add_flag("--keep", o->keep, "keep the temporary folder (certificates, logs, files)");
  demo->add_flag("--policies", o->policies,
                 "instead: the policy engine's decisions on the bundled example policies");
  demo->callback(
      [exit_status, o] { *exit_status = o->policies ? run_demo() : run_exchange_demo(o->keep); });
}

}  // namespace dsx::cli
