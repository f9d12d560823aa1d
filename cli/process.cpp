#include "cli/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

namespace dsx::cli {
namespace {

// fork + exec of the dsx binary with stdout and stderr on `out_fd`; the child dies with us.
Result<pid_t> spawn(const std::string& binary, const std::vector<std::string>& args, int out_fd) {
  std::vector<std::string> argv_store;
  argv_store.push_back(binary);
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_store)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return Status::internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {  // async-signal-safe calls only from here to exec
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int exit_status(int wstatus) {
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
}

}  // namespace

std::string self_binary() {
  std::array<char, 4096> buf{};
  const ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : "dsx";
}

Result<Finished> run_dsx(const std::vector<std::string>& args, const std::string& binary) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return Status::internal(std::string("pipe: ") + std::strerror(errno));
  auto pid = spawn(binary, args, fds[1]);
  close(fds[1]);
  if (!pid) {
    close(fds[0]);
    return pid.status();
  }
  Finished f;
  std::array<char, 4096> buf{};
  ssize_t n;
  while ((n = read(fds[0], buf.data(), buf.size())) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    f.out.append(buf.data(), static_cast<size_t>(n));
  }
  close(fds[0]);
  int wstatus = 0;
  while (waitpid(*pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  f.status = exit_status(wstatus);
  return f;
}

Result<Child> Child::start(const std::vector<std::string>& args, std::filesystem::path log,
                           const std::string& binary) {
  const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Status::internal(log.string() + ": " + std::strerror(errno));
  auto pid = spawn(binary, args, fd);
  close(fd);
  if (!pid) return pid.status();
  return Child(*pid, std::move(log));
}

Child::Child(Child&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_(std::move(other.log_)) {
  other.pid_ = -1;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = other.pid_;
    status_ = other.status_;
    log_ = std::move(other.log_);
    other.pid_ = -1;
  }
  return *this;
}

Child::~Child() {
  stop();
}

Result<std::string> Child::wait_for_line(const std::string& text,
                                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const bool exited = reap(WNOHANG);  // before reading: its last lines are in the log then
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);)
      if (line.find(text) != std::string::npos) return line;
    if (exited)
      return Status::failed_precondition("it exited (status " + std::to_string(status_) + "):\n" +
                                         log_tail());
    if (std::chrono::steady_clock::now() > deadline)
      return Status::failed_precondition("no \"" + text + "\" after " +
                                         std::to_string(timeout.count()) + " ms:\n" + log_tail());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

bool Child::reap(int flags) {
  if (pid_ <= 0) return true;
  int wstatus = 0;
  pid_t got;
  while ((got = waitpid(pid_, &wstatus, flags)) < 0 && errno == EINTR) {
  }
  if (got < 0 && errno == ECHILD) {  // gone already (reaped elsewhere): nothing to wait for
    pid_ = -1;
    status_ = -1;
    return true;
  }
  if (got != pid_) return false;
  pid_ = -1;
  status_ = exit_status(wstatus);
  return true;
}

int Child::stop() {
  if (reap(WNOHANG)) return status_;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (reap(WNOHANG)) return status_;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid_, SIGKILL);
  reap(0);
  return status_;
}

std::optional<int> Child::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(WNOHANG)) {
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return status_;
}

void Child::kill_now() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  reap(0);
}

bool Child::running() {
  return !reap(WNOHANG);
}

std::string Child::log_tail(size_t lines) const {
  std::ifstream in(log_);
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const std::string& l : last)
    out += "    | " + l + "\n";
  return out;
}

}  // namespace dsx::cli
