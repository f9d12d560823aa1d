// dsx connector serve | negotiate | negotiations | agreements | approve | refuse | accept |
// terminate | retire: a participant's part in contract negotiations (docs/cli.md). Parsing and
// printing only; the connectors library does the work.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/remote.h"
#include "common/json.h"
#include "connectors/channel.h"
#include "connectors/negotiation.h"
#include "connectors/negotiator.h"
#include "connectors/transfer.h"
#include "connectors/transfer_stream.h"

namespace dsx::cli {
namespace {

using json = nlohmann::json;
namespace conn = dsx::connectors;
namespace protocol = dsx::protocol;

// The value of a successful call; otherwise the error is reported, *exit_code set (1 the broker
// could not be reached or failed, 2 it refused with a 4xx), and nullptr returned.
template <typename T>
const T* answered(const Result<conn::Answer<T>>& a, int* exit_code) {
  if (!a) {
    *exit_code = report_error(a.status(), kExitFailed);
    return nullptr;
  }
  if (const auto* refusal = std::get_if<conn::Refusal>(&*a)) {
    std::cerr << "dsx: the broker refused: " << refusal->summary << "\n";
    *exit_code = refusal->status / 100 == 4 ? kExitBadInput : kExitFailed;
    return nullptr;
  }
  return &std::get<T>(*a);
}

std::string text_of(const json& object, const char* name) {
  if (!object.is_object()) return {};
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The records of a management listing: a top-level array, or the array under `key`.
json items_of(const json& doc, const char* key) {
  if (doc.is_array()) return doc;
  if (doc.is_object() && doc.contains(key) && doc[key].is_array()) return doc[key];
  return json::array();
}

// Columns padded to their widest cell; the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i)
      line +=
          i + 1 == row.size() ? row[i] : row[i] + std::string(width[i] - row[i].size() + 2, ' ');
    std::cout << line << "\n";
  }
}

// ---- serve ---------------------------------------------------------------------------------

// Set by SIGINT/SIGTERM while `serve` runs; the loop polls it. A signal handler can only talk
// through such a flag.
volatile std::sig_atomic_t stop_requested = 0;
extern "C" void request_stop(int) {
  stop_requested = 1;
}

struct ServeOptions {
  RemoteOptions remote;
  std::string state;
  bool once = false;
};

int run_serve(const ServeOptions& o) {
  auto file = read_config(o.remote);
  if (!file) return report_error(file.status(), kExitBadInput);
  auto rules = conn::parse_auto_accept(*file);
  if (!rules)
    return report_error(Status::invalid_argument(o.remote.config + ": " + rules.status().message()),
                        kExitBadInput);
  auto datasets = conn::parse_datasets(*file, std::filesystem::path(o.remote.config).parent_path());
  if (!datasets)
    return report_error(
        Status::invalid_argument(o.remote.config + ": " + datasets.status().message()),
        kExitBadInput);
  auto config = client_config(o.remote);
  if (!config) return report_error(config.status(), kExitBadInput);
  auto dir = state_dir(o.remote, *config);
  if (!dir) return report_error(dir.status(), kExitBadInput);
  conn::ProviderOptions provider;
  provider.cert_dir = config->cert_dir;
  provider.state_dir = *dir;
  provider.datasets = *datasets;
  const std::filesystem::path state =
      o.state.empty() ? config->cert_dir / "serve-state.json" : std::filesystem::path(o.state);
  auto handled = conn::Channel::HandledEvents::open(state);
  if (!handled) return report_error(handled.status(), kExitBadInput);

  // Uploads run on threads of their own (the channel goes on meanwhile); each says how it ended
  // in one line of its own. The pool outlives the clients below and is stopped (running uploads
  // end at their next chunk; consumers resume them) when serve returns.
  std::mutex out_mutex;
  provider.note = [&out_mutex](const std::string& line) {
    std::lock_guard lock(out_mutex);
    std::cout << "[upload] " << line << std::endl;
  };
  conn::UploadPool uploads(*config);
  provider.uploads = &uploads;

  // The HTTPS client for the answers is opened on the first event that needs one, and again
  // after a failure: the broker may not be up when serve starts.
  std::unique_ptr<conn::Client> client;
  std::unique_ptr<conn::Responder> responder;
  std::unique_ptr<conn::TransferResponder> transfers;
  auto handler = [&](const conn::Event& event) -> Status {
    if (!client) {
      auto c = conn::Client::connect(*config);
      if (!c) return c.status();
      client = std::move(*c);
      responder = std::make_unique<conn::Responder>(*client, *rules);
      transfers = std::make_unique<conn::TransferResponder>(*client, provider);
    }
    auto line =
        event.type.rfind("transfer.", 0) == 0 ? transfers->handle(event) : responder->handle(event);
    if (!line) {
      transfers.reset();
      responder.reset();
      client.reset();
      return line.status();
    }
    std::lock_guard lock(out_mutex);
    std::cout << "[" << event.id << "] " << *line << std::endl;
    return Status::ok();
  };

  conn::Channel::RunOptions run;
  if (o.once) run.return_when_quiet = std::chrono::seconds(1);
  run.stop = [] { return stop_requested != 0; };
  run.note = [](const std::string& line) { std::cerr << "dsx serve: " << line << std::endl; };
  stop_requested = 0;
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  std::cerr << "dsx serve: " << rules->size() << " auto-accept rule"
            << (rules->size() == 1 ? "" : "s") << ", " << datasets->size() << " dataset file"
            << (datasets->size() == 1 ? "" : "s") << "; handled events in " << state.string()
            << std::endl;
  const Status s = conn::Channel::run(*config, run, *handled, handler);
  // --once: the backlog is handled when its uploads are sent (SIGINT/SIGTERM still stop them).
  while (o.once && s && !stop_requested && !uploads.wait_for(std::chrono::milliseconds(200))) {
  }
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (!s)
    return report_error(s,
                        s.code() == Status::Code::kInvalidArgument ? kExitBadInput : kExitFailed);
  if (stop_requested) std::cerr << "dsx serve: stopped" << std::endl;
  return 0;
}

// ---- negotiate -----------------------------------------------------------------------------

struct NegotiateOptions {
  RemoteOptions remote;
  std::string offer, purpose, context;
  bool wait = false, poll = false, json = false;
  double timeout = 60;
};

int run_negotiate(const NegotiateOptions& o) {
  conn::ContractRequest request;
  request.offer_id = o.offer;
  request.purpose = o.purpose;
  if (!o.context.empty()) {
    auto ctx = parse_json_text(o.context);
    if (!ctx || !ctx->is_object())
      return report_error(Status::invalid_argument("--context: expected a JSON object such as "
                                                   "{\"dsx:attr/project\": \"cohort-7\"}"),
                          kExitBadInput);
    request.context = std::move(*ctx);
  }
  if (o.timeout <= 0)
    return report_error(
        Status::invalid_argument("--timeout: expected a positive number of seconds"),
        kExitBadInput);
  auto config = client_config(o.remote);
  if (!config) return report_error(config.status(), kExitBadInput);
  auto client = conn::Client::connect(*config);
  if (!client) return report_error(client.status(), kExitFailed);

  auto sent = conn::request_contract(**client, request);
  if (sent) {
    if (const auto* refusal = std::get_if<conn::Refusal>(&*sent);
        refusal && refusal->code == "policy-refused") {
      std::cerr << "dsx: the offer's policy refuses this request:\n";
      for (const auto& reason : refusal->reasons)
        std::cerr << "  " << reason << "\n";
      return kExitFailed;
    }
  }
  int exit_code = 0;
  const auto* n = answered(sent, &exit_code);
  if (!n) return exit_code;
  if (!o.json)
    std::cout << "negotiation " << n->provider_pid << " (consumerPid " << n->consumer_pid
              << "): " << protocol::to_string(n->state) << std::endl;
  if (!o.wait) {
    if (o.json) std::cout << protocol::to_json(*n).dump(2) << "\n";
    return 0;
  }
  conn::FollowOptions follow;
  follow.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000));
  follow.use_channel = !o.poll;
  follow.note = [&](const std::string& line) {
    (o.json ? std::cerr : std::cout) << line << std::endl;
  };
  stop_requested = 0;
  std::signal(SIGINT, request_stop);
  follow.stop = [] { return stop_requested != 0; };
  auto result = conn::follow_negotiation(**client, *config, *n, follow);
  std::signal(SIGINT, SIG_DFL);
  if (!result) return report_error(result.status(), kExitFailed);
  const std::string state(protocol::to_string(result->state));
  if (o.json) {
    json out = protocol::to_json(
        protocol::ContractNegotiation{n->provider_pid, n->consumer_pid, result->state});
    if (!result->agreement_id.empty()) out["dsx:agreementId"] = result->agreement_id;
    if (!result->reasons.empty()) out["reason"] = result->reasons;
    std::cout << out.dump(2) << "\n";
  }
  if (result->timed_out) {
    std::cerr << "dsx: negotiation " << n->provider_pid << " is still " << state
              << (stop_requested ? " (interrupted)" : " after the timeout")
              << "; follow it with: dsx connector negotiations\n";
    return kExitFailed;
  }
  if (result->state == protocol::NegotiationState::kTerminated) {
    if (!o.json) {
      std::cout << "TERMINATED" << (result->reasons.empty() ? "" : ":") << "\n";
      for (const auto& reason : result->reasons)
        std::cout << "  " << reason << "\n";
    }
    return kExitFailed;
  }
  if (!o.json)
    std::cout << "FINALIZED: agreement "
              << (result->agreement_id.empty() ? "(see dsx connector agreements)"
                                               : result->agreement_id)
              << "\n";
  return 0;
}

// ---- listings ------------------------------------------------------------------------------

struct ListOptions {
  RemoteOptions remote;
  bool json = false;
};

// Fetches a management listing and prints it: as JSON, or one table row per record.
int run_listing(const ListOptions& o, conn::JsonAnswer (*fetch)(conn::Client&), const char* key,
                std::vector<std::string> header,
                std::vector<std::string> (*row_of)(const json& record)) {
  auto client = connect(o.remote);
  if (!client) return report_error(client.status(), kExitFailed);
  int exit_code = 0;
  auto answer = fetch(**client);
  const json* doc = answered(answer, &exit_code);
  if (!doc) return exit_code;
  if (o.json) {
    std::cout << doc->dump(2) << "\n";
    return 0;
  }
  const json items = items_of(*doc, key);
  if (items.empty()) {
    std::cout << "no " << key << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {std::move(header)};
  for (const auto& item : items)
    rows.push_back(row_of(item));
  print_table(rows);
  return 0;
}

int run_negotiations(const ListOptions& o) {
  return run_listing(o, conn::list_negotiations, "negotiations",
                     {"NEGOTIATION", "STATE", "DATASET", "CONSUMER", "PROVIDER", "AGREEMENT"},
                     [](const json& n) -> std::vector<std::string> {
                       return {text_of(n, "providerPid"), text_of(n, "state"),
                               text_of(n, "dataset"),     text_of(n, "consumer"),
                               text_of(n, "provider"),    text_of(n, "agreementId")};
                     });
}

int run_agreements(const ListOptions& o) {
  return run_listing(o, conn::list_agreements, "agreements",
                     {"AGREEMENT", "STATE", "DATASET", "PROVIDER", "CONSUMER", "SIGNED"},
                     [](const json& item) -> std::vector<std::string> {
                       const json a = item.value("agreement", json::object());
                       std::string state = text_of(item, "state");
                       if (const std::string why = text_of(item, "retiredReason"); !why.empty())
                         state += " (" + why + ")";
                       return {text_of(a, "@id"),      state,
                               text_of(a, "target"),   text_of(a, "assigner"),
                               text_of(a, "assignee"), text_of(a, "timestamp")};
                     });
}

// ---- decisions -----------------------------------------------------------------------------

enum class Decision { kApprove, kRefuse, kAccept, kTerminate };

struct DecisionOptions {
  RemoteOptions remote;
  std::string pid, reason;
};

// `terminate PID` where PID is no negotiation of yours: the transfer PID, if there is one.
int terminate_transfer(conn::Client& client, const DecisionOptions& o) {
  int exit_code = 0;
  auto current = conn::get_transfer(client, o.pid);
  if (current) {
    const auto* refusal = std::get_if<conn::Refusal>(&*current);
    if (refusal && refusal->status == 404) {
      std::cerr << "dsx: " << o.pid << ": no negotiation or transfer of yours has this id\n";
      return kExitBadInput;
    }
  }
  const auto* t = answered(current, &exit_code);
  if (!t) return exit_code;
  auto answer = conn::terminate_transfer(client, *t, o.reason);
  const auto* after = answered(answer, &exit_code);
  if (!after) return exit_code;
  std::cout << after->provider_pid << ": " << protocol::to_string(after->state) << "\n";
  return 0;
}

int run_decision(Decision d, const DecisionOptions& o) {
  auto client = connect(o.remote);
  if (!client) return report_error(client.status(), kExitFailed);
  int exit_code = 0;
  conn::NegotiationAnswer answer = Status::internal("not sent");
  if (d == Decision::kApprove) {
    answer = conn::approve(**client, o.pid);
  } else {
    // The messages name both process ids: read the consumer's from the negotiation.
    auto current = conn::get_negotiation(**client, o.pid);
    if (d == Decision::kTerminate && current) {
      const auto* refusal = std::get_if<conn::Refusal>(&*current);
      if (refusal && refusal->status == 404) return terminate_transfer(**client, o);
    }
    const auto* n = answered(current, &exit_code);
    if (!n) return exit_code;
    answer = d == Decision::kAccept ? conn::accept_offer(**client, *n)
                                    : conn::terminate(**client, *n, o.reason);
  }
  const auto* n = answered(answer, &exit_code);
  if (!n) return exit_code;
  std::cout << n->provider_pid << ": " << protocol::to_string(n->state) << "\n";
  return 0;
}

struct RetireOptions {
  RemoteOptions remote;
  std::string id, reason;
};

int run_retire(const RetireOptions& o) {
  auto client = connect(o.remote);
  if (!client) return report_error(client.status(), kExitFailed);
  int exit_code = 0;
  auto answer = conn::retire_agreement(**client, o.id, o.reason);
  const json* doc = answered(answer, &exit_code);
  if (!doc) return exit_code;
  std::cout << "retired " << o.id << ": " << o.reason << "\n";
  return 0;
}

}  // namespace

void add_negotiation_commands(CLI::App& group, int* exit_status) {
  auto s = std::make_shared<ServeOptions>();
  CLI::App* serve = group.add_subcommand(
      "serve",
      "Keep the control channel to the broker open and answer its events, printing one line\n"
      "per event. Providers: a contract request (or an accepted counter-offer) is approved when\n"
      "an auto-accept rule of the --config file matches, {\"autoAccept\": [{\"dataset\": ID or\n"
      "\"*\", \"consumer\": ID}]}; otherwise it stays pending for dsx connector approve|refuse.\n"
      "Consumers: an agreement is checked (its hash) and verified. Transfers: a requested or\n"
      "resumed transfer of a dataset listed in \"datasets\" ({\"ID\": \"FILE\"}) is started,\n"
      "sealed for the consumer's checked key and uploaded. Reconnects with backoff;\n"
      "each event is handled once, also across restarts (--state). SIGINT/SIGTERM stop it.");
  add_remote_options(serve, s->remote);
  serve
      ->add_option("--state", s->state,
                   "where to remember handled events (default: serve-state.json in the "
                   "certificate folder)")
      ->type_name("FILE");
  serve->add_flag("--once", s->once,
                  "handle the events waiting now, then exit (after 1 s without a new one)");
  serve->callback([s, exit_status] { *exit_status = run_serve(*s); });

  auto n = std::make_shared<NegotiateOptions>();
  CLI::App* negotiate = group.add_subcommand(
      "negotiate",
      "Request a contract for an offer of the catalog (consumer). Prints the negotiation's id\n"
      "(providerPid) and state. The broker checks the offer's policy at once: a refusal prints\n"
      "each reason and exits 1. With --wait, follows the negotiation to FINALIZED (exit 0; the\n"
      "agreement's hash is checked and the verification sent) or TERMINATED (the reasons; exit\n"
      "1), over the control channel, polling the broker as well.");
  add_remote_options(negotiate, n->remote);
  negotiate->add_option("--offer", n->offer, "the offer's @id, from dsx connector catalog")
      ->required()
      ->type_name("ID");
  negotiate->add_option("--purpose", n->purpose, "the purpose you declare (an IRI)")
      ->required()
      ->type_name("IRI");
  negotiate
      ->add_option("--context", n->context,
                   "further values you declare for the policy, a JSON object, e.g. "
                   "'{\"dsx:attr/project\": \"cohort-7\"}'")
      ->type_name("JSON");
  negotiate->add_flag("--wait", n->wait, "follow the negotiation to FINALIZED or TERMINATED");
  negotiate->add_option("--timeout", n->timeout, "with --wait: give up after this long (exit 1)")
      ->type_name("SECONDS")
      ->default_val(60);
  negotiate->add_flag("--poll", n->poll, "with --wait: poll the broker, do not open the channel");
  negotiate->add_flag("--json", n->json, "print the final ContractNegotiation as JSON");
  negotiate->callback([n, exit_status] { *exit_status = run_negotiate(*n); });

  auto ln = std::make_shared<ListOptions>();
  CLI::App* negotiations = group.add_subcommand(
      "negotiations", "List your negotiations, as consumer or provider, newest first");
  add_remote_options(negotiations, ln->remote);
  negotiations->add_flag("--json", ln->json, "print the broker's JSON");
  negotiations->callback([ln, exit_status] { *exit_status = run_negotiations(*ln); });

  auto la = std::make_shared<ListOptions>();
  CLI::App* agreements = group.add_subcommand(
      "agreements", "List your agreements (as consumer or provider), active or retired");
  add_remote_options(agreements, la->remote);
  agreements->add_flag("--json", la->json, "print the broker's JSON, with signatures");
  agreements->callback([la, exit_status] { *exit_status = run_agreements(*la); });

  struct DecisionCommand {
    const char* name;
    Decision decision;
    const char* help;
    bool needs_reason;
  };
  for (const DecisionCommand& c : {
           DecisionCommand{"approve", Decision::kApprove,
                           "Agree to a pending contract request (provider): the broker builds "
                           "and signs the agreement",
                           false},
           DecisionCommand{"refuse", Decision::kRefuse,
                           "Refuse a pending contract request (provider): the negotiation is "
                           "terminated with your reason",
                           true},
           DecisionCommand{"accept", Decision::kAccept,
                           "Accept the provider's counter-offer (consumer)", false},
           DecisionCommand{"terminate", Decision::kTerminate,
                           "End a negotiation that is not finished, or a transfer that is not "
                           "(either party), with a reason",
                           true},
       }) {
    auto d = std::make_shared<DecisionOptions>();
    CLI::App* cmd = group.add_subcommand(c.name, c.help);
    add_remote_options(cmd, d->remote);
    cmd->add_option("PID", d->pid,
                    c.decision == Decision::kTerminate
                        ? "the negotiation or the transfer (its providerPid, from dsx connector "
                          "negotiations or transfers)"
                        : "the negotiation (its providerPid, from dsx connector negotiations)")
        ->required();
    if (c.needs_reason)
      cmd->add_option("--reason", d->reason, "why, for the other party and the log")
          ->required()
          ->type_name("TEXT");
    const Decision decision = c.decision;
    cmd->callback([d, decision, exit_status] { *exit_status = run_decision(decision, *d); });
  }

  auto r = std::make_shared<RetireOptions>();
  CLI::App* retire = group.add_subcommand(
      "retire",
      "Retire (revoke) one of your agreements (provider): later transfers under it are refused");
  add_remote_options(retire, r->remote);
  retire->add_option("AGREEMENT", r->id, "the agreement's @id")->required();
  retire->add_option("--reason", r->reason, "why, for the consumer and the log")
      ->required()
      ->type_name("TEXT");
  retire->callback([r, exit_status] { *exit_status = run_retire(*r); });
}

}  // namespace dsx::cli
