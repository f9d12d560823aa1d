// The dsx binary as a user meets it: exit statuses, one-line errors, help.
#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

#include "tests/run_dsx.h"

namespace {

using Run = dsx::testing::DsxRun;
Run run(const std::string& args, const std::string& redirect = " 2>&1") {
  return dsx::testing::run_dsx(args, redirect);
}

const std::string kCases = std::string(DSX_SOURCE_DIR) + "/tests/conformance/odrl-w3c/";

}  // namespace

TEST_CASE("--help explains every command and exits 0", "[cli]") {
  for (const char* args :
       {"--help", "policy --help", "policy eval --help", "policy check --help", "demo --help"}) {
    INFO(args);
    Run r = run(args);
    CHECK(r.status == 0);
    CHECK(r.out.find("Usage") != std::string::npos);
  }
  CHECK(run("policy eval --help").out.find("--explain") != std::string::npos);
}

TEST_CASE("usage errors are one line and exit 2", "[cli]") {
  for (const char* args :
       {"", "frobnicate", "policy eval --policy", "policy eval --bogus x", "policy check"}) {
    INFO(args);
    Run r = run(args);
    CHECK(r.status == 2);
    CHECK(r.out.find('\n') == r.out.size() - 1);
  }
}

TEST_CASE("a missing file is named", "[cli]") {
  Run r = run("policy eval --policy /nonexistent/p.json --request /nonexistent/r.json");
  CHECK(r.status == 2);
  CHECK(r.out == "dsx: /nonexistent/p.json: No such file or directory\n");
}

TEST_CASE("eval prints a decision; --explain prints it readably", "[cli]") {
  const std::string c = kCases + "w3c-a1-2-datetime-constraint-not-satisfied/";
  Run json = run("policy eval --policy " + c + "policy.json --request " + c +
                 "request.json --state " + c + "state.json");
  CHECK(json.status == 0);
  CHECK(json.out.find("\"decision\": \"deny\"") != std::string::npos);
  CHECK(json.out.find("constraint dateTime lt 2018-01-01 not satisfied at 2019-12-19T15:00:00Z") !=
        std::string::npos);
  // --explain adds text on standard error; standard output is still the JSON object.
  Run text = run("policy eval --explain --policy " + c + "policy.json --request " + c +
                     "request.json --state " + c + "state.json",
                 " 2>/dev/null");
  CHECK(text.status == 0);
  CHECK(text.out == json.out);
  Run both = run("policy eval --explain --policy " + c + "policy.json --request " + c +
                     "request.json --state " + c + "state.json",
                 " 2>&1 >/dev/null");
  CHECK(both.out.rfind("DENY", 0) == 0);
}

TEST_CASE("check validates and prints the normalised policy", "[cli]") {
  Run ok = run("policy check " + kCases + "iri-spellings-equivalent-permit/policy.json");
  CHECK(ok.status == 0);
  CHECK(ok.out.find("assignee http://example.org/alice") != std::string::npos);
  Run json = run("policy check --json " + kCases + "iri-spellings-equivalent-permit/policy.json");
  CHECK(json.out.find("\"leftOperand\": \"http://www.w3.org/ns/odrl/2/purpose\"") !=
        std::string::npos);
  Run bad = run("policy check " + kCases + "unknown-operator-malformed-error/policy.json");
  CHECK(bad.status == 2);
  CHECK(bad.out.find("policy.json: permission[0].constraint[0].operator: unknown operator "
                     "\"approximately\"") != std::string::npos);
}

TEST_CASE("the negotiation commands explain themselves and refuse bad usage", "[cli][connector]") {
  for (const char* args :
       {"connector --help", "connector serve --help", "connector negotiate --help",
        "connector negotiations --help", "connector agreements --help", "connector approve --help",
        "connector refuse --help", "connector accept --help", "connector terminate --help",
        "connector retire --help"}) {
    INFO(args);
    Run r = run(args);
    CHECK(r.status == 0);
    CHECK(r.out.find("Usage") != std::string::npos);
  }
  CHECK(run("connector serve --help").out.find("autoAccept") != std::string::npos);
  CHECK(run("connector negotiate --help").out.find("--wait") != std::string::npos);
  for (const char* args :
       {"connector negotiate --purpose x", "connector negotiate --offer x",
        "connector refuse urn:uuid:1", "connector retire urn:uuid:1", "connector approve",
        "connector negotiate --offer x --purpose y --timeout soon"}) {
    INFO(args);
    Run r = run(args);
    CHECK(r.status == 2);
    CHECK(r.out.find('\n') == r.out.size() - 1);
  }
  // Bad input is named before anything is sent.
  Run context = run("connector negotiate --offer x --purpose y --context '[1]' --cert /tmp");
  CHECK(context.status == 2);
  CHECK(context.out.find("dsx: --context: expected a JSON object") == 0);
  Run timeout = run("connector negotiate --offer x --purpose y --timeout -1 --cert /tmp");
  CHECK(timeout.status == 2);
  Run no_cert = run("connector negotiations", " 2>&1 </dev/null");
  CHECK(no_cert.status != 0);
  char tmpl[] = "/tmp/dsx-cli-test-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string config = dir + "/connector.json";
  FILE* f = std::fopen(config.c_str(), "w");
  REQUIRE(f);
  std::fputs(R"({"broker": "https://127.0.0.1:1", "cert": "/nonexistent",
                 "autoAccept": [{"dataset": "*", "purpose": "x"}]})",
             f);
  std::fclose(f);
  Run rules = run("connector serve --once --config " + config);
  CHECK(rules.status == 2);
  CHECK(rules.out == "dsx: " + config +
                         ": autoAccept[0].purpose: unknown (a rule has \"dataset\" and "
                         "\"consumer\")\n");
  std::remove(config.c_str());
  std::remove(dir.c_str());
}
