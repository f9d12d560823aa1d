#pragma once
// dsx child processes in end-to-end tests: cli/process.h (what `dsx demo` uses) run on the dsx
// binary built beside the tests (DSX_BINARY), with failures turned into test failures.

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/process.h"

namespace dsx::testing {

// Starts `dsx ARGS...`, its output in `log`; stopped (SIGTERM) when destroyed.
inline cli::Child start_dsx(const std::vector<std::string>& args,
                            const std::filesystem::path& log) {
  auto child = cli::Child::start(args, log, DSX_BINARY);
  REQUIRE(child);
  return std::move(*child);
}

// The first line of the child's log that contains `text`, waiting up to `timeout`; "" when none
// came (the reason, with the end of the log, is kept as a note for the failure's report).
inline std::string wait_for(cli::Child& child, const std::string& text,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto line = child.wait_for_line(text, timeout);
  if (!line) {
    UNSCOPED_INFO(line.status().message());
    return {};
  }
  return *line;
}

// The value after `prefix` up to the next space or line end in `text`; "" when absent.
inline std::string word_after(const std::string& text, const std::string& prefix) {
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return {};
  const size_t start = at + prefix.size();
  return text.substr(start, text.find_first_of(" \n", start) - start);
}

inline std::string read_all(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace dsx::testing
