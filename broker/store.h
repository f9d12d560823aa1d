#pragma once
// The broker's durable state besides the provenance log: participants seen, datasets with their
// offers, negotiations, agreements, transfers, encryption keys, and the outboxes (events for
// connectors, entries for the provenance log) written in the same transaction as the state they
// report. Behind an interface so that a PostgreSQL store can replace the embedded SQLite one
// without touching the catalog. Implementations are thread-safe; calls block on disk, so the broker
// makes them from its worker pool only.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "certs/identity.h"
#include "common/status.h"
#include "common/time.h"
#include "provenance/entry.h"

namespace dsx::broker {

// A dataset as stored: its management JSON (broker/catalog.h describes it) and bookkeeping.
struct StoredDataset {
  std::string id;
  std::string provider;  // participant id
  std::string body;      // JSON text
  uint64_t seq = 0;      // publication order, assigned by the store on first insert
};

// A contract negotiation as stored (broker/negotiations.h). JSON members are JSON text.
struct StoredNegotiation {
  std::string provider_pid;  // assigned by the broker; the key
  std::string consumer_pid;
  std::string consumer, provider;  // participant ids
  std::string dataset;
  std::string offer;          // the offer on the table (JSON)
  std::string catalog_offer;  // the id of the catalog offer it started from
  std::string purpose;        // declared purpose IRI, or ""
  std::string context;        // declared context (JSON object)
  std::string state;          // "REQUESTED", ...
  std::string agreement_id;   // once AGREED
  std::string reason;         // why it was terminated (JSON array), or ""
  std::string last_message;   // the message that made the current state (JSON), for replays
  std::string last_sender;    // "consumer" or "provider"
  Instant created, updated;
};

// A signed agreement.
struct StoredAgreement {
  std::string id;
  std::string provider_pid;
  std::string dataset, provider, consumer;
  std::string body;       // the agreement (JSON)
  std::string sha256;     // hex SHA-256 of its canonical JSON
  std::string signature;  // {"keyId", "value"} (JSON)
  Instant created;
  bool retired = false;
  std::string retired_reason;
  Instant retired_at;
};

// A transfer process as stored (broker/transfers.h). JSON members are JSON text.
struct StoredTransfer {
  std::string provider_pid;  // assigned by the broker; the key
  std::string consumer_pid;
  std::string consumer, provider;  // participant ids
  std::string agreement_id;
  std::string dataset;
  std::string state;           // "REQUESTED", ...
  std::string reason;          // {"code", "reasons"} once suspended or terminated (JSON), or ""
  std::string last_message;    // the message that made the current state (JSON), for replays
  std::string last_sender;     // "consumer" or "provider"
  uint64_t from_chunk = 0;     // where the next upload starts (the consumer's resume point)
  std::string manifest;        // the provider's signed manifest of the last relay (JSON), or ""
  std::string receipt;         // the consumer's signed receipt (JSON), once COMPLETED
  std::string relayed_sha256;  // hex SHA-256 of the bytes last relayed, or ""
  Instant created, updated;
};

// A participant's registered encryption key: its signed key binding (protocol/stream_documents.h)
// and the certificate that signed it.
struct StoredEncryptionKey {
  std::string participant;
  std::string binding_text;  // the canonical key binding, exactly as signed
  std::string signature;     // certs::DocumentSignature as JSON
  std::string certificate_pem;
  Instant created;
};

// An event for a participant's control channel: kept until acknowledged.
struct StoredEvent {
  uint64_t id = 0;  // assigned by the store, increasing, never reused
  std::string recipient;
  std::string body;  // the whole channel message without its id (JSON)
};

// A provenance entry recorded with a transition: `text` (JSON of provenance::Entry's fields) stays
// in the store's outbox until the log has the entry; `prepared` is what the log appends, serialised
// once with the text (its text is empty when the entry has no canonical form: the log's append
// then says why, and the entry stays in the outbox).
struct OutboxEntry {
  std::string text;
  provenance::PreparedEntry prepared;
};

// A state change to commit atomically: the negotiation, perhaps a new or changed agreement, a
// transfer, an encryption key (each optional), the events it causes and the provenance entries that
// record it, which the broker appends to the log after the commit.
struct Transition {
  const StoredNegotiation* negotiation = nullptr;
  const StoredAgreement* agreement = nullptr;
  const StoredTransfer* transfer = nullptr;
  const StoredEncryptionKey* encryption_key = nullptr;  // replaces the participant's key
  std::vector<StoredEvent> events;
  std::vector<OutboxEntry> log_entries;
};

// A provenance entry written to the store's outbox and not yet known to be in the log.
struct PendingLogEntry {
  uint64_t id = 0;
  std::string entry;  // JSON
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

  // Negotiations and agreements. Lookups return nullopt when there is no such record.
  virtual Result<std::optional<StoredNegotiation>> negotiation(const std::string& provider_pid) = 0;
  virtual Result<std::optional<StoredNegotiation>> negotiation_by_consumer_pid(
      const std::string& consumer, const std::string& consumer_pid) = 0;
  // Where `participant` is the consumer or the provider, newest first.
  virtual Result<std::vector<StoredNegotiation>> negotiations_of(
      const std::string& participant) = 0;
  // Not FINALIZED or TERMINATED, last changed before `before`.
  virtual Result<std::vector<StoredNegotiation>> negotiations_idle_since(Instant before) = 0;
  virtual Result<std::optional<StoredAgreement>> agreement(const std::string& id) = 0;
  virtual Result<std::vector<StoredAgreement>> agreements_of(const std::string& participant) = 0;
  // Transfers: by providerPid, by the consumer's consumerPid, where `participant` is a party
  // (newest first), in one state (oldest change first), and how many COMPLETED transfers an
  // agreement has.
  virtual Result<std::optional<StoredTransfer>> transfer(const std::string& provider_pid) = 0;
  virtual Result<std::optional<StoredTransfer>> transfer_by_consumer_pid(
      const std::string& consumer, const std::string& consumer_pid) = 0;
  virtual Result<std::vector<StoredTransfer>> transfers_of(const std::string& participant) = 0;
  virtual Result<std::vector<StoredTransfer>> transfers_in_state(const std::string& state) = 0;
  virtual Result<uint64_t> count_completed(const std::string& agreement_id) = 0;
  // A participant's encryption key (written with a Transition).
  virtual Result<std::optional<StoredEncryptionKey>> encryption_key(
      const std::string& participant) = 0;

  // Commits the transition atomically and returns once it is durable, with the ids of its log
  // entries in the outbox. Concurrent commits may share one transaction (group commit); each
  // succeeds or fails alone.
  virtual Result<std::vector<uint64_t>> commit(const Transition& t) = 0;

  // The outbox of provenance entries: forget one once it is in the log (does not wait: the
  // deletion is written with a later commit, and the entry is hidden until then); all of them at
  // start-up.
  virtual Status log_entry_done(uint64_t id) = 0;
  virtual Result<std::vector<PendingLogEntry>> pending_log_entries() = 0;

  // Events for `recipient` with an id above `after`, oldest first, at most `limit`.
  virtual Result<std::vector<StoredEvent>> events_for(const std::string& recipient, uint64_t after,
                                                      size_t limit) = 0;
  // Drops an acknowledged event (without waiting for the deletion to be durable: an event whose
  // deletion a crash lost is sent again); false when it was not the recipient's or already
  // dropped.
  virtual Result<bool> ack_event(const std::string& recipient, uint64_t id) = 0;
  // The same for an event the caller knows to be the recipient's (it delivered it to them):
  // no read, only a mutex, so it may be called from an I/O thread.
  virtual void drop_delivered_event(uint64_t id) = 0;

  // Who hears of events as they commit: after each durable commit, the thread that wrote it (an
  // implementation's own committer, not necessarily the caller of commit()) calls the sink with
  // the events it wrote (ids assigned), in id order; commits come in the order they were made.
  // The sink must be quick and must not call the store. nullptr: none. Events committed while
  // no sink is set are only in events_for().
  using EventSink = std::function<void(const std::vector<StoredEvent>&)>;
  virtual void set_event_sink(EventSink sink) = 0;
};

// SQLite (WAL, synchronous=FULL) at `path`, created when missing.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace dsx::broker
