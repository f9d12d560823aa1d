// dsx audit ...: the auditor's offline tools: verify-proof (../shared/spec/audit-proof.md) and
// verify (a whole copied log file).
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/files.h"
#include "cli/remote.h"
#include "common/time.h"
#include "provenance/audit.h"
#include "provenance/proof.h"
#include "provenance/prov_export.h"

namespace dsx::cli {
namespace {

constexpr int kInvalid = 1;
constexpr int kMalformed = 2;

int run_verify_proof(const std::string& path) {
  Result<std::string> text = read_file(path);
  if (!text) {
    std::cerr << "dsx: " << text.status().message() << "\n";
    return kMalformed;
  }
  Result<provenance::Proof> proof = provenance::parse_proof_text(*text);
  if (!proof) {
    std::cerr << "dsx: " << path << ": " << proof.status().message() << "\n";
    return kMalformed;
  }
  if (Status s = provenance::verify(*proof); !s) {
    std::cerr << "dsx: " << path << ": invalid proof: " << s.message() << "\n";
    return kInvalid;
  }
  std::cout << "valid: " << provenance::describe(*proof) << "\n";
  return 0;
}

struct VerifyOptions {
  std::string db, pubkey;
};

int run_verify(const VerifyOptions& o) {
  std::optional<provenance::PublicKey> key;
  if (!o.pubkey.empty()) {
    Result<std::string> pem = read_file(o.pubkey);
    if (!pem) {
      std::cerr << "dsx: " << pem.status().message() << "\n";
      return kMalformed;
    }
    auto parsed = provenance::PublicKey::from_pem(*pem);
    if (!parsed) {
      std::cerr << "dsx: " << o.pubkey << ": " << parsed.status().message() << "\n";
      return kMalformed;
    }
    key = *parsed;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(o.db, ec)) {
    std::cerr << "dsx: " << o.db << ": no such log file\n";
    return kMalformed;
  }
  Result<provenance::AuditReport> report = provenance::audit_log_file(o.db, key);
  if (!report) {
    std::cerr << "dsx: " << report.status().message() << "\n";
    return kMalformed;
  }
  for (const std::string& p : report->problems)
    std::cout << p << "\n";
  if (report->problems_not_listed)
    std::cout << "... and " << report->problems_not_listed << " more problems\n";
  const uint64_t problems = report->problems.size() + report->problems_not_listed;
  if (problems) {
    std::cerr << "dsx: " << o.db << ": the log does NOT verify: " << problems << " problem(s)\n";
    return kInvalid;
  }
  std::cout << "ok: " << report->entries << " entries, " << report->nodes << " tree nodes and "
            << report->checkpoints << " signed checkpoints verify (key: " << report->key_source
            << ")\n";
  return 0;
}

struct LogOptions {
  std::string db, actor, action;
  uint64_t from = 0, to = UINT64_MAX;
  bool json = false;
};

int run_log(const LogOptions& o) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(o.db, ec)) {
    std::cerr << "dsx: " << o.db << ": no such log file\n";
    return kMalformed;
  }
  Status s = provenance::for_each_entry(
      o.db, o.from, o.to, [&](const provenance::Entry& e, const std::string& body) {
        if (!o.actor.empty() && e.actor != o.actor) return;
        if (!o.action.empty() && e.action != o.action) return;
        if (o.json) {
          std::cout << body << "\n";  // JSON Lines: the canonical entry as stored
          return;
        }
        std::cout << "#" << e.seq << "  " << format_rfc3339(e.time) << "  " << e.action << "  by "
                  << e.actor;
        for (const auto& subject : e.subjects)
          std::cout << "  " << subject;
        if (!e.details.empty()) std::cout << "\n    " << e.details.dump();
        std::cout << "\n";
      });
  if (!s) {
    std::cerr << "dsx: " << s.message() << "\n";
    return kMalformed;
  }
  return 0;
}

int run_export(const std::string& db, const std::string& format) {
  if (format != "prov") {
    std::cerr << "dsx: unknown export format \"" << format << "\" (known: prov)\n";
    return kMalformed;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(db, ec)) {
    std::cerr << "dsx: " << db << ": no such log file\n";
    return kMalformed;
  }
  auto doc = provenance::export_prov(db);
  if (!doc) {
    std::cerr << "dsx: " << doc.status().message() << "\n";
    return kMalformed;
  }
  std::cout << doc->dump(2) << "\n";
  return 0;
}

// GET `target` from the broker's auditor API and print the body (JSON) to standard output.
int run_remote_get(const RemoteOptions& remote, const std::string& target) {
  auto client = connect(remote);
  if (!client) {
    std::cerr << "dsx: " << client.status().message() << "\n";
    return kInvalid;
  }
  auto reply = (*client)->request("GET", target);
  if (!reply) {
    std::cerr << "dsx: " << reply.status().message() << "\n";
    return kInvalid;
  }
  if (reply->status != 200) {
    std::cerr << "dsx: the broker refused: " << connectors::describe_error(*reply) << "\n";
    return reply->status >= 400 && reply->status < 500 ? kMalformed : kInvalid;
  }
  auto doc = nlohmann::json::parse(reply->body, nullptr, false);
  std::cout << (doc.is_discarded() ? reply->body : doc.dump(2)) << "\n";
  return 0;
}

struct ProofOptions {
  RemoteOptions remote;
  std::optional<uint64_t> index, size, first, second;
};

int run_proof(const ProofOptions& o) {
  std::string target;
  if (o.index && !o.first && !o.second) {
    target = "/audit/proof/inclusion?index=" + std::to_string(*o.index);
    if (o.size) target += "&size=" + std::to_string(*o.size);
  } else if (o.first && !o.index && !o.size) {
    target = "/audit/proof/consistency?first=" + std::to_string(*o.first);
    if (o.second) target += "&second=" + std::to_string(*o.second);
  } else {
    std::cerr << "dsx: give --index N [--size M] for an inclusion proof, or --first A "
                 "[--second B] for a consistency proof\n";
    return kMalformed;
  }
  return run_remote_get(o.remote, target);
}

int run_remote_log(const RemoteOptions& remote, const LogOptions& o) {
  auto client = connect(remote);
  if (!client) {
    std::cerr << "dsx: " << client.status().message() << "\n";
    return kInvalid;
  }
  std::string query;
  if (!o.actor.empty()) query += "&actor=" + o.actor;
  if (!o.action.empty()) query += "&action=" + o.action;
  for (uint64_t from = o.from;;) {
    std::string t = "/audit/entries?limit=1000&from=" + std::to_string(from) + query;
    if (o.to != UINT64_MAX) t += "&to=" + std::to_string(o.to);
    auto reply = (*client)->request("GET", t);
    if (!reply) {
      std::cerr << "dsx: " << reply.status().message() << "\n";
      return kInvalid;
    }
    if (reply->status != 200) {
      std::cerr << "dsx: the broker refused: " << connectors::describe_error(*reply) << "\n";
      return kMalformed;
    }
    auto page = nlohmann::json::parse(reply->body, nullptr, false);
    for (const auto& item : page.value("entries", nlohmann::json::array())) {
      const auto& e = item["entry"];
      if (o.json) {
        std::cout << e.dump() << "\n";
        continue;
      }
      std::cout << "#" << item.value("index", uint64_t{0}) << "  " << e.value("time", "") << "  "
                << e.value("action", "") << "  by " << e.value("actor", "");
      for (const auto& subject : e.value("subjects", nlohmann::json::array()))
        std::cout << "  " << subject.get<std::string>();
      if (e.contains("details") && !e["details"].empty())
        std::cout << "\n    " << e["details"].dump();
      std::cout << "\n";
    }
    if (!page.contains("next")) break;
    from = page["next"].get<uint64_t>();
  }
  return 0;
}

}  // namespace

void add_audit_commands(CLI::App& app, int* exit_status) {
  CLI::App* group = app.add_subcommand(
      "audit", "Auditor tools: fetch checkpoints, entries and proofs; check them offline");
  group->require_subcommand(1);

  auto path = std::make_shared<std::string>();
  CLI::App* v = group->add_subcommand(
      "verify-proof",
      "Check an inclusion or consistency proof (RFC 9162) offline, with nothing but the proof.\n"
      "Exit status: 0 valid, 1 invalid (standard error says why), 2 malformed file.");
  v->add_option("PROOF", *path, "the proof, as JSON (docs/provenance.md)")
      ->required()
      ->type_name("FILE");
  v->callback([path, exit_status] { *exit_status = run_verify_proof(*path); });

  auto verify = std::make_shared<VerifyOptions>();
  CLI::App* w = group->add_subcommand(
      "verify",
      "Verify a whole copied log file offline: every entry against its leaf hash, the whole\n"
      "tree against the stored subtree hashes, every checkpoint's signature and root. Each\n"
      "problem is named on standard output. Exit status: 0 verifies, 1 damaged, 2 unreadable.");
  w->add_option("--db", verify->db, "the log file (SQLite)")->required()->type_name("FILE");
  w->add_option("--pubkey", verify->pubkey,
                "the log's public key (PEM) to check signatures with; without it, the key\n"
                "stored in the log file is used")
      ->type_name("FILE");
  w->callback([verify, exit_status] { *exit_status = run_verify(*verify); });

  auto log = std::make_shared<LogOptions>();
  CLI::App* l = group->add_subcommand(
      "log", "Print the entries of a log file, oldest first (filters combine).");
  auto log_remote = std::make_shared<RemoteOptions>();
  l->add_option("--db", log->db, "the log file (SQLite); or, without --db, ask the broker")
      ->type_name("FILE");
  add_remote_options(l, *log_remote);
  l->add_option("--from", log->from, "first entry index (default 0)")->type_name("N");
  l->add_option("--to", log->to, "last entry index, included (default: the last)")->type_name("N");
  l->add_option("--actor", log->actor, "only entries by this participant id")->type_name("ID");
  l->add_option("--action", log->action, "only entries with this action, e.g. policy.decided")
      ->type_name("A");
  l->add_flag("--json", log->json, "print each entry as its canonical JSON, one per line");
  l->callback([log, log_remote, exit_status] {
    *exit_status = log->db.empty() ? run_remote_log(*log_remote, *log) : run_log(*log);
  });

  auto checkpoint = std::make_shared<RemoteOptions>();
  CLI::App* cp = group->add_subcommand(
      "checkpoint",
      "Fetch the broker's latest signed checkpoint (tree size, root hash, time, signature):\n"
      "keep it, and check later checkpoints against it with dsx audit proof --first.");
  add_remote_options(cp, *checkpoint);
  cp->callback([checkpoint, exit_status] {
    *exit_status = run_remote_get(*checkpoint, "/audit/checkpoint");
  });

  auto proof = std::make_shared<ProofOptions>();
  CLI::App* pr = group->add_subcommand(
      "proof",
      "Fetch a proof from the broker, in the form dsx audit verify-proof checks:\n"
      "  --index N [--size M]       entry N is in the tree of size M (default: the latest\n"
      "                             checkpoint's size)\n"
      "  --first A [--second B]     the tree of size B extends the tree of size A");
  add_remote_options(pr, proof->remote);
  pr->add_option("--index", proof->index, "entry index")->type_name("N");
  pr->add_option("--size", proof->size, "tree size for the inclusion proof")->type_name("M");
  pr->add_option("--first", proof->first, "the earlier tree size")->type_name("A");
  pr->add_option("--second", proof->second, "the later tree size")->type_name("B");
  pr->callback([proof, exit_status] { *exit_status = run_proof(*proof); });

  auto export_db = std::make_shared<std::string>();
  auto export_format = std::make_shared<std::string>("prov");
  CLI::App* x = group->add_subcommand(
      "export",
      "Export a log file as W3C PROV-O JSON-LD: participants as agents, datasets and\n"
      "agreements as entities, negotiations, decisions and transfers as activities.");
  x->add_option("--db", *export_db, "the log file (SQLite)")->required()->type_name("FILE");
  x->add_option("--format", *export_format, "the format: prov (default)")->type_name("FORMAT");
  x->callback([export_db, export_format, exit_status] {
    *exit_status = run_export(*export_db, *export_format);
  });
}

}  // namespace dsx::cli
