#include "certs/identity.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "certs/pem.h"
#include "common/json.h"

namespace dsx::certs {
namespace {

struct Asn1ObjectFree {
  void operator()(ASN1_OBJECT* p) const { ASN1_OBJECT_free(p); }
};
struct Utf8StringFree {
  void operator()(ASN1_UTF8STRING* p) const { ASN1_UTF8STRING_free(p); }
};

Status malformed(const std::string& what) {
  return Status::invalid_argument("malformed dsx identity extension: " + what);
}

// The one CN of the subject, as UTF-8.
Result<std::string> common_name(const X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  int index = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;
  if (index < 0) return Status::invalid_argument("the certificate's subject has no CN");
  if (X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0)
    return Status::invalid_argument("the certificate's subject has more than one CN");
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return Status::invalid_argument("the certificate's CN is not a readable string");
  std::string cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return cn;
}

// The extension's DER UTF8String content.
Result<std::string> extension_text(const X509* cert) {
  std::unique_ptr<ASN1_OBJECT, Asn1ObjectFree> oid(
      OBJ_txt2obj(std::string(kIdentityExtensionOid).c_str(), 1));
  if (!oid)
    return Status::internal("OpenSSL does not accept the OID " +
                            std::string(kIdentityExtensionOid));
  int index = X509_get_ext_by_OBJ(cert, oid.get(), -1);
  if (index < 0)
    return Status::invalid_argument("the certificate has no dsx identity extension (OID " +
                                    std::string(kIdentityExtensionOid) +
                                    "): it was not issued by `dsx certs issue`");
  if (X509_get_ext_by_OBJ(cert, oid.get(), index) >= 0)
    return malformed("it appears more than once");
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(X509_get_ext(cert, index));
  const unsigned char* p = ASN1_STRING_get0_data(value);
  const long len = ASN1_STRING_length(value);
  const unsigned char* end = p + len;
  std::unique_ptr<ASN1_UTF8STRING, Utf8StringFree> text(d2i_ASN1_UTF8STRING(nullptr, &p, len));
  if (!text || p != end) return malformed("not a DER UTF8String");
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text.get())),
                     static_cast<size_t>(ASN1_STRING_length(text.get())));
}

nlohmann::json attributes_json(const Attributes& attributes) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, values] : attributes) {
    if (values.size() == 1)
      out[key] = values[0];
    else
      out[key] = values;
  }
  return out;
}

}  // namespace

std::string participant_id(std::string_view name) {
  return std::string(kParticipantIdPrefix) + std::string(name);
}

Result<std::string> identity_json(const Subject& subject) {
  nlohmann::json j = nlohmann::json::object();
  j["attributes"] = attributes_json(subject.attributes);
  if (subject.country) j["country"] = *subject.country;
  j["roles"] = subject.roles;
  try {
    return j.dump();  // nlohmann's objects are sorted maps: keys sorted, no spaces
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(std::string("cannot encode the identity: ") + e.what());
  }
}

Result<Subject> parse_identity_json(std::string_view text, std::string name) {
  Result<nlohmann::json> parsed = parse_json_text(text);
  if (!parsed) return malformed(parsed.status().message());
  const nlohmann::json& j = *parsed;
  if (!j.is_object()) return malformed("not a JSON object");
  Subject s;
  s.name = std::move(name);
  // Members other than these three are ignored, so that a later CA may add some.
  auto roles = j.find("roles");
  if (roles == j.end() || !roles->is_array()) return malformed("roles: not a list");
  for (const nlohmann::json& r : *roles) {
    if (!r.is_string()) return malformed("roles: not a list of strings");
    s.roles.push_back(r.get<std::string>());
  }
  if (auto country = j.find("country"); country != j.end()) {
    if (!country->is_string()) return malformed("country: not a string");
    s.country = country->get<std::string>();
  }
  if (auto attributes = j.find("attributes"); attributes != j.end()) {
    if (!attributes->is_object()) return malformed("attributes: not an object");
    for (const auto& [key, value] : attributes->items()) {
      std::vector<std::string>& values = s.attributes[key];
      if (value.is_string()) {
        values.push_back(value.get<std::string>());
        continue;
      }
      if (!value.is_array() || value.empty())
        return malformed("attributes." + key + ": not a string nor a list of strings");
      for (const nlohmann::json& v : value) {
        if (!v.is_string())
          return malformed("attributes." + key + ": not a string nor a list of strings");
        values.push_back(v.get<std::string>());
      }
    }
  }
  Result<Subject> canonical = canonical_subject(std::move(s));
  if (!canonical) return malformed(canonical.status().message());
  return canonical;
}

namespace {

Result<Identity> read_identity_unchecked(const X509* cert) {
  Result<std::string> cn = common_name(cert);
  if (!cn) return cn.status();
  Result<std::string> text = extension_text(cert);
  if (!text) return text.status();
  Result<Subject> subject = parse_identity_json(*text, *cn);
  if (!subject) return subject.status();
  Identity id;
  id.participant_id = participant_id(subject->name);
  id.name = std::move(subject->name);
  id.roles = std::move(subject->roles);
  id.country = std::move(subject->country);
  id.attributes = std::move(subject->attributes);
  id.serial_hex = serial_hex(cert);
  id.fingerprint_sha256_hex = fingerprint_sha256_hex(cert);
  return id;
}

}  // namespace

Result<Identity> read_identity(const X509* cert) {
  if (!cert) return Status::invalid_argument("no certificate");
  Result<Identity> id = read_identity_unchecked(cert);
  // A refused certificate may leave errors in OpenSSL's per-thread queue (d2i, string
  // conversion); the broker's next TLS call on this thread must not see them.
  if (!id) ERR_clear_error();
  return id;
}

Result<Identity> load_identity(const std::filesystem::path& cert_pem) {
  Result<X509Ptr> cert = load_certificate(cert_pem);
  if (!cert) return cert.status();
  Result<Identity> id = read_identity(cert->get());
  if (!id) return Status::invalid_argument(cert_pem.string() + ": " + id.status().message());
  return id;
}

nlohmann::json to_json(const Identity& identity) {
  nlohmann::json j = nlohmann::json::object();
  j["participantId"] = identity.participant_id;
  j["name"] = identity.name;
  j["roles"] = identity.roles;
  if (identity.country) j["country"] = *identity.country;
  j["attributes"] = attributes_json(identity.attributes);
  j["serial"] = identity.serial_hex;
  j["fingerprintSha256"] = identity.fingerprint_sha256_hex;
  return j;
}

Result<Identity> identity_from_json(const nlohmann::json& doc) {
  Identity id;
  try {
    id.participant_id = doc.at("participantId").get<std::string>();
    id.name = doc.at("name").get<std::string>();
    id.roles = doc.at("roles").get<std::vector<std::string>>();
    if (doc.contains("country")) id.country = doc.at("country").get<std::string>();
    for (const auto& [key, value] : doc.at("attributes").items())
      id.attributes[key] = value.is_string() ? std::vector<std::string>{value.get<std::string>()}
                                             : value.get<std::vector<std::string>>();
    id.serial_hex = doc.value("serial", "");
    id.fingerprint_sha256_hex = doc.value("fingerprintSha256", "");
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid_argument(std::string("identity: ") + e.what());
  }
  return id;
}

}  // namespace dsx::certs
