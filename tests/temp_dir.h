#pragma once
// A fresh folder under the system's temp directory for one test, removed with everything in it
// when the object goes. Not copyable.

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace dsx::testing {

struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "dsx-test") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           (prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace dsx::testing
