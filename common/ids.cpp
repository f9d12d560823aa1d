#include "common/ids.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace dsx {
namespace {

// Random bytes with the version and the variant set, formatted 8-4-4-4-12.
std::string format_uuid(unsigned char (&b)[16], unsigned version) {
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | (version << 4));
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t at = 0;
  for (size_t i = 0; i < sizeof b; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++at;  // the dashes
    out[at++] = kHex[b[i] >> 4];
    out[at++] = kHex[b[i] & 0x0f];
  }
  return out;
}

// From OpenSSL's CSPRNG, drawn a few hundred bytes at a time per thread: each RAND_bytes call
// takes the DRBG's locks, and the broker makes several ids per negotiation. (A process that
// forked without exec would share the unused bytes with its child; dsx never does.)
void random_bytes(unsigned char* b, size_t n) {
  thread_local unsigned char pool[512];
  thread_local size_t left = 0;
  while (n > 0) {
    if (left == 0) {
      if (RAND_bytes(pool, sizeof pool) != 1) std::abort();  // the CSPRNG failing is an invariant
      left = sizeof pool;
    }
    const size_t take = std::min(n, left);
    std::memcpy(b, pool + sizeof pool - left, take);
    OPENSSL_cleanse(pool + sizeof pool - left, take);  // handed out: not kept
    left -= take;
    b += take;
    n -= take;
  }
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
