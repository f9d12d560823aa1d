// dsx_broker_bench: how many mutual-TLS connections per second the broker accepts, how fast it
// answers catalog requests with many datasets published, and how much memory an idle connection
// costs it, as figures and as ratios against baselines measured in the same run
// (docs/performance.md, "Broker").
//
// Three sections, each a plain timed run; every measurement runs --reps times (default 3) and
// the median is printed beside each run's figure:
//
//  (1) handshakes: client threads (1, then --client-threads, default 2) each loop over TCP
//      connect + TLS 1.3 handshake with a client certificate + close_notify both ways (the
//      client sends its close_notify and reads until the server's), raw OpenSSL, no request. The
//      same client code runs against the broker (in this process, port 0) and against
//      `openssl s_server` (a child process) with the broker's certificate, key and CA, client
//      certificates required (-Verify 1). Both send two TLS 1.3 session tickets, which the
//      client reads while waiting for the server's close_notify. Rows: full handshakes; a row
//      with s_server also checking the CRL (-crl_check -CRL), as the broker does; and resumed
//      handshakes (the client offers a ticket saved from an earlier connection: SSL_set_session,
//      and every connection must report SSL_session_reused). Ratios are taken per round.
//      Server CPU per handshake: s_server's from /proc/PID/stat; the broker's is this process's
//      CPU time minus the client threads' own (CLOCK_THREAD_CPUTIME_ID).
//  (2) catalog: --datasets datasets (default 10,000) are published through the management API
//      with connectors::Client from a provider (several threads; each publish is a durable store
//      write and provenance append, so this takes a while and is timed too). Then
//      --catalog-threads threads (default 4), each with its own keep-alive connectors::Client
//      and a consumer certificate whose country every offer allows, POST a CatalogRequestMessage
//      to /catalog/request (page size 50, and 10 for context) and follow the `next` Link from
//      page to page (back to the first page at the end). Baseline on the same connections in the
//      same round: GET /healthz. Requests/s, p50 and p99 latency (each request timed alone).
//  (3) memory: the real `dsx broker` binary from the build tree as a child process (limits
//      raised by a config file: connections per participant, idle timeout 600 s); its VmRSS
//      (/proc/PID/status) before and after --connections connections (default 5,000) from this
//      process, each a full handshake and one GET /healthz, then left idle. Warm-up connections,
//      opened first, stay open through both readings, so that memory freed by closed ones is
//      not reused and counted as nothing. The baseline is this process's own VmRSS growth for
//      the same connections: what a bare OpenSSL client connection costs.
//
// Certificates, keys, data folders and config files go into a fresh directory under $TMPDIR
// (or /tmp, or --dir), made with the certs:: functions, removed at the end (also on an error;
// not when the process is killed: its name is printed first). Child processes get SIGTERM when
// this process ends (PR_SET_PDEATHSIG). Figures only: nothing here asserts on time. A failed
// handshake, a reply that is not 200/201 or a ticket that does not resume is a broken run and
// stops it.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_broker.h"
#include "bench/stats.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "certs/ca.h"
#include "common/clock.h"
#include "connectors/client.h"

#ifndef DSX_BINARY
#define DSX_BINARY "dsx"
#endif

namespace dsx::bench {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Targets of the issue.
constexpr double kTargetHandshakeRatio = 0.9;  // broker / s_server, full handshakes
constexpr double kTargetKibPerConnection = 64;
constexpr uint64_t kWarmupHandshakes = 50;
// (3): threads opening the idle connections (each waits on the network more than it computes),
// and the connections opened and kept open before the first reading.
constexpr uint64_t kOpenThreads = 8;
constexpr uint64_t kMemoryWarmup = 50;
constexpr const char* kHost = "127.0.0.1";

struct Options {
  uint64_t handshakes = 2000;    // (1): connections per measurement
  uint64_t client_threads = 2;   // (1): the second thread count measured (1 always is)
  uint64_t datasets = 10'000;    // (2)
  uint64_t publish_threads = 8;  // (2)
  uint64_t catalog_threads = 4;  // (2)
  uint64_t requests = 2000;      // (2): requests per measurement, over all threads
  uint64_t page = 50;            // (2)
  uint64_t small_page = 10;      // (2), for context
  uint64_t connections = 5000;   // (3)
  uint64_t reps = 3;
  std::string dir;                  // parent of the temp dir
  std::string dsx = DSX_BINARY;     // (3): the dsx binary
  std::string openssl = "openssl";  // (1): for s_server
  bool run_handshakes = true, run_catalog = true, run_memory = true;
};

// user + system CPU seconds of another process.
double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) fail("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  size_t at = close + 2;
  while (at < stat.size()) {
    const size_t space = stat.find(' ', at);
    fields.push_back(stat.substr(at, space - at));
    if (space == std::string::npos) break;
    at = space + 1;
  }
  if (fields.size() < 13) fail("unexpected /proc/" + std::to_string(pid) + "/stat");
  const double ticks = static_cast<double>(std::stoull(fields[11]) + std::stoull(fields[12]));
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// VmRSS of a process ("self" or a pid), in KiB.
double rss_kib(const std::string& who) {
  std::ifstream in("/proc/" + who + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6));
  fail("no VmRSS in /proc/" + who + "/status");
}

// ---- the temp dir and the data space's certificates -----------------------------------------

// A CA, the broker's certificate (for 127.0.0.1), a provider in DE and a consumer in NL (every
// offer the bench publishes allows DE and NL), all P-256 as `dsx certs` issues by default.
struct Pki {
  fs::path ca, broker, provider, consumer;
};

Pki make_pki(const fs::path& dir) {
  Pki p{dir / "ca", dir / "broker", dir / "acme", dir / "leiden"};
  if (auto ca = certs::init_ca(p.ca, {}); !ca) fail("init_ca: " + ca.status().message());
  auto issue = [&](const std::string& name, const std::string& role,
                   std::optional<std::string> country, const fs::path& out) {
    certs::IssueRequest r;
    r.name = name;
    r.roles = {role};
    r.country = std::move(country);
    if (auto issued = certs::issue(p.ca, r, out); !issued)
      fail("issuing " + name + ": " + issued.status().message());
  };
  issue(kHost, "broker", std::nullopt, p.broker);
  issue("acme", "provider", "DE", p.provider);
  issue("leiden", "consumer", "NL", p.consumer);
  return p;
}

// ---- child processes -------------------------------------------------------------------------

// A child process: stdin an open pipe that never delivers anything (s_server would spin on an
// stdin at EOF), stdout /dev/null or a pipe we read, stderr to a file. SIGTERM on destruction,
// then SIGKILL if it does not exit within 5 s.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const fs::path& stderr_file, bool capture_stdout)
      : stderr_file_(stderr_file) {
    int in[2], out[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0) fail("pipe: " + std::string(std::strerror(errno)));
    if (capture_stdout && pipe2(out, O_CLOEXEC) != 0)
      fail("pipe: " + std::string(std::strerror(errno)));
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const std::string err = stderr_file.string();
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) fail("fork: " + std::string(std::strerror(errno)));
    if (pid_ == 0) {  // only async-signal-safe calls from here to exec
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(127);
      signal(SIGPIPE, SIG_DFL);
      const int null = open("/dev/null", O_WRONLY);
      const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(in[0], 0);
      dup2(capture_stdout ? out[1] : null, 1);
      dup2(err_fd < 0 ? null : err_fd, 2);
      close_range(3, ~0U, 0);  // the broker's and the clients' sockets stay here
      execvp(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    stdin_ = in[1];
    if (capture_stdout) {
      close(out[1]);
      stdout_ = out[0];
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      const auto t0 = SteadyClock::now();
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (seconds_since(t0) > 5) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (stdin_ >= 0) close(stdin_);
    if (stdout_ >= 0) close(stdout_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // The child's exit, if it has exited (then the destructor has nothing to stop).
  std::optional<int> exited() {
    int status = 0;
    if (pid_ <= 0 || waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // The last lines the child wrote to stderr, for error messages.
  std::string stderr_tail() const {
    std::ifstream in(stderr_file_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > 600) text = "..." + text.substr(text.size() - 600);
    return text;
  }

  // One line of the child's stdout (capture_stdout), waiting up to `timeout`.
  std::string read_line(std::chrono::seconds timeout) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      if (const size_t nl = out_.find('\n'); nl != std::string::npos) {
        std::string line = out_.substr(0, nl);
        out_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) fail("the child wrote no line within the timeout: " + stderr_tail());
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[512];
      const ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) fail("the child closed its output: " + stderr_tail());
      out_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  fs::path stderr_file_;
  std::string out_;
};

// ---- raw OpenSSL client ----------------------------------------------------------------------

std::string openssl_errors() {
  std::string out;
  char buf[256];
  while (const unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string(buf);
  }
  return out;
}

// A client context as a connector's: TLS 1.3, the participant's certificate and key, the
// server verified against the data space CA.
class ClientContext {
 public:
  explicit ClientContext(const fs::path& cert_dir) : ctx_(SSL_CTX_new(TLS_client_method())) {
    if (!ctx_) fail("SSL_CTX_new: " + openssl_errors());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
    const std::string cert = (cert_dir / "cert.pem").string(),
                      key = (cert_dir / "key.pem").string(), ca = (cert_dir / "ca.pem").string();
    if (SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx_, ca.c_str(), nullptr) != 1)
      fail("client context for " + cert_dir.string() + ": " + openssl_errors());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
  }
  ~ClientContext() { SSL_CTX_free(ctx_); }
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_;
};

int tcp_connect(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, kHost, &addr.sin_addr);
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

// A free port on loopback for s_server (bound, then released: a small race we accept).
uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, kHost, &addr.sin_addr);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail("cannot find a free port: " + std::string(std::strerror(errno)));
  close(fd);
  return ntohs(addr.sin_port);
}

// One client connection: blocking socket, raw OpenSSL.
class TlsConn {
 public:
  TlsConn() = default;
  ~TlsConn() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) close(fd_);
  }
  TlsConn(TlsConn&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), ssl_(std::exchange(o.ssl_, nullptr)) {}
  TlsConn& operator=(TlsConn&&) = delete;
  TlsConn(const TlsConn&) = delete;

  // TCP connect and the TLS handshake, offering `resume` when given.
  bool open(SSL_CTX* ctx, uint16_t port, SSL_SESSION* resume, std::string& why) {
    errno = 0;
    fd_ = tcp_connect(port);
    if (fd_ < 0) {
      why = "connect: " + std::string(std::strerror(errno));
      return false;
    }
    ssl_ = SSL_new(ctx);
    if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return error("SSL_new", 0, why);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), kHost);
    if (resume) SSL_set_session(ssl_, resume);
    ERR_clear_error();
    if (const int rc = SSL_connect(ssl_); rc != 1) return error("handshake", rc, why);
    return true;
  }

  bool reused() const { return SSL_session_reused(ssl_) == 1; }

  // Sends our close_notify and reads until the server's (session tickets arrive on the way).
  bool close_both(std::string& why) {
    errno = 0;
    ERR_clear_error();
    const int rc = SSL_shutdown(ssl_);
    if (rc < 0) return error("sending close_notify", rc, why);
    if (rc == 1) return true;
    char buf[4096];
    for (;;) {
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) continue;
      if (SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) return true;
      return error("waiting for the server's close_notify", n, why);
    }
  }

  // One HTTP/1.1 request (keep-alive) and its response (status, body). The broker always sends
  // a Content-Length.
  bool request(std::string_view text, int& status, std::string& body, std::string& why) {
    errno = 0;
    ERR_clear_error();
    const int w = SSL_write(ssl_, text.data(), static_cast<int>(text.size()));
    if (w != static_cast<int>(text.size())) return error("writing the request", w, why);
    std::string in;
    size_t header_end = std::string::npos, need = 0;
    char buf[16384];
    for (;;) {
      if (header_end == std::string::npos) {
        header_end = in.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          std::string head = in.substr(0, header_end);
          for (char& c : head)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          const size_t cl = head.find("\r\ncontent-length:");
          if (head.rfind("http/1.1 ", 0) != 0 || cl == std::string::npos) {
            why = "unexpected response: " + in.substr(0, 200);
            return false;
          }
          status = std::atoi(in.c_str() + 9);
          need = header_end + 4 +
                 static_cast<size_t>(std::strtoull(head.c_str() + cl + 17, nullptr, 10));
        }
      }
      if (header_end != std::string::npos && in.size() >= need) break;
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) return error("reading the response", n, why);
      in.append(buf, static_cast<size_t>(n));
    }
    body = in.substr(header_end + 4, need - header_end - 4);
    return true;
  }

  SSL* ssl() const { return ssl_; }

 private:
  bool error(const char* what, int rc, std::string& why) {
    why = what;
    if (ssl_) {
      why += " (SSL_get_error " + std::to_string(SSL_get_error(ssl_, rc)) + ")";
      if (const long v = SSL_get_verify_result(ssl_); v != X509_V_OK)
        why += " verify: " + std::string(X509_verify_cert_error_string(v));
    }
    if (const std::string e = openssl_errors(); !e.empty()) why += ": " + e;
    if (errno) why += " [errno: " + std::string(std::strerror(errno)) + "]";
    return false;
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

constexpr std::string_view kHealthz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

// A session with its TLS 1.3 ticket, for resumption: one connection, with a GET /healthz when
// `http` (the broker), then the close_notify exchange; the tickets have arrived by then.
SSL_SESSION* fetch_session(SSL_CTX* ctx, uint16_t port, bool http) {
  TlsConn c;
  std::string why, body;
  int status = 0;
  if (!c.open(ctx, port, nullptr, why)) fail("fetching a session ticket: " + why);
  if (http && !c.request(kHealthz, status, body, why)) fail("fetching a session ticket: " + why);
  if (http && status != 200) fail("GET /healthz answered " + std::to_string(status));
  if (!c.close_both(why)) fail("fetching a session ticket: " + why);
  SSL_SESSION* s = SSL_get1_session(c.ssl());
  if (!s || SSL_SESSION_is_resumable(s) != 1) fail("the server sent no session ticket");
  return s;
}

// ---- the broker in this process --------------------------------------------------------------

// ---- (1) handshakes --------------------------------------------------------------------------

struct HandshakeRun {
  double seconds = 0, client_cpu = 0, server_cpu = 0;
  uint64_t done = 0;
  double per_sec() const { return seconds > 0 ? static_cast<double>(done) / seconds : 0; }
};

// How a server's CPU time is read: s_server's from /proc; the broker's is this process's minus
// the client threads' (includes_clients).
struct CpuMeter {
  std::function<double()> now;
  bool includes_clients = false;
};

// `threads` threads make `n` connections in all, each handshake + close_notify both ways;
// with `session`, every one must resume it.
HandshakeRun run_handshakes(SSL_CTX* ctx, uint16_t port, uint64_t n, uint64_t threads,
                            SSL_SESSION* session, const CpuMeter& cpu) {
  std::latch ready(static_cast<std::ptrdiff_t>(threads)), go(1);
  FirstError error;
  std::vector<double> thread_cpu(threads, 0);
  std::vector<std::thread> clients;
  for (uint64_t t = 0; t < threads; ++t)
    clients.emplace_back([&, t] {
      name_thread("hs-client");
      const uint64_t mine = n / threads + (t < n % threads ? 1 : 0);
      ready.count_down();
      go.wait();
      const double c0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
      for (uint64_t k = 0; k < mine; ++k) {
        TlsConn c;
        std::string why;
        if (!c.open(ctx, port, session, why) || !c.close_both(why)) {
          error.set(why);
          break;
        }
        if (session && !c.reused()) {
          error.set("a connection did not resume the session");
          break;
        }
      }
      thread_cpu[t] = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
    });
  ready.wait();
  const double server0 = cpu.now();
  const auto t0 = SteadyClock::now();
  go.count_down();
  for (std::thread& c : clients)
    c.join();
  HandshakeRun run;
  run.seconds = seconds_since(t0);
  const double server1 = cpu.now();
  error.throw_if_set("a handshake failed");
  run.done = n;
  for (double c : thread_cpu)
    run.client_cpu += c;
  run.server_cpu = server1 - server0 - (cpu.includes_clients ? run.client_cpu : 0);
  return run;
}

// `openssl s_server` with the broker's certificate, key and CA: TLS 1.3 only, client
// certificate required; with `crl`, also checking the client's certificate against the CRL.
class SServer {
 public:
  SServer(const Options& o, const Pki& pki, const fs::path& log, bool crl) : port_(free_port()) {
    std::vector<std::string> argv = {o.openssl,
                                     "s_server",
                                     "-accept",
                                     std::string(kHost) + ":" + std::to_string(port_),
                                     "-cert",
                                     (pki.broker / "cert.pem").string(),
                                     "-key",
                                     (pki.broker / "key.pem").string(),
                                     "-CAfile",
                                     (pki.broker / "ca.pem").string(),
                                     "-Verify",
                                     "1",
                                     "-verify_return_error",
                                     "-tls1_3",
                                     "-quiet"};
    if (crl)
      for (const std::string& a :
           {std::string("-crl_check"), std::string("-CRL"), (pki.ca / "crl.pem").string()})
        argv.push_back(a);
    for (const std::string& a : argv)
      command_ += (command_.empty() ? "" : " ") + a;
    child_ = std::make_unique<Child>(argv, log, false);
    // Ready when it accepts (the probe is one failed handshake for it).
    const auto t0 = SteadyClock::now();
    for (;;) {
      if (auto code = child_->exited())
        fail("s_server exited with " + std::to_string(*code) + ": " + child_->stderr_tail());
      if (const int fd = tcp_connect(port_); fd >= 0) {
        close(fd);
        break;
      }
      if (seconds_since(t0) > 10) fail("s_server does not listen: " + child_->stderr_tail());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  uint16_t port() const { return port_; }
  pid_t pid() const { return child_->pid(); }
  const std::string& command() const { return command_; }

 private:
  uint16_t port_;
  std::string command_;
  std::unique_ptr<Child> child_;
};

struct Row {
  std::string name;
  std::vector<double> rate, ratio, server_us, client_us;
};

void section_handshakes(const Options& o, const Pki& pki, const InProcessBroker& broker,
                        const fs::path& dir) {
  SServer plain(o, pki, dir / "s_server.log", false);
  SServer with_crl(o, pki, dir / "s_server-crl.log", true);
  ClientContext client(pki.consumer);
  std::printf(
      "\n(1) New mutual-TLS connections per second. Each connection: TCP connect + TLS 1.3 "
      "handshake with the\n"
      "    client certificate (P-256, X25519 key share) + close_notify both ways (the client "
      "sends its close_notify\n"
      "    and reads until the server's; the two session tickets the server sends arrive on "
      "the way); no request.\n"
      "    The same raw-OpenSSL client against each server, %s connections per measurement "
      "after %s warm-up ones.\n"
      "    broker: this process, port %u, %u I/O threads; its handshake also checks the CRL "
      "(X509_V_FLAG_CRL_CHECK),\n"
      "    reads the identity from the certificate (certs::read_identity) and takes a "
      "per-participant slot.\n"
      "    s_server (the baseline, one connection at a time, no CRL): %s\n"
      "    s_server + CRL: the same with -crl_check -CRL %s.\n"
      "    resumed: every connection offers the TLS 1.3 ticket of one earlier connection "
      "(SSL_set_session) and must\n"
      "    resume (SSL_session_reused); the broker's ticket was taken after a GET /healthz.\n",
      grouped(o.handshakes).c_str(), grouped(kWarmupHandshakes).c_str(), broker.port(),
      broker.config().io_threads, plain.command().c_str(), (pki.ca / "crl.pem").c_str());
  std::fflush(stdout);

  SSL_SESSION* broker_session = fetch_session(client.get(), broker.port(), true);
  SSL_SESSION* server_session = fetch_session(client.get(), plain.port(), false);
  struct Sessions {
    SSL_SESSION *a, *b;
    ~Sessions() {
      SSL_SESSION_free(a);
      SSL_SESSION_free(b);
    }
  } sessions{broker_session, server_session};

  const CpuMeter broker_cpu{[] { return cpu_seconds(CLOCK_PROCESS_CPUTIME_ID); }, true};
  const pid_t plain_pid = plain.pid(), crl_pid = with_crl.pid();
  const CpuMeter plain_cpu{[plain_pid] { return process_cpu_seconds(plain_pid); }, false};
  const CpuMeter crl_cpu{[crl_pid] { return process_cpu_seconds(crl_pid); }, false};

  struct Target {
    const char* name;
    uint16_t port;
    SSL_SESSION* session;
    const CpuMeter* cpu;
    int baseline;  // index of the row this one is divided by, or -1
  };
  std::vector<uint64_t> thread_counts = {1};
  if (o.client_threads != 1) thread_counts.push_back(o.client_threads);
  std::vector<Row> rows;
  std::vector<std::vector<Target>> plans;
  for (uint64_t threads : thread_counts) {
    const int base = static_cast<int>(rows.size());
    const std::vector<Target> plan = {
        {"s_server, full", plain.port(), nullptr, &plain_cpu, -1},
        {"broker, full", broker.port(), nullptr, &broker_cpu, base},
        {"s_server + CRL, full", with_crl.port(), nullptr, &crl_cpu, base},
        {"s_server, resumed", plain.port(), server_session, &plain_cpu, -1},
        {"broker, resumed", broker.port(), broker_session, &broker_cpu, base + 3},
    };
    for (const Target& t : plan)
      rows.emplace_back().name =
          std::to_string(threads) + (threads == 1 ? " client:  " : " clients: ") + t.name;
    plans.push_back(plan);
  }
  // Warm-up: every server, every kind, outside the timing.
  for (const Target& t : plans[0])
    run_handshakes(client.get(), t.port, kWarmupHandshakes, 1, t.session, *t.cpu);
  for (uint64_t r = 0; r < o.reps; ++r) {
    std::string line;
    for (size_t p = 0; p < plans.size(); ++p)
      for (size_t i = 0; i < plans[p].size(); ++i) {
        const Target& t = plans[p][i];
        const HandshakeRun run =
            run_handshakes(client.get(), t.port, o.handshakes, thread_counts[p], t.session, *t.cpu);
        Row& row = rows[p * plans[p].size() + i];
        row.rate.push_back(run.per_sec());
        row.server_us.push_back(run.server_cpu / static_cast<double>(run.done) * 1e6);
        row.client_us.push_back(run.client_cpu / static_cast<double>(run.done) * 1e6);
        if (t.baseline >= 0)
          row.ratio.push_back(row.rate.back() / rows[static_cast<size_t>(t.baseline)].rate.back());
        line += (line.empty() ? "" : ", ") + grouped(row.rate.back());
      }
    std::printf("    round %llu: %s connections/s (rows in the order of the table)\n",
                static_cast<unsigned long long>(r + 1), line.c_str());
    std::fflush(stdout);
  }

  std::printf("\n%-36s %13s %11s %11s %11s   %s\n", "", "connections/s", "x baseline", "server CPU",
              "client CPU", "connections/s per round");
  std::printf("%-36s %13s %11s %11s %11s\n", "", "median", "median", "us/conn", "us/conn");
  for (const Row& row : rows) {
    char ratio[32] = "";
    if (!row.ratio.empty()) std::snprintf(ratio, sizeof ratio, "%.2f", median(row.ratio));
    std::printf("%-36s %13s %11s %11.0f %11.0f   %s\n", row.name.c_str(),
                grouped(median(row.rate)).c_str(), ratio, median(row.server_us),
                median(row.client_us), join_grouped(row.rate).c_str());
  }
  std::printf(
      "x baseline: per round, / the s_server row of the same kind (full or resumed) and client "
      "count; median.\n"
      "server CPU: s_server's user+system time (/proc, 10 ms ticks); the broker's is this "
      "process's CPU time\n"
      "minus the client threads' own. Both share 2 cores with the client threads.\n");
  for (size_t p = 0; p < plans.size(); ++p) {
    const double m = median(rows[p * plans[p].size() + 1].ratio);
    std::printf(
        "\nTarget (%llu client thread%s): broker >= %.1fx s_server, full handshakes: %.2fx, %s.",
        static_cast<unsigned long long>(thread_counts[p]), thread_counts[p] == 1 ? "" : "s",
        kTargetHandshakeRatio, m, m >= kTargetHandshakeRatio ? "met" : "MISSED");
  }
  std::printf("\n");
  std::fflush(stdout);
}

// ---- (2) catalog -----------------------------------------------------------------------------

connectors::ClientConfig client_config(uint16_t port, const fs::path& cert_dir) {
  connectors::ClientConfig c;
  c.host = kHost;
  c.port = port;
  c.cert_dir = cert_dir;
  c.timeout = std::chrono::seconds(60);
  return c;
}

std::unique_ptr<connectors::Client> connect(uint16_t port, const fs::path& cert_dir) {
  auto c = connectors::Client::connect(client_config(port, cert_dir));
  if (!c) fail("connecting: " + c.status().message());
  return std::move(*c);
}

// A dataset as the tests' dataset() helper builds it, with a spatial isAnyOf offer that the
// consumer's country (NL) satisfies, and a short description.
std::string dataset_json(uint64_t i) {
  char id[64];
  std::snprintf(id, sizeof id, "urn:dsx:dataset:bench-%06llu", static_cast<unsigned long long>(i));
  return json{
      {"id", id},
      {"title", "Hospital admissions, region " + std::to_string(i)},
      {"description", "Daily admissions per region, anonymised"},
      {"keywords", json::array({"health", "admissions"})},
      {"mediaType", "text/csv"},
      {"byteSize", 123456 + i},
      {"offers",
       json::array(
           {{{"permission",
              json::array({{{"action", "use"},
                            {"constraint",
                             json::array({{{"leftOperand", "spatial"},
                                           {"operator", "isAnyOf"},
                                           {"rightOperand", json::array({"DE", "NL"})}}})}}})}}})}}
      .dump();
}

const char* kCatalogRequest =
    R"({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"})";

// The path of the `rel="next"` Link of a catalog page, or "" on the last page.
std::string next_page(const connectors::Reply& r) {
  for (const std::string& link : r.headers_named("Link")) {
    if (link.find("rel=\"next\"") == std::string::npos) continue;
    const size_t open = link.find('<'), close = link.find('>');
    if (open == std::string::npos || close == std::string::npos) continue;
    const std::string url = link.substr(open + 1, close - open - 1);
    const size_t scheme = url.find("://");
    const size_t slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (slash != std::string::npos) return url.substr(slash);
  }
  return {};
}

double publish_all(const Options& o, uint16_t port, const Pki& pki) {
  std::atomic<uint64_t> next{0};
  FirstError error;
  std::vector<std::thread> threads;
  const auto t0 = SteadyClock::now();
  for (uint64_t t = 0; t < o.publish_threads; ++t)
    threads.emplace_back([&] {
      name_thread("publisher");
      try {
        auto c = connect(port, pki.provider);
        for (uint64_t i; (i = next.fetch_add(1)) < o.datasets;) {
          auto r = c->request("POST", "/management/datasets", dataset_json(i));
          if (!r) fail(r.status().message());
          if (r->status != 201) fail(connectors::describe_error(*r));
        }
      } catch (const std::exception& e) {
        error.set(e.what());
        next = o.datasets;
      }
    });
  for (std::thread& t : threads)
    t.join();
  error.throw_if_set("publishing");
  return seconds_since(t0);
}

struct RequestRun {
  double seconds = 0, bytes = 0;
  uint64_t n = 0;
  std::vector<double> ms;  // sorted
  double per_sec() const { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }
};

// Each client makes its share of `n` requests: GET /healthz (no `pages`), or catalog pages from
// pages[client] on (following `next`, starting over after the last page).
RequestRun run_requests(std::vector<std::unique_ptr<connectors::Client>>& clients,
                        std::vector<std::string>& pages, uint64_t n) {
  const bool catalog = !pages.empty();
  const size_t threads = clients.size();
  std::latch ready(static_cast<std::ptrdiff_t>(threads)), go(1);
  FirstError error;
  std::vector<std::vector<double>> ms(threads);
  std::vector<double> bytes(threads, 0);
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      name_thread("cat-client");
      const uint64_t mine = n / threads + (t < n % threads ? 1 : 0);
      ms[t].reserve(mine);
      connectors::Client& c = *clients[t];
      // The first page: "/catalog/request?limit=N" (a next link adds "&after=SEQ").
      const std::string first = catalog ? pages[t].substr(0, pages[t].find('&')) : std::string();
      ready.count_down();
      go.wait();
      for (uint64_t k = 0; k < mine; ++k) {
        const auto t0 = SteadyClock::now();
        auto r =
            catalog ? c.request("POST", pages[t], kCatalogRequest) : c.request("GET", "/healthz");
        ms[t].push_back(seconds_since(t0) * 1e3);
        if (!r || r->status != 200) {
          error.set(r ? connectors::describe_error(*r) : r.status().message());
          return;
        }
        bytes[t] += static_cast<double>(r->body.size());
        if (catalog) {
          pages[t] = next_page(*r);
          if (pages[t].empty()) pages[t] = first;
        }
      }
    });
  ready.wait();
  const auto t0 = SteadyClock::now();
  go.count_down();
  for (std::thread& w : workers)
    w.join();
  RequestRun run;
  run.seconds = seconds_since(t0);
  error.throw_if_set(catalog ? "a catalog request failed" : "GET /healthz failed");
  for (size_t t = 0; t < threads; ++t) {
    run.ms.insert(run.ms.end(), ms[t].begin(), ms[t].end());
    run.bytes += bytes[t];
  }
  run.n = run.ms.size();
  std::sort(run.ms.begin(), run.ms.end());
  return run;
}

void section_catalog(const Options& o, const Pki& pki, const InProcessBroker& broker) {
  std::printf(
      "\n(2) Catalog requests over keep-alive connections. First %s datasets are published "
      "by one provider through\n"
      "    POST /management/datasets (connectors::Client, %s threads; each publish is a "
      "durable store write and\n"
      "    provenance append). Each has one offer: permission use, spatial isAnyOf [DE, NL].\n",
      grouped(o.datasets).c_str(), grouped(o.publish_threads).c_str());
  std::fflush(stdout);
  const double publish_s = publish_all(o, broker.port(), pki);
  std::printf("    published %s datasets in %.1f s: %s publishes/s\n", grouped(o.datasets).c_str(),
              publish_s, grouped(static_cast<double>(o.datasets) / publish_s).c_str());

  std::vector<std::unique_ptr<connectors::Client>> clients;
  for (uint64_t t = 0; t < o.catalog_threads; ++t)
    clients.push_back(connect(broker.port(), pki.consumer));
  const std::string first = "/catalog/request?limit=" + std::to_string(o.page);
  std::vector<std::string> pages(clients.size(), first);
  // Check what a page holds (outside the timing).
  {
    auto r = clients[0]->request("POST", first, kCatalogRequest);
    if (!r || r->status != 200)
      fail("the first catalog page: " + (r ? r->body : r.status().message()));
    const json page = json::parse(r->body, nullptr, false);
    const size_t expect = std::min<uint64_t>(o.page, o.datasets);
    if (page.is_discarded() || !page.contains("dataset") || page["dataset"].size() != expect)
      fail("the first catalog page does not hold " + std::to_string(expect) + " datasets");
    if (o.datasets > o.page && next_page(*r).empty())
      fail("the first catalog page has no next link");
    auto h = clients[0]->request("GET", "/healthz");
    const json health = h ? json::parse(h->body, nullptr, false) : json();
    if (!h || health.is_discarded() || health.value("datasets", uint64_t{0}) != o.datasets)
      fail("/healthz does not count " + std::to_string(o.datasets) + " datasets");
  }
  const uint64_t n = std::max<uint64_t>(o.requests, clients.size());
  const std::string small = "/catalog/request?limit=" + std::to_string(o.small_page);
  std::printf(
      "    Then %s threads, each with its own keep-alive connectors::Client (consumer "
      "certificate, country NL),\n"
      "    make %s requests in all per measurement: POST %s with a CatalogRequestMessage, "
      "following the next\n"
      "    Link page by page (back to the first after the last), and the same with %s per page "
      "(context: a smaller\n"
      "    reply). The baseline, on the same connections in the same round: GET /healthz. Each "
      "request is timed alone\n"
      "    in the client (connectors::Client, body not parsed); p50 and p99 over all threads' "
      "requests.\n",
      grouped(o.catalog_threads).c_str(), grouped(n).c_str(), first.c_str(),
      grouped(o.small_page).c_str());
  std::fflush(stdout);

  struct Kind {
    std::string name;
    std::vector<std::string> pages;  // per client; empty: GET /healthz
    std::vector<double> rate, p50, p99, bytes, ratio;
  };
  std::vector<Kind> kinds(3);
  kinds[0].name = "GET /healthz (baseline)";
  kinds[1].name = "POST /catalog/request, " + std::to_string(o.small_page) + " per page";
  kinds[1].pages.assign(clients.size(), small);
  kinds[2].name = "POST /catalog/request, " + std::to_string(o.page) + " per page";
  kinds[2].pages.assign(clients.size(), first);
  for (Kind& k : kinds)  // warm-up
    run_requests(clients, k.pages, n / 4);
  for (uint64_t r = 0; r < o.reps; ++r) {
    std::string line;
    for (Kind& k : kinds) {
      const RequestRun run = run_requests(clients, k.pages, n);
      k.rate.push_back(run.per_sec());
      k.p50.push_back(percentile(run.ms, 0.5));
      k.p99.push_back(percentile(run.ms, 0.99));
      k.bytes.push_back(run.bytes / static_cast<double>(run.n));
      k.ratio.push_back(k.rate.back() / kinds[0].rate.back());
      line += (line.empty() ? "" : ", ") + grouped(k.rate.back());
    }
    std::printf("    round %llu: %s requests/s (rows in the order of the table)\n",
                static_cast<unsigned long long>(r + 1), line.c_str());
    std::fflush(stdout);
  }
  std::printf("\n%-36s %10s %8s %8s %10s %11s   %s\n", "", "requests/s", "p50 ms", "p99 ms",
              "x healthz", "reply bytes", "requests/s, p50/p99 ms per round");
  for (const Kind& k : kinds) {
    std::string runs;
    for (size_t i = 0; i < k.rate.size(); ++i) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%s%s %.2f/%.2f", i ? "; " : "", grouped(k.rate[i]).c_str(),
                    k.p50[i], k.p99[i]);
      runs += buf;
    }
    std::printf("%-36s %10s %8.2f %8.2f %10.3f %11s   %s\n", k.name.c_str(),
                grouped(median(k.rate)).c_str(), median(k.p50), median(k.p99), median(k.ratio),
                grouped(median(k.bytes)).c_str(), runs.c_str());
  }
  std::printf(
      "x healthz: per round, requests/s / GET /healthz requests/s; median. reply bytes: the "
      "body, mean.\n"
      "%s datasets published, %s client threads, the broker's default 4 worker threads.\n",
      grouped(o.datasets).c_str(), grouped(o.catalog_threads).c_str());
  std::fflush(stdout);
}

// ---- (3) memory ------------------------------------------------------------------------------

// Opens `n` connections from `threads` threads: full handshake, GET /healthz (keep-alive),
// then left open.
std::vector<TlsConn> open_idle(SSL_CTX* ctx, uint16_t port, uint64_t n, uint64_t threads) {
  FirstError error;
  std::vector<std::vector<TlsConn>> parts(threads);
  std::vector<std::thread> workers;
  for (uint64_t t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      name_thread("idle-client");
      const uint64_t mine = n / threads + (t < n % threads ? 1 : 0);
      parts[t].reserve(mine);
      for (uint64_t k = 0; k < mine; ++k) {
        TlsConn c;
        std::string why, body;
        int status = 0;
        if (!c.open(ctx, port, nullptr, why) || !c.request(kHealthz, status, body, why)) {
          error.set(why);
          return;
        }
        if (status != 200) {
          error.set("GET /healthz answered " + std::to_string(status) + ": " + body);
          return;
        }
        parts[t].push_back(std::move(c));
      }
    });
  for (std::thread& w : workers)
    w.join();
  error.throw_if_set("opening the idle connections");
  std::vector<TlsConn> all;
  all.reserve(n);
  for (auto& p : parts)
    for (TlsConn& c : p)
      all.push_back(std::move(c));
  return all;
}

struct MemoryRun {
  double broker_before = 0, broker_after = 0, broker_closed = 0;  // KiB
  double client_before = 0, client_after = 0;                     // KiB, this process
  double open_seconds = 0;
};

MemoryRun memory_round(const Options& o, const Pki& pki, const fs::path& dir, uint64_t round) {
  const fs::path data = dir / ("memory-data-" + std::to_string(round));
  const fs::path config = dir / ("memory-config-" + std::to_string(round) + ".json");
  const uint64_t limit = std::max<uint64_t>(10'000, o.connections + 100);
  {
    std::ofstream out(config);
    out << json{{"listen", std::string(kHost) + ":0"},
                {"data", data.string()},
                {"cert", pki.broker.string()},
                {"crl", (pki.ca / "crl.pem").string()},
                {"limits",
                 {{"maxConnectionsPerParticipant", limit},
                  {"maxConnections", limit},
                  {"idleTimeoutSeconds", 600}}}}
               .dump(2);
  }
  Child broker({o.dsx, "broker", "--config", config.string()}, dir / "memory-broker.log", true);
  // "dsx broker listening on https://127.0.0.1:PORT (data in ...); Ctrl-C stops it"
  const std::string line = broker.read_line(std::chrono::seconds(30));
  const size_t at = line.find(std::string(kHost) + ":");
  if (at == std::string::npos) fail("unexpected output of dsx broker: " + line);
  const auto port =
      static_cast<uint16_t>(std::strtoul(line.c_str() + at + std::strlen(kHost) + 1, nullptr, 10));
  const std::string pid = std::to_string(broker.pid());
  ClientContext client(pki.consumer);

  // Warm-up connections, kept open through the readings: the first connections allocate what
  // every later one reuses (thread arenas, caches).
  const std::vector<TlsConn> warm = open_idle(client.get(), port, kMemoryWarmup, kOpenThreads);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MemoryRun run;
  run.broker_before = rss_kib(pid);
  run.client_before = rss_kib("self");
  const auto t0 = SteadyClock::now();
  {
    std::vector<TlsConn> idle = open_idle(client.get(), port, o.connections, kOpenThreads);
    run.open_seconds = seconds_since(t0);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    run.broker_after = rss_kib(pid);
    run.client_after = rss_kib("self");
    // Still answering, and every connection still open?
    std::string why, body;
    int status = 0;
    if (!idle.back().request(kHealthz, status, body, why) || status != 200)
      fail("the last idle connection does not answer: " + why);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  run.broker_closed = rss_kib(pid);
  if (auto code = broker.exited())
    fail("dsx broker exited with " + std::to_string(*code) + ": " + broker.stderr_tail());
  return run;
}

void section_memory(const Options& o, const Pki& pki, const fs::path& dir) {
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  if (nofile.rlim_cur < o.connections + 300)
    fail("RLIMIT_NOFILE is " + std::to_string(nofile.rlim_cur) + " (hard " +
         std::to_string(nofile.rlim_max) + "); " + std::to_string(o.connections) +
         " connections need about " + std::to_string(o.connections + 300) +
         " descriptors here and in the broker: raise the hard limit (ulimit -Hn)");
  std::printf(
      "\n(3) Memory per idle mutual-TLS connection. Per round, a fresh `%s broker` (a child "
      "process, default\n"
      "    threads, limits raised by its config file: %s connections per participant, idle "
      "timeout 600 s), and from\n"
      "    this process (%s threads) %s warm-up connections, then %s more, each a full "
      "handshake and one\n"
      "    GET /healthz, then left idle (all stay open to the end of the round). VmRSS of the "
      "broker (/proc/PID/status)\n"
      "    before the %s and 1 s after; baseline: this process's VmRSS growth for the same "
      "connections (raw OpenSSL\n"
      "    client, each holding its SSL object, session and the broker's certificate). "
      "RLIMIT_NOFILE %s (inherited).\n",
      o.dsx.c_str(), grouped(std::max<uint64_t>(10'000, o.connections + 100)).c_str(),
      grouped(kOpenThreads).c_str(), grouped(kMemoryWarmup).c_str(), grouped(o.connections).c_str(),
      grouped(o.connections).c_str(), grouped(static_cast<double>(nofile.rlim_cur)).c_str());
  std::fflush(stdout);
  const double n = static_cast<double>(o.connections);
  std::vector<double> per_conn, client_per_conn, ratio, before, after, closed, open_rate;
  for (uint64_t r = 0; r < o.reps; ++r) {
    const MemoryRun run = memory_round(o, pki, dir, r);
    per_conn.push_back((run.broker_after - run.broker_before) / n);
    client_per_conn.push_back((run.client_after - run.client_before) / n);
    ratio.push_back(per_conn.back() / client_per_conn.back());
    before.push_back(run.broker_before / 1024);
    after.push_back(run.broker_after / 1024);
    closed.push_back(run.broker_closed / 1024);
    open_rate.push_back(n / run.open_seconds);
    std::printf(
        "    round %llu: broker VmRSS %.1f MiB -> %.1f MiB with %s connections (%.1f KiB each), "
        "%.1f MiB after closing them;\n"
        "             this process %.1f KiB per connection; opened at %s connections/s\n",
        static_cast<unsigned long long>(r + 1), before.back(), after.back(),
        grouped(o.connections).c_str(), per_conn.back(), closed.back(), client_per_conn.back(),
        grouped(open_rate.back()).c_str());
    std::fflush(stdout);
  }
  std::printf("\n%-52s %10s   %s\n", "", "median", "runs");
  std::printf("%-52s %10.1f   %s\n", "broker VmRSS before, MiB", median(before),
              join_runs(before, "%.1f").c_str());
  std::printf("%-52s %10.1f   %s\n",
              ("broker VmRSS with " + grouped(o.connections) + " idle, MiB").c_str(), median(after),
              join_runs(after, "%.1f").c_str());
  std::printf("%-52s %10.1f   %s\n", "broker VmRSS after closing them, MiB", median(closed),
              join_runs(closed, "%.1f").c_str());
  std::printf("%-52s %10.1f   %s\n", "broker KiB per idle connection", median(per_conn),
              join_runs(per_conn, "%.1f").c_str());
  std::printf("%-52s %10.1f   %s\n", "baseline: raw OpenSSL client KiB per connection",
              median(client_per_conn), join_runs(client_per_conn, "%.1f").c_str());
  std::printf("%-52s %10.2f   %s\n", "broker / baseline", median(ratio),
              join_runs(ratio, "%.2f").c_str());
  const double m = median(per_conn);
  std::printf("\nTarget: <= %.0f KiB per idle connection: %.1f KiB, %s (%.2fx the target).\n",
              kTargetKibPerConnection, m, m <= kTargetKibPerConnection ? "met" : "MISSED",
              m / kTargetKibPerConnection);
  std::fflush(stdout);
}

// ---- driver ----------------------------------------------------------------------------------

void run(const Options& o) {
  // Up to the hard limit: (3) holds thousands of sockets here and in the broker it starts.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  signal(SIGPIPE, SIG_IGN);  // a server closing first is an error value, not a signal
  TempDir tmp(o.dir, "broker-bench");
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  std::printf(
      "dsx_broker_bench: %u CPUs (%s), load average %.2f %.2f %.2f, %s\n"
      "temp dir %s (removed at the end)\n",
      std::thread::hardware_concurrency(), cpu_model().c_str(), load[0], load[1], load[2],
      OpenSSL_version(OPENSSL_VERSION), tmp.path().c_str());
  std::fflush(stdout);
  const Pki pki = make_pki(tmp.path());
  const auto t0 = SteadyClock::now();
  if (o.run_handshakes || o.run_catalog) {
    InProcessBroker broker({}, pki.broker, pki.ca, tmp.path() / "data");
    if (o.run_handshakes) section_handshakes(o, pki, broker, tmp.path());
    if (o.run_catalog) section_catalog(o, pki, broker);
  }
  if (o.run_memory) section_memory(o, pki, tmp.path());
  getloadavg(load, 3);
  std::printf("\nThe run took %.0f s; load average at the end %.2f %.2f %.2f.\n", seconds_since(t0),
              load[0], load[1], load[2]);
}

constexpr const char* kUsage =
    "usage: dsx_broker_bench [--quick] [--reps=N] [--only=handshakes|catalog|memory]\n"
    "         [--handshakes=N] [--client-threads=N] [--datasets=N] [--publish-threads=N]\n"
    "         [--catalog-threads=N] [--requests=N] [--page=N] [--small-page=N]\n"
    "         [--connections=N]\n"
    "         [--dsx=PATH] [--openssl=PATH] [--dir=PATH]\n"
    "  --handshakes       (1) connections per measurement (default 2000)\n"
    "  --client-threads   (1) client threads of the second set of rows (default 2; 1 is\n"
    "                     always measured)\n"
    "  --datasets         (2) datasets published before the catalog requests (default 10000)\n"
    "  --requests         (2) requests per measurement over all threads (default 2000)\n"
    "  --catalog-threads  (2) client threads, one keep-alive connection each (default 4)\n"
    "  --page             (2) datasets per catalog page (default 50; --small-page 10)\n"
    "  --connections      (3) idle connections held open (default 5000)\n"
    "  --quick            300 handshakes, 1000 datasets, 400 requests, 1000 connections\n"
    "  --only             one section\n"
    "  --dsx              the dsx binary for (3) (default: the one built with this bench)\n"
    "  --dir              where the temp dir goes (default $TMPDIR or /tmp)\n";

bool parse_u64(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::optional<Options> parse_options(int argc, char** argv) {
  Options o;
  if (const char* t = std::getenv("TMPDIR"); t && *t) o.dir = t;
  if (o.dir.empty()) o.dir = "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string_view name = arg.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    auto number = [&](uint64_t& out) { return parse_u64(value, out); };
    bool ok = true;
    if (name == "--quick") {
      o.handshakes = 300;
      o.datasets = 1000;
      o.requests = 400;
      o.connections = 1000;
    } else if (name == "--reps") {
      ok = number(o.reps);
    } else if (name == "--handshakes") {
      ok = number(o.handshakes);
    } else if (name == "--client-threads") {
      ok = number(o.client_threads);
    } else if (name == "--datasets") {
      ok = number(o.datasets);
    } else if (name == "--publish-threads") {
      ok = number(o.publish_threads);
    } else if (name == "--catalog-threads") {
      ok = number(o.catalog_threads);
    } else if (name == "--requests") {
      ok = number(o.requests);
    } else if (name == "--page") {
      ok = number(o.page);
    } else if (name == "--small-page") {
      ok = number(o.small_page);
    } else if (name == "--connections") {
      ok = number(o.connections);
    } else if (name == "--dsx") {
      o.dsx = std::string(value);
      ok = !o.dsx.empty();
    } else if (name == "--openssl") {
      o.openssl = std::string(value);
      ok = !o.openssl.empty();
    } else if (name == "--dir") {
      o.dir = std::string(value);
      ok = !o.dir.empty();
    } else if (name == "--only") {
      o.run_handshakes = value == "handshakes";
      o.run_catalog = value == "catalog";
      o.run_memory = value == "memory";
      ok = o.run_handshakes || o.run_catalog || o.run_memory;
    } else {
      ok = false;
    }
    if (!ok) return std::nullopt;
  }
  if (o.reps == 0 || o.handshakes == 0 || o.client_threads == 0 || o.datasets == 0 ||
      o.publish_threads == 0 || o.catalog_threads == 0 || o.requests == 0 || o.page == 0 ||
      o.page > 500 || o.small_page == 0 || o.small_page > 500 || o.connections == 0)
    return std::nullopt;
  return o;
}

}  // namespace
}  // namespace dsx::bench

int main(int argc, char** argv) {
  const auto options = dsx::bench::parse_options(argc, argv);
  if (!options) {
    std::fputs(dsx::bench::kUsage, stderr);
    return 2;
  }
  try {
    dsx::bench::run(*options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dsx_broker_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
