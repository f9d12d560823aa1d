#pragma once
// The command groups of `dsx`. Each function registers its subcommands on `app`; the one that
// runs stores its exit status in `*exit_status` (0 success, 1 a negative answer where the command
// defines one, 2 bad input or usage).

namespace CLI {
class App;
}

namespace dsx::cli {

void add_policy_commands(CLI::App& app, int* exit_status);
void add_demo_command(CLI::App& app, int* exit_status);
void add_audit_commands(CLI::App& app, int* exit_status);
void add_broker_command(CLI::App& app, int* exit_status);
void add_connector_commands(CLI::App& app, int* exit_status);
void add_certs_commands(CLI::App& app, int* exit_status);
// The negotiation commands of `dsx connector` (serve, negotiate, approve, ...), on its group.
void add_negotiation_commands(CLI::App& connector_group, int* exit_status);
// The transfer commands of `dsx connector` (fetch, transfers, suspend, resume), on its group.
void add_transfer_commands(CLI::App& connector_group, int* exit_status);

}  // namespace dsx::cli
