// dsx demo: a whole data space exchange on loopback, each step the real command a person would
// type, run as its own process (cli/process.h), its outcome checked and explained:
//
//   1. a CA and certificates: the broker, a provider (acme, DE), a consumer in an allowed
//      country (leiden, NL), one in a refused country (beijing, CN), an auditor;
//   2. the broker (embedded SQLite in the temporary folder, a free port on 127.0.0.1);
//   3. the provider publishes a dataset of a few MiB under a policy (purpose, place, at most 2
//      uses, a time window) and keeps its connector running (`serve`: auto-accepts, serves the
//      file);
//   4. leiden negotiates an agreement and fetches the dataset twice (end-to-end encrypted
//      through the broker); the third fetch is refused, with the reason;
//   5. beijing is refused at negotiation, with the reason;
//   6. the auditor fetches a signed checkpoint, proves the receipts are in the log, and verifies
//      a copy of the whole log offline.
//
// Exit status 0 only when every step behaved as expected; otherwise the step that did not says
// what it saw, with the end of the broker's and the provider's logs.
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/process.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/time.h"
#include "provenance/merkle.h"

namespace dsx::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kDataset = "urn:dsx:dataset:demo-admissions";
constexpr const char* kOffer = "urn:dsx:offer:demo-admissions";
constexpr const char* kResearch = "https://w3id.org/dpv#ResearchAndDevelopment";
constexpr size_t kDatasetBytes = 3 * 1024 * 1024 + 12345;  // a few MiB, not a whole chunk

// A step that did not go as expected: what was seen.
struct StepFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Demo {
 public:
  Demo(fs::path dir, bool keep) : dir_(std::move(dir)), keep_(keep) {}
  ~Demo() {
    provider_.reset();
    broker_.reset();
    std::error_code ec;
    if (!keep_) fs::remove_all(dir_, ec);
  }

  void run() {
    std::cout << "dsx demo: a whole data space on this machine, in " << dir_.string()
              << (keep_ ? " (kept)" : " (removed at the end; --keep keeps it)") << "\n";
    make_pki();
    start_broker();
    publish_and_serve();
    const std::string agreement = negotiate_allowed();
    refuse_other_country();
    fetch_twice_then_refused(agreement);
    audit();
    std::cout << "\nEvery step behaved as expected.\n";
  }

  // The end of the long-running processes' logs, when a step failed.
  std::string logs() const {
    std::string out;
    if (broker_) out += "  the broker's log ends with:\n" + broker_->log_tail();
    if (provider_) out += "  the provider's connector's log ends with:\n" + provider_->log_tail();
    return out;
  }

 private:
  static void title(const std::string& text) { std::cout << "\n== " << text << "\n"; }
  static void say(const std::string& text) { std::cout << "   " << text << "\n"; }

  // Runs `dsx ARGS`, shows the command, and expects exit status `expect`.
  Finished dsx(const std::vector<std::string>& args, int expect = 0) {
    std::string shown = "$ dsx";
    for (const std::string& a : args)
      shown += " " + (a.find(' ') != std::string::npos ? "'" + a + "'" : a);
    std::cout << "   " << shown << "\n";
    auto r = run_dsx(args);
    if (!r) throw StepFailed("cannot run dsx: " + r.status().message());
    if (r->status != expect)
      throw StepFailed("exit status " + std::to_string(r->status) + ", expected " +
                       std::to_string(expect) + "; it printed:\n" + r->out);
    return *r;
  }

  static void write(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary);
    out << text;
    if (!out) throw StepFailed("cannot write " + file.string());
  }
  static std::string read(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  static std::string sha256_file(const fs::path& file) {
    return to_hex(provenance::sha256(read(file)));
  }
  static json parse(const std::string& text, const std::string& what) {
    // The JSON object in a command's output (it may print lines before it).
    const size_t at = text.find('{');
    auto j = at == std::string::npos ? json() : json::parse(text.substr(at), nullptr, false);
    if (!j.is_object()) throw StepFailed(what + ": expected JSON, got:\n" + text);
    return j;
  }
  static std::string indented(const std::string& text) {
    std::string out;
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (end > start) out += "     > " + text.substr(start, end - start) + "\n";
      start = end + 1;
    }
    return out;
  }

  fs::path party(const std::string& name) const { return dir_ / name; }
  fs::path config(const std::string& name) const { return dir_ / (name + ".json"); }

  void make_pki() {
    title("1. The data space's PKI: a CA and a certificate for each participant");
    dsx({"certs", "init", "--out", (dir_ / "ca").string(), "--name", "Demo Data Space CA"});
    struct P {
      const char* name;
      const char* role;
      const char* country;
    };
    for (const P& p :
         {P{"127.0.0.1", "broker", ""}, P{"acme", "provider", "DE"}, P{"leiden", "consumer", "NL"},
          P{"beijing", "consumer", "CN"}, P{"audit", "auditor", ""}}) {
      std::vector<std::string> args = {
          "certs",  "issue",
          "--ca",   (dir_ / "ca").string(),
          "--name", p.name,
          "--role", p.role,
          "--out",  party(std::string(p.role) == "broker" ? "broker" : p.name).string()};
      if (*p.country) {
        args.push_back("--country");
        args.push_back(p.country);
      }
      dsx(args);
    }
    say("acme provides data (DE); leiden (NL) and beijing (CN) consume; audit audits.");
  }

  void start_broker() {
    title("2. The broker: mutual TLS on 127.0.0.1, an embedded SQLite store, the provenance log");
    std::cout << "   $ dsx broker --cert " << party("broker").string() << " --crl "
              << (dir_ / "ca" / "crl.pem").string() << " --listen 127.0.0.1:0 --data "
              << (dir_ / "data").string() << " &\n";
    auto child = Child::start(
        {"broker", "--cert", party("broker").string(), "--crl", (dir_ / "ca" / "crl.pem").string(),
         "--listen", "127.0.0.1:0", "--data", (dir_ / "data").string()},
        dir_ / "broker.log");
    if (!child) throw StepFailed("cannot start the broker: " + child.status().message());
    broker_.emplace(std::move(*child));
    auto line = broker_->wait_for_line("listening on https://", std::chrono::seconds(20));
    if (!line) throw StepFailed("the broker did not start: " + line.status().message());
    const size_t at = line->find("https://");
    url_ = line->substr(at, line->find_first_of(" \t", at) - at);
    say("the broker listens on " + url_);
    for (const char* who : {"acme", "leiden", "beijing", "audit"}) {
      json c = {{"broker", url_}, {"cert", party(who).string()}};
      if (std::string(who) == "acme") {
        c["autoAccept"] = json::array({{{"dataset", kDataset}}});
        c["datasets"] = {{kDataset, (dir_ / "admissions.csv").string()}};
      }
      write(config(who), c.dump(2));
    }
  }

  void publish_and_serve() {
    title("3. acme publishes a dataset under a usage policy, and keeps its connector running");
    // A few MiB of CSV, the same every run.
    std::mt19937_64 rng(20261129);
    std::string csv = "date,region,admissions\n";
    while (csv.size() < kDatasetBytes)
      csv += "2026-" + std::to_string(1 + rng() % 12) + "-" + std::to_string(1 + rng() % 28) +
             ",region-" + std::to_string(rng() % 400) + "," + std::to_string(rng() % 1000) + "\n";
    csv.resize(kDatasetBytes);
    write(dir_ / "admissions.csv", csv);
    const Instant now = SystemClock().now();
    const std::string from = format_rfc3339(Instant{now.seconds - 86400, 0});
    const std::string until = format_rfc3339(Instant{now.seconds + 30 * 86400, 0});
    const json dataset = {
        {"id", kDataset},
        {"title", "Hospital admissions 2026"},
        {"description", "Daily admissions per region, anonymised"},
        {"mediaType", "text/csv"},
        {"byteSize", kDatasetBytes},
        {"offers",
         json::array(
             {{{"@id", kOffer},
               {"permission",
                json::array(
                    {{{"action", "use"},
                      {"constraint",
                       json::array(
                           {{{"leftOperand", "purpose"},
                             {"operator", "eq"},
                             {"rightOperand", {{"@id", kResearch}}}},
                            {{"leftOperand", "spatial"},
                             {"operator", "isAnyOf"},
                             {"rightOperand", json::array({"DE", "NL"})}},
                            {{"leftOperand", "count"}, {"operator", "lteq"}, {"rightOperand", 2}},
                            {{"leftOperand", "dateTime"},
                             {"operator", "gteq"},
                             {"rightOperand", {{"@value", from}, {"@type", "xsd:dateTime"}}}},
                            {{"leftOperand", "dateTime"},
                             {"operator", "lt"},
                             {"rightOperand",
                              {{"@value", until}, {"@type", "xsd:dateTime"}}}}})}}})}}})}};
    write(dir_ / "dataset.json", dataset.dump(2));
    say("the policy: use for research (" + std::string(kResearch) + "), in DE or NL, at most 2");
    say("times, from " + from + " until " + until + ".");
    dsx({"connector", "publish", "--config", config("acme").string(), "--dataset",
         (dir_ / "dataset.json").string()});
    std::cout << "   $ dsx connector serve --config " << config("acme").string() << " &\n";
    auto child = Child::start({"connector", "serve", "--config", config("acme").string()},
                              dir_ / "acme-serve.log");
    if (!child)
      throw StepFailed("cannot start the provider's connector: " + child.status().message());
    provider_.emplace(std::move(*child));
    auto line = provider_->wait_for_line("control channel open", std::chrono::seconds(20));
    if (!line)
      throw StepFailed("the provider's connector did not connect: " + line.status().message());
    say("acme's connector holds its control channel: it auto-accepts requests for the dataset");
    say("and serves the file, encrypted for each consumer, from " +
        (dir_ / "admissions.csv").string());
  }

  std::string negotiate_allowed() {
    title("4. leiden (NL) negotiates a contract for research");
    auto r = dsx({"connector", "negotiate", "--config", config("leiden").string(), "--offer",
                  kOffer, "--purpose", kResearch, "--wait", "--json"});
    const json n = parse(r.out, "negotiate");
    if (n.value("state", "") != "FINALIZED" || !n.contains("dsx:agreementId"))
      throw StepFailed("expected a FINALIZED negotiation with an agreement, got:\n" + r.out);
    const std::string agreement = n["dsx:agreementId"];
    say("FINALIZED: the broker checked the policy, acme's connector approved, the broker signed");
    say("agreement " + agreement + ".");
    return agreement;
  }

  void refuse_other_country() {
    title("5. beijing (CN) asks for the same offer: the policy refuses, and says why");
    auto r = dsx({"connector", "negotiate", "--config", config("beijing").string(), "--offer",
                  kOffer, "--purpose", kResearch, "--wait"},
                 1);
    if (r.out.find("spatial") == std::string::npos)
      throw StepFailed("the refusal does not name the place (spatial):\n" + r.out);
    std::cout << indented(r.out);
  }

  void fetch_twice_then_refused(const std::string& agreement) {
    title("6. leiden fetches the dataset, end-to-end encrypted through the broker: twice");
    const std::string original = sha256_file(dir_ / "admissions.csv");
    for (int i = 1; i <= 2; ++i) {
      const fs::path out = dir_ / ("leiden-admissions-" + std::to_string(i) + ".csv");
      auto r = dsx({"connector", "fetch", "--config", config("leiden").string(), "--agreement",
                    agreement, "--out", out.string(), "--quiet"});
      std::cout << indented(r.out);
      if (!fs::exists(out) || sha256_file(out) != original)
        throw StepFailed(out.string() + " is not the provider's file");
      say("fetch " + std::to_string(i) + ": " + std::to_string(fs::file_size(out)) +
          " bytes, SHA-256 " + original.substr(0, 16) + "... the same as acme's file.");
    }
    title("7. A third fetch: the policy allows 2 uses, so the broker refuses");
    const fs::path third = dir_ / "leiden-admissions-3.csv";
    auto r = dsx({"connector", "fetch", "--config", config("leiden").string(), "--agreement",
                  agreement, "--out", third.string(), "--quiet"},
                 1);
    std::cout << indented(r.out);
    if (r.out.find("count") == std::string::npos)
      throw StepFailed("the refusal does not name the use count:\n" + r.out);
    if (fs::exists(third)) throw StepFailed(third.string() + " was written after a refusal");
  }

  void audit() {
    title("8. The auditor checks what happened, with proofs");
    auto checkpoint = dsx({"audit", "checkpoint", "--config", config("audit").string()});
    const json cp = parse(checkpoint.out, "checkpoint");
    say("signed checkpoint: " + cp.dump().substr(0, 160) + "...");
    auto log = dsx({"audit", "log", "--config", config("audit").string(), "--action",
                    "transfer.completed", "--json"});
    std::vector<uint64_t> receipts;  // one canonical JSON entry per line
    for (size_t start = 0; start < log.out.size();) {
      size_t end = log.out.find('\n', start);
      if (end == std::string::npos) end = log.out.size();
      const json e = json::parse(log.out.substr(start, end - start), nullptr, false);
      if (e.is_object() && e.contains("seq") && e["seq"].is_number_unsigned())
        receipts.push_back(e["seq"].get<uint64_t>());
      start = end + 1;
    }
    if (receipts.size() != 2)
      throw StepFailed("expected 2 transfer.completed entries (the receipts), found " +
                       std::to_string(receipts.size()) + ":\n" + log.out);
    for (uint64_t index : receipts) {
      auto proof = dsx({"audit", "proof", "--config", config("audit").string(), "--index",
                        std::to_string(index)});
      const fs::path file = dir_ / ("proof-" + std::to_string(index) + ".json");
      write(file, proof.out);
      dsx({"audit", "verify-proof", file.string()});
      say("the receipt at index " + std::to_string(index) +
          " is in the log: its inclusion proof verifies.");
    }
    // The whole log, offline: stop the broker so its files are complete, copy, verify.
    const int stopped = broker_->stop();
    broker_.reset();
    if (stopped != 0)
      throw StepFailed("the broker did not stop cleanly (status " + std::to_string(stopped) + ")");
    const fs::path copy = dir_ / "provenance-copy.db";
    fs::copy_file(dir_ / "data" / "provenance.db", copy, fs::copy_options::overwrite_existing);
    auto verified = dsx({"audit", "verify", "--db", copy.string()});
    std::cout << indented(verified.out);
  }

  fs::path dir_;
  bool keep_;
  std::string url_;
  std::optional<Child> broker_, provider_;
};

}  // namespace

int run_exchange_demo(bool keep) {
  std::string templ = (fs::temp_directory_path() / "dsx-demo-XXXXXX").string();
  if (!mkdtemp(templ.data())) {
    std::cerr << "dsx demo: cannot create a temporary folder\n";
    return 1;
  }
  Demo demo(templ, keep);
  try {
    demo.run();
  } catch (const StepFailed& e) {
    std::cerr << "\ndsx demo: this step did not behave as expected: " << e.what() << "\n"
              << demo.logs();
    return 1;
  }
  return 0;
}

}  // namespace dsx::cli
