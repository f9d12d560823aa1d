#include "tests/cli/test_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>

namespace dsx::testing {
namespace {

constexpr size_t kHeaderSize = 140;  // docs/stream-format.md, "Byte layout"
constexpr size_t kTagSize = 16;
constexpr size_t kMaxMangled = 64 << 20;  // mangled bodies are held whole

SSL_CTX* make_ctx(bool server, const std::filesystem::path& dir) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, (dir / "cert.pem").c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, (dir / "key.pem").c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::runtime_error("test relay: cannot load the certificate in " + dir.string());
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  return ctx;
}

bool read_more(SSL* ssl, std::string& buffer) {
  std::array<char, 16384> piece;
  size_t n = 0;
  if (SSL_read_ex(ssl, piece.data(), piece.size(), &n) != 1) return false;
  buffer.append(piece.data(), n);
  return true;
}

bool write_all(SSL* ssl, const char* data, size_t size) {
  while (size > 0) {
    size_t n = 0;
    if (SSL_write_ex(ssl, data, size, &n) != 1) return false;
    data += n;
    size -= n;
  }
  return true;
}

// The head (request or status line and fields, with the blank line) off the front of `buffer`.
bool read_head(SSL* ssl, std::string& buffer, std::string& head) {
  size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos)
    if (!read_more(ssl, buffer)) return false;
  head = buffer.substr(0, end + 4);
  buffer.erase(0, end + 4);
  return true;
}

bool read_body(SSL* ssl, std::string& buffer, uint64_t length, std::string& body) {
  while (buffer.size() < length)
    if (!read_more(ssl, buffer)) return false;
  body = buffer.substr(0, length);
  buffer.erase(0, length);
  return true;
}

// The Content-Length field's value (0 when absent: the broker frames every body by it).
uint64_t content_length(const std::string& head) {
  size_t at = 0;
  while ((at = head.find("\r\n", at)) != std::string::npos) {
    at += 2;
    if (strncasecmp(head.c_str() + at, "content-length:", 15) == 0)
      return std::stoull(head.substr(at + 15));
  }
  return 0;
}

std::string with_content_length(const std::string& head, uint64_t length) {
  const size_t first = head.find("\r\n") + 2;
  std::string out = head.substr(0, first);
  size_t at = first;
  while (at < head.size() - 2) {
    const size_t end = head.find("\r\n", at);
    const std::string line = head.substr(at, end - at);
    if (strncasecmp(line.c_str(), "content-length:", 15) == 0)
      out += "Content-Length: " + std::to_string(length) + "\r\n";
    else
      out += line + "\r\n";
    at = end + 2;
  }
  return out + "\r\n";
}

// Applies `m` to a whole stream (header, then records of chunk size + 16 bytes).
std::string mangled(std::string body, TestRelay::Mangle m) {
  if (body.size() < kHeaderSize) return body;
  const auto* h = reinterpret_cast<const unsigned char*>(body.data());
  const size_t chunk = (size_t{h[8]} << 24) | (size_t{h[9]} << 16) | (size_t{h[10]} << 8) | h[11];
  const size_t record = chunk + kTagSize;
  const size_t records = (body.size() - kHeaderSize + record - 1) / record;
  if (records < 3) throw std::runtime_error("test relay: mangling needs a stream of 3 chunks");
  auto at = [&](size_t i) { return kHeaderSize + i * record; };
  switch (m) {
    case TestRelay::Mangle::kNone:
      break;
    case TestRelay::Mangle::kTamper:
      body[at(1) + 100] = static_cast<char>(body[at(1) + 100] ^ 0x01);
      break;
    case TestRelay::Mangle::kTruncate:
      body.resize(at(records - 1));
      break;
    case TestRelay::Mangle::kReorder: {
      const std::string first = body.substr(at(0), record);
      body.replace(at(0), record, body.substr(at(1), record));
      body.replace(at(1), record, first);
      break;
    }
    case TestRelay::Mangle::kDuplicate:
      body.insert(at(2), body.substr(at(1), record));
      break;
  }
  return body;
}

}  // namespace

TestRelay::TestRelay(const std::filesystem::path& present_dir,
                     const std::filesystem::path& client_dir, uint16_t upstream_port)
    : upstream_port_(upstream_port) {
  // A peer that hangs up mid-write must be an error here, not a SIGPIPE that ends the tests.
  signal(SIGPIPE, SIG_IGN);
  server_ctx_ = make_ctx(true, present_dir);
  client_ctx_ = make_ctx(false, client_dir);
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("test relay: cannot listen on 127.0.0.1");
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TestRelay::~TestRelay() {
  stopping_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    for (int fd : open_fds_)
      shutdown(fd, SHUT_RDWR);  // wakes blocked reads; each worker closes its own
    workers.swap(workers_);
  }
  for (auto& w : workers)
    w.join();
  SSL_CTX_free(server_ctx_);
  SSL_CTX_free(client_ctx_);
}

void TestRelay::accept_loop() {
  while (!stopping_) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_) return;
      continue;
    }
    std::lock_guard lock(mutex_);
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

SSL* TestRelay::connect_upstream(int& fd) {
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  {
    std::lock_guard lock(mutex_);
    open_fds_.push_back(fd);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(upstream_port_);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return nullptr;
  SSL* ssl = SSL_new(client_ctx_);
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "127.0.0.1");
  if (SSL_connect(ssl) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  return ssl;
}

void TestRelay::serve(int client_fd) {
  SSL* down = SSL_new(server_ctx_);
  SSL_set_fd(down, client_fd);
  SSL* up = nullptr;
  int up_fd = -1;
  std::string down_buffer, up_buffer, head, body;
  const bool accepted = SSL_accept(down) == 1;
  while (accepted && !stopping_) {
    if (!read_head(down, down_buffer, head) ||
        !read_body(down, down_buffer, content_length(head), body))
      break;
    if (!up && !(up = connect_upstream(up_fd))) break;
    if (!write_all(up, head.data(), head.size()) || !write_all(up, body.data(), body.size())) break;
    std::string reply_head;
    if (!read_head(up, up_buffer, reply_head)) break;
    const uint64_t length = content_length(reply_head);
    const std::string request_line = head.substr(0, head.find("\r\n"));
    const bool download = request_line.rfind("GET /transfers/", 0) == 0 &&
                          request_line.find("/data") != std::string::npos &&
                          reply_head.rfind("HTTP/1.1 200", 0) == 0;
    if (download) {
      if (!relay_download(up, down, up_buffer, reply_head, length)) break;
      continue;
    }
    if (!read_body(up, up_buffer, length, body) ||
        !write_all(down, reply_head.data(), reply_head.size()) ||
        !write_all(down, body.data(), body.size()))
      break;
  }
  if (up) {
    SSL_shutdown(up);
    SSL_free(up);
  }
  SSL_shutdown(down);
  SSL_free(down);
  std::lock_guard lock(mutex_);
  for (int fd : {client_fd, up_fd}) {
    if (fd < 0) continue;
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
    close(fd);
  }
}

bool TestRelay::relay_download(SSL* up, SSL* down, std::string& up_buffer, const std::string& head,
                               uint64_t length) {
  last_download_bytes_ = 0;
  uint64_t sent = 0;
  const auto started = std::chrono::steady_clock::now();
  const Mangle m = mangle_;
  if (m != Mangle::kNone) {
    if (length > kMaxMangled) return false;
    std::string body;
    if (!read_body(up, up_buffer, length, body)) return false;
    body = mangled(std::move(body), m);
    const std::string new_head = with_content_length(head, body.size());
    return write_all(down, new_head.data(), new_head.size()) &&
           send_paced(down, body, started, sent);
  }
  if (!write_all(down, head.data(), head.size())) return false;
  while (sent < length) {
    if (up_buffer.empty() && !read_more(up, up_buffer)) return false;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(up_buffer.size(), length - sent));
    const std::string piece = up_buffer.substr(0, n);
    up_buffer.erase(0, n);
    if (!send_paced(down, piece, started, sent)) return false;
  }
  return true;
}

// Writes `data` in pieces of 16 KiB, sleeping as needed to keep to the rate; counts what went.
bool TestRelay::send_paced(SSL* down, const std::string& data,
                           std::chrono::steady_clock::time_point started, uint64_t& sent) {
  for (size_t at = 0; at < data.size();) {
    const size_t n = std::min<size_t>(16384, data.size() - at);
    if (!write_all(down, data.data() + at, n)) return false;
    at += n;
    sent += n;
    download_bytes_ += n;
    last_download_bytes_ += n;
    if (const uint64_t rate = rate_; rate > 0) {
      const auto due = started + std::chrono::microseconds(sent * 1'000'000 / rate);
      std::this_thread::sleep_until(due);
    }
  }
  return true;
}

}  // namespace dsx::testing
