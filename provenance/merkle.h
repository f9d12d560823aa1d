#pragma once
// The Merkle tree of the provenance log, hashed exactly as RFC 9162 section 2.1 (Certificate
// Transparency v2): SHA-256, a leaf is SHA-256(0x00 || entry), an inner node
// SHA-256(0x01 || left || right), and a tree of n leaves splits at the largest power of two
// below n. Roots, inclusion proofs and consistency proofs are computed from a TreeReader, which
// answers the hash of any run of leaves; a store that keeps the hashes of perfect subtrees
// answers each in O(log n), so every proof costs O(log^2 n) hashes read and none recomputed.
//
// Verification follows RFC 9162 sections 2.1.3.2 (inclusion) and 2.1.4.2 (consistency) and needs
// nothing but the proof: it is what an auditor runs offline. All functions are pure and
// thread-safe; a TreeReader's thread-safety is its implementation's.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dsx::provenance {

using Hash = std::array<uint8_t, 32>;

Hash sha256(std::string_view bytes);
Hash leaf_hash(std::string_view entry);               // SHA-256(0x00 || entry)
Hash node_hash(const Hash& left, const Hash& right);  // SHA-256(0x01 || left || right)
Hash empty_root();                                    // SHA-256 of nothing: the root of size 0

// Read access to the leaves of a tree.
class TreeReader {
 public:
  virtual ~TreeReader() = default;
  virtual uint64_t size() const = 0;
  // The Merkle tree hash of leaves [begin, end), begin < end <= size().
  virtual Hash range_hash(uint64_t begin, uint64_t end) const = 0;
};

// MTH(D[0:size]); size <= tree.size().
Hash root(const TreeReader& tree, uint64_t size);
// PATH(index, D[0:size]) of RFC 9162 2.1.3.1; index < size <= tree.size().
std::vector<Hash> inclusion_proof(const TreeReader& tree, uint64_t index, uint64_t size);
// PROOF(first, D[0:second]) of RFC 9162 2.1.4.1; 0 < first <= second <= tree.size().
std::vector<Hash> consistency_proof(const TreeReader& tree, uint64_t first, uint64_t second);

// OK, or why the proof does not hold (a message for the auditor).
Status verify_inclusion(uint64_t index, uint64_t size, const Hash& leaf,
                        const std::vector<Hash>& proof, const Hash& root);
Status verify_consistency(uint64_t first, uint64_t second, const Hash& first_root,
                          const Hash& second_root, const std::vector<Hash>& proof);

// A tree held in memory: leaf hashes plus every perfect subtree's hash, level by level, so that
// range_hash is O(log n). For tests, tools and as the model of the stored tree. Not thread-safe
// for concurrent append; const methods may run concurrently.
class MemoryTree final : public TreeReader {
 public:
  MemoryTree() = default;
  // A tree of `size` leaves whose hashes are all zero until set with at(): for filling the
  // levels directly, e.g. disjoint ranges from several threads at once.
  explicit MemoryTree(uint64_t size);
  Hash& at(size_t level, uint64_t index) { return levels_[level][index]; }
  size_t levels() const { return levels_.size(); }

  void append(const Hash& leaf);
  uint64_t size() const override { return levels_.empty() ? 0 : levels_[0].size(); }
  Hash range_hash(uint64_t begin, uint64_t end) const override;

 private:
  // levels_[k][i]: hash of the perfect subtree of 2^k leaves starting at leaf i * 2^k.
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace dsx::provenance
