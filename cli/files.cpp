#include "cli/files.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dsx::cli {

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return Status::invalid_argument(path + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found(path + ": " + std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return Status::internal(path + ": read failed");
  return out.str();
}

std::string_view embedded_file(std::string_view path) {
  for (const EmbeddedFile& f : embedded_files())
    if (f.path == path) return f.content;
  return {};
}

}  // namespace dsx::cli
