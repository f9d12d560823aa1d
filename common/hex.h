#pragma once
// Lowercase hexadecimal encoding of bytes, and strict decoding. Pure functions; thread-safe.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsx {

std::string to_hex(std::span<const uint8_t> bytes);
// nullopt unless `hex` is an even number of hex digits (either case).
std::optional<std::vector<uint8_t>> from_hex(std::string_view hex);

}  // namespace dsx
