#pragma once
// Reaching the broker from the command line: --broker https://HOST:PORT and --cert DIR (the
// participant's certificate folder), or the same from a small JSON config file
// ({"broker": "...", "cert": "..."}, --config FILE) or the DSX_BROKER / DSX_CERT environment
// variables; flags win, then the file, then the environment. Also the exit statuses and error
// lines the remote commands share (docs/cli.md).

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
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
// The config file's object (an empty object without --config); the error names the file.
Result<nlohmann::json> read_config(const RemoteOptions& options);
// Where the broker is and which certificate folder to use, from flags, file and environment.
Result<connectors::ClientConfig> client_config(const RemoteOptions& options);
Result<std::unique_ptr<connectors::Client>> connect(const RemoteOptions& options);
// Where the connector keeps its state (encryption key, transfers): the config file's "stateDir"
// (relative to the file's folder), else the certificate folder.
Result<std::filesystem::path> state_dir(const RemoteOptions& options,
                                        const connectors::ClientConfig& config);

inline constexpr int kExitFailed = 1;    // the broker could not be reached, or said no
inline constexpr int kExitBadInput = 2;  // bad input, or a refusal (4xx)

// "dsx: MESSAGE" on standard error; returns `code`.
int report_error(const Status& s, int code);
// "dsx: the broker refused: 403 forbidden: ..." on standard error; 2 for a 4xx, else 1.
int report_refusal(const connectors::Reply& r);

}  // namespace dsx::cli
