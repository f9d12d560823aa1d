// dsx audit ...: the auditor's offline tools. For now: verify-proof
// (../shared/spec/audit-proof.md).
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/files.h"
#include "provenance/proof.h"

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

}  // namespace

void add_audit_commands(CLI::App& app, int* exit_status) {
  CLI::App* group = app.add_subcommand("audit", "Auditor tools: check the provenance log offline");
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
}

}  // namespace dsx::cli
