#include "connectors/transfer.h"

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cctype>
#include <cstdio>
#include <memory>

#include "certs/atomic_file.h"
#include "certs/identity.h"
#include "certs/pem.h"
#include "certs/signature.h"
#include "common/base64.h"
#include "common/hex.h"
#include "common/json.h"

namespace dsx::connectors {

using json = nlohmann::json;
namespace fs = std::filesystem;
namespace protocol = dsx::protocol;

namespace {

std::string transfer_path(std::string_view provider_pid, std::string_view rest = {}) {
  return "/transfers/" + path_segment(provider_pid) + std::string(rest);
}

Result<Reply> send(Client& client, std::string_view method, const std::string& target,
                   const json& body = nullptr) {
  return client.request(method, target, body.is_null() ? std::string() : body.dump());
}

JsonAnswer json_answer(const Result<Reply>& reply) {
  if (!reply) return reply.status();
  if (reply->status / 100 != 2) return Answer<json>(refusal_of(*reply));
  if (reply->body.empty()) return Answer<json>(json::object());
  auto doc = parse_json_text(reply->body);
  if (!doc)
    return Status::failed_precondition("the broker's reply is not JSON: " + doc.status().message());
  return Answer<json>(std::move(*doc));
}

TransferAnswer transfer_answer(const Result<Reply>& reply) {
  auto doc = json_answer(reply);
  if (!doc) return doc.status();
  if (auto* refusal = std::get_if<Refusal>(&*doc))
    return Answer<protocol::TransferProcess>(std::move(*refusal));
  auto t = protocol::parse_transfer_process(std::get<json>(*doc));
  if (!t)
    return Status::failed_precondition("the broker's reply is not a TransferProcess: " +
                                       t.status().message());
  return Answer<protocol::TransferProcess>(std::move(*t));
}

std::vector<json> reason_list(const std::string& reason) {
  std::vector<json> out;
  if (!reason.empty()) out.emplace_back(reason);
  return out;
}

}  // namespace

json transfer_request_message(const TransferRequest& r) {
  protocol::TransferRequestMessage m;
  m.consumer_pid = r.consumer_pid.empty() ? new_process_id() : r.consumer_pid;
  m.agreement_id = r.agreement_id;
  m.format = std::string(kTransferFormat);
  m.callback_address = std::string(kChannelCallback);
  return protocol::to_json(m);
}

TransferAnswer request_transfer(Client& client, const TransferRequest& r) {
  return transfer_answer(send(client, "POST", "/transfers/request", transfer_request_message(r)));
}

TransferAnswer get_transfer(Client& client, std::string_view provider_pid) {
  return transfer_answer(send(client, "GET", transfer_path(provider_pid)));
}

JsonAnswer get_transfer_record(Client& client, std::string_view provider_pid) {
  return json_answer(send(client, "GET", transfer_path(provider_pid)));
}

TransferAnswer start_transfer(Client& client, const protocol::TransferProcess& t,
                              std::optional<uint64_t> from_chunk) {
  json m = protocol::to_json(protocol::TransferStartMessage{t.provider_pid, t.consumer_pid, {}});
  if (from_chunk) m["dsx:fromChunk"] = *from_chunk;
  return transfer_answer(send(client, "POST", transfer_path(t.provider_pid, "/start"), m));
}

TransferAnswer suspend_transfer(Client& client, const protocol::TransferProcess& t,
                                const std::string& reason) {
  protocol::TransferSuspensionMessage m;
  m.provider_pid = t.provider_pid;
  m.consumer_pid = t.consumer_pid;
  m.reason = reason_list(reason);
  return transfer_answer(
      send(client, "POST", transfer_path(t.provider_pid, "/suspension"), protocol::to_json(m)));
}

JsonAnswer complete_transfer(Client& client, const protocol::TransferProcess& t,
                             const json& receipt) {
  json m = protocol::to_json(protocol::TransferCompletionMessage{t.provider_pid, t.consumer_pid});
  m["dsx:receipt"] = receipt;
  return json_answer(send(client, "POST", transfer_path(t.provider_pid, "/completion"), m));
}

TransferAnswer terminate_transfer(Client& client, const protocol::TransferProcess& t,
                                  const std::string& reason, const std::string& code) {
  protocol::TransferTerminationMessage m;
  m.provider_pid = t.provider_pid;
  m.consumer_pid = t.consumer_pid;
  if (!code.empty()) m.code = code;
  m.reason = reason_list(reason);
  return transfer_answer(
      send(client, "POST", transfer_path(t.provider_pid, "/termination"), protocol::to_json(m)));
}

JsonAnswer list_transfers(Client& client) {
  return json_answer(send(client, "GET", "/management/transfers"));
}

JsonAnswer register_encryption_key(Client& client, const json& signed_binding) {
  return json_answer(send(client, "PUT", "/management/keys/encryption", signed_binding));
}

JsonAnswer get_encryption_key(Client& client, std::string_view participant_id) {
  return json_answer(
      send(client, "GET", "/management/keys/encryption/" + path_segment(participant_id)));
}

Result<protocol::X25519PrivateKey> load_or_create_encryption_key(const fs::path& state_dir) {
  const fs::path file = state_dir / std::string(kEncryptionKeyFile);
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    auto key = protocol::X25519PrivateKey::generate();
    if (!key) return key.status();
    // kNo: two commands creating the key at once keep one of them, and both read it below.
    Status s = certs::write_file_atomic(
        file, key->to_pem(), fs::perms::owner_read | fs::perms::owner_write, certs::Overwrite::kNo);
    if (!s && fs::exists(file, ec) == false) return s;
  }
  auto pem = certs::read_text_file(file);
  if (!pem) return pem.status();
  auto key = protocol::X25519PrivateKey::from_pem(*pem);
  if (!key) return Status::invalid_argument(file.string() + ": " + key.status().message());
  return key;
}

Result<json> signed_key_binding(const fs::path& cert_dir, const protocol::X25519PublicKey& key,
                                Instant created) {
  auto identity = certs::load_identity(cert_dir / "cert.pem");
  if (!identity) return identity.status();
  auto fingerprint = from_hex(identity->fingerprint_sha256_hex);
  if (!fingerprint || fingerprint->size() != 32)
    return Status::internal("cert.pem: bad fingerprint");
  std::array<uint8_t, 32> sha{};
  std::copy(fingerprint->begin(), fingerprint->end(), sha.begin());
  const protocol::EncryptionKeyBinding binding{identity->participant_id, sha, key,
                                               Instant{created.seconds, 0}};
  auto text = protocol::key_binding_json(binding);
  if (!text) return text.status();
  auto sig = certs::sign_text(cert_dir, *text);
  if (!sig) return sig.status();
  return certs::signed_document(*text, *sig);
}

Result<Answer<bool>> ensure_key_registered(Client& client, const fs::path& cert_dir,
                                           const protocol::X25519PublicKey& key, Instant now) {
  auto identity = certs::load_identity(cert_dir / "cert.pem");
  if (!identity) return identity.status();
  auto current = get_encryption_key(client, identity->participant_id);
  if (!current) return current.status();
  if (const json* doc = std::get_if<json>(&*current)) {
    // Registered already when the broker's binding is for this key and this certificate.
    if (auto signed_doc = certs::parse_signed_document(*doc)) {
      if (auto binding = protocol::parse_key_binding(signed_doc->text);
          binding && binding->encryption_key == key &&
          to_hex(binding->certificate_sha256) == identity->fingerprint_sha256_hex)
        return Answer<bool>(false);
    }
  }
  auto binding = signed_key_binding(cert_dir, key, now);
  if (!binding) return binding.status();
  auto sent = register_encryption_key(client, *binding);
  if (!sent) return sent.status();
  if (auto* refusal = std::get_if<Refusal>(&*sent)) return Answer<bool>(std::move(*refusal));
  return Answer<bool>(true);
}

namespace {

struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};

// `s` with `context` before its message: kInternal (a problem of this side, such as its CRL)
// stays kInternal, anything else is the document's fault (kInvalidArgument).
Status with_context(const std::string& context, const Status& s) {
  return s.code() == Status::Code::kInternal ? Status::internal(context + s.message())
                                             : Status::invalid_argument(context + s.message());
}

// The certificate chains to CERT_DIR/ca.pem, is valid now and, when CERT_DIR/crl.pem exists
// (the data space's revocation list, as the operator publishes it), is not revoked; its
// identity.
Result<certs::Identity> verify_certificate(const fs::path& cert_dir, const X509* cert) {
  auto ca = certs::load_certificate(cert_dir / "ca.pem");
  if (!ca) return ca.status();
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca->get()) != 1)
    return Status::internal("cannot set up certificate verification");
  // Present (even as a dangling link) means used: a CRL that cannot be read is an error, of
  // this side (kInternal), not the signer's.
  const fs::path crl_file = cert_dir / "crl.pem";
  std::error_code ec;
  const fs::file_type crl_type = fs::symlink_status(crl_file, ec).type();
  if (ec && crl_type != fs::file_type::not_found)
    return Status::internal(crl_file.string() + ": " + ec.message());
  if (crl_type != fs::file_type::not_found) {
    auto crl = certs::load_crl(crl_file);
    if (!crl) return Status::internal(crl_file.string() + ": " + crl.status().message());
    if (X509_STORE_add_crl(store.get(), crl->get()) != 1)
      return Status::internal("cannot set up certificate verification");
    X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), const_cast<X509*>(cert), nullptr) != 1)
    return Status::internal("cannot set up certificate verification");
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    const std::string why = X509_verify_cert_error_string(error);
    switch (error) {
      case X509_V_ERR_UNABLE_TO_GET_CRL:
      case X509_V_ERR_CRL_HAS_EXPIRED:
      case X509_V_ERR_CRL_NOT_YET_VALID:
      case X509_V_ERR_CRL_SIGNATURE_FAILURE:
      case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
      case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
      case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
      case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
        // Our revocation list is at fault (out of date, another CA's), not the signer.
        return Status::internal(crl_file.string() + " cannot be used: " + why +
                                " (get a fresh one from the data space's operator)");
      default:
        return Status::invalid_argument(
            "the signer's certificate does not verify against the data space CA: " + why);
    }
  }
  return certs::read_identity(cert);
}

}  // namespace

Result<std::string> check_signed_text(const fs::path& cert_dir, const json& signed_doc,
                                      std::string_view certificate_pem,
                                      std::string_view expected_participant) {
  auto parsed = certs::parse_signed_document(signed_doc);
  if (!parsed) return parsed.status();
  auto cert = certs::parse_certificate_pem(certificate_pem);
  if (!cert) return Status::invalid_argument("certificate: " + cert.status().message());
  auto identity = verify_certificate(cert_dir, cert->get());
  if (!identity) return identity.status();
  if (!expected_participant.empty() && identity->participant_id != expected_participant)
    return Status::invalid_argument("signed by " + identity->participant_id + ", not by " +
                                    std::string(expected_participant));
  if (Status s = certs::verify_text(certificate_pem, parsed->text, parsed->signature); !s) return s;
  return parsed->text;
}

namespace {

std::string certificate_of(const json& doc) {
  if (!doc.is_object()) return {};
  for (const char* name : {"certificate", "certificatePem"})
    if (auto it = doc.find(name); it != doc.end() && it->is_string()) return it->get<std::string>();
  return {};
}

}  // namespace

Result<protocol::X25519PublicKey> check_key_binding(const fs::path& cert_dir,
                                                    const json& encryption_key,
                                                    std::string_view consumer) {
  const std::string pem = certificate_of(encryption_key);
  if (pem.empty())
    return Status::invalid_argument("encryptionKey: no certificate to check the binding with");
  auto text = check_signed_text(cert_dir, encryption_key, pem, consumer);
  if (!text) return with_context("encryptionKey: ", text.status());
  auto binding = protocol::parse_key_binding(*text);
  if (!binding) return Status::invalid_argument("encryptionKey: " + binding.status().message());
  if (binding->participant != consumer)
    return Status::invalid_argument("encryptionKey: the binding is for " + binding->participant +
                                    ", not for the consumer " + std::string(consumer));
  auto cert = certs::parse_certificate_pem(pem);
  if (!cert || to_hex(binding->certificate_sha256) != certs::fingerprint_sha256_hex(cert->get()))
    return Status::invalid_argument(
        "encryptionKey: the binding names another certificate than the one that signed it");
  return binding->encryption_key;
}

std::string encode_manifest_header(const json& signed_manifest) {
  const std::string text = signed_manifest.dump();
  return base64_encode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Result<json> decode_manifest_header(std::string_view header) {
  auto bytes = base64_decode(header);
  if (!bytes) return Status::invalid_argument("X-Dsx-Manifest: not base64");
  auto doc = parse_json_text(
      std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
  if (!doc || !doc->is_object())
    return Status::invalid_argument("X-Dsx-Manifest: not a JSON object");
  return std::move(*doc);
}

Result<CheckedManifest> check_signed_manifest(const fs::path& cert_dir, const json& signed_manifest,
                                              std::string_view provider) {
  const std::string pem = certificate_of(signed_manifest);
  if (pem.empty())
    return Status::invalid_argument("manifest: no provider certificate to check it with");
  auto text = check_signed_text(cert_dir, signed_manifest, pem, provider);
  if (!text) return with_context("manifest: ", text.status());
  auto manifest = protocol::parse_stream_manifest(*text);
  if (!manifest) return Status::invalid_argument("manifest: " + manifest.status().message());
  return CheckedManifest{std::move(*manifest), std::move(*text)};
}

Result<json> sign_receipt(const fs::path& cert_dir, std::string_view manifest_text) {
  auto sig = certs::sign_text(cert_dir, manifest_text);
  if (!sig) return sig.status();
  return certs::signed_document(manifest_text, *sig);
}

}  // namespace dsx::connectors
