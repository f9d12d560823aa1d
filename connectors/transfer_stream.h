#pragma once
// The bytes of a transfer, both ends (docs/api.md, "The data"; docs/stream-format.md).
//
// Provider: TransferResponder answers the transfer events of the control channel as `dsx
// connector serve` does. On transfer.requested it checks the consumer's key binding, starts the
// transfer, seals the dataset's file for that key (StreamSealer, 64 KiB chunks, context
// stream_context(agreementId, providerPid)) and uploads it with PUT .../data. The manifest must
// travel in the PUT's header, before the body, so the file is sealed twice with the same sealer:
// a first pass hashes plaintext and ciphertext (sealing is deterministic for a given sealer), the
// second sends. The sealer's header and ephemeral key are kept in STATE_DIR/transfers/ (0600) so
// that transfer.resumed, even after a restart, sends byte for byte the same stream from the
// chunk asked for, after checking that the file is still the one hashed.
//
// Consumer: fetch() requests a transfer, waits for STARTED, downloads the stream into
// StreamDecoder, writes the verified plaintext to OUT.part (0600), checks the provider's signed
// manifest (certificate chained to the data space CA, the agreement's provider, sizes and
// hashes), renames OUT.part to OUT, and completes the transfer with a signed receipt. An
// interrupted download keeps OUT.part and OUT.part.json (the stream header and the first chunk
// not yet verified) so that the next run resumes there.
//
// Both use the Client they are given: one thread at a time. With an UploadPool, the provider's
// uploads run on threads of their own, each with a Client of its own, so that `serve` goes on
// answering its channel (contract requests, other transfers) while a dataset streams out.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "connectors/channel.h"
#include "connectors/client.h"
#include "connectors/negotiation.h"
#include "protocol/stream_documents.h"

namespace dsx::connectors {

// Dataset id -> the file a provider serves for it: the "datasets" member of a connector config
// file ({"urn:dsx:dataset:x": "/srv/x.csv"}); absent: none. Relative paths are taken relative
// to `base` (the config file's folder). The error names the member.
Result<std::map<std::string, std::filesystem::path>> parse_datasets(
    const nlohmann::json& config, const std::filesystem::path& base = {});

// Threads for the provider's uploads, at most `max_running` at once, each job with a Client of
// its own (connected with `config`) and a key (the transfer's providerPid): at most one job per
// key runs; a new one first stops the old one and begins once it has returned (a resume replaces
// an upload in flight). start() and end() never wait for uploads: the channel loop that calls them
// goes on with other events (a contract request to approve, say) while uploads run, queue for a
// place, or wait for the broker to pair them. Owned by whoever runs the channel loop, so that
// uploads outlive a TransferResponder rebuilt after a lost connection. Thread-safe.
class UploadPool {
 public:
  // What a job gets: its own connection (or why there is none), and a flag that turns true when
  // the job should end (the pool stops, or a newer job of the same key replaces it): an upload
  // then ends at its next chunk, a hash pass at its next chunk; the consumer resumes it.
  using Job = std::function<void(Result<std::unique_ptr<Client>> client,
                                 const std::atomic<bool>& stopping)>;

  explicit UploadPool(ClientConfig config, size_t max_running = 4);
  // stop(), then waits for every job to return.
  ~UploadPool();
  UploadPool(const UploadPool&) = delete;
  UploadPool& operator=(const UploadPool&) = delete;

  // Asks the job of `key` to end, if one runs, replaces a queued one, and queues `job`: it runs
  // on a thread of its own once no other job of `key` runs and fewer than max_running do, in the
  // order queued. Finished threads are joined here. Nothing runs after stop().
  void start(const std::string& key, Job job);
  // Asks the job of `key` to end (a queued one is dropped) and runs `then`, if given, once none
  // runs: here when none does, else on the job's thread as it returns, before another job of
  // `key` can begin. `then` runs with the pool's lock held: short, no call into the pool, no
  // throw.
  void end(const std::string& key, std::function<void()> then = {});
  // Asks every job to end and drops the queued ones; start() after stop() runs nothing.
  void stop();
  // Waits until no job started so far runs or waits for a place, or `timeout` passed; whether
  // none does.
  bool wait_for(std::chrono::milliseconds timeout);
  size_t running() const;
  size_t queued() const;

 private:
  struct Worker {
    std::string key;
    Job job;  // touched by its thread only, once it exists
    std::thread thread;
    std::atomic<bool> stopping{false};
    bool done = false;
    std::vector<std::function<void()>> then;  // end()'s, run as it returns
  };
  struct Queued {
    std::string key;
    Job job;
  };
  bool runs_locked(const std::string& key) const;
  // Starts the queued jobs that may run now (never joins: worker threads call it too). A thread
  // that cannot be created leaves its job queued, for the next start() or job's end to try
  // again; `rethrow`: and the error goes to the caller.
  void launch_locked(bool rethrow);
  void reap_locked();  // joins the finished threads; not from a worker's thread

  const ClientConfig config_;
  const size_t max_running_;
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  bool stopping_ = false;
  std::list<Worker> workers_;
  std::list<Queued> queued_;
};

struct ProviderOptions {
  std::filesystem::path cert_dir;   // cert.pem, key.pem, ca.pem
  std::filesystem::path state_dir;  // where the sealers' state is kept (transfers/)
  std::map<std::string, std::filesystem::path> datasets;
  uint32_t chunk_size = 64 * 1024;
  // Progress, one line each (may be empty). With `uploads`, also called from upload threads
  // (the outcome of each upload): it must then be thread-safe.
  std::function<void(const std::string&)> note;
  // Set: uploads run there and handle() returns once one began. Unset: handle() uploads
  // before it returns. Not owned.
  UploadPool* uploads = nullptr;
};

class TransferResponder {
 public:
  TransferResponder(Client& client, ProviderOptions options)
      : client_(client), options_(std::move(options)) {}
  // Acts on one transfer.* event and says what happened, in one line. A refusal by the broker,
  // a check that fails (a key binding that does not verify, an unknown dataset: the transfer is
  // terminated with the reason) and an upload cut off midway (the consumer resumes it) are
  // reported and count as handled; a transport failure before the upload is an error, so the
  // event comes again after reconnecting. With an UploadPool, the upload's own outcome goes to
  // `note` when it ends, and the line says that it began.
  Result<std::string> handle(const Event& event);

 private:
  Client& client_;
  const ProviderOptions options_;
};

// What an upload sent.
struct UploadResult {
  uint64_t from_chunk = 0;
  uint64_t bytes = 0;   // the PUT's body
  uint64_t chunks = 0;  // in the whole stream
  protocol::StreamManifest manifest;
  nlohmann::json reply;  // the broker's answer ({"relayedBytes", "sha256"})
};

struct FetchOptions {
  std::string agreement_id;
  std::filesystem::path out;
  std::filesystem::path cert_dir;
  std::filesystem::path state_dir;      // where the encryption key is
  std::optional<uint64_t> resume_from;  // restart from this chunk (at most the one recorded)
  std::chrono::milliseconds wait{std::chrono::seconds(60)};  // for the transfer to start
  // Plaintext bytes verified so far and in all (0 until the manifest is known).
  std::function<void(uint64_t done, uint64_t total)> progress;
  std::function<void(const std::string&)> note;
  std::function<bool()> stop;  // polled while waiting and downloading (the download is then
                               // kept for resuming); may be empty
};

struct FetchResult {
  std::optional<Refusal> refused;  // the transfer request was refused (the policy's reasons)
  std::string provider_pid, consumer_pid;
  protocol::StreamManifest manifest;
  uint64_t resumed_from = 0;        // the first chunk this run downloaded
  bool ciphertext_checked = false;  // the whole stream's SHA-256 was compared (a run that
                                    // resumed a stream begun by another run cannot)
  nlohmann::json completion;        // the broker's answer to the completion with the receipt
  std::optional<Refusal> completion_refused;
};

// The consumer's whole fetch. An error says what failed; after a verification failure OUT.part
// and its state file are gone, after an interruption they are kept for the next run.
Result<FetchResult> fetch(Client& client, const FetchOptions& options);

// The state file next to OUT.part.
std::filesystem::path fetch_state_file(const std::filesystem::path& out);

}  // namespace dsx::connectors
