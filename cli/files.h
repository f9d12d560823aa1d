#pragma once
// File access for the command line: reading a user's file whole (with an error message that
// names it), and the example files compiled into the binary for `dsx demo`.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dsx::cli {

// The whole file; the error says which file and why ("policy.json: No such file or directory").
Result<std::string> read_file(const std::string& path);

struct EmbeddedFile {
  std::string_view path;  // relative to examples/policies, e.g. "research-only/policy.json"
  std::string_view content;
};
const std::vector<EmbeddedFile>& embedded_files();
// The embedded file at `path`, or an empty view.
std::string_view embedded_file(std::string_view path);

}  // namespace dsx::cli
