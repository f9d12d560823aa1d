#pragma once
// Child processes of the dsx binary, for `dsx demo` (each step of the demonstration is the real
// command a person would type, run as its own process) and for the end-to-end tests (which pass
// the binary they built). run_dsx waits for a command and returns what it printed; Child keeps
// a long-running one (the broker, a connector's `serve`) with its output in a file, and stops it
// (SIGTERM, then SIGKILL after 5 s) when destroyed. A library of its own (dsx_process) so that
// tests link it. Plain values; not thread-safe.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace dsx::cli {

// The path of the running dsx binary (/proc/self/exe).
std::string self_binary();

struct Finished {
  int status = -1;  // exit status; -1 when killed by a signal
  std::string out;  // standard output and standard error, interleaved
};

// Runs `dsx ARGS...` (`binary`: the dsx to run) and waits for it.
Result<Finished> run_dsx(const std::vector<std::string>& args,
                         const std::string& binary = self_binary());

class Child {
 public:
  // Starts `dsx ARGS...` with standard output and error appended to `log`.
  static Result<Child> start(const std::vector<std::string>& args, std::filesystem::path log,
                             const std::string& binary = self_binary());
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  // Waits until the log holds a line containing `text`, the child exits, or `timeout` passes;
  // the line, or an error that quotes the end of the log.
  Result<std::string> wait_for_line(const std::string& text, std::chrono::milliseconds timeout);
  // SIGTERM, then SIGKILL after 5 s; the exit status (-1 when killed by a signal). A child
  // that has already exited is not signalled: its exit status.
  int stop();
  // Waits up to `timeout` for the child to exit by itself: its exit status (-1 when killed by
  // a signal), or nullopt when it still runs.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // SIGKILL at once, as a crash would end it; waits for it to be gone.
  void kill_now();
  // Whether it still runs.
  bool running();
  // Its process id (-1 once stopped).
  pid_t pid() const { return pid_; }
  // The last `lines` lines of its log, for error messages.
  std::string log_tail(size_t lines = 15) const;

 private:
  Child(pid_t pid, std::filesystem::path log) : pid_(pid), log_(std::move(log)) {}
  // Collects the child if it has exited (waitpid with `flags`); whether it has.
  bool reap(int flags);
  pid_t pid_ = -1;
  int status_ = -1;  // the exit status, once reaped
  std::filesystem::path log_;
};

}  // namespace dsx::cli
