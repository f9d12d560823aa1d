#include "provenance/sqlite_setup.h"

#include <sqlite3.h>

namespace dsx::provenance {

void configure_sqlite() {
  static const bool configured = [] {
    // SQLITE_MISUSE when SQLite is already initialised: too late, and harmless.
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    return true;
  }();
  (void)configured;
}

}  // namespace dsx::provenance
