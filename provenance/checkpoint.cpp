#include "provenance/checkpoint.h"

#include <nlohmann/json.hpp>

#include "common/hex.h"
#include "provenance/canonical_json.h"

namespace dsx::provenance {

std::string signed_body(const Checkpoint& c) {
  nlohmann::json j{{"keyId", c.key_id},
                   {"log", c.log},
                   {"rootHash", to_hex(c.root)},
                   {"time", format_rfc3339(c.time)},
                   {"treeSize", c.tree_size}};
  // Only strings and an integer: always representable.
  return *canonical_json(j);
}

Checkpoint sign_checkpoint(std::string log, uint64_t size, const Hash& root, Instant time,
                           const SigningKey& key) {
  Checkpoint c{std::move(log), size, root, time, key.public_key().key_id(), {}};
  c.signature = key.sign(signed_body(c));
  return c;
}

nlohmann::json to_json(const Checkpoint& c) {
  return nlohmann::json{{"keyId", c.key_id},          {"log", c.log},
                        {"rootHash", to_hex(c.root)}, {"time", format_rfc3339(c.time)},
                        {"treeSize", c.tree_size},    {"signature", to_hex(c.signature)}};
}

Result<Checkpoint> parse_checkpoint(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("a checkpoint is a JSON object");
  Checkpoint c;
  auto str = [&](const char* field, std::string& out) -> Status {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string())
      return Status::invalid_argument(std::string(field) + ": expected a string");
    out = it->get<std::string>();
    return Status::ok();
  };
  std::string root, time, sig;
  for (Status s : {str("keyId", c.key_id), str("log", c.log), str("rootHash", root),
                   str("time", time), str("signature", sig)})
    if (!s) return s;
  auto size = j.find("treeSize");
  if (size == j.end() || !size->is_number_unsigned())
    return Status::invalid_argument("treeSize: expected an unsigned integer");
  c.tree_size = size->get<uint64_t>();
  auto root_bytes = from_hex(root);
  if (!root_bytes || root_bytes->size() != c.root.size())
    return Status::invalid_argument("rootHash: expected 32 bytes of hex");
  std::copy(root_bytes->begin(), root_bytes->end(), c.root.begin());
  auto t = parse_xsd_date_time(time);
  if (!t) return Status::invalid_argument("time: expected an RFC 3339 time");
  c.time = *t;
  auto sig_bytes = from_hex(sig);
  if (!sig_bytes) return Status::invalid_argument("signature: expected hex");
  c.signature = std::move(*sig_bytes);
  return c;
}

Status verify_checkpoint(const Checkpoint& c, const PublicKey& key) {
  if (c.key_id != key.key_id())
    return Status::failed_precondition("signed by another key (" + c.key_id.substr(0, 16) + "...)");
  if (!key.verify(signed_body(c), c.signature))
    return Status::failed_precondition("the signature does not verify");
  return Status::ok();
}

}  // namespace dsx::provenance
