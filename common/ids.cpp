#include "common/ids.h"

#include <openssl/rand.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "common/hex.h"

namespace dsx {
namespace {

// Random bytes with the version and the variant set, formatted 8-4-4-4-12.
std::string format_uuid(unsigned char (&b)[16], unsigned version) {
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | (version << 4));
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  const std::string h = to_hex(std::span<const uint8_t>(b, sizeof b));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

void random_bytes(unsigned char* b, int n) {
  if (RAND_bytes(b, n) != 1) std::abort();  // the CSPRNG failing is an invariant
}

}  // namespace

std::string random_uuid() {
  unsigned char b[16];
  random_bytes(b, sizeof b);
  return format_uuid(b, 4);
}

std::string time_ordered_uuid() {
  unsigned char b[16];
  random_bytes(b + 6, 10);
  const auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  for (int i = 0; i < 6; ++i)
    b[i] = static_cast<unsigned char>(ms >> (8 * (5 - i)));
  return format_uuid(b, 7);
}

}  // namespace dsx
