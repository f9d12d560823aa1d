#include "provenance/proof.h"

#include <nlohmann/json.hpp>

#include "common/hex.h"
#include "common/json.h"

namespace dsx::provenance {
namespace {

using json = nlohmann::json;

Status malformed(const std::string& field, const std::string& what) {
  return Status::invalid_argument(field + ": " + what);
}

Status read_size(const json& doc, const char* field, uint64_t& out) {
  auto it = doc.find(field);
  if (it == doc.end()) return malformed(field, "missing");
  if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0))
    return malformed(field, "expected an unsigned 64-bit integer, got " + it->dump());
  out = it->get<uint64_t>();
  return Status::ok();
}

Status to_hash(const json& v, const std::string& field, Hash& out) {
  if (!v.is_string()) return malformed(field, "expected a hash in hex");
  auto bytes = from_hex(v.get_ref<const std::string&>());
  if (!bytes) return malformed(field, "not hex");
  if (bytes->size() != out.size())
    return malformed(field, "a SHA-256 hash is 32 bytes (64 hex digits), got " +
                                std::to_string(bytes->size()) + " bytes");
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return Status::ok();
}

Status read_hash(const json& doc, const char* field, Hash& out) {
  auto it = doc.find(field);
  if (it == doc.end()) return malformed(field, "missing");
  return to_hash(*it, field, out);
}

Status read_path(const json& doc, std::vector<Hash>& out) {
  auto it = doc.find("proof");
  if (it == doc.end()) return malformed("proof", "missing");
  if (!it->is_array()) return malformed("proof", "expected an array of hashes");
  out.resize(it->size());
  for (size_t i = 0; i < it->size(); ++i)
    if (Status s = to_hash((*it)[i], "proof[" + std::to_string(i) + "]", out[i]); !s) return s;
  return Status::ok();
}

json hashes(const std::vector<Hash>& path) {
  json out = json::array();
  for (const Hash& h : path)
    out.push_back(to_hex(h));
  return out;
}

}  // namespace

Result<Proof> parse_proof_text(std::string_view json_text) {
  Result<json> doc = parse_json_text(json_text);
  if (!doc) return doc.status();
  return parse_proof(*doc);
}

Result<Proof> parse_proof(const nlohmann::json& doc) {
  if (!doc.is_object()) return malformed("(root)", "expected a JSON object");
  auto type = doc.find("type");
  if (type == doc.end()) return malformed("type", "missing");
  if (*type == "inclusion") {
    InclusionProof p;
    for (Status s :
         {read_size(doc, "leafIndex", p.leaf_index), read_size(doc, "treeSize", p.tree_size),
          read_hash(doc, "rootHash", p.root_hash), read_hash(doc, "leafHash", p.leaf_hash),
          read_path(doc, p.proof)})
      if (!s) return s;
    return Proof{std::move(p)};
  }
  if (*type == "consistency") {
    ConsistencyProof p;
    for (Status s :
         {read_size(doc, "firstSize", p.first_size), read_size(doc, "secondSize", p.second_size),
          read_hash(doc, "firstRoot", p.first_root), read_hash(doc, "secondRoot", p.second_root),
          read_path(doc, p.proof)})
      if (!s) return s;
    return Proof{std::move(p)};
  }
  return malformed("type", "expected \"inclusion\" or \"consistency\", got " + type->dump());
}

nlohmann::json to_json(const Proof& proof) {
  if (const auto* p = std::get_if<InclusionProof>(&proof))
    return json{{"type", "inclusion"},
                {"leafIndex", p->leaf_index},
                {"treeSize", p->tree_size},
                {"rootHash", to_hex(p->root_hash)},
                {"leafHash", to_hex(p->leaf_hash)},
                {"proof", hashes(p->proof)}};
  const auto& c = std::get<ConsistencyProof>(proof);
  return json{{"type", "consistency"},
              {"firstSize", c.first_size},
              {"secondSize", c.second_size},
              {"firstRoot", to_hex(c.first_root)},
              {"secondRoot", to_hex(c.second_root)},
              {"proof", hashes(c.proof)}};
}

Status verify(const Proof& proof) {
  if (const auto* p = std::get_if<InclusionProof>(&proof))
    return verify_inclusion(p->leaf_index, p->tree_size, p->leaf_hash, p->proof, p->root_hash);
  const auto& c = std::get<ConsistencyProof>(proof);
  return verify_consistency(c.first_size, c.second_size, c.first_root, c.second_root, c.proof);
}

std::string describe(const Proof& proof) {
  if (const auto* p = std::get_if<InclusionProof>(&proof))
    return "leaf " + std::to_string(p->leaf_index) + " (hash " + to_hex(p->leaf_hash) +
           ") is included in the tree of size " + std::to_string(p->tree_size) + " with root " +
           to_hex(p->root_hash);
  const auto& c = std::get<ConsistencyProof>(proof);
  return "the tree of size " + std::to_string(c.second_size) + " with root " +
         to_hex(c.second_root) + " extends the tree of size " + std::to_string(c.first_size) +
         " with root " + to_hex(c.first_root);
}

}  // namespace dsx::provenance
