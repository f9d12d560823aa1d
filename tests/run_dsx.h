#pragma once
// Running the real dsx binary from a test (DSX_BINARY is the one built with the tests).

#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>

namespace dsx::testing {

struct DsxRun {
  int status;       // exit status, -1 when killed by a signal
  std::string out;  // what the command printed, as `redirect` chose
};

// Runs `dsx ARGS`; by default stdout and stderr together (" 2>/dev/null": stdout only,
// " 2>&1 >/dev/null": stderr only).
inline DsxRun run_dsx(const std::string& args, const std::string& redirect = " 2>&1") {
  const std::string cmd = std::string(DSX_BINARY) + " " + args + redirect;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0)
    out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace dsx::testing
