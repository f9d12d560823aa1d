#pragma once
// Process-wide SQLite settings, made once before the first connection opens. Every opener in
// dsx (the provenance log, the broker's store, the auditor) calls configure_sqlite() first.
// Thread-safe and idempotent.

namespace dsx::provenance {

// Turns off SQLite's memory statistics: with them on, every sqlite3_malloc and sqlite3_free
// takes one process-wide mutex, which the broker's store, its readers and the log's writer,
// each on its own thread, then contend on (futex waits under load, docs/performance.md). dsx
// never reads those statistics. Has no effect once SQLite is initialised by an open elsewhere
// (SQLite refuses configuration then), which is why every opener calls this first.
void configure_sqlite();

}  // namespace dsx::provenance
