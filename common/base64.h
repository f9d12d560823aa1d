#pragma once
// RFC 4648 base64 (section 4, with padding: signatures, the manifest header) and base64url
// (section 5, without padding, as JWK writes keys). Decoding is strict: only the canonical
// text of some bytes is accepted (the right alphabet, no white space, padding exactly where
// it must be, unused low bits zero), so that one value has one text. Pure functions;
// thread-safe.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsx {

std::string base64_encode(std::span<const uint8_t> bytes);
inline std::string base64_encode(std::string_view bytes) {
  return base64_encode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}
// nullopt unless `text` is canonical padded base64 (the empty text is zero bytes).
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

std::string base64url_encode(std::span<const uint8_t> bytes);
// nullopt unless `text` is canonical unpadded base64url.
std::optional<std::vector<uint8_t>> base64url_decode(std::string_view text);

}  // namespace dsx
