#include "certs/atomic_file.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/hex.h"

namespace dsx::certs {
namespace {

std::string errno_text() {
  return std::strerror(errno);
}

bool write_all(int fd, std::string_view content) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    content.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A name no other writer picks: the pid alone is not enough when threads of one process write
// into the same folder.
std::string temp_name(const std::filesystem::path& path) {
  uint8_t random[8] = {};
  RAND_bytes(random, sizeof random);
  return "." + path.filename().string() + "." + std::to_string(::getpid()) + "." + to_hex(random) +
         ".tmp";
}

void sync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the file itself is on disk already
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

Status write_file_atomic(const std::filesystem::path& path, std::string_view content,
                         std::filesystem::perms mode, Overwrite overwrite) {
  const std::filesystem::path dir = path.parent_path();
  const std::filesystem::path tmp = dir / temp_name(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  static_cast<mode_t>(mode & std::filesystem::perms::mask));
  if (fd < 0) return Status::failed_precondition(path.string() + ": cannot write: " + errno_text());
  bool ok = write_all(fd, content) && ::fsync(fd) == 0;
  std::string error = ok ? "" : errno_text();
  if (::close(fd) != 0 && ok) {
    ok = false;
    error = errno_text();
  }
  if (ok) {
    if (overwrite == Overwrite::kYes) {
      if (::rename(tmp.c_str(), path.c_str()) != 0) {
        ok = false;
        error = errno_text();
      }
    } else if (::link(tmp.c_str(), path.c_str()) != 0) {
      // link() never replaces: an existing file fails here, atomically, with EEXIST.
      ok = false;
      error = errno == EEXIST ? "exists already" : errno_text();
    }
  }
  if (!ok || overwrite == Overwrite::kNo) ::unlink(tmp.c_str());
  if (!ok) return Status::failed_precondition(path.string() + ": cannot write: " + error);
  sync_dir(dir);
  return Status::ok();
}

Result<std::string> read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return Status::invalid_argument(path.string() + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path.string() + ": " + errno_text());
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Status::failed_precondition(path.string() + ": read failed");
  return out.str();
}

}  // namespace dsx::certs
