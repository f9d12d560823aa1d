// Appends to a provenance log from 4 threads until it is killed, printing each returned index on
// standard output as soon as its append returns (one write() per line). The crash-safety test
// kills it with SIGKILL at random moments and checks that every printed index survived.
//   crash_writer LOG_FILE KEY_FILE
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "provenance/log.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crash_writer LOG_FILE KEY_FILE\n");
    return 2;
  }
  auto key = dsx::provenance::SigningKey::load_or_create(argv[2]);
  if (!key) return 3;
  dsx::SystemClock clock;
  auto log = dsx::provenance::Log::open(argv[1], *key, "crash-test", clock);
  if (!log) {
    std::fprintf(stderr, "%s\n", log.status().message().c_str());
    return 4;
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (long i = 0;; ++i) {
        dsx::provenance::Entry e;
        e.time = clock.now();
        e.actor = "urn:dsx:participant:" + std::to_string(t);
        e.action = "transfer.completed";
        e.subjects = {"urn:dsx:transfer:" + std::to_string(i)};
        auto r = (*log)->append(std::move(e));
        if (!r) _exit(5);
        std::string line = std::to_string(r->index) + "\n";
        if (write(STDOUT_FILENO, line.data(), line.size()) < 0) _exit(6);
      }
    });
  }
  for (auto& th : threads)
    th.join();
}
