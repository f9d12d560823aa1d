#pragma once
// SHA-256 over data that arrives in pieces (OpenSSL EVP): the relay hashes what it passes on,
// the connectors hash files and streams. One object per hash; not thread-safe.

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace dsx {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const uint8_t> bytes) {
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
  }
  void update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }
  // The digest; call once.
  std::array<uint8_t, 32> finish() {
    std::array<uint8_t, 32> out{};
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_, out.data(), &n);
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace dsx
