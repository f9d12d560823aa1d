#pragma once
// The broker's durable state besides the provenance log: participants seen and datasets with
// their offers. Behind an interface so that a PostgreSQL store can replace the embedded SQLite
// one without touching the catalog. Implementations are thread-safe; calls block on disk, so the
// broker makes them from its worker pool only.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "certs/identity.h"
#include "common/status.h"
#include "common/time.h"

namespace dsx::broker {

// A dataset as stored: its management JSON (broker/catalog.h describes it) and bookkeeping.
struct StoredDataset {
  std::string id;
  std::string provider;  // participant id
  std::string body;      // JSON text
  uint64_t seq = 0;      // publication order, assigned by the store on first insert
};

class Store {
 public:
  virtual ~Store() = default;
  // Inserts, or replaces the body of an existing dataset (keeping its seq); returns the seq.
  virtual Result<uint64_t> put_dataset(const StoredDataset& d) = 0;
  virtual Status withdraw_dataset(const std::string& id, Instant when) = 0;
  // Datasets not withdrawn, in publication order.
  virtual Result<std::vector<StoredDataset>> active_datasets() = 0;
  // Records (or refreshes) a participant the broker has seen.
  virtual Status participant_seen(const certs::Identity& who, Instant when) = 0;
};

// SQLite (WAL, synchronous=FULL) at `path`, created when missing.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace dsx::broker
