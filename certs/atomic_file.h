#pragma once
// Writing the files of a CA folder and of a certificate folder so that a reader (the broker
// re-reading crl.pem, an operator's second command) sees the old file or the new one, never half
// of one: the content goes to a temporary file in the same folder, created with its final mode
// (a private key is never readable by others, not even briefly), is flushed to disk and renamed
// over the old file; then the folder itself is synced. Safe to call from any thread; concurrent
// writers of one path need a lock of their own (the CA takes DIR/index.lock).

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace dsx::certs {

enum class Overwrite { kNo, kYes };

// kNo fails (failed_precondition, naming the file) when `path` exists, atomically.
Status write_file_atomic(const std::filesystem::path& path, std::string_view content,
                         std::filesystem::perms mode, Overwrite overwrite);

// The whole file; the error names it ("ca/index.json: No such file or directory").
Result<std::string> read_text_file(const std::filesystem::path& path);

}  // namespace dsx::certs
