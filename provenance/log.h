#pragma once
// Log: the append-only provenance log over a SQLite file. Entries and the hashes of every
// perfect subtree of the Merkle tree live in the same file, so roots and proofs are read, never
// recomputed from the entries.
//
// Appends are group-committed: any number of threads call append() or append_async(); one writer
// thread takes whatever has queued up (once the first entry may wait no longer: append_async's
// may_wait) and writes it in one transaction (WAL, synchronous=FULL);
// only after the commit is each caller answered with its receipt (by a second thread, or by the
// writer for a small batch), so a returned append is durable and many appends share one fsync. A
// third thread copies the WAL back into the database file (checkpoints), off the writer's path. The
// entry is serialised in the caller's thread; the writer only numbers, hashes and stores it. The
// queue is bounded: when it is full, both calls wait (backpressure). Readers (roots, proofs,
// entries) use their own SQLite connection and see committed data only, so they do not wait for a
// batch being written.
//
// Every committed batch is covered by a checkpoint signed with the log's key in the same
// transaction (provenance/checkpoint.h); opening a log rebuilds its root from the stored
// subtrees and refuses a log whose root or size is not what its latest checkpoint signs.
//
// Thread-safe: every method may be called from any thread. Blocking (disk) work: never call from
// an I/O thread. The log never rewrites or deletes an entry.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "provenance/checkpoint.h"
#include "provenance/entry.h"
#include "provenance/merkle.h"
#include "provenance/proof.h"

namespace dsx::provenance {

// The value of meta.format in a log file this code writes and reads.
inline constexpr const char* kLogFormat = "dsx-provenance-log/2";

struct Receipt {
  uint64_t index = 0;  // the entry's seq and leaf index
  Hash leaf_hash{};
};

class Log {
 public:
  // Opens (creating if needed) the log at `path`, signing checkpoints as `name` with `key`;
  // `clock` dates them and must outlive the log.
  static Result<std::unique_ptr<Log>> open(const std::string& path, SigningKey key,
                                           std::string name, const Clock& clock);
  ~Log();  // finishes the queued appends, then closes
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Appends `e` (its seq is assigned here) and returns once it is durable.
  Result<Receipt> append(const Entry& e);
  // Queues `e` and returns; `done` runs once with the receipt when the entry is durable (on one of
  // the log's threads, in index order: keep it short, never wait for the log in it, hand work
  // elsewhere), or with the error (in this thread when the entry cannot be serialised or the log
  // is closing). Many appends in
  // flight from one caller share commits, which is what makes the log fast under load.
  // `may_wait`: how long the entry may wait for later ones to share its commit, so that a light,
  // steady load also writes fewer, larger batches (fewer fsyncs and checkpoint signatures); 0
  // (and append()) is written as soon as the writer is free; at most 24 hours.
  using AppendCallback = std::function<void(Result<Receipt>)>;
  void append_async(const Entry& e, AppendCallback done,
                    std::chrono::milliseconds may_wait = std::chrono::milliseconds(0));
  // The same for an entry the caller serialised already (prepare(), entry.h): a caller that
  // needs the entry's text anyway serialises it once.
  void append_async(PreparedEntry e, AppendCallback done,
                    std::chrono::milliseconds may_wait = std::chrono::milliseconds(0));

  uint64_t size() const;
  Result<Hash> root(uint64_t size) const;
  Result<InclusionProof> prove_inclusion(uint64_t index, uint64_t size) const;
  Result<ConsistencyProof> prove_consistency(uint64_t first, uint64_t second) const;
  Result<std::string> entry_text(uint64_t index) const;  // the canonical bytes
  Result<Checkpoint> latest_checkpoint() const;
  const PublicKey& public_key() const;

  class Impl;

 private:
  explicit Log(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsx::provenance
