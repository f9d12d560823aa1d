#pragma once
// Reaching the broker from the command line: --broker https://HOST:PORT and --cert DIR (the
// participant's certificate folder), or the same from a small JSON config file
// ({"broker": "...", "cert": "..."}, --config FILE) or the DSX_BROKER / DSX_CERT environment
// variables; flags win, then the file, then the environment.

#include <memory>
#include <string>

#include "common/status.h"
#include "connectors/client.h"

namespace CLI {
class App;
}

namespace dsx::cli {

struct RemoteOptions {
  std::string broker, cert, config;
};

void add_remote_options(CLI::App* command, RemoteOptions& options);
Result<std::unique_ptr<connectors::Client>> connect(const RemoteOptions& options);

}  // namespace dsx::cli
