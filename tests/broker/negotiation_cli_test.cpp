// Contract negotiation from the command line, as a user runs it: `dsx broker` in a child
// process on a loopback port, certificates from `dsx certs`, and the connector commands
// (serve --once, negotiate --wait, agreements, retire) through the real binary.

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/processes.h"
#include "tests/run_dsx.h"

namespace fs = std::filesystem;
using dsx::testing::run_dsx;
using dsx::testing::start_dsx;
using dsx::testing::wait_for;
using dsx::testing::word_after;

namespace {

void issue(const fs::path& dir, const std::string& name, const std::string& role,
           const std::string& country = "") {
  auto [status, out] =
      run_dsx("certs issue --ca " + (dir / "ca").string() + " --name " + name + " --role " + role +
              (country.empty() ? "" : " --country " + country) + " --out " + (dir / name).string());
  INFO(out);
  REQUIRE(status == 0);
}

}  // namespace

TEST_CASE("a negotiation from the command line: serve, negotiate --wait, agreements, retire",
          "[broker][cli][negotiation]") {
  char tmpl[] = "/tmp/dsx-negotiation-cli-XXXXXX";
  const fs::path dir = mkdtemp(tmpl);
  REQUIRE(run_dsx("certs init --out " + (dir / "ca").string()).status == 0);
  issue(dir, "127.0.0.1", "broker");
  issue(dir, "acme", "provider", "DE");
  issue(dir, "leiden", "consumer", "NL");
  std::ofstream(dir / "dataset.json") << R"({"id": "urn:dsx:dataset:cohort", "title": "Cohort",
    "offers": [{"@id": "urn:dsx:offer:cohort", "permission": [{"action": "use", "constraint": [
      {"leftOperand": "purpose", "operator": "eq",
       "rightOperand": "https://w3id.org/dpv#AcademicResearch"}]}]}]})";
  std::ofstream(dir / "acme.json") << R"({"autoAccept": [{"dataset": "urn:dsx:dataset:cohort"}]})";
  auto broker = start_dsx({"broker", "--cert", (dir / "127.0.0.1").string(), "--listen",
                           "127.0.0.1:0", "--data", (dir / "data").string()},
                          dir / "broker.log");
  const std::string url = word_after(wait_for(broker, "listening on https://"), "listening on ");
  REQUIRE_FALSE(url.empty());
  auto as = [&](const std::string& who) {
    return "--broker " + url + " --cert " + (dir / who).string();
  };
  REQUIRE(
      run_dsx("connector publish " + as("acme") + " --dataset " + (dir / "dataset.json").string())
          .status == 0);

  // The policy refuses another purpose, with the reason on its own line.
  auto refused = run_dsx("connector negotiate " + as("leiden") +
                         " --offer urn:dsx:offer:cohort --purpose https://w3id.org/dpv#Marketing");
  INFO(refused.out);
  CHECK(refused.status == 1);
  CHECK(refused.out.find("dsx: the offer's policy refuses this request:\n  ") != std::string::npos);
  CHECK(refused.out.find("https://w3id.org/dpv#Marketing") != std::string::npos);

  // A request waits for the provider; `serve --once` approves it by its rule.
  auto pending =
      run_dsx("connector negotiate " + as("leiden") +
              " --offer urn:dsx:offer:cohort --purpose https://w3id.org/dpv#AcademicResearch");
  INFO(pending.out);
  REQUIRE(pending.status == 0);
  const std::string pid = word_after(pending.out, "negotiation ");
  CHECK(pending.out.find("): REQUESTED") != std::string::npos);
  const std::string state = (dir / "acme-state.json").string();
  auto served = run_dsx("connector serve --once --state " + state + " --config " +
                            (dir / "acme.json").string() + " " + as("acme"),
                        " 2>/dev/null");
  INFO(served.out);
  CHECK(served.status == 0);
  CHECK(served.out.find("contract request " + pid) != std::string::npos);
  CHECK(served.out.find("approved (auto-accept rule dataset urn:dsx:dataset:cohort), now AGREED") !=
        std::string::npos);
  // Handled once: a second run has nothing new to do with it.
  auto again = run_dsx("connector serve --once --state " + state + " --config " +
                           (dir / "acme.json").string() + " " + as("acme"),
                       " 2>/dev/null");
  CHECK(again.status == 0);
  CHECK(again.out.find("contract request " + pid) == std::string::npos);

  // The consumer's serve checks the agreement and verifies it; the broker finalizes.
  auto verified = run_dsx(
      "connector serve --once --state " + (dir / "leiden-state.json").string() + " " + as("leiden"),
      " 2>/dev/null");
  INFO(verified.out);
  CHECK(verified.status == 0);
  CHECK(verified.out.find(pid + ": agreement urn:uuid:") != std::string::npos);
  CHECK(verified.out.find("checked (hash, broker's signature), verification sent") !=
        std::string::npos);

  // With the provider serving, negotiate --wait goes all the way.
  auto serve = start_dsx({"connector", "serve", "--config", (dir / "acme.json").string(), "--state",
                          state, "--broker", url, "--cert", (dir / "acme").string()},
                         dir / "serve.log");
  CHECK_FALSE(wait_for(serve, "control channel open").empty());
  auto waited = run_dsx("connector negotiate " + as("leiden") +
                        " --offer urn:dsx:offer:cohort --purpose "
                        "https://w3id.org/dpv#AcademicResearch --wait --timeout 20");
  INFO(waited.out);
  CHECK(waited.status == 0);
  const std::string agreement = word_after(waited.out, "FINALIZED: agreement ");
  REQUIRE(agreement.rfind("urn:uuid:", 0) == 0);
  CHECK(serve.stop() == 0);  // SIGTERM: a clean stop

  auto listed = run_dsx("connector agreements " + as("leiden"));
  INFO(listed.out);
  CHECK(listed.status == 0);
  CHECK(listed.out.find("AGREEMENT") == 0);
  CHECK(listed.out.find(agreement + "  active  urn:dsx:dataset:cohort") != std::string::npos);
  auto negotiations = run_dsx("connector negotiations " + as("leiden"));
  CHECK(negotiations.out.find(pid + "  FINALIZED") != std::string::npos);

  auto retired =
      run_dsx("connector retire " + as("acme") + " " + agreement + " --reason 'licence withdrawn'");
  INFO(retired.out);
  CHECK(retired.status == 0);
  CHECK(run_dsx("connector agreements " + as("leiden"))
            .out.find(agreement + "  retired (licence withdrawn)") != std::string::npos);
  // Only the provider retires.
  CHECK(run_dsx("connector retire " + as("leiden") + " " + agreement + " --reason x").status == 2);
  fs::remove_all(dir);
}

TEST_CASE("a broker killed with SIGKILL mid-negotiations loses none and its log verifies",
          "[broker][cli][negotiation]") {
  char tmpl[] = "/tmp/dsx-negotiation-kill-XXXXXX";
  const fs::path dir = mkdtemp(tmpl);
  REQUIRE(run_dsx("certs init --out " + (dir / "ca").string()).status == 0);
  issue(dir, "127.0.0.1", "broker");
  issue(dir, "acme", "provider", "DE");
  issue(dir, "leiden", "consumer", "NL");
  std::ofstream(dir / "dataset.json") << R"({"id": "urn:dsx:dataset:k", "title": "K",
    "offers": [{"@id": "urn:dsx:offer:k", "permission": [{"action": "use"}]}]})";
  std::ofstream(dir / "acme.json") << R"({"autoAccept": [{"dataset": "*"}]})";
  const std::vector<std::string> broker_args = {
      "broker",      "--cert", (dir / "127.0.0.1").string(), "--listen",
      "127.0.0.1:0", "--data", (dir / "data").string()};
  auto start = [&](std::optional<dsx::cli::Child>& broker, const std::string& log) {
    broker.emplace(start_dsx(broker_args, dir / log));
    const std::string url = word_after(wait_for(*broker, "listening on https://"), "listening on ");
    REQUIRE_FALSE(url.empty());
    return url;
  };
  std::optional<dsx::cli::Child> broker;
  std::string url = start(broker, "broker-1.log");
  auto as = [&](const std::string& who) {
    return "--broker " + url + " --cert " + (dir / who).string();
  };
  REQUIRE(
      run_dsx("connector publish " + as("acme") + " --dataset " + (dir / "dataset.json").string())
          .status == 0);

  // Consumers keep asking while the broker is killed; every request that was answered counts.
  std::vector<std::string> answered;
  std::thread consumers([&] {
    for (int i = 0; i < 40; ++i) {
      auto r = run_dsx("connector negotiate " + as("leiden") +
                       " --offer urn:dsx:offer:k --purpose https://w3id.org/dpv#Research");
      if (r.status == 0) answered.push_back(word_after(r.out, "negotiation "));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  broker->kill_now();
  consumers.join();
  INFO(answered.size() << " negotiations answered before the kill");

  url = start(broker, "broker-2.log");
  auto listed = run_dsx("connector negotiations --json " + as("leiden"));
  REQUIRE(listed.status == 0);
  const auto doc = nlohmann::json::parse(listed.out);
  std::map<std::string, std::string> states;
  for (const auto& n : doc["negotiations"])
    states[n["providerPid"]] = n["state"];
  for (const std::string& pid : answered) {
    INFO(pid);
    CHECK(states.count(pid) == 1);  // nothing acknowledged was lost
  }
  // None is stuck: the provider's connector decides every one after the restart.
  auto served = run_dsx("connector serve --once --state " + (dir / "acme-state.json").string() +
                            " --config " + (dir / "acme.json").string() + " " + as("acme"),
                        " 2>/dev/null");
  CHECK(served.status == 0);
  listed = run_dsx("connector negotiations --json " + as("leiden"));
  const auto after = nlohmann::json::parse(listed.out);  // named: the loop must not outlive it
  for (const auto& n : after["negotiations"]) {
    INFO(n.dump());
    CHECK(n["state"] == "AGREED");
  }
  CHECK(broker->stop() == 0);

  // The provenance log the kill interrupted verifies.
  auto verified = run_dsx("audit verify --db " + (dir / "data" / "provenance.db").string());
  INFO(verified.out);
  CHECK(verified.status == 0);
  fs::remove_all(dir);
}
