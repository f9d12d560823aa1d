#include "connectors/transfer_stream.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "certs/atomic_file.h"
#include "certs/signature.h"
#include "common/clock.h"
#include "common/hex.h"
#include "common/json.h"
#include "common/sha256.h"
#include "connectors/transfer.h"
#include "protocol/stream_format.h"

namespace dsx::connectors {

using json = nlohmann::json;
namespace fs = std::filesystem;
namespace protocol = dsx::protocol;
using Clock = std::chrono::steady_clock;

namespace {

std::string text_of(const json& object, const char* name) {
  if (!object.is_object()) return {};
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> reasons_of(const json& body) {
  std::vector<std::string> out;
  for (const json* holder :
       {&body, body.is_object() && body.contains("message") ? &body["message"] : nullptr,
        body.is_object() && body.contains("transfer") ? &body["transfer"] : nullptr}) {
    if (!holder || !holder->is_object()) continue;
    // GET /transfers/{pid}: "dsx:reason": {"code", "reasons"}.
    if (auto d = holder->find("dsx:reason"); d != holder->end() && d->is_object()) {
      for (const auto& r : d->value("reasons", json::array()))
        if (r.is_string()) out.push_back(r.get<std::string>());
      if (out.empty() && d->contains("code")) out.push_back(text_of(*d, "code"));
    }
    auto it = holder->find("reason");
    if (it == holder->end()) continue;
    if (it->is_array()) {
      for (const auto& r : *it)
        out.push_back(r.is_string() ? r.get<std::string>() : r.dump());
    } else if (it->is_string()) {
      out.push_back(it->get<std::string>());
    }
  }
  return out;
}

std::string joined(const std::vector<std::string>& reasons) {
  std::string out;
  for (const auto& r : reasons)
    out += (out.empty() ? "" : "; ") + r;
  return out.empty() ? "no reason given" : out;
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n < 1024) return std::to_string(n) + " B";
  if (n < (uint64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(n) / 1024);
  else if (n < (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1 << 20));
  else
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(n) / (1 << 30));
  return buf;
}

const auto kPrivateFile = fs::perms::owner_read | fs::perms::owner_write;

// ---- the provider's side -------------------------------------------------------------------

struct TransferInfo {
  std::string provider_pid, consumer_pid, agreement_id, dataset, consumer, provider;
  uint64_t from_chunk = 0;
};

TransferInfo transfer_info(const json& body) {
  const json t = body.is_object() ? body.value("transfer", json::object()) : json::object();
  TransferInfo info{text_of(t, "providerPid"), text_of(t, "consumerPid"), text_of(t, "agreementId"),
                    text_of(t, "dataset"),     text_of(t, "consumer"),    text_of(t, "provider")};
  if (auto it = t.find("fromChunk"); it != t.end() && it->is_number_unsigned())
    info.from_chunk = it->get<uint64_t>();
  return info;
}

// STATE_DIR/transfers/<first 32 hex digits of SHA-256(providerPid)>.json: a file name whatever
// the id holds.
fs::path sealer_state_file(const fs::path& state_dir, const std::string& provider_pid) {
  Sha256 h;
  h.update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(provider_pid.data()),
                                    provider_pid.size()));
  return state_dir / "transfers" / (to_hex(h.finish()).substr(0, 32) + ".json");
}

// The file of a dataset, read one chunk at a time.
class ChunkReader {
 public:
  static Result<ChunkReader> open(const fs::path& file, uint32_t chunk_size) {
    std::error_code ec;
    const uint64_t size = fs::file_size(file, ec);
    if (ec) return Status::failed_precondition(file.string() + ": " + ec.message());
    ChunkReader r;
    r.in_.open(file, std::ios::binary);
    if (!r.in_) return Status::failed_precondition(file.string() + ": cannot open it");
    r.file_ = file;
    r.size_ = size;
    r.chunk_size_ = chunk_size;
    return r;
  }
  uint64_t size() const { return size_; }
  uint64_t chunks() const { return protocol::stream_chunk_count(size_, chunk_size_); }
  bool last(uint64_t index) const { return index + 1 == chunks(); }
  // Chunk `index` into `buf` (resized to its length).
  Status read(uint64_t index, std::vector<uint8_t>& buf) {
    const uint64_t begin = index * chunk_size_;
    const uint64_t len = std::min<uint64_t>(chunk_size_, size_ - std::min(size_, begin));
    buf.resize(len);
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(begin));
    if (len > 0) in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(len));
    if (!in_ || static_cast<uint64_t>(in_.gcount()) != len)
      return Status::failed_precondition(file_.string() + ": short read at chunk " +
                                         std::to_string(index) + " (did the file change?)");
    return Status::ok();
  }

 private:
  std::ifstream in_;
  fs::path file_;
  uint64_t size_ = 0;
  uint32_t chunk_size_ = 0;
};

struct Sealed {
  uint64_t size = 0;
  std::array<uint8_t, 32> plaintext_sha256{}, ciphertext_sha256{};
};

Status stopped() {
  return Status::failed_precondition("the connector is stopping");
}

// SHA-256 of the whole file, read chunk by chunk.
Result<std::array<uint8_t, 32>> plaintext_hash(const fs::path& file, uint32_t chunk_size,
                                               const std::atomic<bool>* stopping) {
  auto reader = ChunkReader::open(file, chunk_size);
  if (!reader) return reader.status();
  Sha256 plain;
  std::vector<uint8_t> buf;
  for (uint64_t i = 0; i < reader->chunks(); ++i) {
    if (stopping && *stopping) return stopped();
    if (Status s = reader->read(i, buf); !s) return s;
    plain.update(buf);
  }
  return plain.finish();
}

// The hash pass, before anything is sent: seals every chunk and hashes the stream, while a
// second thread hashes the plaintext (the two take about as long as each other, and the
// consumer waits for the first byte until both are done).
Result<Sealed> hash_pass(protocol::StreamSealer& sealer, ChunkReader& reader, const fs::path& file,
                         const std::atomic<bool>* stopping) {
  std::optional<Result<std::array<uint8_t, 32>>> plain;
  std::jthread plain_thread(
      [&] { plain = plaintext_hash(file, sealer.chunk_size(), stopping); });  // joined on return
  Sha256 cipher;
  cipher.update(sealer.header());
  std::vector<uint8_t> buf, out(sealer.chunk_size() + protocol::kStreamTagSize);
  Status status = Status::ok();
  for (uint64_t i = 0; i < reader.chunks() && status; ++i) {
    if (stopping && *stopping) {
      status = stopped();
      break;
    }
    status = reader.read(i, buf);
    if (!status) break;
    auto n = sealer.seal_into(i, buf, reader.last(i), out);
    if (!n)
      status = n.status();
    else
      cipher.update(std::span<const uint8_t>(out.data(), *n));
  }
  plain_thread.join();
  if (!status) return status;
  if (!*plain) return plain->status();
  Sealed s;
  s.size = reader.size();
  s.plaintext_sha256 = **plain;
  s.ciphertext_sha256 = cipher.finish();
  return s;
}

Result<json> read_json_file(const fs::path& file) {
  auto text = certs::read_text_file(file);
  if (!text) return text.status();
  auto doc = parse_json_text(*text);
  if (!doc || !doc->is_object())
    return Status::invalid_argument(file.string() + ": not a JSON object");
  return std::move(*doc);
}

// Seals `file` for `recipient` (again, from the kept state, when this transfer has one) and
// uploads it from `from_chunk`. A refusal of the upload is the Answer's Refusal.
Result<Answer<UploadResult>> upload_stream(Client& client, const ProviderOptions& o,
                                           const TransferInfo& info,
                                           const protocol::X25519PublicKey& recipient,
                                           const fs::path& file, uint64_t from_chunk,
                                           const std::atomic<bool>* stopping) {
  const std::string context = protocol::stream_context(info.agreement_id, info.provider_pid);
  const fs::path state_file = sealer_state_file(o.state_dir, info.provider_pid);
  std::optional<json> state;
  if (std::error_code ec; fs::exists(state_file, ec)) {
    auto s = read_json_file(state_file);
    if (!s) return s.status();
    state = std::move(*s);
  }
  std::optional<protocol::StreamSealer> sealer;
  if (state) {
    auto header = from_hex(text_of(*state, "header"));
    auto ephemeral = protocol::X25519PrivateKey::from_pem(text_of(*state, "ephemeralKey"));
    if (!header || !ephemeral)
      return Status::invalid_argument(state_file.string() + ": unreadable header or key");
    if (text_of(*state, "recipient") != to_hex(recipient.raw()))
      return Status::invalid_argument(
          "the consumer's encryption key changed since the stream began; start a new transfer");
    auto s = protocol::StreamSealer::resume(recipient, context, *header, *ephemeral);
    if (!s) return s.status();
    sealer.emplace(std::move(*s));
  } else {
    auto s = protocol::StreamSealer::create(recipient, context, o.chunk_size);
    if (!s) return s.status();
    sealer.emplace(std::move(*s));
    if (from_chunk > 0 && o.note)
      o.note(info.provider_pid + ": no sealer kept for this transfer; sending chunk " +
             std::to_string(from_chunk) + " on of a new stream would not open, sending chunk 0 on");
    from_chunk = 0;
  }
  auto reader = ChunkReader::open(file, sealer->chunk_size());
  if (!reader) return reader.status();
  auto sealed = hash_pass(*sealer, *reader, file, stopping);
  if (!sealed) return sealed.status();
  if (from_chunk >= reader->chunks())
    return Status::invalid_argument("chunk " + std::to_string(from_chunk) +
                                    " asked for; the stream has " +
                                    std::to_string(reader->chunks()));

  protocol::StreamManifest manifest{
      info.dataset, info.agreement_id,        info.provider_pid,
      sealed->size, sealed->plaintext_sha256, sealed->ciphertext_sha256};
  json signed_manifest;
  if (state) {
    // The same stream as before: the file must be the one hashed then.
    if (text_of(*state, "ciphertextSha256") != to_hex(sealed->ciphertext_sha256))
      return Status::invalid_argument(file.string() +
                                      " changed since the stream began (its SHA-256 differs); "
                                      "start a new transfer");
    signed_manifest = state->value("manifest", json());
  } else {
    auto text = protocol::stream_manifest_json(manifest);
    if (!text) return text.status();
    auto sig = certs::sign_text(o.cert_dir, *text);
    if (!sig) return sig.status();
    signed_manifest = certs::signed_document(*text, *sig);
    auto cert_pem = certs::read_text_file(o.cert_dir / "cert.pem");
    if (!cert_pem) return cert_pem.status();
    signed_manifest["certificate"] = *cert_pem;
    json record = {{"providerPid", info.provider_pid},
                   {"agreementId", info.agreement_id},
                   {"dataset", info.dataset},
                   {"file", file.string()},
                   {"recipient", to_hex(recipient.raw())},
                   {"chunkSize", sealer->chunk_size()},
                   {"plaintextSize", sealed->size},
                   {"plaintextSha256", to_hex(sealed->plaintext_sha256)},
                   {"ciphertextSha256", to_hex(sealed->ciphertext_sha256)},
                   {"header", to_hex(sealer->header())},
                   {"ephemeralKey", sealer->ephemeral_key().to_pem()},
                   {"manifest", signed_manifest}};
    std::error_code ec;
    fs::create_directories(state_file.parent_path(), ec);
    fs::permissions(state_file.parent_path(), fs::perms::owner_all, ec);
    if (Status s = certs::write_file_atomic(state_file, record.dump(2) + "\n", kPrivateFile,
                                            certs::Overwrite::kYes);
        !s)
      return s;
  }

  const uint32_t c = sealer->chunk_size();
  const uint64_t body = protocol::kStreamHeaderSize + protocol::stream_size(sealed->size, c) -
                        protocol::stream_chunk_offset(from_chunk, c);
  // The body: the header, then chunks from_chunk on, sealed again as they are sent.
  std::vector<uint8_t> pending(sealer->header().begin(), sealer->header().end());
  size_t pending_at = 0;
  uint64_t next = from_chunk;
  std::vector<uint8_t> plain, sealed_chunk(c + protocol::kStreamTagSize);
  Client::BodySource source = [&](std::span<uint8_t> out) -> Result<size_t> {
    if (pending_at == pending.size()) {
      if (stopping && *stopping) return stopped();
      if (next >= reader->chunks()) return Status::internal("upload: the stream is shorter");
      if (Status s = reader->read(next, plain); !s) return s;
      auto n = sealer->seal_into(next, plain, reader->last(next), sealed_chunk);
      if (!n) return n.status();  // the file changed between the passes
      pending.assign(sealed_chunk.begin(), sealed_chunk.begin() + static_cast<long>(*n));
      pending_at = 0;
      ++next;
    }
    const size_t k = std::min(out.size(), pending.size() - pending_at);
    std::memcpy(out.data(), pending.data() + pending_at, k);
    pending_at += k;
    return k;
  };
  const Client::Headers headers = {{"X-Dsx-From-Chunk", std::to_string(from_chunk)},
                                   {"X-Dsx-Manifest", encode_manifest_header(signed_manifest)}};
  auto reply =
      client.upload("PUT", "/transfers/" + info.provider_pid + "/data", headers, body, source);
  if (!reply) return reply.status();
  if (reply->status / 100 != 2) return Answer<UploadResult>(refusal_of(*reply));
  UploadResult result;
  result.from_chunk = from_chunk;
  result.bytes = body;
  result.chunks = reader->chunks();
  result.manifest = manifest;
  result.reply = parse_json_text(reply->body).is_ok() ? *parse_json_text(reply->body) : json();
  return Answer<UploadResult>(std::move(result));
}

protocol::TransferProcess process_of(const TransferInfo& info) {
  return {info.provider_pid, info.consumer_pid, protocol::TransferState::kStarted};
}

}  // namespace

Result<std::map<std::string, fs::path>> parse_datasets(const json& config, const fs::path& base) {
  std::map<std::string, fs::path> out;
  if (!config.is_object() || !config.contains("datasets")) return out;
  const json& map = config["datasets"];
  if (!map.is_object())
    return Status::invalid_argument("datasets: expected an object {\"DATASET ID\": \"FILE\"}");
  for (const auto& [id, file] : map.items()) {
    if (!file.is_string() || file.get<std::string>().empty())
      return Status::invalid_argument("datasets." + id + ": expected a file name");
    fs::path p = file.get<std::string>();
    if (p.is_relative() && !base.empty()) p = base / p;
    out[id] = p;
  }
  return out;
}

namespace {

// Terminates the transfer with `why`; the line that says so.
Result<std::string> refuse_transfer(Client& client, const TransferInfo& info,
                                    const std::string& what, const std::string& why) {
  auto t = terminate_transfer(client, process_of(info), why);
  if (!t) return t.status();
  return what + ": " + why + "; terminated the transfer";
}

// Seals and uploads the stream, and says what came of it in one line. A failed upload is
// reported, not an error (the consumer resumes it); a file that cannot be served terminates the
// transfer.
Result<std::string> upload_and_report(Client& client, const ProviderOptions& o,
                                      const TransferInfo& info, const std::string& what,
                                      const protocol::X25519PublicKey& key, const fs::path& file,
                                      const std::atomic<bool>* stopping) {
  auto sent = upload_stream(client, o, info, key, file, info.from_chunk, stopping);
  if (!sent) {
    if (sent.status().code() == Status::Code::kInvalidArgument)
      return refuse_transfer(client, info, what, sent.status().message());
    // An upload cut off (the consumer went away, the relay timed out) is not tried again
    // from here: the transfer stays STARTED and the consumer resumes it (suspend, start with
    // dsx:fromChunk), which sends transfer.resumed.
    return what + ": the upload was interrupted: " + sent.status().message() +
           "; the consumer resumes it";
  }
  if (auto* refusal = std::get_if<Refusal>(&*sent))
    return what + ": the broker refused the upload: " + refusal->summary;
  const UploadResult& u = std::get<UploadResult>(*sent);
  std::string line = what + ": sent " + human_bytes(u.bytes) + " (chunks " +
                     std::to_string(u.from_chunk) + " to " + std::to_string(u.chunks - 1) + " of " +
                     human_bytes(u.manifest.plaintext_size) + ", sealed for " + info.consumer + ")";
  if (u.reply.is_object() && u.reply.contains("relayedBytes"))
    line += "; relayed " + u.reply["relayedBytes"].dump() + " bytes, sha256 " +
            text_of(u.reply, "sha256");
  return line;
}

}  // namespace

UploadPool::UploadPool(ClientConfig config, size_t max_running)
    : config_(std::move(config)), max_running_(std::max<size_t>(1, max_running)) {}

UploadPool::~UploadPool() {
  stop();
  std::list<Worker> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(workers_);  // the nodes move, the threads' references to them stay valid
  }
  for (Worker& w : all)
    if (w.thread.joinable()) w.thread.join();
}

void UploadPool::reap_locked() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();  // returning: its last step was to say done
    it = workers_.erase(it);
  }
}

bool UploadPool::runs_locked(const std::string& key) const {
  return std::any_of(workers_.begin(), workers_.end(),
                     [&](const Worker& w) { return w.key == key && !w.done; });
}

void UploadPool::launch_locked(bool rethrow) {
  size_t running = 0;
  for (const Worker& w : workers_)
    running += w.done ? 0 : 1;
  for (auto it = queued_.begin(); it != queued_.end() && running < max_running_ && !stopping_;) {
    if (runs_locked(it->key)) {
      ++it;
      continue;
    }
    Worker& w = workers_.emplace_back();
    w.key = it->key;
    w.job = std::move(it->job);
    try {
      w.thread = std::thread([this, &w] {
        w.job(Client::connect(config_), w.stopping);
        w.job = nullptr;  // its captures go now, not when the worker is reaped
        std::lock_guard done_lock(mutex_);
        for (auto& then : w.then)
          then();  // before another job of this key can begin
        w.then.clear();
        w.done = true;
        launch_locked(false);
        finished_.notify_all();
      });
    } catch (...) {  // no thread: no worker, and the job stays queued for the next chance
      it->job = std::move(w.job);
      workers_.pop_back();
      if (rethrow) throw;
      return;
    }
    it = queued_.erase(it);
    ++running;
  }
}

void UploadPool::start(const std::string& key, Job job) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  for (Worker& w : workers_)
    if (w.key == key) w.stopping = true;
  std::erase_if(queued_, [&](const Queued& q) { return q.key == key; });
  queued_.push_back({key, std::move(job)});
  reap_locked();
  launch_locked(true);
}

void UploadPool::end(const std::string& key, std::function<void()> then) {
  std::lock_guard lock(mutex_);
  std::erase_if(queued_, [&](const Queued& q) { return q.key == key; });
  Worker* running = nullptr;
  for (Worker& w : workers_)
    if (w.key == key && !w.done) {
      w.stopping = true;
      running = &w;
    }
  if (!then) return;
  if (running)
    running->then.push_back(std::move(then));
  else
    then();
}

void UploadPool::stop() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  queued_.clear();
  for (Worker& w : workers_)
    w.stopping = true;
  finished_.notify_all();
}

bool UploadPool::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return finished_.wait_for(lock, timeout, [&] {
    reap_locked();
    return workers_.empty() && queued_.empty();
  });
}

size_t UploadPool::queued() const {
  std::lock_guard lock(mutex_);
  return queued_.size();
}

size_t UploadPool::running() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const Worker& w : workers_)
    n += w.done ? 0 : 1;
  return n;
}

Result<std::string> TransferResponder::handle(const Event& event) {
  const TransferInfo info = transfer_info(event.body);
  const std::string& pid = info.provider_pid;
  const std::string& type = event.type;
  if (type == "transfer.requested" || type == "transfer.resumed") {
    const bool resumed = type == "transfer.resumed";
    const std::string what =
        resumed ? "transfer " + pid + " resumed from chunk " + std::to_string(info.from_chunk)
                : "transfer " + pid + " of " + info.dataset + " to " + info.consumer;
    auto key = check_key_binding(options_.cert_dir, event.body.value("encryptionKey", json()),
                                 info.consumer);
    if (!key && key.status().code() == Status::Code::kInternal)
      return key.status();  // this connector's fault (its crl.pem): the event comes again
    if (!key)
      return refuse_transfer(
          client_, info, what,
          "the consumer's key binding does not check: " + key.status().message());
    auto file = options_.datasets.find(info.dataset);
    if (file == options_.datasets.end())
      return refuse_transfer(
          client_, info, what,
          "this connector serves no file for " + info.dataset + " (\"datasets\" in its config)");
    if (!resumed) {
      auto started = start_transfer(client_, process_of(info));
      if (!started) return started.status();
      if (auto* refusal = std::get_if<Refusal>(&*started)) {
        // A repeated event after a restart: the transfer may be STARTED already.
        auto current = get_transfer(client_, pid);
        if (!current) return current.status();
        const auto* t = std::get_if<protocol::TransferProcess>(&*current);
        if (!t || t->state != protocol::TransferState::kStarted)
          return what + ": could not start: " + refusal->summary;
      }
    }
    if (!options_.uploads)
      return upload_and_report(client_, options_, info, what, *key, file->second, nullptr);
    options_.uploads->start(
        pid, [o = options_, info, what, key = *key, file = file->second](
                 Result<std::unique_ptr<Client>> client, const std::atomic<bool>& stopping) {
          Result<std::string> line =
              client ? upload_and_report(**client, o, info, what, key, file, &stopping)
                     : Result<std::string>(client.status());
          if (o.note)
            o.note(line ? *line
                        : what + ": the upload failed: " + line.status().message() +
                              "; the consumer resumes it");
        });
    return what + ": uploading";
  }
  // An upload of a transfer that ended has nothing left to do: it is asked to end, and its
  // sealer state is removed once it has returned (it must not write the state again after).
  const fs::path state_file = sealer_state_file(options_.state_dir, pid);
  auto forget = [state_file] {
    std::error_code ec;
    fs::remove(state_file, ec);
  };
  auto forget_when_ended = [&] {
    if (options_.uploads)
      options_.uploads->end(pid, forget);
    else
      forget();
  };
  if (type == "transfer.completed") {
    std::string line = "transfer " + pid + ": COMPLETED";
    // The receipt should sign the manifest this connector sent.
    const json receipt = event.body.value("message", json()).value("dsx:receipt", json());
    auto state = read_json_file(state_file);
    if (receipt.is_object() && state) {
      auto signed_doc = certs::parse_signed_document(receipt);
      auto manifest = certs::parse_signed_document(state->value("manifest", json()));
      line += signed_doc && manifest && signed_doc->text == manifest->text
                  ? "; the receipt is for the manifest sent"
                  : "; the receipt is NOT for the manifest sent";
    }
    forget_when_ended();
    return line;
  }
  if (type == "transfer.terminated") {
    forget_when_ended();
    return "transfer " + pid + ": TERMINATED: " + joined(reasons_of(event.body));
  }
  if (type == "transfer.suspended")
    return "transfer " + pid + ": SUSPENDED: " + joined(reasons_of(event.body));
  if (type == "transfer.started")
    return "transfer " + pid + ": STARTED (dsx connector fetch downloads it)";
  return "event " + std::to_string(event.id) + ": " + type + " (nothing to do)";
}

// ---- the consumer's side -------------------------------------------------------------------

fs::path fetch_state_file(const fs::path& out) {
  return fs::path(out.string() + ".part.json");
}

namespace {

// OUT.part, written through a descriptor so that it is created 0600 and synced.
class PartFile {
 public:
  ~PartFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status open(const fs::path& path, uint64_t keep) {
    path_ = path;
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return Status::failed_precondition(path.string() + ": " + std::strerror(errno));
    if (::fchmod(fd_, 0600) != 0 || ::ftruncate(fd_, static_cast<off_t>(keep)) != 0 ||
        ::lseek(fd_, static_cast<off_t>(keep), SEEK_SET) < 0)
      return Status::failed_precondition(path.string() + ": " + std::strerror(errno));
    return Status::ok();
  }
  Status write(std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Status::failed_precondition(path_.string() + ": " + std::strerror(errno));
      bytes = bytes.subspan(static_cast<size_t>(n));
    }
    return Status::ok();
  }
  Status sync() {
    if (::fdatasync(fd_) != 0)
      return Status::failed_precondition(path_.string() + ": " + std::strerror(errno));
    return Status::ok();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

Status sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::failed_precondition(dir.string() + ": " + std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  return Status::ok();
}

// Hashes the first `n` bytes of `file` into `h`.
Status hash_prefix(const fs::path& file, uint64_t n, Sha256& h) {
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> buf(1 << 20);
  while (n > 0 && in) {
    const auto want = static_cast<std::streamsize>(std::min<uint64_t>(buf.size(), n));
    in.read(reinterpret_cast<char*>(buf.data()), want);
    const auto got = static_cast<uint64_t>(in.gcount());
    h.update(std::span<const uint8_t>(buf.data(), got));
    n -= got;
    if (got == 0) break;
  }
  if (n != 0) return Status::failed_precondition(file.string() + ": shorter than recorded");
  return Status::ok();
}

struct FetchState {
  std::string agreement_id, provider_pid, consumer_pid;
  std::vector<uint8_t> header;  // empty until the stream's header was read
  uint64_t next_chunk = 0;
};

Status save_state(const fs::path& file, const FetchState& s) {
  json doc = {{"version", 1},
              {"agreementId", s.agreement_id},
              {"providerPid", s.provider_pid},
              {"consumerPid", s.consumer_pid},
              {"nextChunk", s.next_chunk}};
  if (!s.header.empty()) doc["header"] = to_hex(s.header);
  return certs::write_file_atomic(file, doc.dump() + "\n", kPrivateFile, certs::Overwrite::kYes);
}

std::optional<FetchState> load_state(const fs::path& file) {
  auto doc = read_json_file(file);
  if (!doc) return std::nullopt;
  FetchState s;
  s.agreement_id = text_of(*doc, "agreementId");
  s.provider_pid = text_of(*doc, "providerPid");
  s.consumer_pid = text_of(*doc, "consumerPid");
  if (auto h = from_hex(text_of(*doc, "header")); h && h->size() == protocol::kStreamHeaderSize)
    s.header = std::move(*h);
  if (auto it = doc->find("nextChunk"); it != doc->end() && it->is_number_unsigned())
    s.next_chunk = it->get<uint64_t>();
  if (s.header.empty()) s.next_chunk = 0;
  if (s.provider_pid.empty() || s.consumer_pid.empty()) return std::nullopt;
  return s;
}

void remove_partial(const fs::path& out) {
  std::error_code ec;
  fs::remove(fs::path(out.string() + ".part"), ec);
  fs::remove(fetch_state_file(out), ec);
}

}  // namespace

Result<FetchResult> fetch(Client& client, const FetchOptions& o) {
  auto note = [&](const std::string& line) {
    if (o.note) o.note(line);
  };
  FetchResult result;
  auto key = load_or_create_encryption_key(o.state_dir);
  if (!key) return key.status();
  SystemClock clock;
  auto registered = ensure_key_registered(client, o.cert_dir, key->public_key(), clock.now());
  if (!registered) return registered.status();
  if (auto* refusal = std::get_if<Refusal>(&*registered))
    return Status::failed_precondition("the broker refused the encryption key: " +
                                       refusal->summary);
  if (std::get<bool>(*registered))
    note("registered the encryption key " + (o.state_dir / kEncryptionKeyFile).string());

  // The agreement names the provider (who must sign the manifest) and the dataset.
  auto record = get_agreement(client, o.agreement_id);
  if (!record) return record.status();
  if (auto* refusal = std::get_if<Refusal>(&*record))
    return Status::invalid_argument("agreement " + o.agreement_id + ": " + refusal->summary);
  const json agreement = std::get<json>(*record).value("agreement", json::object());
  const std::string provider = text_of(agreement, "assigner"),
                    dataset = text_of(agreement, "target");

  const fs::path part = o.out.string() + ".part";
  const fs::path state_file = fetch_state_file(o.out);
  std::optional<FetchState> state = load_state(state_file);
  if (state && state->agreement_id != o.agreement_id) {
    note("discarding " + state_file.string() + ": it is for agreement " + state->agreement_id);
    remove_partial(o.out);
    state.reset();
  }
  if (o.resume_from && (!state || *o.resume_from > state->next_chunk))
    return Status::invalid_argument(
        "--resume-from " + std::to_string(*o.resume_from) + ": " +
        (state ? "only chunks before " + std::to_string(state->next_chunk) + " were verified"
               : "nothing to resume (" + state_file.string() + " is missing)"));
  if (state && o.resume_from) state->next_chunk = *o.resume_from;
  if (state && state->next_chunk == 0) state->header.clear();

  protocol::TransferProcess t;
  const bool fresh = !state;  // requested by this run (else an earlier run's, to resume)
  if (!state) {
    auto requested = request_transfer(client, TransferRequest{o.agreement_id, {}});
    if (!requested) return requested.status();
    if (auto* refusal = std::get_if<Refusal>(&*requested)) {
      result.refused = std::move(*refusal);
      return result;
    }
    t = std::get<protocol::TransferProcess>(*requested);
    state = FetchState{o.agreement_id, t.provider_pid, t.consumer_pid, {}, 0};
    if (Status s = save_state(state_file, *state); !s) return s;
    note("transfer " + t.provider_pid + " (consumerPid " + t.consumer_pid +
         "): " + std::string(protocol::to_string(t.state)));
  } else {
    t = {state->provider_pid, state->consumer_pid, protocol::TransferState::kRequested};
    note("resuming transfer " + t.provider_pid + " at chunk " + std::to_string(state->next_chunk));
  }
  result.provider_pid = t.provider_pid;
  result.consumer_pid = t.consumer_pid;

  // Until STARTED: the provider's connector starts a requested transfer; a suspended one is
  // resumed from here.
  const auto deadline = Clock::now() + o.wait;
  Channel::Backoff poll(std::chrono::milliseconds(200), std::chrono::seconds(2));
  bool resume_sent = false;
  for (;;) {
    auto g = get_transfer_record(client, t.provider_pid);
    if (!g) return g.status();
    if (auto* refusal = std::get_if<Refusal>(&*g)) {
      if (refusal->status == 404) remove_partial(o.out);
      return Status::failed_precondition("transfer " + t.provider_pid + ": " + refusal->summary);
    }
    const json& doc = std::get<json>(*g);
    auto current = protocol::parse_transfer_process(doc);
    if (!current)
      return Status::failed_precondition("the broker's reply: " + current.status().message());
    t.state = current->state;
    if (t.state == protocol::TransferState::kStarted && !fresh && !resume_sent) {
      // An earlier run's download was interrupted, and with it the provider's upload: suspend
      // and resume, so that the provider's connector sends again from the chunk asked for.
      auto r = suspend_transfer(
          client, t, "the consumer resumes from chunk " + std::to_string(state->next_chunk));
      if (!r) return r.status();
      if (auto* refusal = std::get_if<Refusal>(&*r))
        return Status::failed_precondition("suspending transfer " + t.provider_pid +
                                           " to resume it: " + refusal->summary);
      continue;
    }
    if (t.state == protocol::TransferState::kStarted) break;
    if (t.state == protocol::TransferState::kTerminated ||
        t.state == protocol::TransferState::kCompleted) {
      remove_partial(o.out);
      return Status::failed_precondition(
          "transfer " + t.provider_pid + " is " + std::string(protocol::to_string(t.state)) +
          (t.state == protocol::TransferState::kTerminated ? ": " + joined(reasons_of(doc)) : "") +
          "; fetch again for a new transfer");
    }
    if (t.state == protocol::TransferState::kSuspended && !resume_sent) {
      auto r = start_transfer(client, t, state->next_chunk);
      if (!r) return r.status();
      if (auto* refusal = std::get_if<Refusal>(&*r))
        return Status::failed_precondition("resuming transfer " + t.provider_pid + ": " +
                                           refusal->summary);
      resume_sent = true;
      continue;
    }
    if (Clock::now() >= deadline || (o.stop && o.stop()))
      return Status::failed_precondition(
          "transfer " + t.provider_pid + " is still " + std::string(protocol::to_string(t.state)) +
          " (is the provider's connector serving?); run the same command again to go on waiting");
    std::this_thread::sleep_for(
        std::min(poll.next(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())));
  }

  // The download. Failures of a check end the fetch and remove the partial file; failures of
  // the transport keep it, with the state, for the next run.
  const uint64_t start_chunk = state->next_chunk;
  result.resumed_from = start_chunk;
  const std::string context = protocol::stream_context(o.agreement_id, t.provider_pid);
  std::optional<protocol::StreamDecoder> decoder;
  uint32_t chunk_size = 0;
  if (start_chunk > 0) {
    auto d = protocol::StreamDecoder::resume(*key, state->header, context, start_chunk);
    if (!d) {
      remove_partial(o.out);
      return Status::invalid_argument("resuming: " + d.status().message() +
                                      "; removed the partial file, fetch again");
    }
    chunk_size = protocol::parse_stream_header(state->header)->chunk_size;
    decoder.emplace(std::move(*d));
  } else {
    decoder.emplace(*key, context);
  }
  Sha256 plain_hash, cipher_hash;
  const uint64_t kept = start_chunk * chunk_size;
  if (kept > 0)
    if (Status s = hash_prefix(part, kept, plain_hash); !s) {
      remove_partial(o.out);
      return Status::failed_precondition(s.message() + "; removed the partial file, fetch again");
    }
  PartFile file;
  if (Status s = file.open(part, kept); !s) return s;

  std::optional<CheckedManifest> manifest;
  bool check_failed = false;
  uint64_t done = kept, total = 0, since_save = 0;
  std::vector<uint8_t> header_seen, plaintext;
  auto fail_check = [&](Status s) {
    check_failed = true;
    return s;
  };
  auto on_headers = [&](const Reply& head) -> Status {
    auto doc = decode_manifest_header(head.header("X-Dsx-Manifest"));
    if (!doc) return fail_check(doc.status());
    auto m = check_signed_manifest(o.cert_dir, *doc, provider);
    // A problem of this side (its crl.pem) stops the download, kept for a rerun, and does not
    // blame the stream.
    if (!m && m.status().code() == Status::Code::kInternal) return m.status();
    if (!m) return fail_check(m.status());
    const auto& mf = m->manifest;
    if (mf.agreement_id != o.agreement_id || mf.transfer_id != t.provider_pid ||
        (!dataset.empty() && mf.dataset_id != dataset))
      return fail_check(Status::invalid_argument(
          "manifest: it is for agreement " + mf.agreement_id + ", transfer " + mf.transfer_id +
          ", dataset " + mf.dataset_id + ", not this transfer"));
    total = mf.plaintext_size;
    manifest = std::move(*m);
    if (o.progress) o.progress(done, total);
    return Status::ok();
  };
  auto on_piece = [&](std::span<const uint8_t> piece) -> Status {
    if (o.stop && o.stop()) return Status::failed_precondition("interrupted");
    if (start_chunk > 0 && header_seen.size() < protocol::kStreamHeaderSize) {
      // A resumed body repeats the header first: it must be the stream's.
      const size_t k = std::min(piece.size(), protocol::kStreamHeaderSize - header_seen.size());
      header_seen.insert(header_seen.end(), piece.begin(), piece.begin() + static_cast<long>(k));
      piece = piece.subspan(k);
      if (header_seen.size() == protocol::kStreamHeaderSize && header_seen != state->header)
        return fail_check(Status::invalid_argument(
            "the provider sent a new stream (another header) for a resumed transfer"));
      if (piece.empty()) return Status::ok();
    }
    if (start_chunk == 0) cipher_hash.update(piece);
    plaintext.clear();
    if (Status s = decoder->update(piece, plaintext); !s) return fail_check(s);
    if (!plaintext.empty()) {
      if (Status s = file.write(plaintext); !s) return s;
      plain_hash.update(plaintext);
      done += plaintext.size();
      since_save += plaintext.size();
      if (o.progress) o.progress(done, total);
    }
    if (since_save >= (uint64_t{8} << 20)) {  // every 8 MiB: what a rerun may skip
      since_save = 0;
      if (Status s = file.sync(); !s) return s;
      state->header.assign(decoder->header().begin(), decoder->header().end());
      state->next_chunk = decoder->next_chunk();
      if (Status s = save_state(state_file, *state); !s) return s;
    }
    return Status::ok();
  };
  auto reply = client.download(
      "/transfers/" + t.provider_pid + "/data?fromChunk=" + std::to_string(start_chunk), {},
      on_headers, on_piece);
  auto keep_for_resume = [&](const std::string& why) -> Status {
    if (!decoder->header().empty()) {
      file.sync();
      state->header.assign(decoder->header().begin(), decoder->header().end());
      state->next_chunk = decoder->next_chunk();
    }
    save_state(state_file, *state);
    return Status::failed_precondition(why + "; verified up to chunk " +
                                       std::to_string(state->next_chunk) + ", kept in " +
                                       part.string() + ": run the same command again to resume");
  };
  // A stream that fails a check was altered on its way (or sent wrong): nothing of it is kept,
  // and the transfer is terminated with the reason, so that the failure is in the provenance
  // log. A new fetch requests a new transfer (an unfinished one does not count as a use).
  auto reject = [&](const std::string& why) -> Status {
    file.close();
    remove_partial(o.out);
    std::string logged = "; the transfer could not be terminated";
    auto ended = terminate_transfer(client, t, why, "verification-failed");
    if (ended && std::holds_alternative<protocol::TransferProcess>(*ended))
      logged = "; terminated transfer " + t.provider_pid + " (logged by the broker)";
    return Status::invalid_argument(why + "; removed " + part.string() + logged);
  };
  if (!reply) {
    if (check_failed) return reject(reply.status().message());
    // The relay ends the download of a transfer that was terminated meanwhile: say so, rather
    // than offer a resume that cannot be.
    if (auto g = get_transfer_record(client, t.provider_pid);
        g && std::holds_alternative<json>(*g)) {
      const json& doc = std::get<json>(*g);
      auto now = protocol::parse_transfer_process(doc);
      if (now && now->state == protocol::TransferState::kTerminated) {
        file.close();
        remove_partial(o.out);
        return Status::failed_precondition("transfer " + t.provider_pid +
                                           " was TERMINATED during the download: " +
                                           joined(reasons_of(doc)) + "; removed " + part.string());
      }
    }
    return keep_for_resume("the download was interrupted: " + reply.status().message());
  }
  if (reply->status / 100 != 2)
    return keep_for_resume("the broker refused the download: " + describe_error(*reply));
  plaintext.clear();
  Status finished = decoder->finish(plaintext);
  if (finished && !plaintext.empty()) {
    finished = file.write(plaintext);
    plain_hash.update(plaintext);
    done += plaintext.size();
  }
  if (!finished) return reject(finished.message());
  if (!manifest) return reject("no manifest came with the stream");
  const auto& mf = manifest->manifest;
  if (done != mf.plaintext_size)
    return reject("received " + std::to_string(done) + " bytes, the manifest says " +
                  std::to_string(mf.plaintext_size));
  if (plain_hash.finish() != mf.plaintext_sha256)
    return reject("the plaintext's SHA-256 is not the manifest's");
  if (start_chunk == 0) {
    if (cipher_hash.finish() != mf.ciphertext_sha256)
      return reject("the stream's SHA-256 is not the manifest's ciphertextSha256");
    result.ciphertext_checked = true;
  }
  if (o.progress) o.progress(done, total);
  if (Status s = file.sync(); !s) return s;
  file.close();
  std::error_code ec;
  fs::rename(part, o.out, ec);
  if (ec) return Status::failed_precondition(o.out.string() + ": " + ec.message());
  sync_dir(o.out.parent_path());
  fs::remove(state_file, ec);
  result.manifest = mf;

  auto receipt = sign_receipt(o.cert_dir, manifest->text);
  if (!receipt) return receipt.status();
  auto completed = complete_transfer(client, t, *receipt);
  if (!completed) return completed.status();
  if (auto* refusal = std::get_if<Refusal>(&*completed))
    result.completion_refused = std::move(*refusal);
  else
    result.completion = std::get<json>(*completed);
  return result;
}

}  // namespace dsx::connectors
