// dsx certs ...: the operator's PKI (docs/certs.md): init a data space CA, issue participant and
// broker certificates, revoke them, write the CRL. Everything is done by dsx::certs; this file
// parses options and prints what was written.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "certs/ca.h"
#include "certs/identity.h"
#include "cli/commands.h"
#include "common/time.h"

namespace dsx::cli {
namespace {

constexpr int kInternal = 1;
constexpr int kBadInput = 2;

int fail(const Status& s) {
  std::cerr << "dsx: " << s.message() << "\n";
  return s.code() == Status::Code::kInternal ? kInternal : kBadInput;
}

std::string join(const std::vector<std::string>& v, const char* separator) {
  std::string out;
  for (const std::string& s : v)
    out += (out.empty() ? "" : separator) + s;
  return out;
}

struct InitOptions {
  std::string out, name = certs::CaOptions{}.name, key_type = "p256";
  int days = certs::kDefaultCaDays, crl_days = certs::kDefaultCrlDays;
  bool force = false;
};

int run_init(const InitOptions& o) {
  Result<certs::KeyType> key_type = certs::parse_key_type(o.key_type);
  if (!key_type) return fail(key_type.status());
  certs::CaOptions options;
  options.name = o.name;
  options.key_type = *key_type;
  options.days = o.days;
  options.crl_days = o.crl_days;
  options.force = o.force;
  Result<certs::CaFiles> ca = certs::init_ca(o.out, options);
  if (!ca) return fail(ca.status());
  std::cout << "CA \"" << o.name << "\" (" << o.key_type << ", serial " << ca->serial_hex
            << ")\nvalid " << format_rfc3339(ca->not_before) << " to "
            << format_rfc3339(ca->not_after) << "\nwrote " << ca->ca_pem.string() << ", "
            << ca->ca_key.string() << " (0600), " << ca->crl_pem.string() << " (empty), "
            << ca->index.string() << "\n";
  return 0;
}

struct IssueOptions {
  std::string ca, name, country, out, key_type = "p256", not_before, not_after;
  std::vector<std::string> roles, attrs;
  int days = certs::kDefaultCertificateDays;
  bool force = false, json = false;
};

Result<std::optional<Instant>> parse_time_option(const std::string& text, const char* option) {
  if (text.empty()) return std::optional<Instant>();
  std::optional<Instant> t = parse_xsd_date_time(text);
  if (!t)
    return Status::invalid_argument(std::string(option) + ": \"" + text +
                                    "\" is not a time such as 2026-01-31T12:00:00Z");
  return t;
}

int run_issue(const IssueOptions& o) {
  certs::IssueRequest request;
  Result<certs::KeyType> key_type = certs::parse_key_type(o.key_type);
  if (!key_type) return fail(key_type.status());
  request.key_type = *key_type;
  request.name = o.name;
  request.roles = o.roles;
  if (!o.country.empty()) request.country = o.country;
  for (const std::string& attr : o.attrs) {
    auto kv = certs::parse_attribute(attr);
    if (!kv) return fail(kv.status());
    request.attributes[kv->first].push_back(kv->second);
  }
  request.days = o.days;
  auto not_before = parse_time_option(o.not_before, "--not-before");
  if (!not_before) return fail(not_before.status());
  auto not_after = parse_time_option(o.not_after, "--not-after");
  if (!not_after) return fail(not_after.status());
  request.not_before = *not_before;
  request.not_after = *not_after;
  request.force = o.force;

  Result<certs::Issued> issued = certs::issue(o.ca, request, o.out);
  if (!issued) return fail(issued.status());
  const certs::Identity& id = issued->identity;
  if (o.json) {
    nlohmann::json j = certs::to_json(id);
    j["notBefore"] = format_rfc3339(issued->not_before);
    j["notAfter"] = format_rfc3339(issued->not_after);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << "issued " << id.participant_id << " (roles " << join(id.roles, ",");
  if (id.country) std::cout << ", country " << *id.country;
  std::cout << ")\nserial " << id.serial_hex << ", valid " << format_rfc3339(issued->not_before)
            << " to " << format_rfc3339(issued->not_after) << "\nwrote "
            << issued->cert_pem.string() << ", " << issued->key_pem.string() << " (0600), "
            << issued->ca_pem.string() << "\n";
  return 0;
}

void print_crl(const certs::CrlInfo& crl) {
  std::cout << "wrote " << crl.crl_pem.string() << " (CRL number " << crl.number << ", "
            << crl.revoked << " revoked, next update " << format_rfc3339(crl.next_update) << ")\n";
}

struct RevokeOptions {
  std::string ca, cert, reason = "unspecified";
  int crl_days = certs::kDefaultCrlDays;
};

int run_revoke(const RevokeOptions& o) {
  certs::RevokeOptions options;
  options.reason = o.reason;
  options.crl_days = o.crl_days;
  Result<certs::Revoked> r = certs::revoke(o.ca, o.cert, options);
  if (!r) return fail(r.status());
  const std::string who = r->name.empty() ? "" : " (" + r->name + ")";
  if (r->already_revoked)
    std::cout << "already revoked: " << r->serial_hex << who << " since "
              << format_rfc3339(r->revoked_at) << ", reason " << r->reason << "\n";
  else
    std::cout << "revoked " << r->serial_hex << who << " at " << format_rfc3339(r->revoked_at)
              << ", reason " << r->reason << "\n";
  print_crl(r->crl);
  return 0;
}

int run_crl(const std::string& ca, int days) {
  Result<certs::CrlInfo> crl = certs::write_crl(ca, days);
  if (!crl) return fail(crl.status());
  print_crl(*crl);
  return 0;
}

}  // namespace

void add_certs_commands(CLI::App& app, int* exit_status) {
  CLI::App* group = app.add_subcommand(
      "certs",
      "The data space PKI, for operators: a CA, participant and broker certificates,\n"
      "revocation and the CRL (docs/certs.md)");
  group->require_subcommand(1);

  auto init = std::make_shared<InitOptions>();
  CLI::App* i = group->add_subcommand(
      "init",
      "Create a new data space CA in DIR: ca.pem (the certificate participants and the broker\n"
      "trust), ca.key (its private key, mode 0600: keep it offline), an empty crl.pem (so the\n"
      "broker can start with --crl at once) and index.json (what the CA issued and revoked).\n"
      "Refuses to replace an existing ca.key without --force.");
  i->add_option("--out", init->out, "the CA folder (created when missing)")
      ->required()
      ->type_name("DIR");
  i->add_option("--name", init->name, "the CA certificate's CN (default: dsx data space CA)")
      ->type_name("CN");
  i->add_option("--key-type", init->key_type, "p256 (ECDSA P-256 with SHA-256, default) or ed25519")
      ->type_name("TYPE");
  i->add_option("--days", init->days, "validity of the CA certificate (default 3650)")
      ->type_name("N");
  i->add_option("--crl-days", init->crl_days, "validity of the initial CRL (default 30)")
      ->type_name("N");
  i->add_flag("--force", init->force,
              "replace an existing CA: a new key, a new index; certificates from the old CA\n"
              "stop verifying");
  i->callback([init, exit_status] { *exit_status = run_init(*init); });

  auto issue = std::make_shared<IssueOptions>();
  CLI::App* s = group->add_subcommand(
      "issue",
      "Issue a certificate signed by the CA: OUT/cert.pem, OUT/key.pem (mode 0600) and\n"
      "OUT/ca.pem. The participant id is urn:dsx:participant:NAME; roles, country and\n"
      "attributes travel in the certificate and feed the broker's policy decisions.\n"
      "Refuses to replace an existing OUT/key.pem or OUT/cert.pem without --force.");
  s->add_option("--ca", issue->ca, "the CA folder (made by dsx certs init)")
      ->required()
      ->type_name("DIR");
  s->add_option("--name", issue->name,
                "the participant's name: 1-63 letters, digits, '.', '_', '-'; for the role\n"
                "broker, the broker's host name or IP address (put in the subject alternative\n"
                "name, so clients can check it)")
      ->required()
      ->type_name("NAME");
  s->add_option("--role", issue->roles,
                "provider, consumer, auditor, operator, or broker (the broker's server\n"
                "certificate); several separated by commas or repeated")
      ->required()
      ->delimiter(',')
      ->type_name("ROLE[,ROLE]");
  s->add_option("--country", issue->country,
                "ISO 3166-1 alpha-2 country code, e.g. DE (also the subject's C=)")
      ->type_name("CC");
  s->add_option("--attr", issue->attrs,
                "an attribute for policies, KEY=VALUE (key: a lower-case letter, then letters,\n"
                "digits, '_', '-'; value: UTF-8, at most 256 bytes); repeat a key for a list,\n"
                "e.g. --attr memberOf=a --attr memberOf=b; organisation=... is also the O=")
      ->type_name("K=V");
  s->add_option("--out", issue->out, "the folder to write to (created when missing)")
      ->required()
      ->type_name("DIR");
  s->add_option("--key-type", issue->key_type,
                "p256 (ECDSA P-256 with SHA-256, default) or ed25519")
      ->type_name("TYPE");
  s->add_option("--days", issue->days, "validity from now (default 365)")->type_name("N");
  s->add_option("--not-before", issue->not_before,
                "start of validity instead of now, e.g. 2026-01-31T12:00:00Z")
      ->type_name("TIME");
  s->add_option("--not-after", issue->not_after, "end of validity instead of start + --days")
      ->type_name("TIME");
  s->add_flag("--force", issue->force, "replace an existing OUT/key.pem and OUT/cert.pem");
  s->add_flag("--json", issue->json,
              "print the identity the broker will read from the certificate, as JSON");
  s->callback([issue, exit_status] { *exit_status = run_issue(*issue); });

  auto revoke = std::make_shared<RevokeOptions>();
  CLI::App* r = group->add_subcommand(
      "revoke",
      "Revoke a certificate this CA issued (found by its serial number) and rewrite\n"
      "DIR/crl.pem; a broker started with --crl picks the change up. Revoking twice is\n"
      "harmless. A certificate from another CA is refused.");
  r->add_option("--ca", revoke->ca, "the CA folder")->required()->type_name("DIR");
  r->add_option("--cert", revoke->cert, "the certificate to revoke (PEM)")
      ->required()
      ->type_name("FILE");
  r->add_option("--reason", revoke->reason,
                "unspecified (default), keyCompromise, affiliationChanged, superseded,\n"
                "cessationOfOperation or privilegeWithdrawn")
      ->type_name("REASON");
  r->add_option("--crl-days", revoke->crl_days, "validity of the new CRL (default 30)")
      ->type_name("N");
  r->callback([revoke, exit_status] { *exit_status = run_revoke(*revoke); });

  auto crl_ca = std::make_shared<std::string>();
  auto crl_days = std::make_shared<int>(certs::kDefaultCrlDays);
  CLI::App* c = group->add_subcommand(
      "crl",
      "Write a fresh DIR/crl.pem listing every revoked certificate, valid from now for --days.\n"
      "Run it before the current CRL's next update (e.g. daily from cron): OpenSSL's\n"
      "revocation check fails every certificate once the CRL has expired.");
  c->add_option("--ca", *crl_ca, "the CA folder")->required()->type_name("DIR");
  c->add_option("--days", *crl_days, "validity of the CRL (default 30)")->type_name("N");
  c->callback([crl_ca, crl_days, exit_status] { *exit_status = run_crl(*crl_ca, *crl_days); });
}

}  // namespace dsx::cli
