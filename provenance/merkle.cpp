#include "provenance/merkle.h"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but they are the same
// implementation (SHA-NI where the CPU has it) without EVP's per-hash cost: on OpenSSL 3.0 every
// EVP_DigestInit_ex2 frees and reallocates the provider's context, even on a reused EVP_MD_CTX,
// and EVP_Digest / EVP_Q_digest allocate a context (and fetch the digest) per call. Measured on
// the benchmark VM (Zen 3, OpenSSL 3.0.19), one 65-byte node: 234 ns with a reused EVP context,
// 218 ns with EVP_Digest, 539 ns with EVP_Q_digest, 125 ns with SHA256_*; a 302-byte leaf: 383,
// 498, 999 and 259 ns. A node is two SHA-256 blocks, so the EVP overhead was half of its cost, and
// the audit and the log's writer hash about two hashes per entry.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/hex.h"

namespace dsx::provenance {
namespace {

// One SHA-256 over the concatenation of `parts`. The context lives on the stack: nothing is
// allocated, and any thread may call it.
template <size_t N>
Hash digest(const std::array<std::string_view, N>& parts) {
  SHA256_CTX ctx;
  bool ok = SHA256_Init(&ctx) == 1;
  for (std::string_view p : parts)
    ok = ok && SHA256_Update(&ctx, p.data(), p.size()) == 1;
  Hash out{};
  ok = ok && SHA256_Final(out.data(), &ctx) == 1;
  if (!ok) std::abort();  // SHA-256 cannot fail short of a broken OpenSSL: an invariant
  return out;
}

// The largest power of two smaller than n (n >= 2): where RFC 9162 splits a tree of n leaves.
uint64_t split(uint64_t n) {
  return std::bit_floor(n - 1);
}

void path(const TreeReader& tree, uint64_t m, uint64_t begin, uint64_t end,
          std::vector<Hash>& out) {
  if (end - begin == 1) return;
  const uint64_t k = split(end - begin);
  if (m - begin < k) {
    path(tree, m, begin, begin + k, out);
    out.push_back(tree.range_hash(begin + k, end));
  } else {
    path(tree, m, begin + k, end, out);
    out.push_back(tree.range_hash(begin, begin + k));
  }
}

void subproof(const TreeReader& tree, uint64_t m, uint64_t begin, uint64_t end, bool complete,
              std::vector<Hash>& out) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!complete) out.push_back(tree.range_hash(begin, end));
    return;
  }
  const uint64_t k = split(n);
  if (m <= k) {
    subproof(tree, m, begin, begin + k, complete, out);
    out.push_back(tree.range_hash(begin + k, end));
  } else {
    subproof(tree, m - k, begin + k, end, false, out);
    out.push_back(tree.range_hash(begin, begin + k));
  }
}

// RFC 9162 2.1.3.2 step 4.b.ii / 2.1.4.2 step 6.b.iii: "if LSB(fn) is not set, right-shift
// both fn and sn equally until either LSB(fn) is set or fn is 0".
void shift_until_odd_or_zero(uint64_t& fn, uint64_t& sn) {
  while (!(fn & 1) && fn != 0) {
    fn >>= 1;
    sn >>= 1;
  }
}

std::string short_hex(const Hash& h) {
  return to_hex(h).substr(0, 16) + "...";
}

}  // namespace

Hash sha256(std::string_view bytes) {
  return digest(std::array<std::string_view, 1>{bytes});
}

Hash leaf_hash(std::string_view entry) {
  static constexpr char kLeaf = 0x00;
  return digest(std::array<std::string_view, 2>{std::string_view(&kLeaf, 1), entry});
}

Hash node_hash(const Hash& left, const Hash& right) {
  // One contiguous 65-byte message: one update instead of three.
  std::array<char, 1 + 2 * sizeof(Hash)> message;
  message[0] = 0x01;
  std::memcpy(message.data() + 1, left.data(), left.size());
  std::memcpy(message.data() + 1 + left.size(), right.data(), right.size());
  return digest(std::array<std::string_view, 1>{std::string_view(message.data(), message.size())});
}

Hash empty_root() {
  return sha256({});
}

Hash root(const TreeReader& tree, uint64_t size) {
  return size == 0 ? empty_root() : tree.range_hash(0, size);
}

std::vector<Hash> inclusion_proof(const TreeReader& tree, uint64_t index, uint64_t size) {
  std::vector<Hash> out;
  path(tree, index, 0, size, out);
  return out;
}

std::vector<Hash> consistency_proof(const TreeReader& tree, uint64_t first, uint64_t second) {
  std::vector<Hash> out;
  subproof(tree, first, 0, second, true, out);
  return out;
}

Status verify_inclusion(uint64_t index, uint64_t size, const Hash& leaf,
                        const std::vector<Hash>& proof, const Hash& root) {
  if (index >= size)
    return Status::failed_precondition("leaf index " + std::to_string(index) +
                                       " is out of range for tree size " + std::to_string(size));
  // RFC 9162 2.1.3.2.
  uint64_t fn = index, sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0)
      return Status::failed_precondition("the proof is too long for this index and tree size");
    if ((fn & 1) || fn == sn) {
      r = node_hash(p, r);
      shift_until_odd_or_zero(fn, sn);
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0)
    return Status::failed_precondition("the proof is too short for this index and tree size");
  if (r != root)
    return Status::failed_precondition("wrong root: the proof leads to " + short_hex(r) +
                                       ", not to the root hash " + short_hex(root));
  return Status::ok();
}

Status verify_consistency(uint64_t first, uint64_t second, const Hash& first_root,
                          const Hash& second_root, const std::vector<Hash>& proof) {
  if (first == 0) return Status::failed_precondition("the first tree size must be at least 1");
  if (first > second)
    return Status::failed_precondition("the first tree size " + std::to_string(first) +
                                       " is larger than the second " + std::to_string(second));
  if (first == second) {
    // A tree is consistent with itself: the proof is empty and the roots are the same.
    if (!proof.empty())
      return Status::failed_precondition("the proof is too long: equal sizes need an empty proof");
    if (first_root != second_root)
      return Status::failed_precondition("wrong root: equal sizes but different root hashes");
    return Status::ok();
  }
  // RFC 9162 2.1.4.2.
  if (proof.empty()) return Status::failed_precondition("the proof is empty");
  std::vector<Hash> path = proof;
  if (std::has_single_bit(first)) path.insert(path.begin(), first_root);
  uint64_t fn = first - 1, sn = second - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return Status::failed_precondition("the proof is too long for these tree sizes");
    if ((fn & 1) || fn == sn) {
      fr = node_hash(c, fr);
      sr = node_hash(c, sr);
      shift_until_odd_or_zero(fn, sn);
    } else {
      sr = node_hash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Status::failed_precondition("the proof is too short for these tree sizes");
  if (fr != first_root)
    return Status::failed_precondition("wrong first root: the proof leads to " + short_hex(fr) +
                                       ", not to " + short_hex(first_root));
  if (sr != second_root)
    return Status::failed_precondition("wrong second root: the proof leads to " + short_hex(sr) +
                                       ", not to " + short_hex(second_root));
  return Status::ok();
}

MemoryTree::MemoryTree(uint64_t size) {
  for (size_t k = 0; (size >> k) > 0; ++k)
    levels_.emplace_back(static_cast<size_t>(size >> k));
}

void MemoryTree::append(const Hash& leaf) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(leaf);
  // Complete every perfect subtree the new leaf closes.
  for (size_t k = 0; levels_[k].size() % 2 == 0; ++k) {
    if (levels_.size() == k + 1) levels_.emplace_back();
    const auto& below = levels_[k];
    levels_[k + 1].push_back(node_hash(below[below.size() - 2], below.back()));
  }
}

Hash MemoryTree::range_hash(uint64_t begin, uint64_t end) const {
  const uint64_t n = end - begin;
  if (std::has_single_bit(n) && begin % n == 0) {
    const auto level = static_cast<size_t>(std::countr_zero(n));
    return levels_[level][static_cast<size_t>(begin / n)];
  }
  const uint64_t k = split(n);
  return node_hash(range_hash(begin, begin + k), range_hash(begin + k, end));
}

}  // namespace dsx::provenance
