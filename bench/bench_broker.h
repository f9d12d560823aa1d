#pragma once
// What the broker benchmarks (dsx_broker_bench, dsx_negotiation_bench) share: a temp dir removed
// at the end, the first error of several threads, CPU clocks, and a broker running in this process
// as `dsx broker` runs it. Plain values; FirstError is thread-safe, the rest is used by one thread.

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "bench/stats.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "common/clock.h"

namespace dsx::bench {

inline double cpu_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

inline void name_thread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

// Collects the first error of several threads.
class FirstError {
 public:
  void set(const std::string& why) {
    std::lock_guard lock(mutex_);
    if (why_.empty()) why_ = why;
  }
  bool is_set() {
    std::lock_guard lock(mutex_);
    return !why_.empty();
  }
  void throw_if_set(const std::string& what) {
    std::lock_guard lock(mutex_);
    if (!why_.empty()) fail(what + ": " + why_);
  }

 private:
  std::mutex mutex_;
  std::string why_;
};

// The temp dir of the run ("PARENT/dsx-NAME-XXXXXX"), removed with everything in it at the end.
class TempDir {
 public:
  TempDir(const std::string& parent, const std::string& name) {
    std::string templ = parent + "/dsx-" + name + "-XXXXXX";
    if (!mkdtemp(templ.data())) fail("cannot create a temp dir under " + parent);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The broker as `dsx broker` runs it with `config` (default settings unless the caller changed
// them), on 127.0.0.1 port 0, its structured log written to /dev/null (it is built and written as
// in production; DSX_BENCH_BROKER_LOG=FILE keeps it, to see what the broker did).
class InProcessBroker {
 public:
  InProcessBroker(broker::BrokerConfig c, const std::filesystem::path& broker_cert_dir,
                  const std::filesystem::path& ca_dir, const std::filesystem::path& data)
      : log_(std::fopen(
            std::getenv("DSX_BENCH_BROKER_LOG") ? std::getenv("DSX_BENCH_BROKER_LOG") : "/dev/null",
            "w")) {
    c.listen_host = "127.0.0.1";
    c.listen_port = 0;
    c.cert_dir = broker_cert_dir;
    c.crl_file = ca_dir / "crl.pem";
    c.data_dir = data;
    config_ = c;
    auto b = broker::Broker::create(c, log_, clock_);
    if (!b) fail("starting the broker: " + b.status().message());
    broker_ = std::move(*b);
    thread_ = std::thread([this] {
      name_thread("broker-io");
      broker_->run();
    });
  }
  ~InProcessBroker() {
    broker_->stop();
    thread_.join();
    broker_.reset();
    if (log_) std::fclose(log_);
  }
  InProcessBroker(const InProcessBroker&) = delete;
  InProcessBroker& operator=(const InProcessBroker&) = delete;

  uint16_t port() const { return broker_->port(); }
  const broker::BrokerConfig& config() const { return config_; }

 private:
  std::FILE* log_;
  SystemClock clock_;
  broker::BrokerConfig config_;
  std::unique_ptr<broker::Broker> broker_;
  std::thread thread_;
};

}  // namespace dsx::bench
