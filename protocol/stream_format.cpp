// The end-to-end encrypted stream format, version 1. docs/stream-format.md is the full essay
// (threat model, the broker's view, test vectors); this is what the code relies on.
//
// LAYOUT
//
//   stream = header || chunk 0 || chunk 1 || ... || chunk n-1          (n >= 1)
//
//   header, 140 bytes; integers big-endian
//     offset size
//        0     4  magic "DSXS"
//        4     1  version: 1
//        5     1  suite: 1 = X25519, HKDF-SHA256, AES-256-GCM
//        6     2  reserved: zero
//        8     4  C, the chunk size: plaintext bytes per chunk, 1 KiB to 16 MiB
//       12    32  E, the provider's ephemeral X25519 public key (fresh per stream)
//       44    32  S, a random salt (fresh per stream)
//       76    32  SHA-256(context): the transfer the stream is for (stream_context())
//      108    32  HMAC-SHA256(M, header[0..108))
//
//   chunk i = AES-256-GCM(K, nonce(i, final), aad = header, plaintext[i*C, i*C + len)) || tag
//
// Every chunk but the last carries exactly C plaintext bytes (C + 16 on the wire); the final
// chunk carries 1 to C, or 0 when it is chunk 0 (the empty stream). So a plaintext of P bytes
// has exactly one chunking, max(1, ceil(P / C)) chunks, and chunk boundaries follow from C
// alone: the broker finds them without keys, and one header and one plaintext give one
// ciphertext (the ciphertext hash in a receipt names one plaintext).
//
// KEY SCHEDULE
//
//   shared = X25519(e, R) = X25519(r, E)          e, r: ephemeral and recipient private keys
//                                                 R: the recipient's public key
//   okm    = HKDF-SHA256(ikm = shared, salt = S,
//                        info = "dsx stream v1" || header[0..108) || R, length 64)
//   K = okm[0..32)    the payload key (AES-256-GCM)
//   M = okm[32..64)   the header key (HMAC-SHA256)
//
// An all-zero shared secret (R or E of small order) is refused. Both public keys are in the
// info, as in RFC 9180's KEM context; so are the chunk size, the salt and the context digest, so
// any other header gives other keys.
//
//   nonce(i, final) = 00 00 00 || i (8 bytes) || (01 if final else 00)
//
// K is fresh for every stream (fresh e and S), so the nonce need only be unique within the
// stream, which the chunk index makes it: this is the STREAM construction of Hoang,
// Reyhanitabar, Rogaway and Vizar (online authenticated encryption, CRYPTO 2015), as age and
// Tink use it.
//
// WHAT IS DETECTED, AND WHY
//
//   - a chunk moved to position j != i (reordered, duplicated, dropped in the middle): it is
//     opened with nonce j and fails;
//   - a stream cut after chunk i: chunk i was sealed with the final flag clear, so it fails when
//     opened as the last one; StreamDecoder says "stream truncated";
//   - bytes after the final chunk: the final chunk fails when opened as non-final;
//     StreamDecoder says "data after the final chunk";
//   - a chunk from another stream, even to the same recipient: another E and S, so another K,
//     and another header as associated data;
//   - a modified header, a stream for another recipient or another transfer: the MAC (checked
//     before any chunk), the context digest, and K itself (the header is in the info);
//   - a modified chunk: the GCM tag.
//
// The MAC lets the opener reject a header before any chunk, with a message that says so, and
// commits the header to the key (GCM alone is not key-committing). The header is also every
// chunk's associated data, which costs nine GHASH blocks per 64 KiB chunk.
//
// What the format does not give is the sender's identity: anyone who knows R, the broker
// included, can make a valid stream. The provider signs the header (which fixes K and with it
// every chunk) with its certificate key; that is the transfer code's job, as is the signed
// receipt (stream_documents.h).
//
// RESUMING
//
// The consumer keeps the header and next_chunk() k; the provider seals again from chunk k; the
// broker relays from stream_chunk_offset(k). A resealed chunk is byte-for-byte the chunk of the
// first attempt (same K, nonce and plaintext), so the resumed stream is the uninterrupted one.
// Resealing index i with a *different* plaintext would reuse a GCM nonce: that reveals the XOR
// of the two plaintexts and the GHASH key, hence forgeries. A StreamSealer therefore keeps 8
// bytes of every tag it produced and refuses a second, different chunk under one index, a chunk
// after the final one and a second final chunk. A sealer rebuilt after a restart
// (StreamSealer::resume) remembers nothing: the provider rebuilds one only when it knows the
// dataset is byte-identical (a SHA-256 recorded at the start), and otherwise starts a new
// stream, from chunk 0, with a new header.
//
// LIMITS
//
// C is 1 KiB to 16 MiB (the header costs 140 bytes, each chunk 16; smaller chunks only waste;
// larger ones delay verification and take memory). A stream has at most min(2^32, 2^40 / C)
// chunks, so at most 1 TiB: 2^36 AES blocks and 2^32 nonces under one key keep GCM's
// confidentiality bound (s + q + 1)^2 / 2^129 near 2^-57 (draft-irtf-cfrg-aead-limits).
// Larger datasets go as several streams.

#include "protocol/stream_format.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace dsx::protocol {

namespace {

constexpr std::array<uint8_t, 4> kMagic = {'D', 'S', 'X', 'S'};
constexpr uint8_t kVersion = 1;
constexpr uint8_t kSuite = 1;
constexpr size_t kMacOffset = 108;  // header[0..108) is what the MAC covers
constexpr std::string_view kInfoLabel = "dsx stream v1";
constexpr size_t kNonceSize = 12;

template <typename T>
T openssl_fail(T status) {
  ERR_clear_error();
  return status;
}

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8)
    p[i] = static_cast<uint8_t>(v);
}
uint32_t get_u32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

std::array<uint8_t, 32> sha256(std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1)
    std::abort();
  return out;
}

struct Keys {
  std::array<uint8_t, 32> payload{};  // K
  std::array<uint8_t, 32> header{};   // M
  ~Keys() {
    OPENSSL_cleanse(payload.data(), payload.size());
    OPENSSL_cleanse(header.data(), header.size());
  }
};

// HKDF-SHA256 as in the key schedule above.
Status derive_keys(std::span<const uint8_t, 32> shared, std::span<const uint8_t> header,
                   const X25519PublicKey& recipient, Keys& keys) {
  std::array<uint8_t, kInfoLabel.size() + kMacOffset + kX25519KeySize> info{};
  std::memcpy(info.data(), kInfoLabel.data(), kInfoLabel.size());
  std::memcpy(info.data() + kInfoLabel.size(), header.data(), kMacOffset);
  std::memcpy(info.data() + kInfoLabel.size() + kMacOffset, recipient.raw().data(), kX25519KeySize);
  std::array<uint8_t, 64> okm{};
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", digest, 0),
      OSSL_PARAM_construct_octet_string("key", const_cast<uint8_t*>(shared.data()), shared.size()),
      OSSL_PARAM_construct_octet_string("salt", const_cast<uint8_t*>(header.data() + 44), 32),
      OSSL_PARAM_construct_octet_string("info", info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  bool ok = ctx && EVP_KDF_derive(ctx, okm.data(), okm.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) return openssl_fail(Status::internal("HKDF-SHA256 failed"));
  std::memcpy(keys.payload.data(), okm.data(), 32);
  std::memcpy(keys.header.data(), okm.data() + 32, 32);
  OPENSSL_cleanse(okm.data(), okm.size());
  return Status::ok();
}

Status header_mac(const Keys& keys, std::span<const uint8_t> header, std::span<uint8_t, 32> mac) {
  size_t len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, keys.header.data(),
                 keys.header.size(), header.data(), kMacOffset, mac.data(), mac.size(), &len) ||
      len != mac.size())
    return openssl_fail(Status::internal("HMAC-SHA256 failed"));
  return Status::ok();
}

std::string chunk_name(uint64_t index) {
  return "chunk " + std::to_string(index);
}

}  // namespace

// The state a sealer and an opener share: the header, the chunk size and an AES-256-GCM context
// keyed once with K, so that each chunk only sets its nonce.
struct StreamSealer::Cipher {
  std::array<uint8_t, kStreamHeaderSize> header{};
  uint32_t chunk_size = 0;
  uint64_t max_chunks = 0;
  EVP_CIPHER_CTX* ctx = nullptr;

  Cipher() = default;
  Cipher(const Cipher&) = delete;
  Cipher& operator=(const Cipher&) = delete;
  ~Cipher() { EVP_CIPHER_CTX_free(ctx); }

  Status init(const Keys& keys, bool encrypt) {
    chunk_size = get_u32(header.data() + 8);
    max_chunks = stream_max_chunks(chunk_size);
    ctx = EVP_CIPHER_CTX_new();
    if (!ctx || EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, keys.payload.data(), nullptr,
                                  encrypt ? 1 : 0) != 1)
      return openssl_fail(Status::internal("cannot set up AES-256-GCM"));
    return Status::ok();
  }

  // The shape rules of LAYOUT, for a chunk of `plaintext_size` bytes.
  Status check(uint64_t index, size_t plaintext_size, bool last) const {
    if (index >= max_chunks)
      return Status::invalid_argument(chunk_name(index) + " is past the stream's limit of " +
                                      std::to_string(max_chunks) + " chunks");
    if (!last && plaintext_size != chunk_size)
      return Status::invalid_argument(chunk_name(index) + " is not the final chunk, so it holds " +
                                      std::to_string(chunk_size) + " bytes, not " +
                                      std::to_string(plaintext_size));
    if (last && plaintext_size > chunk_size)
      return Status::invalid_argument(
          chunk_name(index) + " holds " + std::to_string(plaintext_size) +
          " bytes, more than the chunk size " + std::to_string(chunk_size));
    if (last && plaintext_size == 0 && index != 0)
      return Status::invalid_argument(chunk_name(index) +
                                      " is an empty final chunk; only an empty stream has one");
    return Status::ok();
  }

  void nonce(uint64_t index, bool last, uint8_t* out) const {
    std::memset(out, 0, kNonceSize);
    for (int i = 10; i >= 3; --i, index >>= 8)
      out[i] = static_cast<uint8_t>(index);
    out[11] = last ? 1 : 0;
  }

  // AES-256-GCM over one chunk; `tag` is written (sealing) or checked (opening).
  bool run(uint64_t index, bool last, std::span<const uint8_t> in, uint8_t* out, uint8_t* tag,
           bool encrypt) {
    uint8_t iv[kNonceSize];
    nonce(index, last, iv);
    int len = 0;
    if (EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, iv, -1) != 1 ||
        EVP_CipherUpdate(ctx, nullptr, &len, header.data(), static_cast<int>(header.size())) != 1)
      return false;
    if (!in.empty() &&
        EVP_CipherUpdate(ctx, out, &len, in.data(), static_cast<int>(in.size())) != 1)
      return false;
    if (!encrypt &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kStreamTagSize), tag) != 1)
      return false;
    uint8_t none[16];  // GCM writes nothing at the end; `out` may be empty (and null)
    if (EVP_CipherFinal_ex(ctx, none, &len) != 1) return false;
    if (encrypt &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kStreamTagSize), tag) != 1)
      return false;
    return true;
  }
};

// ---- Header and sizes ----

Result<StreamHeader> parse_stream_header(std::span<const uint8_t> bytes) {
  if (bytes.size() < kStreamHeaderSize)
    return Status::invalid_argument("stream header truncated: " + std::to_string(bytes.size()) +
                                    " of " + std::to_string(kStreamHeaderSize) + " bytes");
  const uint8_t* p = bytes.data();
  if (!std::equal(kMagic.begin(), kMagic.end(), p))
    return Status::invalid_argument("not a dsx stream: the header does not start with \"DSXS\"");
  if (p[4] != kVersion)
    return Status::invalid_argument("unsupported stream version " + std::to_string(p[4]) +
                                    " (this is version 1)");
  if (p[5] != kSuite)
    return Status::invalid_argument("unsupported stream cipher suite " + std::to_string(p[5]) +
                                    " (1 is X25519, HKDF-SHA256, AES-256-GCM)");
  if (p[6] != 0 || p[7] != 0)
    return Status::invalid_argument("stream header: reserved bytes 6-7 are not zero");
  StreamHeader h;
  h.chunk_size = get_u32(p + 8);
  if (h.chunk_size < kMinChunkSize || h.chunk_size > kMaxChunkSize)
    return Status::invalid_argument("stream header: chunk size " + std::to_string(h.chunk_size) +
                                    " is outside " + std::to_string(kMinChunkSize) + ".." +
                                    std::to_string(kMaxChunkSize));
  std::copy_n(p + 12, 32, h.ephemeral_public.begin());
  std::copy_n(p + 44, 32, h.salt.begin());
  std::copy_n(p + 76, 32, h.context_digest.begin());
  std::copy_n(p + kMacOffset, 32, h.mac.begin());
  return h;
}

uint64_t stream_max_chunks(uint32_t chunk_size) {
  if (chunk_size == 0) return 0;
  return std::min(uint64_t{1} << 32, (uint64_t{1} << 40) / chunk_size);
}

uint64_t stream_chunk_count(uint64_t plaintext_size, uint32_t chunk_size) {
  if (plaintext_size == 0 || chunk_size == 0) return 1;
  return (plaintext_size - 1) / chunk_size + 1;
}

uint64_t stream_chunk_offset(uint64_t index, uint32_t chunk_size) {
  return kStreamHeaderSize + index * (uint64_t{chunk_size} + kStreamTagSize);
}

uint64_t stream_size(uint64_t plaintext_size, uint32_t chunk_size) {
  return kStreamHeaderSize + plaintext_size +
         stream_chunk_count(plaintext_size, chunk_size) * kStreamTagSize;
}

std::string stream_context(std::string_view agreement_id, std::string_view transfer_id) {
  std::string out = "dsx transfer v1\n";
  for (std::string_view id : {agreement_id, transfer_id}) {
    out += std::to_string(id.size());
    out += ':';
    out += id;
    out += ',';
  }
  return out;
}

// ---- StreamSealer ----

namespace {

// Builds the header for (E, S, C, context), derives the keys, writes the MAC: the common part
// of every sealer factory.
Result<std::unique_ptr<StreamSealer::Cipher>> make_sealer_cipher(const X25519PublicKey& recipient,
                                                                 std::string_view context,
                                                                 uint32_t chunk_size,
                                                                 const X25519PrivateKey& ephemeral,
                                                                 std::span<const uint8_t> salt) {
  if (chunk_size < kMinChunkSize || chunk_size > kMaxChunkSize)
    return Status::invalid_argument("chunk size " + std::to_string(chunk_size) + " is outside " +
                                    std::to_string(kMinChunkSize) + ".." +
                                    std::to_string(kMaxChunkSize));
  if (salt.size() != 32)
    return Status::invalid_argument("the stream salt is 32 bytes, not " +
                                    std::to_string(salt.size()));
  auto cipher = std::make_unique<StreamSealer::Cipher>();
  uint8_t* h = cipher->header.data();
  std::copy(kMagic.begin(), kMagic.end(), h);
  h[4] = kVersion;
  h[5] = kSuite;
  put_u32(h + 8, chunk_size);
  std::copy_n(ephemeral.public_key().raw().data(), 32, h + 12);
  std::copy_n(salt.data(), 32, h + 44);
  auto digest = sha256(context);
  std::copy_n(digest.data(), 32, h + 76);

  auto shared = ephemeral.agree(recipient);
  if (!shared)
    return Status::invalid_argument("the recipient's encryption key cannot be used: " +
                                    shared.status().message());
  Keys keys;
  Status st = derive_keys(*shared, cipher->header, recipient, keys);
  OPENSSL_cleanse(shared->data(), shared->size());
  if (!st.is_ok()) return st;
  if (st = header_mac(keys, cipher->header, std::span<uint8_t, 32>(h + kMacOffset, 32));
      !st.is_ok())
    return st;
  if (st = cipher->init(keys, /*encrypt=*/true); !st.is_ok()) return st;
  return cipher;
}

}  // namespace

StreamSealer::StreamSealer(std::unique_ptr<Cipher> cipher, X25519PrivateKey ephemeral)
    : cipher_(std::move(cipher)), ephemeral_(std::move(ephemeral)) {}
StreamSealer::StreamSealer(StreamSealer&&) noexcept = default;
StreamSealer& StreamSealer::operator=(StreamSealer&&) noexcept = default;
StreamSealer::~StreamSealer() = default;

Result<StreamSealer> StreamSealer::create(const X25519PublicKey& recipient,
                                          std::string_view context, uint32_t chunk_size) {
  auto ephemeral = X25519PrivateKey::generate();
  if (!ephemeral) return ephemeral.status();
  std::array<uint8_t, 32> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1)
    return openssl_fail(Status::internal("no random bytes for the stream salt"));
  auto cipher = make_sealer_cipher(recipient, context, chunk_size, *ephemeral, salt);
  if (!cipher) return cipher.status();
  return StreamSealer(std::move(*cipher), std::move(*ephemeral));
}

Result<StreamSealer> StreamSealer::resume(const X25519PublicKey& recipient,
                                          std::string_view context, std::span<const uint8_t> header,
                                          const X25519PrivateKey& ephemeral) {
  auto parsed = parse_stream_header(header);
  if (!parsed) return parsed.status();
  if (header.size() != kStreamHeaderSize)
    return Status::invalid_argument("a stream header is " + std::to_string(kStreamHeaderSize) +
                                    " bytes, not " + std::to_string(header.size()));
  if (parsed->ephemeral_public != ephemeral.public_key().raw())
    return Status::invalid_argument("the ephemeral key is not the one of this stream header");
  auto cipher = make_sealer_cipher(recipient, context, parsed->chunk_size, ephemeral, parsed->salt);
  if (!cipher) return cipher.status();
  // Same inputs, same header: anything else means another recipient or context.
  if (CRYPTO_memcmp((*cipher)->header.data(), header.data(), kStreamHeaderSize) != 0)
    return Status::invalid_argument(
        "the stream header was not made for this recipient and context");
  return StreamSealer(std::move(*cipher), ephemeral);
}

Result<StreamSealer> StreamSealer::create_for_test_vectors(const X25519PublicKey& recipient,
                                                           std::string_view context,
                                                           uint32_t chunk_size,
                                                           const X25519PrivateKey& ephemeral,
                                                           std::span<const uint8_t> salt) {
  auto cipher = make_sealer_cipher(recipient, context, chunk_size, ephemeral, salt);
  if (!cipher) return cipher.status();
  return StreamSealer(std::move(*cipher), ephemeral);
}

std::span<const uint8_t> StreamSealer::header() const {
  return cipher_->header;
}
uint32_t StreamSealer::chunk_size() const {
  return cipher_->chunk_size;
}

Result<size_t> StreamSealer::seal_into(uint64_t index, std::span<const uint8_t> plaintext,
                                       bool last, std::span<uint8_t> out) {
  if (Status st = cipher_->check(index, plaintext.size(), last); !st.is_ok()) return st;
  const size_t size = plaintext.size() + kStreamTagSize;
  if (out.size() < size)
    return Status::invalid_argument("the output for " + chunk_name(index) + " has " +
                                    std::to_string(out.size()) + " bytes; it needs " +
                                    std::to_string(size));
  if (final_index_ && index > *final_index_)
    return Status::failed_precondition(chunk_name(index) + " comes after the final chunk, " +
                                       chunk_name(*final_index_));
  if (last && final_index_ && *final_index_ != index)
    return Status::failed_precondition(chunk_name(index) +
                                       " cannot be final: " + chunk_name(*final_index_) + " is");
  if (last && index + 1 < sealed_.size())
    return Status::failed_precondition(
        chunk_name(index) + " cannot be final: " + chunk_name(sealed_.size() - 1) + " was sealed");
  uint8_t* tag = out.data() + plaintext.size();
  if (!cipher_->run(index, last, plaintext, out.data(), tag, /*encrypt=*/true)) {
    OPENSSL_cleanse(out.data(), size);
    return openssl_fail(Status::internal("AES-256-GCM failed to seal " + chunk_name(index)));
  }
  uint64_t fingerprint = 1;  // never 0, which means "not sealed"
  for (size_t i = 0; i < 8; ++i)
    fingerprint |= uint64_t{tag[i]} << (8 * i);
  if (index < sealed_.size() && sealed_[index] != 0 && sealed_[index] != fingerprint) {
    OPENSSL_cleanse(out.data(), size);
    return Status::failed_precondition(
        chunk_name(index) +
        " was sealed before with other content: sealing it again differently would reuse its "
        "nonce (the dataset changed? start a new stream)");
  }
  if (index >= sealed_.size()) sealed_.resize(index + 1, 0);
  sealed_[index] = fingerprint;
  if (last) final_index_ = index;
  return size;
}

Result<std::vector<uint8_t>> StreamSealer::seal(uint64_t index, std::span<const uint8_t> plaintext,
                                                bool last) {
  std::vector<uint8_t> out(plaintext.size() + kStreamTagSize);
  auto n = seal_into(index, plaintext, last, out);
  if (!n) return n.status();
  return out;
}

// ---- StreamOpener ----

StreamOpener::StreamOpener(std::unique_ptr<StreamSealer::Cipher> cipher)
    : cipher_(std::move(cipher)) {}
StreamOpener::StreamOpener(StreamOpener&&) noexcept = default;
StreamOpener& StreamOpener::operator=(StreamOpener&&) noexcept = default;
StreamOpener::~StreamOpener() = default;

Result<StreamOpener> StreamOpener::create(const X25519PrivateKey& recipient,
                                          std::span<const uint8_t> header,
                                          std::string_view context) {
  auto parsed = parse_stream_header(header);
  if (!parsed) return parsed.status();
  if (header.size() != kStreamHeaderSize)
    return Status::invalid_argument("a stream header is " + std::to_string(kStreamHeaderSize) +
                                    " bytes, not " + std::to_string(header.size()));
  if (parsed->context_digest != sha256(context))
    return Status::invalid_argument(
        "the stream was made for another transfer (its context digest differs)");
  auto ephemeral = X25519PublicKey::from_raw(parsed->ephemeral_public);
  if (!ephemeral) return ephemeral.status();
  auto shared = recipient.agree(*ephemeral);
  if (!shared)
    return Status::invalid_argument("stream header: unusable ephemeral key: " +
                                    shared.status().message());
  auto cipher = std::make_unique<StreamSealer::Cipher>();
  std::copy(header.begin(), header.end(), cipher->header.begin());
  Keys keys;
  Status st = derive_keys(*shared, cipher->header, recipient.public_key(), keys);
  OPENSSL_cleanse(shared->data(), shared->size());
  if (!st.is_ok()) return st;
  std::array<uint8_t, 32> mac{};
  if (st = header_mac(keys, cipher->header, mac); !st.is_ok()) return st;
  if (CRYPTO_memcmp(mac.data(), parsed->mac.data(), mac.size()) != 0)
    return Status::invalid_argument(
        "stream header failed authentication: the stream is for another recipient key, or "
        "its header was modified");
  if (st = cipher->init(keys, /*encrypt=*/false); !st.is_ok()) return st;
  return StreamOpener(std::move(cipher));
}

std::span<const uint8_t> StreamOpener::header() const {
  return cipher_->header;
}
uint32_t StreamOpener::chunk_size() const {
  return cipher_->chunk_size;
}

Result<size_t> StreamOpener::open_into(uint64_t index, std::span<const uint8_t> ciphertext,
                                       bool last, std::span<uint8_t> out) {
  if (ciphertext.size() < kStreamTagSize)
    return Status::invalid_argument(chunk_name(index) + " has " +
                                    std::to_string(ciphertext.size()) +
                                    " bytes, fewer than its 16-byte tag");
  const size_t size = ciphertext.size() - kStreamTagSize;
  if (Status st = cipher_->check(index, size, last); !st.is_ok()) return st;
  if (out.size() < size)
    return Status::invalid_argument("the output for " + chunk_name(index) + " has " +
                                    std::to_string(out.size()) + " bytes; it needs " +
                                    std::to_string(size));
  // The tag is copied first: opening in place overwrites the ciphertext it follows.
  std::array<uint8_t, kStreamTagSize> tag{};
  std::copy_n(ciphertext.data() + size, kStreamTagSize, tag.begin());
  if (!cipher_->run(index, last, ciphertext.first(size), out.data(), tag.data(),
                    /*encrypt=*/false)) {
    OPENSSL_cleanse(out.data(), size);
    ERR_clear_error();
    return Status::invalid_argument(chunk_name(index) + " failed authentication");
  }
  return size;
}

Result<std::vector<uint8_t>> StreamOpener::open(uint64_t index, std::span<const uint8_t> ciphertext,
                                                bool last) {
  std::vector<uint8_t> out(ciphertext.size() >= kStreamTagSize ? ciphertext.size() - kStreamTagSize
                                                               : 0);
  auto n = open_into(index, ciphertext, last, out);
  if (!n) return n.status();
  return out;
}

// ---- StreamDecoder ----

StreamDecoder::StreamDecoder(X25519PrivateKey recipient, std::string context)
    : recipient_(std::move(recipient)), context_(std::move(context)) {}

Result<StreamDecoder> StreamDecoder::resume(const X25519PrivateKey& recipient,
                                            std::span<const uint8_t> header,
                                            std::string_view context, uint64_t next_chunk) {
  auto opener = StreamOpener::create(recipient, header, context);
  if (!opener) return opener.status();
  if (next_chunk >= stream_max_chunks(opener->chunk_size()))
    return Status::invalid_argument("cannot resume at " + chunk_name(next_chunk) +
                                    ": past the stream's limit");
  StreamDecoder d(recipient, std::string(context));
  d.opener_.emplace(std::move(*opener));
  d.next_chunk_ = next_chunk;
  return d;
}

std::span<const uint8_t> StreamDecoder::header() const {
  return opener_ ? opener_->header() : std::span<const uint8_t>();
}

Status StreamDecoder::fail(Status status) {
  error_ = std::move(status);
  pending_.clear();
  return error_;
}

Status StreamDecoder::open_full(std::span<const uint8_t> chunk, std::vector<uint8_t>& plaintext) {
  const size_t at = plaintext.size();
  plaintext.resize(at + opener_->chunk_size());
  auto n = opener_->open_into(next_chunk_, chunk, /*last=*/false, std::span(plaintext).subspan(at));
  if (n) {
    ++next_chunk_;
    return Status::ok();
  }
  // Say what went wrong: a final chunk with more bytes after it, or a bad chunk.
  auto as_final =
      opener_->open_into(next_chunk_, chunk, /*last=*/true, std::span(plaintext).subspan(at));
  plaintext.resize(at);
  if (as_final)
    return fail(
        Status::invalid_argument("data after the final chunk (" + chunk_name(next_chunk_) + ")"));
  return fail(n.status());
}

Status StreamDecoder::update(std::span<const uint8_t> bytes, std::vector<uint8_t>& plaintext) {
  if (!error_.is_ok()) return error_;
  if (bytes.empty()) return Status::ok();
  if (finished_)
    return fail(Status::invalid_argument("data after the final chunk (" +
                                         chunk_name(next_chunk_ - 1) + ")"));
  if (!opener_) {
    size_t take = std::min(kStreamHeaderSize - pending_.size(), bytes.size());
    pending_.insert(pending_.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(take));
    bytes = bytes.subspan(take);
    if (pending_.size() < kStreamHeaderSize) return Status::ok();
    auto opener = StreamOpener::create(recipient_, pending_, context_);
    if (!opener) return fail(opener.status());
    opener_.emplace(std::move(*opener));
    pending_.clear();
    pending_.reserve(opener_->chunk_size() + kStreamTagSize);
  }
  const size_t full = size_t{opener_->chunk_size()} + kStreamTagSize;
  while (!bytes.empty()) {
    if (pending_.size() == full) {  // and more bytes follow: not the final chunk
      if (Status st = open_full(pending_, plaintext); !st.is_ok()) return st;
      pending_.clear();
    } else if (pending_.empty() && bytes.size() > full) {  // straight from the input
      if (Status st = open_full(bytes.first(full), plaintext); !st.is_ok()) return st;
      bytes = bytes.subspan(full);
    } else {
      size_t take = std::min(full - pending_.size(), bytes.size());
      pending_.insert(pending_.end(), bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(take));
      bytes = bytes.subspan(take);
    }
  }
  return Status::ok();
}

Status StreamDecoder::finish(std::vector<uint8_t>& plaintext) {
  if (!error_.is_ok()) return error_;
  if (finished_) return Status::ok();
  if (!opener_)
    return fail(Status::invalid_argument("stream truncated: the header has " +
                                         std::to_string(pending_.size()) + " of " +
                                         std::to_string(kStreamHeaderSize) + " bytes"));
  auto truncated = [&] {
    return fail(Status::invalid_argument(
        next_chunk_ == 0 ? std::string("stream truncated: no final chunk (no chunk at all)")
                         : "stream truncated: no final chunk (it ends after " +
                               chunk_name(next_chunk_ - 1) + ")"));
  };
  if (pending_.empty()) return truncated();
  const size_t at = plaintext.size();
  plaintext.resize(at + pending_.size());  // at least the plaintext's size
  auto out = std::span(plaintext).subspan(at);
  auto n = opener_->open_into(next_chunk_, pending_, /*last=*/true, out);
  if (n) {
    plaintext.resize(at + *n);
    ++next_chunk_;
    finished_ = true;
    pending_.clear();
    return Status::ok();
  }
  // A full chunk that is not the final one: it is verified, and the stream was cut after it.
  if (pending_.size() == size_t{opener_->chunk_size()} + kStreamTagSize) {
    if (auto m = opener_->open_into(next_chunk_, pending_, /*last=*/false, out)) {
      plaintext.resize(at + *m);
      ++next_chunk_;
      return truncated();
    }
  }
  plaintext.resize(at);
  return fail(n.status());
}

// ---- Whole streams ----

Result<std::vector<uint8_t>> seal_stream(const X25519PublicKey& recipient, std::string_view context,
                                         std::span<const uint8_t> plaintext, uint32_t chunk_size) {
  auto sealer = StreamSealer::create(recipient, context, chunk_size);
  if (!sealer) return sealer.status();
  const uint64_t chunks = stream_chunk_count(plaintext.size(), chunk_size);
  if (chunks > stream_max_chunks(chunk_size))
    return Status::invalid_argument("the plaintext is larger than one stream may carry");
  std::vector<uint8_t> out(stream_size(plaintext.size(), chunk_size));
  std::copy(sealer->header().begin(), sealer->header().end(), out.begin());
  size_t pos = kStreamHeaderSize;
  for (uint64_t i = 0; i < chunks; ++i) {
    auto piece = plaintext.subspan(
        static_cast<size_t>(i) * chunk_size,
        std::min<size_t>(chunk_size, plaintext.size() - static_cast<size_t>(i) * chunk_size));
    auto n = sealer->seal_into(i, piece, i + 1 == chunks, std::span(out).subspan(pos));
    if (!n) return n.status();
    pos += *n;
  }
  return out;
}

Result<std::vector<uint8_t>> open_stream(const X25519PrivateKey& recipient,
                                         std::string_view context,
                                         std::span<const uint8_t> stream) {
  StreamDecoder decoder(recipient, std::string(context));
  std::vector<uint8_t> plaintext;
  if (stream.size() > kStreamHeaderSize) plaintext.reserve(stream.size() - kStreamHeaderSize);
  if (Status st = decoder.update(stream, plaintext); !st.is_ok()) return st;
  if (Status st = decoder.finish(plaintext); !st.is_ok()) return st;
  return plaintext;
}

}  // namespace dsx::protocol
