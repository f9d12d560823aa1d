// dsx connector fetch | transfers | suspend | resume: a participant's part in transfers
// (docs/cli.md). Parsing and printing only; the connectors library does the work. The
// provider's side runs in `dsx connector serve` (negotiation_cmd.cpp).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/remote.h"
#include "common/hex.h"
#include "connectors/transfer.h"
#include "connectors/transfer_stream.h"

namespace dsx::cli {
namespace {

using json = nlohmann::json;
namespace conn = dsx::connectors;
namespace protocol = dsx::protocol;
using SteadyClock = std::chrono::steady_clock;

std::string text_of(const json& object, const char* name) {
  if (!object.is_object()) return {};
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string human_bytes(double n) {
  char buf[32];
  if (n < 1024)
    std::snprintf(buf, sizeof buf, "%.0f B", n);
  else if (n < 1024.0 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", n / 1024);
  else if (n < 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f MiB", n / (1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.2f GiB", n / (1024.0 * 1024 * 1024));
  return buf;
}

// A progress line on a terminal: bytes, rate, ETA; redrawn at most ten times a second.
class ProgressBar {
 public:
  void update(uint64_t done, uint64_t total) {
    const auto now = SteadyClock::now();
    if (!started_) {
      started_ = true;
      start_ = now;
      first_ = done;
    }
    if (done != total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0.05 ? static_cast<double>(done - first_) / seconds : 0;
    std::string line = human_bytes(static_cast<double>(done));
    if (total > 0) {
      const int width = 24;
      const int filled =
          static_cast<int>(width * static_cast<double>(done) / static_cast<double>(total));
      line = "[" + std::string(static_cast<size_t>(filled), '#') +
             std::string(static_cast<size_t>(width - filled), ' ') + "] " + line + " / " +
             human_bytes(static_cast<double>(total));
    }
    if (rate > 0) {
      line += "  " + human_bytes(rate) + "/s";
      if (total > done) {
        const auto eta = static_cast<long>(static_cast<double>(total - done) / rate);
        char buf[32];
        std::snprintf(buf, sizeof buf, "  ETA %ld:%02ld", eta / 60, eta % 60);
        line += buf;
      }
    }
    std::cerr << "\r" << line << "\033[K" << std::flush;
    drawn_ = true;
  }
  void done() {
    if (drawn_) std::cerr << "\n";
    drawn_ = false;
  }

 private:
  bool started_ = false, drawn_ = false;
  SteadyClock::time_point start_, last_;
  uint64_t first_ = 0;
};

volatile std::sig_atomic_t interrupted = 0;
extern "C" void on_interrupt(int) {
  interrupted = 1;
}

// ---- fetch ---------------------------------------------------------------------------------

struct FetchCommand {
  RemoteOptions remote;
  std::string agreement, out;
  bool quiet = false;
  int64_t resume_from = -1;
  double wait = 60;
};

int run_fetch(const FetchCommand& c) {
  if (c.wait <= 0)
    return report_error(Status::invalid_argument("--wait: expected a positive number of seconds"),
                        kExitBadInput);
  if (std::filesystem::is_directory(c.out))
    return report_error(Status::invalid_argument("--out " + c.out + ": is a folder; name a file"),
                        kExitBadInput);
  auto config = client_config(c.remote);
  if (!config) return report_error(config.status(), kExitBadInput);
  auto dir = state_dir(c.remote, *config);
  if (!dir) return report_error(dir.status(), kExitBadInput);
  auto client = conn::Client::connect(*config);
  if (!client) return report_error(client.status(), kExitFailed);

  conn::FetchOptions o;
  o.agreement_id = c.agreement;
  o.out = c.out;
  o.cert_dir = config->cert_dir;
  o.state_dir = *dir;
  if (c.resume_from >= 0) o.resume_from = static_cast<uint64_t>(c.resume_from);
  o.wait = std::chrono::milliseconds(static_cast<int64_t>(c.wait * 1000));
  ProgressBar bar;
  const bool show = !c.quiet && isatty(STDERR_FILENO);
  if (show) o.progress = [&](uint64_t done, uint64_t total) { bar.update(done, total); };
  o.note = [&](const std::string& line) {
    if (c.quiet) return;
    bar.done();
    std::cerr << "dsx fetch: " << line << std::endl;
  };
  interrupted = 0;
  std::signal(SIGINT, on_interrupt);
  o.stop = [] { return interrupted != 0; };
  auto result = conn::fetch(**client, o);
  std::signal(SIGINT, SIG_DFL);
  bar.done();
  if (!result) return report_error(result.status(), kExitFailed);
  if (result->refused) {
    if (result->refused->code == "policy-refused") {
      std::cerr << "dsx: the agreement's policy refuses this transfer now:\n";
      for (const auto& reason : result->refused->reasons)
        std::cerr << "  " << reason << "\n";
      return kExitFailed;
    }
    std::cerr << "dsx: the broker refused the transfer: " << result->refused->summary << "\n";
    return result->refused->status / 100 == 4 ? kExitBadInput : kExitFailed;
  }
  const auto& m = result->manifest;
  std::cout << "received " << c.out << ": " << m.plaintext_size << " bytes, sha256 "
            << to_hex(m.plaintext_sha256) << "\n";
  std::cout << "checked: every chunk, the provider's signed manifest, the size and SHA-256"
            << (result->ciphertext_checked ? ", the stream's SHA-256"
                                           : " (not the stream's SHA-256: resumed from an "
                                             "earlier run)")
            << "\n";
  if (result->completion_refused) {
    std::cerr << "dsx: the broker refused the completion: " << result->completion_refused->summary
              << "\n";
    return kExitFailed;
  }
  std::cout << "transfer " << result->provider_pid << ": COMPLETED; receipt logged";
  const json& p = result->completion.is_object()
                      ? result->completion.value("provenance", json::object())
                      : json::object();
  if (p.is_object() && p.contains("index")) std::cout << " as provenance entry " << p["index"];
  std::cout << " (transfer.completed; dsx audit log --action transfer.completed)\n";
  return 0;
}

// ---- transfers, suspend, resume ------------------------------------------------------------

struct ListCommand {
  RemoteOptions remote;
  bool json = false;
};

json items_of(const json& doc) {
  if (doc.is_array()) return doc;
  if (doc.is_object() && doc.contains("transfers") && doc["transfers"].is_array())
    return doc["transfers"];
  return json::array();
}

int run_transfers(const ListCommand& c) {
  auto client = connect(c.remote);
  if (!client) return report_error(client.status(), kExitFailed);
  auto answer = conn::list_transfers(**client);
  if (!answer) return report_error(answer.status(), kExitFailed);
  if (auto* refusal = std::get_if<conn::Refusal>(&*answer)) {
    std::cerr << "dsx: the broker refused: " << refusal->summary << "\n";
    return refusal->status / 100 == 4 ? kExitBadInput : kExitFailed;
  }
  const json& doc = std::get<json>(*answer);
  if (c.json) {
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  const json items = items_of(doc);
  if (items.empty()) {
    std::cout << "no transfers\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TRANSFER", "STATE", "DATASET", "CONSUMER", "PROVIDER", "AGREEMENT"}};
  for (const auto& t : items)
    rows.push_back({text_of(t, "providerPid"), text_of(t, "state"), text_of(t, "dataset"),
                    text_of(t, "consumer"), text_of(t, "provider"), text_of(t, "agreementId")});
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i)
      line +=
          i + 1 == row.size() ? row[i] : row[i] + std::string(width[i] - row[i].size() + 2, ' ');
    std::cout << line << "\n";
  }
  return 0;
}

struct StepCommand {
  RemoteOptions remote;
  std::string pid, reason;
};

int run_step(bool suspend, const StepCommand& c) {
  auto client = connect(c.remote);
  if (!client) return report_error(client.status(), kExitFailed);
  auto report = [](const conn::TransferAnswer& a, int* code) -> const protocol::TransferProcess* {
    if (!a) {
      *code = report_error(a.status(), kExitFailed);
      return nullptr;
    }
    if (auto* refusal = std::get_if<conn::Refusal>(&*a)) {
      std::cerr << "dsx: the broker refused: " << refusal->summary << "\n";
      *code = refusal->status / 100 == 4 ? kExitBadInput : kExitFailed;
      return nullptr;
    }
    return &std::get<protocol::TransferProcess>(*a);
  };
  int code = 0;
  // The messages name both process ids: read the consumer's from the transfer.
  auto current = conn::get_transfer(**client, c.pid);
  const auto* t = report(current, &code);
  if (!t) return code;
  auto answer =
      suspend ? conn::suspend_transfer(**client, *t, c.reason) : conn::start_transfer(**client, *t);
  const auto* after = report(answer, &code);
  if (!after) return code;
  std::cout << after->provider_pid << ": " << protocol::to_string(after->state) << "\n";
  if (!suspend)
    std::cout << "the provider sends the rest now; as the consumer, run the same dsx connector "
                 "fetch again to receive it\n";
  return 0;
}

}  // namespace

void add_transfer_commands(CLI::App& group, int* exit_status) {
  auto f = std::make_shared<FetchCommand>();
  CLI::App* fetch = group.add_subcommand(
      "fetch",
      "Receive a dataset under one of your agreements (consumer): registers your encryption key\n"
      "(created on first use in your state folder), requests the transfer (the broker checks the\n"
      "agreement's policy now: a refusal prints each reason, exit 1), waits until the provider\n"
      "starts it, downloads and decrypts the stream into FILE.part, checks every chunk and the\n"
      "provider's signed manifest, renames FILE.part to FILE and sends your signed receipt.\n"
      "An interrupted fetch keeps FILE.part and FILE.part.json: run it again to resume.");
  add_remote_options(fetch, f->remote);
  fetch->add_option("--agreement", f->agreement, "the agreement's @id (dsx connector agreements)")
      ->required()
      ->type_name("ID");
  fetch->add_option("--out", f->out, "where to write the dataset")->required()->type_name("FILE");
  fetch->add_flag("--quiet", f->quiet, "no progress bar and no notes on standard error");
  fetch
      ->add_option("--resume-from", f->resume_from,
                   "resume from this chunk (at most the first one not verified yet, as recorded "
                   "in FILE.part.json)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  fetch
      ->add_option("--wait", f->wait,
                   "how long to wait for the provider to start the transfer (exit 1 after)")
      ->type_name("SECONDS")
      ->default_val(60);
  fetch->callback([f, exit_status] { *exit_status = run_fetch(*f); });

  auto l = std::make_shared<ListCommand>();
  CLI::App* list = group.add_subcommand(
      "transfers", "List your transfers, as consumer or provider, newest first");
  add_remote_options(list, l->remote);
  list->add_flag("--json", l->json, "print the broker's JSON");
  list->callback([l, exit_status] { *exit_status = run_transfers(*l); });

  auto s = std::make_shared<StepCommand>();
  CLI::App* suspend = group.add_subcommand(
      "suspend", "Suspend a STARTED transfer (either party); resume it with dsx connector resume");
  add_remote_options(suspend, s->remote);
  suspend->add_option("PID", s->pid, "the transfer (its providerPid, from dsx connector transfers)")
      ->required();
  suspend->add_option("--reason", s->reason, "why, for the other party and the log")
      ->type_name("TEXT");
  suspend->callback([s, exit_status] { *exit_status = run_step(true, *s); });

  auto r = std::make_shared<StepCommand>();
  CLI::App* resume = group.add_subcommand(
      "resume",
      "Resume a SUSPENDED transfer (either party; the broker checks the policy again). The\n"
      "consumer then runs dsx connector fetch again, which goes on from its last verified chunk.");
  add_remote_options(resume, r->remote);
  resume->add_option("PID", r->pid, "the transfer (its providerPid)")->required();
  resume->callback([r, exit_status] { *exit_status = run_step(false, *r); });
}

}  // namespace dsx::cli
