#pragma once
// The end-to-end encrypted stream format (docs/stream-format.md; stream_format.cpp opens with
// the design): the provider seals a dataset for the consumer's X25519 key, the broker relays the
// bytes, the consumer opens them and detects any reordered, dropped, repeated, truncated,
// spliced or modified chunk. StreamSealer, StreamOpener and StreamDecoder each keep an OpenSSL
// cipher context: one thread at a time per object; separate objects are independent. Pure: no
// I/O, no clock; randomness (ephemeral keys, salts) comes from OpenSSL's generator.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "protocol/encryption_key.h"

namespace dsx::protocol {

inline constexpr size_t kStreamHeaderSize = 140;
inline constexpr size_t kStreamTagSize = 16;
inline constexpr uint32_t kDefaultChunkSize = 64 * 1024;
inline constexpr uint32_t kMinChunkSize = 1024;
inline constexpr uint32_t kMaxChunkSize = 16 * 1024 * 1024;

// The header's fields as read from the wire; nothing is authenticated yet (StreamOpener does
// that).
struct StreamHeader {
  uint32_t chunk_size = 0;
  std::array<uint8_t, 32> ephemeral_public{};
  std::array<uint8_t, 32> salt{};
  std::array<uint8_t, 32> context_digest{};  // SHA-256 of the context
  std::array<uint8_t, 32> mac{};
};
// Reads the first kStreamHeaderSize bytes of `bytes`, checking the magic, version, suite,
// reserved bytes and chunk size bounds. Needs no key: the broker uses it to find chunk
// boundaries (stream_chunk_offset) for resuming.
Result<StreamHeader> parse_stream_header(std::span<const uint8_t> bytes);

// The most chunks a stream may have: min(2^32, 2^40 / chunk_size), so at most 1 TiB.
uint64_t stream_max_chunks(uint32_t chunk_size);
// Chunks of a stream of `plaintext_size` bytes: at least one (empty plaintext: one empty final
// chunk).
uint64_t stream_chunk_count(uint64_t plaintext_size, uint32_t chunk_size);
// Where chunk `index` starts in the stream: after the header and `index` full chunks.
uint64_t stream_chunk_offset(uint64_t index, uint32_t chunk_size);
// The whole stream's size in bytes: header, ciphertext and one tag per chunk.
uint64_t stream_size(uint64_t plaintext_size, uint32_t chunk_size);

// The context that binds a stream to one transfer, so that it cannot be replayed into another:
// "dsx transfer v1\n" followed by each id as a netstring ("<length>:<bytes>,").
std::string stream_context(std::string_view agreement_id, std::string_view transfer_id);

// The provider's side: makes the header and seals chunks, in any order (random access, for
// resuming) but never two different chunks under one index.
class StreamSealer {
 public:
  // A new stream for `recipient`: a fresh ephemeral key and salt.
  static Result<StreamSealer> create(const X25519PublicKey& recipient, std::string_view context,
                                     uint32_t chunk_size = kDefaultChunkSize);
  // The sealer of `header` again, after the provider restarted, from the ephemeral key it kept
  // (ephemeral_key(), a secret). Only for the same plaintext as before: see RESUMING in
  // stream_format.cpp.
  static Result<StreamSealer> resume(const X25519PublicKey& recipient, std::string_view context,
                                     std::span<const uint8_t> header,
                                     const X25519PrivateKey& ephemeral);
  // Test vectors only: a fixed ephemeral key and 32-byte salt. Two different plaintexts sealed
  // with the same ones reuse AES-GCM nonces and give both plaintexts away.
  static Result<StreamSealer> create_for_test_vectors(const X25519PublicKey& recipient,
                                                      std::string_view context, uint32_t chunk_size,
                                                      const X25519PrivateKey& ephemeral,
                                                      std::span<const uint8_t> salt);

  StreamSealer(StreamSealer&&) noexcept;
  StreamSealer& operator=(StreamSealer&&) noexcept;
  ~StreamSealer();

  // Constant after construction.
  std::span<const uint8_t> header() const;
  uint32_t chunk_size() const;
  const X25519PrivateKey& ephemeral_key() const { return ephemeral_; }

  // Seals chunk `index` into `out` and returns the bytes written: plaintext.size() +
  // kStreamTagSize. `plaintext` is exactly chunk_size() bytes unless `last`; the final chunk
  // holds 1 to chunk_size() bytes, or none when it is chunk 0 (an empty stream). `out` may
  // begin at plaintext.data() (sealing in place). Refused, with `out` wiped: a chunk index past
  // stream_max_chunks(), a chunk after the final one or a second final chunk, and a chunk
  // different from the one this sealer sealed under the same index before (it keeps 8 bytes of
  // each chunk's tag to check this: 8 bytes per index up to the highest one sealed).
  Result<size_t> seal_into(uint64_t index, std::span<const uint8_t> plaintext, bool last,
                           std::span<uint8_t> out);
  Result<std::vector<uint8_t>> seal(uint64_t index, std::span<const uint8_t> plaintext, bool last);

  struct Cipher;  // the AES-GCM context and the header (stream_format.cpp)

 private:
  StreamSealer(std::unique_ptr<Cipher> cipher, X25519PrivateKey ephemeral);

  std::unique_ptr<Cipher> cipher_;
  X25519PrivateKey ephemeral_;
  // What was sealed: per index, a tag fingerprint (0: not sealed); the final chunk's index.
  std::vector<uint64_t> sealed_;
  std::optional<uint64_t> final_index_;
};

// The consumer's side, random access: opens any chunk of a stream whose header it has.
class StreamOpener {
 public:
  // Checks the header: its format, that it was made for `context`, and its MAC under the key
  // agreed with `recipient`, which fails for another recipient's stream or a modified header.
  static Result<StreamOpener> create(const X25519PrivateKey& recipient,
                                     std::span<const uint8_t> header, std::string_view context);

  StreamOpener(StreamOpener&&) noexcept;
  StreamOpener& operator=(StreamOpener&&) noexcept;
  ~StreamOpener();

  std::span<const uint8_t> header() const;
  uint32_t chunk_size() const;

  // Opens chunk `index`, which the caller expects to be the final chunk or not (`last`), into
  // `out` (at least ciphertext.size() - kStreamTagSize bytes; it may begin at
  // ciphertext.data()), and returns the plaintext size. On failure `out` holds no plaintext.
  Result<size_t> open_into(uint64_t index, std::span<const uint8_t> ciphertext, bool last,
                           std::span<uint8_t> out);
  Result<std::vector<uint8_t>> open(uint64_t index, std::span<const uint8_t> ciphertext, bool last);

 private:
  explicit StreamOpener(std::unique_ptr<StreamSealer::Cipher> cipher);
  std::unique_ptr<StreamSealer::Cipher> cipher_;
};

// The consumer's side, sequential: reads a stream as it arrives, in pieces of any size. A chunk
// is opened as soon as a following byte shows it is not the final one; the final chunk at
// finish(). Errors say what is wrong with the stream: "chunk 3 failed authentication", "stream
// truncated: no final chunk (it ends after chunk 6)", "data after the final chunk (chunk 7)".
// After an error, every call returns that error.
class StreamDecoder {
 public:
  // A stream from its first byte: the header, then chunk 0.
  StreamDecoder(X25519PrivateKey recipient, std::string context);
  // A resumed stream: the header is the one of the interrupted transfer, and the bytes fed to
  // update() start at stream_chunk_offset(next_chunk).
  static Result<StreamDecoder> resume(const X25519PrivateKey& recipient,
                                      std::span<const uint8_t> header, std::string_view context,
                                      uint64_t next_chunk);

  // Consumes `bytes`; appends the plaintext of each chunk verified to `plaintext`.
  Status update(std::span<const uint8_t> bytes, std::vector<uint8_t>& plaintext);
  // The input has ended: opens the final chunk (appended to `plaintext`). OK only when the whole
  // stream, up to and including its final chunk, was verified.
  Status finish(std::vector<uint8_t>& plaintext);

  // The chunks verified so far: where a resumed transfer starts.
  uint64_t next_chunk() const { return next_chunk_; }
  // The header, once read (empty before).
  std::span<const uint8_t> header() const;
  // finish() succeeded.
  bool finished() const { return finished_; }

 private:
  Status fail(Status status);
  // Opens one full-size chunk that more bytes follow.
  Status open_full(std::span<const uint8_t> chunk, std::vector<uint8_t>& plaintext);

  X25519PrivateKey recipient_;
  std::string context_;
  std::optional<StreamOpener> opener_;
  std::vector<uint8_t> pending_;  // the header or a chunk, until complete
  uint64_t next_chunk_ = 0;
  bool finished_ = false;
  Status error_;
};

// Whole streams in memory: small datasets and tests.
Result<std::vector<uint8_t>> seal_stream(const X25519PublicKey& recipient, std::string_view context,
                                         std::span<const uint8_t> plaintext,
                                         uint32_t chunk_size = kDefaultChunkSize);
Result<std::vector<uint8_t>> open_stream(const X25519PrivateKey& recipient,
                                         std::string_view context, std::span<const uint8_t> stream);

}  // namespace dsx::protocol
