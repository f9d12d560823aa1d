#pragma once
// Proofs as auditors exchange them: the JSON form of ../shared/spec/audit-proof.md, which the
// broker's auditor API hands out and `dsx audit verify-proof` checks offline.
//
//   {"type": "inclusion", "leafIndex": 5, "treeSize": 8,
//    "rootHash": "<hex>", "leafHash": "<hex>", "proof": ["<hex>", ...]}
//   {"type": "consistency", "firstSize": 3, "secondSize": 8,
//    "firstRoot": "<hex>", "secondRoot": "<hex>", "proof": ["<hex>", ...]}
//
// Sizes and indices are unsigned 64-bit integers; hashes are 32 bytes in hex. Plain values and
// pure functions; thread-safe.

#include <nlohmann/json_fwd.hpp>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "provenance/merkle.h"

namespace dsx::provenance {

struct InclusionProof {
  uint64_t leaf_index = 0;
  uint64_t tree_size = 0;
  Hash root_hash{};
  Hash leaf_hash{};
  std::vector<Hash> proof;
};

struct ConsistencyProof {
  uint64_t first_size = 0;
  uint64_t second_size = 0;
  Hash first_root{};
  Hash second_root{};
  std::vector<Hash> proof;
};

using Proof = std::variant<InclusionProof, ConsistencyProof>;

// A malformed document (not JSON, a missing field, a hash that is not 32 bytes of hex, a size
// that is not an unsigned 64-bit integer) is an error naming the field.
Result<Proof> parse_proof_text(std::string_view json_text);
Result<Proof> parse_proof(const nlohmann::json& doc);
nlohmann::json to_json(const Proof& proof);

// OK when the proof holds (RFC 9162 2.1.3.2 / 2.1.4.2); otherwise why not.
Status verify(const Proof& proof);
// One line saying what was proven: "leaf 5 is included in the tree of size 8 with root 5dc9...".
std::string describe(const Proof& proof);

}  // namespace dsx::provenance
