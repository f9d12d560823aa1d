#include "common/base64.h"

#include <array>

namespace dsx {

namespace {

constexpr std::string_view kStandard =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrl =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(std::span<const uint8_t> bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = uint32_t{bytes[i]} << 16;
    if (n > 1) v |= uint32_t{bytes[i + 1]} << 8;
    if (n > 2) v |= bytes[i + 2];
    // n bytes make n + 1 digits; the rest of the group is padding.
    for (size_t k = 0; k < 4; ++k) {
      if (k <= n)
        out += alphabet[(v >> (18 - 6 * k)) & 63];
      else if (pad)
        out += '=';
    }
  }
  return out;
}

// Decodes the digits of `text` (padding stripped by the caller); canonical form is checked by
// encoding the result again.
std::optional<std::vector<uint8_t>> decode(std::string_view text, std::string_view alphabet,
                                           bool pad) {
  std::string_view digits = text;
  if (pad) {
    if (text.size() % 4 != 0) return std::nullopt;
    for (int k = 0; k < 2 && !digits.empty() && digits.back() == '='; ++k)
      digits.remove_suffix(1);
  }
  std::array<int8_t, 256> value;
  value.fill(-1);
  for (size_t i = 0; i < alphabet.size(); ++i)
    value[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
  std::vector<uint8_t> out;
  out.reserve(digits.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : digits) {
    const int8_t v = value[static_cast<uint8_t>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6 | static_cast<uint32_t>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  if (encode(out, alphabet, pad) != text) return std::nullopt;
  return out;
}

}  // namespace

std::string base64_encode(std::span<const uint8_t> bytes) {
  return encode(bytes, kStandard, true);
}

std::optional<std::vector<uint8_t>> base64_decode(std::string_view text) {
  return decode(text, kStandard, true);
}

std::string base64url_encode(std::span<const uint8_t> bytes) {
  return encode(bytes, kUrl, false);
}

std::optional<std::vector<uint8_t>> base64url_decode(std::string_view text) {
  return decode(text, kUrl, false);
}

}  // namespace dsx
