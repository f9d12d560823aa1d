#include "protocol/stream_documents.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "common/base64.h"
#include "common/hex.h"
#include "common/json.h"

namespace dsx::protocol {
namespace {

using json = nlohmann::json;

constexpr std::string_view kBindingType = "dsx.EncryptionKeyBinding";
constexpr std::string_view kManifestType = "dsx.StreamManifest";
constexpr uint64_t kMaxJsonInteger = uint64_t{1} << 53;

// nlohmann::json keeps members sorted by their UTF-8 bytes and dump() writes no white space,
// escapes only '"', '\\' and control characters (the short forms, else \u00xx in lower case)
// and leaves other characters as UTF-8: for objects of strings and integers below 2^53 with
// ASCII member names, as here, that is exactly RFC 8785. dump() throws on invalid UTF-8.
Result<std::string> canonical(const json& value) {
  try {
    return value.dump();
  } catch (const json::exception&) {
    return Status::invalid_argument("a text field is not valid UTF-8");
  }
}

// Member readers for the parsers: each names the member it refuses.
struct Reader {
  const json& object;

  Result<std::string> string(const char* name) const {
    auto it = object.find(name);
    if (it == object.end()) return Status::invalid_argument(std::string(name) + ": missing");
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      return Status::invalid_argument(std::string(name) + ": not a non-empty string");
    return it->get<std::string>();
  }
  Result<std::array<uint8_t, 32>> sha256(const char* name) const {
    auto text = string(name);
    if (!text) return text.status();
    auto bytes = from_hex(*text);
    if (text->size() != 64 || !bytes || to_hex(*bytes) != *text)
      return Status::invalid_argument(std::string(name) + ": not 64 lower-case hex digits");
    std::array<uint8_t, 32> out{};
    std::copy(bytes->begin(), bytes->end(), out.begin());
    return out;
  }
  Result<uint64_t> integer(const char* name) const {
    auto it = object.find(name);
    if (it == object.end()) return Status::invalid_argument(std::string(name) + ": missing");
    if (!it->is_number_unsigned() || it->get<uint64_t>() > kMaxJsonInteger)
      return Status::invalid_argument(std::string(name) + ": not an integer from 0 to 2^53");
    return it->get<uint64_t>();
  }
  Status header(std::string_view type, size_t members) const {
    auto t = string("type");
    if (!t) return t.status();
    if (*t != type)
      return Status::invalid_argument("type: \"" + *t + "\", expected \"" + std::string(type) +
                                      "\"");
    auto v = integer("version");
    if (!v) return v.status();
    if (*v != 1)
      return Status::invalid_argument("version: " + std::to_string(*v) + " is not supported");
    if (object.size() != members)
      return Status::invalid_argument("unknown members: a " + std::string(type) + " has " +
                                      std::to_string(members));
    return Status::ok();
  }
};

Result<json> read_object(std::string_view text, std::string_view what) {
  auto doc = parse_json_text(text);
  if (!doc) return doc.status();
  if (!doc->is_object()) return Status::invalid_argument(std::string(what) + ": not a JSON object");
  return doc;
}

Status check_canonical(std::string_view text, const Result<std::string>& rewritten,
                       std::string_view what) {
  if (!rewritten) return rewritten.status();
  if (*rewritten != text)
    return Status::invalid_argument(std::string(what) +
                                    ": not in canonical form (RFC 8785: sorted members, no "
                                    "white space, minimal escapes)");
  return Status::ok();
}

}  // namespace

Result<std::string> key_binding_json(const EncryptionKeyBinding& binding) {
  json key = {
      {"kty", "OKP"}, {"crv", "X25519"}, {"x", base64url_encode(binding.encryption_key.raw())}};
  json doc = {{"type", kBindingType},
              {"version", 1},
              {"participant", binding.participant},
              {"certificateSha256", to_hex(binding.certificate_sha256)},
              {"encryptionKey", std::move(key)},
              {"created", format_rfc3339(binding.created)}};
  return canonical(doc);
}

Result<EncryptionKeyBinding> parse_key_binding(std::string_view text) {
  constexpr std::string_view kWhat = "key binding";
  auto doc = read_object(text, kWhat);
  if (!doc) return doc.status();
  Reader r{*doc};
  if (Status st = r.header(kBindingType, 6); !st.is_ok()) return st;
  auto participant = r.string("participant");
  if (!participant) return participant.status();
  auto cert = r.sha256("certificateSha256");
  if (!cert) return cert.status();
  auto created_text = r.string("created");
  if (!created_text) return created_text.status();
  auto created = parse_xsd_date_time(*created_text);
  if (!created || format_rfc3339(*created) != *created_text)
    return Status::invalid_argument("created: not an RFC 3339 time in UTC (2026-01-31T12:00:00Z)");
  auto jwk = doc->find("encryptionKey");
  if (jwk == doc->end() || !jwk->is_object())
    return Status::invalid_argument("encryptionKey: missing or not a JSON Web Key");
  Reader k{*jwk};
  auto kty = k.string("kty");
  auto crv = k.string("crv");
  auto x = k.string("x");
  if (!kty || *kty != "OKP" || !crv || *crv != "X25519" || !x || jwk->size() != 3)
    return Status::invalid_argument(
        "encryptionKey: not an X25519 JSON Web Key {\"crv\":\"X25519\",\"kty\":\"OKP\",\"x\":...}");
  auto raw = base64url_decode(*x);
  if (!raw || raw->size() != kX25519KeySize)
    return Status::invalid_argument("encryptionKey.x: not 32 bytes in unpadded base64url");
  auto key = X25519PublicKey::from_raw(*raw);
  if (!key) return key.status();
  EncryptionKeyBinding binding{.participant = std::move(*participant),
                               .certificate_sha256 = *cert,
                               .encryption_key = *key,
                               .created = *created};
  if (Status st = check_canonical(text, key_binding_json(binding), kWhat); !st.is_ok()) return st;
  return binding;
}

Result<std::string> stream_manifest_json(const StreamManifest& m) {
  if (m.plaintext_size > kMaxJsonInteger)
    return Status::invalid_argument("plaintextSize: more than 2^53");
  json doc = {{"type", kManifestType},
              {"version", 1},
              {"datasetId", m.dataset_id},
              {"agreementId", m.agreement_id},
              {"transferId", m.transfer_id},
              {"plaintextSize", m.plaintext_size},
              {"plaintextSha256", to_hex(m.plaintext_sha256)},
              {"ciphertextSha256", to_hex(m.ciphertext_sha256)}};
  return canonical(doc);
}

Result<StreamManifest> parse_stream_manifest(std::string_view text) {
  constexpr std::string_view kWhat = "stream manifest";
  auto doc = read_object(text, kWhat);
  if (!doc) return doc.status();
  Reader r{*doc};
  if (Status st = r.header(kManifestType, 8); !st.is_ok()) return st;
  StreamManifest m;
  for (auto [name, field] :
       {std::pair{"datasetId", &m.dataset_id}, std::pair{"agreementId", &m.agreement_id},
        std::pair{"transferId", &m.transfer_id}}) {
    auto v = r.string(name);
    if (!v) return v.status();
    *field = std::move(*v);
  }
  auto size = r.integer("plaintextSize");
  if (!size) return size.status();
  m.plaintext_size = *size;
  auto plain = r.sha256("plaintextSha256");
  if (!plain) return plain.status();
  m.plaintext_sha256 = *plain;
  auto cipher = r.sha256("ciphertextSha256");
  if (!cipher) return cipher.status();
  m.ciphertext_sha256 = *cipher;
  if (Status st = check_canonical(text, stream_manifest_json(m), kWhat); !st.is_ok()) return st;
  return m;
}

}  // namespace dsx::protocol
