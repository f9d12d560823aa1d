#include "protocol/stream_format.h"

#include <openssl/evp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/hex.h"

using namespace dsx;
using namespace dsx::protocol;
using Bytes = std::vector<uint8_t>;

namespace {

constexpr uint32_t kSmall = kMinChunkSize;  // small chunks keep multi-chunk tests fast
constexpr std::string_view kAgreement = "urn:uuid:5a3e0c1e-0000-4000-8000-000000000001";
constexpr std::string_view kTransfer = "urn:uuid:7f1e0000-0000-4000-8000-000000000002";

Bytes hex(std::string_view text) {
  auto bytes = from_hex(text);
  REQUIRE(bytes);
  return *bytes;
}

Bytes pattern(size_t n, uint32_t seed = 1) {
  Bytes out(n);
  std::mt19937 rng(seed);
  for (auto& b : out)
    b = static_cast<uint8_t>(rng());
  return out;
}

std::string sha256_hex(std::span<const uint8_t> data) {
  std::array<uint8_t, 32> md{};
  unsigned int len = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) == 1);
  return to_hex(md);
}

struct Parties {
  X25519PrivateKey consumer = *X25519PrivateKey::generate();
  std::string context = stream_context(kAgreement, kTransfer);
};

Bytes seal(const Parties& p, std::span<const uint8_t> plaintext, uint32_t chunk_size = kSmall) {
  auto stream = seal_stream(p.consumer.public_key(), p.context, plaintext, chunk_size);
  REQUIRE(stream);
  return *stream;
}

// The stream's chunks, cut where the format puts their boundaries.
std::vector<Bytes> chunks_of(std::span<const uint8_t> stream, uint32_t chunk_size) {
  std::vector<Bytes> out;
  size_t full = chunk_size + kStreamTagSize;
  for (size_t at = kStreamHeaderSize; at < stream.size(); at += full) {
    size_t n = std::min(full, stream.size() - at);
    out.emplace_back(stream.begin() + static_cast<ptrdiff_t>(at),
                     stream.begin() + static_cast<ptrdiff_t>(at + n));
  }
  return out;
}

Bytes join(std::span<const uint8_t> header, const std::vector<Bytes>& chunks) {
  Bytes out(header.begin(), header.end());
  for (const auto& c : chunks)
    out.insert(out.end(), c.begin(), c.end());
  return out;
}

// The error open_stream reports, or "" when the stream opens.
std::string open_error(const Parties& p, std::span<const uint8_t> stream) {
  auto r = open_stream(p.consumer, p.context, stream);
  return r ? std::string() : r.status().message();
}

}  // namespace

TEST_CASE("stream sizes follow from the chunk size alone", "[protocol][stream]") {
  CHECK(stream_chunk_count(0, 1024) == 1);
  CHECK(stream_chunk_count(1, 1024) == 1);
  CHECK(stream_chunk_count(1024, 1024) == 1);
  CHECK(stream_chunk_count(1025, 1024) == 2);
  CHECK(stream_size(0, 1024) == kStreamHeaderSize + 16);
  CHECK(stream_size(2049, 1024) == kStreamHeaderSize + 2049 + 3 * 16);
  CHECK(stream_chunk_offset(0, 1024) == kStreamHeaderSize);
  CHECK(stream_chunk_offset(3, 1024) == kStreamHeaderSize + 3 * 1040);
  CHECK(stream_max_chunks(kDefaultChunkSize) == uint64_t{1} << 24);  // 1 TiB
  CHECK(stream_max_chunks(kMinChunkSize) == uint64_t{1} << 30);
  CHECK(stream_max_chunks(kMaxChunkSize) == uint64_t{1} << 16);
  CHECK(stream_context("a:b", "") == "dsx transfer v1\n3:a:b,0:,");
}

TEST_CASE("streams round-trip at every size around a chunk boundary", "[protocol][stream]") {
  Parties p;
  for (uint32_t cs : {kSmall, kDefaultChunkSize}) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{cs} - 1, size_t{cs}, size_t{cs} + 1,
                     size_t{3} * cs, size_t{3} * cs + 5}) {
      CAPTURE(cs, n);
      Bytes plaintext = pattern(n, static_cast<uint32_t>(n));
      Bytes stream = seal(p, plaintext, cs);
      CHECK(stream.size() == stream_size(n, cs));
      CHECK(chunks_of(stream, cs).size() == stream_chunk_count(n, cs));
      auto header = parse_stream_header(stream);
      REQUIRE(header);
      CHECK(header->chunk_size == cs);
      auto opened = open_stream(p.consumer, p.context, stream);
      REQUIRE(opened);
      CHECK(*opened == plaintext);
    }
  }
}

TEST_CASE("the decoder takes the stream in pieces of any size", "[protocol][stream]") {
  Parties p;
  Bytes plaintext = pattern(5 * kSmall + 77);
  Bytes stream = seal(p, plaintext);
  std::mt19937 rng(7);
  for (size_t max_piece : {size_t{1}, size_t{13}, size_t{kSmall} + 16, size_t{5000}}) {
    CAPTURE(max_piece);
    StreamDecoder decoder(p.consumer, p.context);
    Bytes out;
    for (size_t at = 0; at < stream.size();) {
      size_t n = std::min(stream.size() - at, 1 + rng() % max_piece);
      REQUIRE(decoder.update(std::span(stream).subspan(at, n), out).is_ok());
      at += n;
    }
    CHECK(decoder.next_chunk() == 5);  // the final chunk waits for finish()
    REQUIRE(decoder.finish(out).is_ok());
    CHECK(decoder.finished());
    CHECK(decoder.next_chunk() == 6);
    CHECK(out == plaintext);
    CHECK(std::equal(decoder.header().begin(), decoder.header().end(), stream.begin()));
  }
}

TEST_CASE("a transfer resumes at any chunk with the header it began with", "[protocol][stream]") {
  Parties p;
  Bytes plaintext = pattern(6 * kSmall + 10);
  Bytes stream = seal(p, plaintext);
  auto header = std::span(stream).first(kStreamHeaderSize);
  for (uint64_t k = 0; k <= 6; ++k) {
    CAPTURE(k);
    // Random access, chunk by chunk.
    auto opener = StreamOpener::create(p.consumer, header, p.context);
    REQUIRE(opener);
    auto chunks = chunks_of(stream, kSmall);
    auto c = opener->open(k, chunks[k], k == 6);
    REQUIRE(c);
    CHECK(std::equal(c->begin(), c->end(), plaintext.begin() + static_cast<ptrdiff_t>(k * kSmall)));
    // The decoder, fed from the chunk's offset on.
    auto decoder = StreamDecoder::resume(p.consumer, header, p.context, k);
    REQUIRE(decoder);
    Bytes out;
    auto rest = std::span(stream).subspan(stream_chunk_offset(k, kSmall));
    REQUIRE(decoder->update(rest, out).is_ok());
    REQUIRE(decoder->finish(out).is_ok());
    CHECK(std::equal(out.begin(), out.end(), plaintext.begin() + static_cast<ptrdiff_t>(k * kSmall),
                     plaintext.end()));
  }
  // An interrupted transfer: the decoder tells where to resume.
  StreamDecoder first(p.consumer, p.context);
  Bytes out;
  REQUIRE(first.update(std::span(stream).first(stream_chunk_offset(3, kSmall) + 100), out).is_ok());
  CHECK(first.next_chunk() == 3);
  CHECK(out.size() == 3 * kSmall);
  auto second = StreamDecoder::resume(p.consumer, first.header(), p.context, first.next_chunk());
  REQUIRE(second);
  REQUIRE(second->update(std::span(stream).subspan(stream_chunk_offset(3, kSmall)), out).is_ok());
  REQUIRE(second->finish(out).is_ok());
  CHECK(out == plaintext);
}

TEST_CASE("the sealer seals in any order and reseals the same chunk identically",
          "[protocol][stream]") {
  Parties p;
  Bytes plaintext = pattern(3 * kSmall + 9);
  auto sealer = StreamSealer::create(p.consumer.public_key(), p.context, kSmall);
  REQUIRE(sealer);
  auto piece = [&](uint64_t i) {
    size_t at = static_cast<size_t>(i) * kSmall;
    return std::span(plaintext).subspan(at, std::min<size_t>(kSmall, plaintext.size() - at));
  };
  std::vector<Bytes> chunks(4);
  for (uint64_t i : {uint64_t{2}, uint64_t{0}, uint64_t{3}, uint64_t{1}}) {
    auto c = sealer->seal(i, piece(i), i == 3);
    REQUIRE(c);
    chunks[i] = *c;
  }
  auto opened = open_stream(p.consumer, p.context, join(sealer->header(), chunks));
  REQUIRE(opened);
  CHECK(*opened == plaintext);
  // Resealing (a resumed transfer) gives the same bytes.
  auto again = sealer->seal(1, piece(1), false);
  REQUIRE(again);
  CHECK(*again == chunks[1]);

  // A sealer rebuilt from the header and the ephemeral key, after a restart, too.
  auto rebuilt = StreamSealer::resume(p.consumer.public_key(), p.context, sealer->header(),
                                      sealer->ephemeral_key());
  REQUIRE(rebuilt);
  auto c3 = rebuilt->seal(3, piece(3), true);
  REQUIRE(c3);
  CHECK(*c3 == chunks[3]);
  auto other = X25519PrivateKey::generate();
  REQUIRE(other);
  CHECK(StreamSealer::resume(p.consumer.public_key(), p.context, sealer->header(), *other)
            .status()
            .message() == "the ephemeral key is not the one of this stream header");
  CHECK(StreamSealer::resume(other->public_key(), p.context, sealer->header(),
                             sealer->ephemeral_key())
            .status()
            .message() == "the stream header was not made for this recipient and context");
  CHECK_FALSE(StreamSealer::resume(p.consumer.public_key(), "other", sealer->header(),
                                   sealer->ephemeral_key()));
}

TEST_CASE("the sealer never seals two different chunks under one index", "[protocol][stream]") {
  Parties p;
  auto sealer = StreamSealer::create(p.consumer.public_key(), p.context, kSmall);
  REQUIRE(sealer);
  Bytes a = pattern(kSmall, 1), b = pattern(kSmall, 2);
  REQUIRE(sealer->seal(0, a, false));
  Bytes out(kSmall + kStreamTagSize, 0xaa);
  auto r = sealer->seal_into(0, b, false, out);
  REQUIRE_FALSE(r);
  CHECK(r.status().message() ==
        "chunk 0 was sealed before with other content: sealing it again differently would "
        "reuse its nonce (the dataset changed? start a new stream)");
  CHECK(std::all_of(out.begin(), out.end(), [](uint8_t x) { return x == 0; }));  // wiped
  // Chunk 0 again as the final chunk: another nonce, but another stream too.
  CHECK_FALSE(sealer->seal(0, a, true));

  REQUIRE(sealer->seal(2, std::span(a).first(10), true));
  CHECK(sealer->seal(3, a, false).status().message() ==
        "chunk 3 comes after the final chunk, chunk 2");
  CHECK(sealer->seal(1, std::span(a).first(5), true).status().message() ==
        "chunk 1 cannot be final: chunk 2 is");
  REQUIRE(sealer->seal(1, a, false));
  REQUIRE(sealer->seal(2, std::span(a).first(10), true));

  auto s2 = StreamSealer::create(p.consumer.public_key(), p.context, kSmall);
  REQUIRE(s2);
  REQUIRE(s2->seal(4, a, false));
  CHECK(s2->seal(2, std::span(a).first(5), true).status().message() ==
        "chunk 2 cannot be final: chunk 4 was sealed");
}

TEST_CASE("chunks must have the shape the format gives them", "[protocol][stream]") {
  Parties p;
  auto sealer = StreamSealer::create(p.consumer.public_key(), p.context, kSmall);
  REQUIRE(sealer);
  CHECK(sealer->seal(0, pattern(kSmall - 1), false).status().message() ==
        "chunk 0 is not the final chunk, so it holds 1024 bytes, not 1023");
  CHECK(sealer->seal(0, pattern(kSmall + 1), true).status().message() ==
        "chunk 0 holds 1025 bytes, more than the chunk size 1024");
  CHECK(sealer->seal(1, Bytes(), true).status().message() ==
        "chunk 1 is an empty final chunk; only an empty stream has one");
  CHECK(sealer->seal(uint64_t{1} << 30, pattern(5), true).status().message() ==
        "chunk 1073741824 is past the stream's limit of 1073741824 chunks");
  Bytes small(kSmall);
  CHECK(sealer->seal_into(0, pattern(kSmall), false, small).status().message() ==
        "the output for chunk 0 has 1024 bytes; it needs 1040");
  CHECK(StreamSealer::create(p.consumer.public_key(), p.context, kMinChunkSize - 1)
            .status()
            .message() == "chunk size 1023 is outside 1024..16777216");
  CHECK_FALSE(StreamSealer::create(p.consumer.public_key(), p.context, kMaxChunkSize + 1));
  REQUIRE(StreamSealer::create(p.consumer.public_key(), p.context, kMaxChunkSize));

  auto opener = StreamOpener::create(p.consumer, sealer->header(), p.context);
  REQUIRE(opener);
  CHECK(opener->open(0, Bytes(15), true).status().message() ==
        "chunk 0 has 15 bytes, fewer than its 16-byte tag");
  CHECK(opener->open(0, Bytes(100), false).status().message() ==
        "chunk 0 is not the final chunk, so it holds 1024 bytes, not 84");
}

TEST_CASE("sealing and opening work in place", "[protocol][stream]") {
  Parties p;
  auto sealer = StreamSealer::create(p.consumer.public_key(), p.context, kSmall);
  REQUIRE(sealer);
  Bytes plaintext = pattern(kSmall);
  Bytes buffer = plaintext;
  buffer.resize(kSmall + kStreamTagSize);
  auto n = sealer->seal_into(0, std::span(buffer).first(kSmall), false, buffer);
  REQUIRE(n);
  CHECK(*n == kSmall + kStreamTagSize);
  auto copy = sealer->seal(0, plaintext, false);
  REQUIRE(copy);
  CHECK(buffer == *copy);
  auto opener = StreamOpener::create(p.consumer, sealer->header(), p.context);
  REQUIRE(opener);
  auto m = opener->open_into(0, buffer, false, buffer);
  REQUIRE(m);
  CHECK(*m == kSmall);
  CHECK(std::equal(plaintext.begin(), plaintext.end(), buffer.begin()));
}

TEST_CASE("reordered, repeated and dropped chunks are detected", "[protocol][stream]") {
  Parties p;
  Bytes stream = seal(p, pattern(4 * kSmall + 3));  // chunks 0..4, 4 is final
  auto header = std::span(stream).first(kStreamHeaderSize);
  auto chunks = chunks_of(stream, kSmall);
  REQUIRE(chunks.size() == 5);

  auto swapped = chunks;
  std::swap(swapped[1], swapped[2]);
  CHECK(open_error(p, join(header, swapped)) == "chunk 1 failed authentication");

  auto repeated = chunks;
  repeated.insert(repeated.begin() + 2, chunks[1]);
  CHECK(open_error(p, join(header, repeated)) == "chunk 2 failed authentication");

  auto dropped = chunks;
  dropped.erase(dropped.begin() + 1);
  CHECK(open_error(p, join(header, dropped)) == "chunk 1 failed authentication");

  // The final chunk moved earlier: the stream would end there.
  auto early = chunks;
  early.erase(early.begin() + 2, early.begin() + 4);
  CHECK(open_error(p, join(header, early)) == "chunk 2 failed authentication");

  // Random access: a chunk asked for under another index.
  auto opener = StreamOpener::create(p.consumer, header, p.context);
  REQUIRE(opener);
  CHECK(opener->open(2, chunks[1], false).status().message() == "chunk 2 failed authentication");
  CHECK(opener->open(1, chunks[1], false));
}

TEST_CASE("truncated streams are detected, and so is data after the final chunk",
          "[protocol][stream]") {
  Parties p;
  Bytes stream = seal(p, pattern(3 * kSmall + 3));  // chunks 0..3
  auto header = std::span(stream).first(kStreamHeaderSize);
  auto chunks = chunks_of(stream, kSmall);

  // The final chunk dropped: the stream ends with a chunk that is not final.
  chunks.pop_back();
  CHECK(open_error(p, join(header, chunks)) ==
        "stream truncated: no final chunk (it ends after chunk 2)");
  {
    // The chunks before the cut were verified, and the decoder says where to resume.
    StreamDecoder d(p.consumer, p.context);
    Bytes out;
    Bytes cut = join(header, chunks);
    REQUIRE(d.update(cut, out).is_ok());
    CHECK_FALSE(d.finish(out).is_ok());
    CHECK(d.next_chunk() == 3);
    CHECK(out.size() == 3 * kSmall);
  }
  CHECK(open_error(p, header) == "stream truncated: no final chunk (no chunk at all)");
  CHECK(open_error(p, std::span(stream).first(100)) ==
        "stream truncated: the header has 100 of 140 bytes");
  CHECK(open_error(p, std::span(stream).first(stream.size() - 1)) ==
        "chunk 3 failed authentication");
  CHECK(open_error(p, std::span(stream).first(stream_chunk_offset(3, kSmall) + 10)) ==
        "chunk 3 has 10 bytes, fewer than its 16-byte tag");

  // A non-final chunk flagged as the last one.
  auto opener = StreamOpener::create(p.consumer, header, p.context);
  REQUIRE(opener);
  CHECK(opener->open(1, chunks[1], true).status().message() == "chunk 1 failed authentication");
  // And the final chunk read as one that more chunks follow.
  auto all = chunks_of(stream, kSmall);
  CHECK_FALSE(opener->open(3, all[3], false));  // wrong size already
  Bytes full_final = seal(p, pattern(2 * kSmall));
  auto ff = chunks_of(full_final, kSmall);
  auto ff_opener =
      StreamOpener::create(p.consumer, std::span(full_final).first(kStreamHeaderSize), p.context);
  REQUIRE(ff_opener);
  CHECK(ff_opener->open(1, ff[1], false).status().message() == "chunk 1 failed authentication");
  CHECK(ff_opener->open(1, ff[1], true));

  // Data after the final chunk: after a full-size final chunk, and after finish().
  Bytes extended = stream;
  extended.push_back(0);
  // After a short final chunk the extra byte cannot be told from part of that chunk, which then
  // fails.
  CHECK(open_error(p, extended) == "chunk 3 failed authentication");
  Bytes doubled = full_final;
  doubled.insert(doubled.end(), ff[1].begin(), ff[1].end());
  CHECK(open_error(p, doubled) == "data after the final chunk (chunk 1)");
  StreamDecoder d(p.consumer, p.context);
  Bytes out;
  REQUIRE(d.update(full_final, out).is_ok());
  REQUIRE(d.finish(out).is_ok());
  Bytes one = {1};
  CHECK(d.update(one, out).message() == "data after the final chunk (chunk 1)");
  CHECK(d.finish(out).message() == "data after the final chunk (chunk 1)");  // sticky
}

TEST_CASE("a chunk spliced from another stream is detected", "[protocol][stream]") {
  Parties p;
  Bytes plaintext = pattern(3 * kSmall + 1);
  // Two streams of the same plaintext for the same recipient and transfer.
  Bytes a = seal(p, plaintext), b = seal(p, plaintext);
  auto ca = chunks_of(a, kSmall), cb = chunks_of(b, kSmall);
  auto ha = std::span(a).first(kStreamHeaderSize), hb = std::span(b).first(kStreamHeaderSize);
  auto spliced = ca;
  spliced[1] = cb[1];
  CHECK(open_error(p, join(ha, spliced)) == "chunk 1 failed authentication");
  CHECK(open_error(p, join(hb, ca)) == "chunk 0 failed authentication");
  auto tail = ca;
  tail.back() = cb.back();
  CHECK(open_error(p, join(ha, tail)) == "chunk 3 failed authentication");
}

TEST_CASE("every flipped bit is detected", "[protocol][stream]") {
  Parties p;
  Bytes stream = seal(p, pattern(kSmall + 20));
  REQUIRE(open_error(p, stream).empty());
  for (size_t byte = 0; byte < stream.size(); ++byte) {
    for (int bit = 0; bit < 8; bit += (byte < kStreamHeaderSize ? 1 : 3)) {
      Bytes bad = stream;
      bad[byte] ^= static_cast<uint8_t>(1 << bit);
      std::string error = open_error(p, bad);
      CAPTURE(byte, bit);
      REQUIRE_FALSE(error.empty());
      if (byte >= 76 && byte < 108)
        CHECK(error == "the stream was made for another transfer (its context digest differs)");
      else if (byte >= 12 && byte < kStreamHeaderSize)
        CHECK(error ==
              "stream header failed authentication: the stream is for another recipient key, "
              "or its header was modified");
      else if (byte >= kStreamHeaderSize)
        CHECK(error == (byte < kStreamHeaderSize + kSmall + 16 ? "chunk 0 failed authentication"
                                                               : "chunk 1 failed authentication"));
    }
  }
  // The format fields name themselves.
  auto flip = [&](size_t at, uint8_t value) {
    Bytes bad = stream;
    bad[at] = value;
    return open_error(p, bad);
  };
  CHECK(flip(0, 'X') == "not a dsx stream: the header does not start with \"DSXS\"");
  CHECK(flip(4, 2) == "unsupported stream version 2 (this is version 1)");
  CHECK(flip(5, 2) == "unsupported stream cipher suite 2 (1 is X25519, HKDF-SHA256, AES-256-GCM)");
  CHECK(flip(7, 1) == "stream header: reserved bytes 6-7 are not zero");
  CHECK(flip(8, 1) == "stream header: chunk size 16778240 is outside 1024..16777216");
}

TEST_CASE("a stream opens only for its recipient and its transfer", "[protocol][stream]") {
  Parties p;
  Bytes stream = seal(p, pattern(100));
  Parties other;
  CHECK(open_error(other, stream) ==
        "stream header failed authentication: the stream is for another recipient key, or its "
        "header was modified");
  auto r = open_stream(p.consumer, stream_context(kAgreement, "urn:uuid:other"), stream);
  REQUIRE_FALSE(r);
  CHECK(r.status().message() ==
        "the stream was made for another transfer (its context digest differs)");

  // A recipient key of small order gives no stream at all.
  auto zero = X25519PublicKey::from_raw(Bytes(32));
  REQUIRE(zero);
  auto sealer = StreamSealer::create(*zero, p.context);
  REQUIRE_FALSE(sealer);
  CHECK(sealer.status().message() ==
        "the recipient's encryption key cannot be used: X25519 key agreement failed: the public "
        "key is a point of small order");
}

TEST_CASE("a failed chunk leaves no plaintext behind", "[protocol][stream]") {
  Parties p;
  Bytes stream = seal(p, pattern(kSmall));
  auto opener =
      StreamOpener::create(p.consumer, std::span(stream).first(kStreamHeaderSize), p.context);
  REQUIRE(opener);
  Bytes chunk(stream.begin() + kStreamHeaderSize, stream.end());
  chunk.back() ^= 1;  // the tag
  Bytes out(kSmall, 0x55);
  REQUIRE_FALSE(opener->open_into(0, chunk, true, out));
  CHECK(std::all_of(out.begin(), out.end(), [](uint8_t x) { return x == 0; }));
}

// ---- Test vectors (docs/stream-format.md, "Test vectors") ----

namespace {

// RFC 7748 section 6.1: Bob's key is the recipient's, Alice's the ephemeral one, so the shared
// secret is the RFC's.
constexpr std::string_view kRecipientPrivate =
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr std::string_view kEphemeralPrivate =
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";

struct Vector {
  const char* name;
  std::string_view salt;
  uint32_t chunk_size;
  Bytes plaintext;
  std::string_view header;
  std::vector<std::string_view> chunks;  // whole chunks, or their tags when `tags_only`
  bool tags_only;
  std::string_view stream_sha256;
};

std::vector<Vector> vectors() {
  Bytes hello = {'H', 'e', 'l', 'l', 'o', ',', ' ', 'd', 'a', 't',
                 'a', ' ', 's', 'p', 'a', 'c', 'e', '.', '\n'};
  Bytes counting(2500);
  for (size_t i = 0; i < counting.size(); ++i)
    counting[i] = static_cast<uint8_t>(i % 251);
  return {
      {"1: the empty stream",
       "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
       kDefaultChunkSize,
       {},
       "4453585301010000000100008520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a000"
       "102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f7a231bb27fba81d936e5ac3468ef74"
       "51cb66f3a9d985d3ec0a1fd9ae7a4f20f19426e040ea43d5765e1b9955f05c4bcbe75ac44c71bb474fbb308c1dd"
       "1cc889a",
       {"809188567ac662939079f17422d89b19"},
       false,
       "54ed8c1f8bd5558824f8047d91c89ad292ebe52ff24282c6ee22257cdbb36857"},
      {"2: one short chunk",
       "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
       kDefaultChunkSize,
       hello,
       "4453585301010000000100008520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a202"
       "122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f7a231bb27fba81d936e5ac3468ef74"
       "51cb66f3a9d985d3ec0a1fd9ae7a4f20f10aae6cde0100d23790ffa8b754b1f24fdb33abed061df6dc0d2d1d414"
       "87cd4ae",
       {"2018c496fcc7d037a22b1a233622add0f531de6f109dfd1c7387d1008e93fd02067434"},
       false,
       "dcbb4d0c1a9ebb187d6bbddcec5553a59cd6cea38355834fb4e173acb568c393"},
      {"3: three chunks of 1 KiB",
       "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f",
       1024,
       counting,
       "4453585301010000000004008520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a404"
       "142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f7a231bb27fba81d936e5ac3468ef74"
       "51cb66f3a9d985d3ec0a1fd9ae7a4f20f104d43096d0ee616d75d138030b8f2ba07c6c56f64689d3d3f97fb0846"
       "237a422",
       {"dbf1deda311badc636565a8ce37d61be", "8119adbf2924f58951767c3b7a7d9086",
        "2dda2ae802a94d21c14149f2e2145956"},
       true,
       "5f1f88092cb6057a55a6608844013c22629eeb9460f924b6e9c90c5c1331ead0"},
  };
}

// The document, white space removed, so that hex values wrapped over lines are found whole.
std::string doc_text() {
  std::ifstream in(std::string(DSX_SOURCE_DIR) + "/docs/stream-format.md");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str(), out;
  for (char c : text)
    if (c != ' ' && c != '\n' && c != '\t') out += c;
  return out;
}

}  // namespace

TEST_CASE("the stream test vectors are the ones docs/stream-format.md states",
          "[protocol][stream][vectors]") {
  auto recipient = X25519PrivateKey::from_raw(hex(kRecipientPrivate));
  auto ephemeral = X25519PrivateKey::from_raw(hex(kEphemeralPrivate));
  REQUIRE(recipient);
  REQUIRE(ephemeral);
  std::string context = stream_context(kAgreement, kTransfer);
  std::string doc = doc_text();
  REQUIRE_FALSE(doc.empty());
  CHECK(doc.find(kRecipientPrivate) != std::string::npos);
  CHECK(doc.find(kEphemeralPrivate) != std::string::npos);

  for (const Vector& v : vectors()) {
    CAPTURE(v.name);
    auto sealer = StreamSealer::create_for_test_vectors(recipient->public_key(), context,
                                                        v.chunk_size, *ephemeral, hex(v.salt));
    REQUIRE(sealer);
    Bytes stream(sealer->header().begin(), sealer->header().end());
    std::vector<std::string> got_chunks;
    uint64_t n = stream_chunk_count(v.plaintext.size(), v.chunk_size);
    for (uint64_t i = 0; i < n; ++i) {
      size_t at = static_cast<size_t>(i) * v.chunk_size;
      auto piece = std::span(v.plaintext)
                       .subspan(at, std::min<size_t>(v.chunk_size, v.plaintext.size() - at));
      auto c = sealer->seal(i, piece, i + 1 == n);
      REQUIRE(c);
      stream.insert(stream.end(), c->begin(), c->end());
      got_chunks.push_back(v.tags_only ? to_hex(std::span(*c).last(kStreamTagSize)) : to_hex(*c));
    }
    std::string got_header = to_hex(sealer->header());
    std::string got_sha = sha256_hex(stream);
    CAPTURE(got_header, got_chunks, got_sha);

    CHECK(got_header == v.header);
    REQUIRE(got_chunks.size() == v.chunks.size());
    for (size_t i = 0; i < got_chunks.size(); ++i)
      CHECK(got_chunks[i] == v.chunks[i]);
    CHECK(got_sha == v.stream_sha256);
    CHECK(doc.find(v.header) != std::string::npos);
    for (auto c : v.chunks)
      CHECK(doc.find(c) != std::string::npos);
    CHECK(doc.find(v.stream_sha256) != std::string::npos);

    auto opened = open_stream(*recipient, context, stream);
    REQUIRE(opened);
    CHECK(*opened == v.plaintext);
  }
}

// A figure, not a check: dsx_protocol_tests "[.bench]"
TEST_CASE("stream throughput, 64 MiB", "[.bench]") {
  using Clock = std::chrono::steady_clock;
  Parties p;
  const size_t size = size_t{64} << 20;
  Bytes plaintext = pattern(size);
  auto sealer = StreamSealer::create(p.consumer.public_key(), p.context);
  REQUIRE(sealer);
  const uint32_t cs = sealer->chunk_size();
  const uint64_t chunks = stream_chunk_count(size, cs);
  Bytes stream(stream_size(size, cs));
  std::copy(sealer->header().begin(), sealer->header().end(), stream.begin());
  auto mibs = [&](Clock::duration d) {
    return static_cast<double>(size) / (1 << 20) / std::chrono::duration<double>(d).count();
  };
  double best_seal = 0, best_open = 0, best_decode = 0;
  for (int round = 0; round < 5; ++round) {
    auto s = StreamSealer::create(p.consumer.public_key(), p.context);
    REQUIRE(s);
    std::copy(s->header().begin(), s->header().end(), stream.begin());
    auto t0 = Clock::now();
    size_t pos = kStreamHeaderSize;
    for (uint64_t i = 0; i < chunks; ++i) {
      auto piece = std::span(plaintext).subspan(static_cast<size_t>(i) * cs,
                                                std::min<size_t>(cs, size - i * cs));
      auto n = s->seal_into(i, piece, i + 1 == chunks, std::span(stream).subspan(pos));
      REQUIRE(n);
      pos += *n;
    }
    auto t1 = Clock::now();
    auto opener =
        StreamOpener::create(p.consumer, std::span(stream).first(kStreamHeaderSize), p.context);
    REQUIRE(opener);
    Bytes out(size);
    auto t2 = Clock::now();
    for (uint64_t i = 0; i < chunks; ++i) {
      auto c = std::span(stream).subspan(stream_chunk_offset(i, cs),
                                         std::min<size_t>(cs, size - i * cs) + kStreamTagSize);
      REQUIRE(opener->open_into(i, c, i + 1 == chunks, std::span(out).subspan(i * cs)));
    }
    auto t3 = Clock::now();
    REQUIRE(out == plaintext);
    // The decoder as a consumer would use it: 256 KiB reads, plaintext handed on and cleared.
    StreamDecoder decoder(p.consumer, p.context);
    Bytes sink;
    auto t4 = Clock::now();
    for (size_t at = 0; at < stream.size(); at += 256 * 1024) {
      REQUIRE(decoder
                  .update(std::span(stream).subspan(
                              at, std::min<size_t>(256 * 1024, stream.size() - at)),
                          sink)
                  .is_ok());
      sink.clear();
    }
    REQUIRE(decoder.finish(sink).is_ok());
    auto t5 = Clock::now();
    best_seal = std::max(best_seal, mibs(t1 - t0));
    best_open = std::max(best_open, mibs(t3 - t2));
    best_decode = std::max(best_decode, mibs(t5 - t4));
  }
  std::printf(
      "64 MiB, 64 KiB chunks, best of 5: seal %.0f MiB/s, open %.0f MiB/s, "
      "StreamDecoder %.0f MiB/s\n",
      best_seal, best_open, best_decode);
}
