// dsx connector ...: a participant's side of the broker: publish, withdraw and list datasets
// (providers), read the catalog (everyone). Connects with the participant's certificate.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/files.h"
#include "cli/remote.h"
#include "common/json.h"
#include "policy/describe.h"
#include "policy/parser.h"

namespace dsx::cli {
namespace {

using json = nlohmann::json;

int run_publish(const RemoteOptions& remote, const std::string& file, bool as_json) {
  auto text = read_file(file);
  if (!text) return report_error(text.status(), kExitBadInput);
  auto doc = parse_json_text(*text);
  if (!doc)
    return report_error(Status::invalid_argument(file + ": " + doc.status().message()),
                        kExitBadInput);
  auto client = connect(remote);
  if (!client) return report_error(client.status(), kExitFailed);
  // Publish; a dataset that exists already (409) is updated in place.
  auto reply = (*client)->request("POST", "/management/datasets", *text);
  bool update = false;
  if (reply && reply->status == 409 && doc->is_object() && doc->contains("id") &&
      (*doc)["id"].is_string()) {
    update = true;
    reply =
        (*client)->request("PUT", "/management/datasets/" + (*doc)["id"].get<std::string>(), *text);
  }
  if (!reply) return report_error(reply.status(), kExitFailed);
  if (reply->status / 100 != 2) return report_refusal(*reply);
  auto body = json::parse(reply->body, nullptr, false);
  if (as_json) {
    std::cout << body.dump(2) << "\n";
    return 0;
  }
  std::cout << (update ? "updated " : "published ") << body.value("id", std::string("?")) << " ("
            << body["offers"].size() << " offer" << (body["offers"].size() == 1 ? "" : "s")
            << "); logged as provenance entry " << body["provenance"].value("index", uint64_t{0})
            << "\n";
  return 0;
}

int run_withdraw(const RemoteOptions& remote, const std::string& id) {
  auto client = connect(remote);
  if (!client) return report_error(client.status(), kExitFailed);
  auto reply = (*client)->request("DELETE", "/management/datasets/" + id);
  if (!reply) return report_error(reply.status(), kExitFailed);
  if (reply->status / 100 != 2) return report_refusal(*reply);
  auto body = json::parse(reply->body, nullptr, false);
  std::cout << "withdrew " << id << "; logged as provenance entry "
            << body["provenance"].value("index", uint64_t{0}) << "\n";
  return 0;
}

struct CatalogOptions {
  std::vector<std::string> keywords, texts;
  bool json = false;
};

// The path of a Link header's rel="next" target, or "".
std::string next_link(const connectors::Reply& r) {
  for (const std::string& link : r.headers_named("Link")) {
    if (link.find("rel=\"next\"") == std::string::npos) continue;
    const size_t open = link.find('<'), close = link.find('>');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string url = link.substr(open + 1, close - open - 1);
    const size_t scheme = url.find("://");
    const size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    return path == std::string::npos ? std::string() : url.substr(path);
  }
  return {};
}

void print_dataset(const json& d) {
  std::cout << d.value("@id", std::string()) << "\n  " << d.value("title", std::string())
            << "  (published by " << d.value("publisher", std::string("?")) << ")\n";
  if (d.contains("description")) std::cout << "  " << d["description"].get<std::string>() << "\n";
  std::string facts;
  if (d.contains("keyword") && !d["keyword"].empty()) {
    facts += "keywords:";
    for (const auto& k : d["keyword"])
      facts += " " + k.get<std::string>();
  }
  if (d.contains("mediaType"))
    facts += (facts.empty() ? "" : "; ") + d["mediaType"].get<std::string>();
  if (d.contains("byteSize"))
    facts += (facts.empty() ? "" : "; ") + std::to_string(d["byteSize"].get<uint64_t>()) + " bytes";
  if (!facts.empty()) std::cout << "  " << facts << "\n";
  for (const auto& offer : d.value("hasPolicy", json::array())) {
    auto p = policy::parse_policy(offer);
    std::cout << "  offer " << offer.value("@id", std::string("?")) << ":\n";
    if (!p) continue;
    std::string text = policy::describe(*p);
    size_t start = 0;
    while (start < text.size()) {
      const size_t end = text.find('\n', start);
      std::cout << "    " << text.substr(start, end - start) << "\n";
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
}

int run_catalog(const RemoteOptions& remote, const CatalogOptions& o) {
  auto client = connect(remote);
  if (!client) return report_error(client.status(), kExitFailed);
  json message = {{"@context", {"https://w3id.org/dspace/2025/1/context.jsonld"}},
                  {"@type", "CatalogRequestMessage"}};
  json filter = json::array();
  for (const auto& k : o.keywords)
    filter.push_back({{"keyword", k}});
  for (const auto& t : o.texts)
    filter.push_back({{"text", t}});
  if (!filter.empty()) message["filter"] = filter;
  json all = json::array();
  json first;
  std::string target = "/catalog/request";
  while (!target.empty()) {
    auto reply = (*client)->request("POST", target, message.dump());
    if (!reply) return report_error(reply.status(), kExitFailed);
    if (reply->status != 200) return report_refusal(*reply);
    auto page = json::parse(reply->body, nullptr, false);
    if (!page.is_object())
      return report_error(Status::internal("the broker sent a catalog that is not JSON"),
                          kExitFailed);
    if (first.is_null()) first = page;
    for (auto& d : page.value("dataset", json::array()))
      all.push_back(std::move(d));
    target = next_link(*reply);
  }
  if (o.json) {
    first["dataset"] = all;
    std::cout << first.dump(2) << "\n";
    return 0;
  }
  std::cout << all.size() << " dataset" << (all.size() == 1 ? "" : "s") << " in the catalog of "
            << first.value("participantId", std::string("the broker")) << "\n";
  for (const auto& d : all) {
    std::cout << "\n";
    print_dataset(d);
  }
  return 0;
}

int run_datasets(const RemoteOptions& remote, bool as_json) {
  auto client = connect(remote);
  if (!client) return report_error(client.status(), kExitFailed);
  auto reply = (*client)->request("GET", "/management/datasets");
  if (!reply) return report_error(reply.status(), kExitFailed);
  if (reply->status != 200) return report_refusal(*reply);
  auto body = json::parse(reply->body, nullptr, false);
  if (as_json) {
    std::cout << body.dump(2) << "\n";
    return 0;
  }
  for (const auto& d : body.value("datasets", json::array()))
    std::cout << d.value("id", std::string()) << "  " << d.value("title", std::string()) << "  ("
              << d["offers"].size() << " offers, modified " << d.value("modified", std::string("?"))
              << ")\n";
  return 0;
}

}  // namespace

void add_connector_commands(CLI::App& app, int* exit_status) {
  CLI::App* group = app.add_subcommand(
      "connector",
      "A participant's side of the broker: publish datasets, read the catalog, negotiate "
      "contracts");
  group->require_subcommand(1);

  struct PublishOptions {
    RemoteOptions remote;
    std::string file;
    bool json = false;
  };
  auto p = std::make_shared<PublishOptions>();
  CLI::App* pub = group->add_subcommand(
      "publish",
      "Publish a dataset description with its offers (ODRL policies); the data stays with you.\n"
      "A dataset whose \"id\" you already published is updated. Needs the provider role.\n"
      "Format: docs/api.md (POST /management/datasets).");
  add_remote_options(pub, p->remote);
  pub->add_option("--dataset", p->file, "the dataset description (JSON)")
      ->required()
      ->type_name("FILE");
  pub->add_flag("--json", p->json, "print the broker's reply as JSON");
  pub->callback([p, exit_status] { *exit_status = run_publish(p->remote, p->file, p->json); });

  struct WithdrawOptions {
    RemoteOptions remote;
    std::string id;
  };
  auto w = std::make_shared<WithdrawOptions>();
  CLI::App* wd =
      group->add_subcommand("withdraw", "Withdraw one of your datasets from the catalog");
  add_remote_options(wd, w->remote);
  wd->add_option("--dataset", w->id, "the dataset's id")->required()->type_name("ID");
  wd->callback([w, exit_status] { *exit_status = run_withdraw(w->remote, w->id); });

  struct ListOptions {
    RemoteOptions remote;
    bool json = false;
  };
  auto l = std::make_shared<ListOptions>();
  CLI::App* ls = group->add_subcommand("datasets", "List the datasets you published");
  add_remote_options(ls, l->remote);
  ls->add_flag("--json", l->json, "print JSON");
  ls->callback([l, exit_status] { *exit_status = run_datasets(l->remote, l->json); });

  struct CatalogCommand {
    RemoteOptions remote;
    CatalogOptions options;
  };
  auto c = std::make_shared<CatalogCommand>();
  CLI::App* cat = group->add_subcommand(
      "catalog",
      "Print the catalog the broker shows you (Dataspace Protocol catalog request; every page).\n"
      "Datasets whose offers you could never obtain are not shown.");
  add_remote_options(cat, c->remote);
  cat->add_option("--keyword", c->options.keywords, "only datasets with this keyword")
      ->type_name("K");
  cat->add_option("--text", c->options.texts,
                  "only datasets whose title, description or "
                  "keywords contain this text")
      ->type_name("T");
  cat->add_flag("--json", c->options.json, "print the catalog as DSP JSON");
  cat->callback([c, exit_status] { *exit_status = run_catalog(c->remote, c->options); });

  add_negotiation_commands(*group, exit_status);
  add_transfer_commands(*group, exit_status);
}

}  // namespace dsx::cli
