// dsx: the data space exchange command line. Parses arguments and hands over to the command
// groups in cli/; no logic lives here.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"dsx: a trusted data space exchange (ODRL 2.2 usage policies, Dataspace Protocol)"};
  app.name("dsx");
  app.set_version_flag("--version", std::string("dsx ") + DSX_VERSION);
  app.require_subcommand(1);

  int exit_status = 0;
  dsx::cli::add_policy_commands(app, &exit_status);
  dsx::cli::add_demo_command(app, &exit_status);
  dsx::cli::add_audit_commands(app, &exit_status);
  dsx::cli::add_broker_command(app, &exit_status);
  dsx::cli::add_connector_commands(app, &exit_status);
  dsx::cli::add_certs_commands(app, &exit_status);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One clear line and status 2, as for any bad input (see docs/cli.md).
    std::cerr << "dsx: " << e.what() << " (run with --help for usage)\n";
    return 2;
  } catch (const std::exception& e) {
    // Nothing should get here (the libraries return errors); if it does, say so in one line.
    std::cerr << "dsx: internal error: " << e.what() << "\n";
    return 1;
  }
  return exit_status;
}
