#include "provenance/merkle.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "common/hex.h"
#include "provenance/proof.h"

using namespace dsx::provenance;
using dsx::to_hex;

namespace {

// The RFC 6962 / certificate-transparency test leaves.
const std::vector<std::string> kLeaves = {
    "",
    std::string("\x00", 1),
    "\x10",
    "\x20\x21",
    "\x30\x31",
    "\x40\x41\x42\x43",
    "\x50\x51\x52\x53\x54\x55\x56\x57",
    "\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f"};

// MTH computed straight from RFC 9162 2.1.1's definition, with no stored subtrees.
Hash naive_root(const std::vector<Hash>& leaves, size_t begin, size_t end) {
  if (end == begin) return empty_root();
  if (end - begin == 1) return leaves[begin];
  size_t k = 1;
  while (k * 2 < end - begin)
    k *= 2;
  return node_hash(naive_root(leaves, begin, begin + k), naive_root(leaves, begin + k, end));
}

// A tree of n leaves "leaf 0", "leaf 1", ...
struct Fixture {
  MemoryTree tree;
  std::vector<Hash> leaves;
  explicit Fixture(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      leaves.push_back(leaf_hash("leaf " + std::to_string(i)));
      tree.append(leaves.back());
    }
  }
};

Hash flip(Hash h, size_t bit) {
  h[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  return h;
}

}  // namespace

TEST_CASE("RFC 6962 / 9162 known answers", "[merkle]") {
  CHECK(to_hex(empty_root()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(to_hex(leaf_hash("")) ==
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
  const char* roots[] = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  MemoryTree tree;
  for (size_t i = 0; i < kLeaves.size(); ++i) {
    tree.append(leaf_hash(kLeaves[i]));
    INFO("size " << i + 1);
    CHECK(to_hex(root(tree, i + 1)) == roots[i]);
  }
  CHECK(root(tree, 0) == empty_root());
}

TEST_CASE("every inclusion proof up to 64 leaves verifies, against a naive root", "[merkle]") {
  Fixture f(64);
  for (uint64_t size = 1; size <= 64; ++size) {
    const Hash r = naive_root(f.leaves, 0, size);
    REQUIRE(root(f.tree, size) == r);
    for (uint64_t i = 0; i < size; ++i) {
      auto proof = inclusion_proof(f.tree, i, size);
      INFO("index " << i << " size " << size);
      REQUIRE(verify_inclusion(i, size, f.leaves[i], proof, r).is_ok());
      // Mutations must all fail.
      CHECK_FALSE(verify_inclusion(i, size, f.leaves[(i + 1) % 64], proof, r).is_ok());
      if (size > 1) {
        CHECK_FALSE(verify_inclusion((i + 1) % size, size, f.leaves[i], proof, r).is_ok());
      }
      CHECK_FALSE(verify_inclusion(i, size, f.leaves[i], proof, flip(r, 3)).is_ok());
      for (size_t k = 0; k < proof.size(); ++k) {
        auto bad = proof;
        bad[k] = flip(bad[k], 255);
        CHECK_FALSE(verify_inclusion(i, size, f.leaves[i], bad, r).is_ok());
      }
      auto longer = proof;
      longer.push_back(r);
      CHECK_FALSE(verify_inclusion(i, size, f.leaves[i], longer, r).is_ok());
      if (!proof.empty()) {
        auto shorter = proof;
        shorter.pop_back();
        CHECK_FALSE(verify_inclusion(i, size, f.leaves[i], shorter, r).is_ok());
      }
    }
  }
}

TEST_CASE("every consistency proof up to 64 leaves verifies, against naive roots", "[merkle]") {
  Fixture f(64);
  for (uint64_t second = 1; second <= 64; ++second) {
    const Hash r2 = naive_root(f.leaves, 0, second);
    for (uint64_t first = 1; first <= second; ++first) {
      const Hash r1 = naive_root(f.leaves, 0, first);
      auto proof = consistency_proof(f.tree, first, second);
      INFO("first " << first << " second " << second);
      REQUIRE(verify_consistency(first, second, r1, r2, proof).is_ok());
      CHECK_FALSE(verify_consistency(first, second, flip(r1, 7), r2, proof).is_ok());
      CHECK_FALSE(verify_consistency(first, second, r1, flip(r2, 7), proof).is_ok());
      for (size_t k = 0; k < proof.size(); ++k) {
        auto bad = proof;
        bad[k] = flip(bad[k], 100);
        CHECK_FALSE(verify_consistency(first, second, r1, r2, bad).is_ok());
      }
      auto longer = proof;
      longer.push_back(r1);
      CHECK_FALSE(verify_consistency(first, second, r1, r2, longer).is_ok());
      if (!proof.empty()) {
        auto shorter = proof;
        shorter.pop_back();
        CHECK_FALSE(verify_consistency(first, second, r1, r2, shorter).is_ok());
      }
      if (first > 1 && first < second) {
        // The same proof cannot vouch for another first size.
        CHECK_FALSE(
            verify_consistency(first - 1, second, naive_root(f.leaves, 0, first - 1), r2, proof)
                .is_ok());
      }
    }
  }
}

TEST_CASE("degenerate sizes are refused with a reason", "[merkle]") {
  Fixture f(8);
  const Hash r = root(f.tree, 8);
  CHECK(verify_inclusion(8, 8, f.leaves[0], {}, r).message() ==
        "leaf index 8 is out of range for tree size 8");
  CHECK_FALSE(verify_inclusion(0, 0, f.leaves[0], {}, empty_root()).is_ok());
  CHECK(verify_consistency(0, 8, empty_root(), r, {}).message() ==
        "the first tree size must be at least 1");
  CHECK_FALSE(verify_consistency(9, 8, r, r, {}).is_ok());
  CHECK(verify_consistency(8, 8, r, r, {}).is_ok());
  CHECK_FALSE(verify_consistency(8, 8, r, flip(r, 1), {}).is_ok());
  CHECK_FALSE(verify_consistency(8, 8, r, r, {r}).is_ok());
  CHECK(verify_consistency(3, 8, root(f.tree, 3), r, {}).message() == "the proof is empty");
  // Full 64-bit sizes: far beyond any real tree, still answered without overflow.
  CHECK_FALSE(verify_inclusion(UINT64_MAX - 1, UINT64_MAX, f.leaves[0], std::vector<Hash>(64, r), r)
                  .is_ok());
  CHECK_FALSE(
      verify_consistency(UINT64_MAX - 1, UINT64_MAX, r, r, std::vector<Hash>(64, r)).is_ok());
}

TEST_CASE("proofs round-trip through their JSON form", "[proof]") {
  Fixture f(8);
  InclusionProof p{5, 8, root(f.tree, 8), f.leaves[5], inclusion_proof(f.tree, 5, 8)};
  auto parsed = parse_proof_text(to_json(Proof{p}).dump());
  REQUIRE(parsed);
  CHECK(verify(*parsed).is_ok());
  ConsistencyProof c{3, 8, root(f.tree, 3), root(f.tree, 8), consistency_proof(f.tree, 3, 8)};
  auto parsed_c = parse_proof_text(to_json(Proof{c}).dump());
  REQUIRE(parsed_c);
  CHECK(verify(*parsed_c).is_ok());
  CHECK(describe(*parsed).rfind("leaf 5 (hash ", 0) == 0);
}

TEST_CASE("malformed proof documents name the field", "[proof]") {
  const std::string h(64, 'a');
  auto error = [](const std::string& text) {
    auto p = parse_proof_text(text);
    REQUIRE_FALSE(p);
    return p.status().message();
  };
  CHECK(error("not json").rfind("invalid JSON at byte", 0) == 0);
  CHECK(error("[]") == "(root): expected a JSON object");
  CHECK(error(R"({"leafIndex": 1})") == "type: missing");
  CHECK(error(R"({"type": "membership"})")
            .rfind("type: expected \"inclusion\" or \"consistency\"", 0) == 0);
  CHECK(error(R"({"type": "inclusion", "treeSize": 8, "rootHash": ")" + h + R"(", "leafHash": ")" +
              h + R"(", "proof": []})") == "leafIndex: missing");
  CHECK(error(R"({"type": "inclusion", "leafIndex": -1, "treeSize": 8, "rootHash": ")" + h +
              R"(", "leafHash": ")" + h + R"(", "proof": []})")
            .rfind("leafIndex: expected an unsigned 64-bit integer", 0) == 0);
  CHECK(
      error(
          R"({"type": "inclusion", "leafIndex": 18446744073709551616, "treeSize": 8, "rootHash": ")" +
          h + R"(", "leafHash": ")" + h + R"(", "proof": []})")
          .rfind("leafIndex: expected an unsigned 64-bit integer", 0) == 0);
  CHECK(
      error(
          R"({"type": "inclusion", "leafIndex": 1, "treeSize": 8, "rootHash": "xyz", "leafHash": ")" +
          h + R"(", "proof": []})") == "rootHash: not hex");
  CHECK(error(R"({"type": "consistency", "firstSize": 1, "secondSize": 8, "firstRoot": ")" + h +
              R"(", "secondRoot": "abcd", "proof": []})")
            .rfind("secondRoot: a SHA-256 hash is 32 bytes", 0) == 0);
  CHECK(error(R"({"type": "consistency", "firstSize": 1, "secondSize": 8, "firstRoot": ")" + h +
              R"(", "secondRoot": ")" + h + R"(", "proof": [")" + h + R"(", 5]})") ==
        "proof[1]: expected a hash in hex");
  // The largest sizes parse.
  auto big = parse_proof_text(
      R"({"type": "inclusion", "leafIndex": 18446744073709551614, "treeSize": 18446744073709551615,
      "rootHash": ")" +
      h + R"(", "leafHash": ")" + h + R"(", "proof": []})");
  REQUIRE(big);
  CHECK(std::get<InclusionProof>(*big).tree_size == UINT64_MAX);
}
