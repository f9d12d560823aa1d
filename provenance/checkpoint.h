#pragma once
// Signed checkpoints: the log's statement "my first N entries have this root", signed with its
// Ed25519 key. The signed bytes are the RFC 8785 canonical JSON of
//   {"keyId": "<hex sha256 of the public key>", "log": "<log name>",
//    "rootHash": "<hex>", "time": "<RFC 3339>", "treeSize": N}
// and the checkpoint as handed out adds "signature": "<hex of 64 bytes>". Anyone with the public
// key and any JCS implementation can verify it. Plain values; pure functions.

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "provenance/merkle.h"
#include "provenance/signing.h"

namespace dsx::provenance {

struct Checkpoint {
  std::string log;  // the log's name
  uint64_t tree_size = 0;
  Hash root{};
  Instant time;
  std::string key_id;
  std::vector<uint8_t> signature;
};

std::string signed_body(const Checkpoint& c);  // the canonical bytes the signature covers
Checkpoint sign_checkpoint(std::string log, uint64_t size, const Hash& root, Instant time,
                           const SigningKey& key);
nlohmann::json to_json(const Checkpoint& c);
Result<Checkpoint> parse_checkpoint(const nlohmann::json& j);
// OK when the signature is valid under `key` and names it.
Status verify_checkpoint(const Checkpoint& c, const PublicKey& key);

}  // namespace dsx::provenance
