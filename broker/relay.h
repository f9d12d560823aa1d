#pragma once
// The encrypted relay, the broker's data plane (docs/api.md, "The data"): pairs a provider's
// PUT /transfers/{pid}/data with the consumer's GET of the same transfer and copies the upload's
// bytes (ciphertext: the broker never sees plaintext) to the download through a bounded pipe,
// hashing them as they pass. Nothing touches the disk.
//
// Two coroutines per relay, one on each connection's strand (Asio's throttling_proxy): the
// upload loop reads the provider's body and pushes chunks into the pipe, the download loop pops
// them and writes them to the consumer. The pipe holds at most RelayPipe::kCapacity chunks, so a
// slow consumer stops the upload loop, which stops reading, which makes TCP push back on the
// provider; buffers never grow. Every socket read and write has the read timeout; a stalled or
// failed side aborts the pipe, which ends the other side (docs: "a peer that stalls ends both").
//
// Relays is shared by all connections and thread-safe. Authorisation and the record of each
// relay come from a RelayAuthority (the transfer control plane), called on the worker pool.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <variant>

#include "broker/config.h"
#include "broker/http.h"
#include "broker/logger.h"
#include "broker/metrics.h"
#include "broker/router.h"
#include "broker/tls_stream.h"
#include "common/status.h"

namespace dsx::broker {

struct DataAccess;  // broker/transfers.h

// What the relay asks the transfer control plane (implemented over Transfers in broker.cpp; a
// fake in the tests). Both calls block (SQLite): the relay makes them on the worker pool.
class RelayAuthority {
 public:
  virtual ~RelayAuthority() = default;
  // May `caller` upload (`upload`) / download the data of `provider_pid` now? kNotFound -> 404,
  // kFailedPrecondition -> 409.
  virtual Result<DataAccess> data_access(const Caller& caller, const std::string& provider_pid,
                                         bool upload) = 0;
  // After every paired relay, complete or not.
  virtual Status record_relay(const std::string& provider_pid, uint64_t from_chunk, uint64_t bytes,
                              const std::string& sha256_hex, const std::string& manifest_json,
                              bool complete) = 0;
};

// A bounded pipe of byte chunks from one coroutine to another, on any executors (a
// concurrent_channel). push() waits while kCapacity chunks wait; abort() fails pending and later
// operations on both sides. buffered() counts the bytes pushed and not yet release()d by the
// reader (those in the channel, and the one being written out): at most
// (kCapacity + 2) * kChunkBytes, one chunk waiting in push() and one in the reader's hands.
class RelayPipe {
 public:
  static constexpr size_t kChunkBytes = 64 * 1024;
  static constexpr size_t kCapacity = 4;
  static constexpr size_t kMaxBuffered = (kCapacity + 2) * kChunkBytes;

  // `gauge` (may be null) follows buffered(), summed over all pipes.
  explicit RelayPipe(const boost::asio::any_io_executor& executor,
                     std::atomic<int64_t>* gauge = nullptr);
  ~RelayPipe();
  RelayPipe(const RelayPipe&) = delete;
  RelayPipe& operator=(const RelayPipe&) = delete;

  boost::asio::awaitable<boost::system::error_code> push(std::string chunk);
  // The next chunk; its bytes stay counted until release().
  boost::asio::awaitable<std::tuple<boost::system::error_code, std::string>> pop();
  void release(size_t n);
  void abort();

  uint64_t buffered() const { return buffered_.load(); }
  uint64_t peak() const { return peak_.load(); }

 private:
  boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::string)>
      channel_;
  std::atomic<int64_t>* const gauge_;
  std::atomic<uint64_t> buffered_{0};
  std::atomic<uint64_t> peak_{0};
};

class Relays {
 public:
  // A request whose header has been read (its body is not).
  using RequestHead = boost::beast::http::request<boost::beast::http::string_body>;

  // References must outlive this. `workers`: where the authority is called.
  Relays(const BrokerConfig& config, Metrics& metrics, Logger& logger, RelayAuthority& authority,
         boost::asio::any_io_executor workers);
  ~Relays();

  // The providerPid when `path` (decoded, without query) is /transfers/{pid}/data.
  static std::optional<std::string> data_route(std::string_view path);

  // What the server does after serve(): send `reply` if any (it is the whole answer), and keep
  // the connection only when `keep_alive`.
  struct Outcome {
    std::optional<HttpResponse> reply;
    bool keep_alive = false;
    int status = 0;     // for the request log: the reply's, or 200 for a download served
    std::string route;  // "transfers.data.put" / "transfers.data.get"
  };

  // Serves one data request whose header is `header` (already read from `stream`; the first
  // bytes of an upload's body may wait in `buffer`, and only they are consumed from it).
  boost::asio::awaitable<Outcome> serve(TlsStream& stream, boost::beast::flat_buffer& buffer,
                                        const RequestHead& header, const HttpRequest& request,
                                        const Caller& caller);

  // Ends every request waiting for its partner (503); relays in progress go on.
  void stop();

 private:
  struct Pairing;
  struct Offer;
  boost::asio::awaitable<std::variant<std::shared_ptr<Pairing>, HttpResponse>> rendezvous(
      const std::string& provider_pid, bool upload, const Offer& offer);
  boost::asio::awaitable<Outcome> upload(TlsStream& stream, boost::beast::flat_buffer& buffer,
                                         const RequestHead& header, const Caller& caller,
                                         const std::string& provider_pid, const Offer& offer,
                                         std::shared_ptr<Pairing> pairing);
  // Ends the relay (aborts the pipe) once the transfer leaves STARTED-from-this-chunk.
  boost::asio::awaitable<void> watch(Caller caller, std::string provider_pid, uint64_t from_chunk,
                                     std::shared_ptr<Pairing> pairing);
  static constexpr std::chrono::seconds kWatchInterval{1};
  boost::asio::awaitable<Outcome> download(TlsStream& stream, const RequestHead& header,
                                           std::shared_ptr<Pairing> pairing);
  void log_relay(const std::string& provider_pid, const Offer& offer, uint64_t bytes, double ms,
                 const std::string& sha256, const std::string& outcome);

  const BrokerConfig& config_;
  Metrics& metrics_;
  Logger& logger_;
  RelayAuthority& authority_;
  const boost::asio::any_io_executor workers_;

  std::mutex mutex_;                                         // guards waiting_, stopping_
  std::map<std::string, std::shared_ptr<Pairing>> waiting_;  // by providerPid: one side is here
  bool stopping_ = false;
};

}  // namespace dsx::broker
