#include "cli/remote.h"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/files.h"
#include "common/json.h"

namespace dsx::cli {

void add_remote_options(CLI::App* command, RemoteOptions& o) {
  command->add_option("--broker", o.broker, "the broker, https://HOST:PORT (or $DSX_BROKER)")
      ->type_name("URL");
  command
      ->add_option("--cert", o.cert,
                   "your certificate folder from dsx certs issue: cert.pem, key.pem, ca.pem "
                   "(or $DSX_CERT)")
      ->type_name("DIR");
  command
      ->add_option("--config", o.config,
                   "a JSON file with \"broker\" and \"cert\" (flags win over it)")
      ->type_name("FILE");
}

Result<nlohmann::json> read_config(const RemoteOptions& o) {
  if (o.config.empty()) return nlohmann::json::object();
  auto text = read_file(o.config);
  if (!text) return text.status();
  auto doc = parse_json_text(*text);
  if (!doc || !doc->is_object())
    return Status::invalid_argument(o.config + ": expected a JSON object with broker and cert");
  return std::move(*doc);
}

Result<connectors::ClientConfig> client_config(const RemoteOptions& o) {
  std::string broker = o.broker, cert = o.cert;
  auto doc = read_config(o);
  if (!doc) return doc.status();
  for (auto [key, out] : {std::pair{"broker", &broker}, std::pair{"cert", &cert}}) {
    if (!out->empty() || !doc->contains(key)) continue;
    if (!(*doc)[key].is_string())
      return Status::invalid_argument(o.config + ": " + key + ": expected a string");
    *out = (*doc)[key].get<std::string>();
  }
  if (broker.empty())
    if (const char* env = std::getenv("DSX_BROKER")) broker = env;
  if (cert.empty())
    if (const char* env = std::getenv("DSX_CERT")) cert = env;
  if (broker.empty()) broker = "https://127.0.0.1:8443";
  if (cert.empty())
    return Status::invalid_argument(
        "no certificate folder: give --cert DIR (made by dsx certs issue), --config or $DSX_CERT");
  connectors::ClientConfig config;
  config.cert_dir = cert;
  if (Status s = connectors::parse_broker_url(broker, config); !s) return s;
  return config;
}

Result<std::unique_ptr<connectors::Client>> connect(const RemoteOptions& o) {
  auto config = client_config(o);
  if (!config) return config.status();
  return connectors::Client::connect(*config);
}

Result<std::filesystem::path> state_dir(const RemoteOptions& o,
                                        const connectors::ClientConfig& config) {
  auto doc = read_config(o);
  if (!doc) return doc.status();
  if (!doc->contains("stateDir")) return config.cert_dir;
  const auto& v = (*doc)["stateDir"];
  if (!v.is_string() || v.get<std::string>().empty())
    return Status::invalid_argument(o.config + ": stateDir: expected a folder name");
  std::filesystem::path dir = v.get<std::string>();
  if (dir.is_relative()) dir = std::filesystem::path(o.config).parent_path() / dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Status::invalid_argument(o.config + ": stateDir " + dir.string() + ": " + ec.message());
  return dir;
}

int report_error(const Status& s, int code) {
  std::cerr << "dsx: " << s.message() << "\n";
  return code;
}

int report_refusal(const connectors::Reply& r) {
  std::cerr << "dsx: the broker refused: " << connectors::describe_error(r) << "\n";
  return r.status >= 400 && r.status < 500 ? kExitBadInput : kExitFailed;
}

}  // namespace dsx::cli
