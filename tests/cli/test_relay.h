#pragma once
// A TLS relay for end-to-end tests that stands between a consumer's connector and the broker, as
// an attacker on the path (or the broker itself, gone wrong) would. It presents the broker's
// certificate to the consumer and the consumer's certificate to the broker, and passes HTTP/1.1
// exchanges through unchanged, except the bodies of downloads (200 answers to GET
// /transfers/{pid}/data), which it can mangle chunk by chunk (docs/stream-format.md's layout:
// a 140-byte header, then records of chunk size + 16 bytes) and slow down. Upgrades (the control
// channel) are not supported: point only request/response clients at it.
//
// Owns a listening socket on 127.0.0.1 and one thread per connection; the destructor closes
// every socket and joins every thread. The setters may be called from any thread while it runs.

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dsx::testing {

class TestRelay {
 public:
  enum class Mangle {
    kNone,       // pass the stream through
    kTamper,     // flip one bit in the second chunk
    kTruncate,   // drop the final chunk (Content-Length follows, so the HTTP exchange is whole)
    kReorder,    // swap the first two chunks
    kDuplicate,  // send the second chunk twice
  };

  // `present_dir` holds the certificate and key shown to clients (the broker's), `client_dir`
  // those shown to the broker (cert.pem, key.pem). Throws std::runtime_error when it cannot
  // listen or load them.
  TestRelay(const std::filesystem::path& present_dir, const std::filesystem::path& client_dir,
            uint16_t upstream_port);
  ~TestRelay();
  TestRelay(const TestRelay&) = delete;
  TestRelay& operator=(const TestRelay&) = delete;

  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

  void set_mangle(Mangle m) { mangle_ = m; }
  // Download bodies go out at about this many bytes a second (0: as fast as they arrive).
  void set_rate(uint64_t bytes_per_second) { rate_ = bytes_per_second; }
  void set_upstream_port(uint16_t port) { upstream_port_ = port; }
  // Body bytes of all downloads sent on so far, and of the latest download alone.
  uint64_t download_bytes() const { return download_bytes_; }
  uint64_t last_download_bytes() const { return last_download_bytes_; }

 private:
  void accept_loop();
  void serve(int client_fd);
  SSL* connect_upstream(int& fd);
  bool relay_download(SSL* up, SSL* down, std::string& up_buffer, const std::string& head,
                      uint64_t length);
  bool send_paced(SSL* down, const std::string& data, std::chrono::steady_clock::time_point started,
                  uint64_t& sent);

  SSL_CTX* server_ctx_ = nullptr;
  SSL_CTX* client_ctx_ = nullptr;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<Mangle> mangle_{Mangle::kNone};
  std::atomic<uint64_t> rate_{0};
  std::atomic<uint16_t> upstream_port_;
  std::atomic<uint64_t> download_bytes_{0}, last_download_bytes_{0};
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;  // guards the two below
  std::vector<int> open_fds_;
  std::vector<std::thread> workers_;
};

}  // namespace dsx::testing
