// The data space PKI: the CA folder, certificates for every role and key type checked with
// OpenSSL's own verifier, the identity extension, revocation and the CRL, expired and foreign
// certificates, bad requests, and `dsx certs` through the real binary. Everything is generated
// into a temporary folder; the library's clock is a ManualClock and verification runs at that
// time, so the results do not depend on the wall clock (except the CLI's, which use it).
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "certs/ca.h"
#include "certs/identity.h"
#include "certs/index.h"
#include "certs/pem.h"
#include "certs/subject.h"
#include "tests/run_dsx.h"
#include "tests/temp_dir.h"

using namespace dsx::certs;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kDay = 86400;
// 2027-01-15T08:00:00Z: the tests' "now".
const dsx::Instant kNow{1'800'000'000, 0};

using dsx::testing::TempDir;

template <typename T>
T must(dsx::Result<T> r) {
  INFO(r.status().message());
  REQUIRE(r);
  return std::move(*r);
}

fs::path make_ca(const TempDir& tmp, const dsx::Clock& clock, KeyType type = KeyType::kP256,
                 const std::string& folder = "ca") {
  CaOptions options;
  options.key_type = type;
  must(init_ca(tmp.path / folder, options, clock));
  return tmp.path / folder;
}

IssueRequest request(const std::string& name, std::vector<std::string> roles,
                     KeyType type = KeyType::kP256) {
  IssueRequest r;
  r.name = name;
  r.roles = std::move(roles);
  r.key_type = type;
  return r;
}

X509Ptr cert_of(const fs::path& file) {
  return must(load_certificate(file));
}

// X509_verify_cert against the CA in `ca_pem` (and `crl`, with CRL checking) at time `at`, with
// RFC 5280 strictness and the TLS purpose given; X509_V_OK or the error.
int verify(const fs::path& ca_pem, X509* cert, int purpose, dsx::Instant at,
           const std::optional<fs::path>& crl = std::nullopt) {
  X509Ptr ca = cert_of(ca_pem);
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  REQUIRE(X509_STORE_add_cert(store.get(), ca.get()) == 1);
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (crl) {
    X509CrlPtr list = must(load_crl(*crl));
    REQUIRE(X509_STORE_add_crl(store.get(), list.get()) == 1);
    flags |= X509_V_FLAG_CRL_CHECK;
  }
  REQUIRE(X509_STORE_set_flags(store.get(), flags) == 1);
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) == 1);
  REQUIRE(X509_STORE_CTX_set_purpose(ctx.get(), purpose) == 1);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), static_cast<time_t>(at.seconds));
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

std::string verify_error(int code) {
  return std::to_string(code) + " " + X509_verify_cert_error_string(code);
}

fs::perms mode_of(const fs::path& p) {
  return fs::status(p).permissions() & fs::perms::mask;
}
const fs::perms k0600 = fs::perms::owner_read | fs::perms::owner_write;

// The subject alternative names as "DNS:x", "IP:x" or "URI:x".
std::vector<std::string> alt_names(const X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    const auto* value = static_cast<const ASN1_STRING*>(GENERAL_NAME_get0_value(n, &type));
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                     static_cast<size_t>(ASN1_STRING_length(value)));
    if (type == GEN_DNS) out.push_back("DNS:" + text);
    if (type == GEN_URI) out.push_back("URI:" + text);
    if (type == GEN_IPADD) out.push_back("IP:" + std::to_string(text.size()) + "-bytes");
  }
  GENERAL_NAMES_free(names);
  return out;
}

uint64_t crl_number(const fs::path& crl_pem) {
  X509CrlPtr crl = must(load_crl(crl_pem));
  auto* n =
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr));
  REQUIRE(n);
  uint64_t v = 0;
  REQUIRE(ASN1_INTEGER_get_uint64(&v, n) == 1);
  ASN1_INTEGER_free(n);
  return v;
}

std::vector<std::string> crl_serials(const fs::path& crl_pem) {
  X509CrlPtr crl = must(load_crl(crl_pem));
  std::vector<std::string> out;
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    BIGNUM* bn = ASN1_INTEGER_to_BN(
        X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string s(hex);
    for (char& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(s);
    OPENSSL_free(hex);
    BN_free(bn);
  }
  return out;
}

// A self-signed certificate carrying `der` as the value of the dsx identity extension: what a
// forger or a broken issuer could present.
X509Ptr cert_with_identity_extension(const std::string& cn, const std::string& der) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  X509Ptr cert(X509_new());
  REQUIRE((key && cert));
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!cn.empty())
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.data()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  ASN1_OBJECT* oid = OBJ_txt2obj(std::string(kIdentityExtensionOid).c_str(), 1);
  ASN1_OCTET_STRING* value = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(value, reinterpret_cast<const unsigned char*>(der.data()),
                        static_cast<int>(der.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, oid, 0, value);
  REQUIRE(X509_add_ext(cert.get(), ext, -1) == 1);
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(value);
  ASN1_OBJECT_free(oid);
  REQUIRE(X509_sign(cert.get(), key.get(), nullptr) > 0);
  return cert;
}

// DER UTF8String (tag 12) of a short text.
std::string utf8_string_der(const std::string& text) {
  REQUIRE(text.size() < 128);
  return std::string(1, '\x0c') + static_cast<char>(text.size()) + text;
}

}  // namespace

TEST_CASE("init writes a CA folder: certificate, key 0600, empty CRL, index", "[certs]") {
  for (KeyType type : {KeyType::kP256, KeyType::kEd25519}) {
    INFO(to_string(type));
    TempDir tmp;
    dsx::ManualClock clock(kNow);
    CaOptions options;
    options.key_type = type;
    CaFiles files = must(init_ca(tmp.path / "ca", options, clock));
    for (const char* f : {"ca.pem", "ca.key", "crl.pem", "index.json"})
      CHECK(fs::is_regular_file(tmp.path / "ca" / f));
    CHECK(mode_of(files.ca_key) == k0600);
    CHECK(files.not_before == kNow);
    CHECK(files.not_after.seconds == kNow.seconds + 3650 * kDay);

    X509Ptr ca = cert_of(files.ca_pem);
    CHECK(X509_check_ca(ca.get()) == 1);
    CHECK(X509_get_extension_flags(ca.get()) & EXFLAG_CA);
    CHECK(X509_get_key_usage(ca.get()) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    CHECK(X509_get0_subject_key_id(ca.get()) != nullptr);
    int crit = 0;
    BASIC_CONSTRAINTS_free(static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(ca.get(), NID_basic_constraints, &crit, nullptr)));
    CHECK(crit == 1);
    CHECK(X509_get_signature_nid(ca.get()) ==
          (type == KeyType::kP256 ? NID_ecdsa_with_SHA256 : NID_ED25519));
    CHECK(verify(files.ca_pem, ca.get(), X509_PURPOSE_ANY, kNow) == X509_V_OK);

    CHECK(crl_serials(files.crl_pem).empty());
    CHECK(crl_number(files.crl_pem) == 1);
    CaIndex index = must(load_index(tmp.path / "ca"));
    CHECK(index.crl_number == 1);
    CHECK(index.certificates.empty());

    // A second init would orphan every certificate the first CA issued: only with force.
    dsx::Result<CaFiles> again = init_ca(tmp.path / "ca", options, clock);
    REQUIRE_FALSE(again);
    CHECK(again.status().message().find("exists already") != std::string::npos);
    CHECK(serial_hex(cert_of(files.ca_pem).get()) == files.serial_hex);
    options.force = true;
    CaFiles replaced = must(init_ca(tmp.path / "ca", options, clock));
    CHECK(replaced.serial_hex != files.serial_hex);
    CHECK(mode_of(replaced.ca_key) == k0600);
  }
}

TEST_CASE("issue: every role with both key types verifies and reads back", "[certs]") {
  for (KeyType ca_type : {KeyType::kP256, KeyType::kEd25519}) {
    TempDir tmp;
    dsx::ManualClock clock(kNow);
    const fs::path ca = make_ca(tmp, clock, ca_type);
    for (KeyType type : {KeyType::kP256, KeyType::kEd25519}) {
      for (const char* role : {"provider", "consumer", "auditor", "operator", "broker"}) {
        const bool broker = std::string(role) == "broker";
        const std::string name = broker ? "broker.example.org" : std::string("p-") + role;
        INFO("CA " << to_string(ca_type) << ", key " << to_string(type) << ", role " << role);
        IssueRequest r = request(name, {role}, type);
        r.country = "DE";
        const fs::path out = tmp.path / (std::string(role) + "-" + std::string(to_string(type)));
        Issued issued = must(issue(ca, r, out, clock));
        CHECK(mode_of(out / "key.pem") == k0600);
        CHECK(must(load_certificate(out / "ca.pem")) != nullptr);
        CHECK(fs::file_size(out / "ca.pem") == fs::file_size(ca / "ca.pem"));

        X509Ptr cert = cert_of(out / "cert.pem");
        const int purpose = broker ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT;
        CHECK(verify_error(verify(ca / "ca.pem", cert.get(), purpose, kNow, ca / "crl.pem")) ==
              verify_error(X509_V_OK));
        // Every certificate can authenticate a client; only the broker's a server.
        CHECK(verify(ca / "ca.pem", cert.get(), X509_PURPOSE_SSL_CLIENT, kNow) == X509_V_OK);
        if (!broker)
          CHECK(verify(ca / "ca.pem", cert.get(), X509_PURPOSE_SSL_SERVER, kNow) ==
                X509_V_ERR_INVALID_PURPOSE);
        CHECK(X509_get_signature_nid(cert.get()) ==
              (ca_type == KeyType::kP256 ? NID_ecdsa_with_SHA256 : NID_ED25519));
        CHECK(EVP_PKEY_get_id(X509_get0_pubkey(cert.get())) ==
              (type == KeyType::kP256 ? EVP_PKEY_EC : EVP_PKEY_ED25519));
        EvpPkeyPtr key = must(load_private_key(out / "key.pem"));
        CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
        CHECK((X509_get_extension_flags(cert.get()) & EXFLAG_CA) == 0);
        CHECK(X509_get_key_usage(cert.get()) == KU_DIGITAL_SIGNATURE);
        CHECK(X509_get_extended_key_usage(cert.get()) ==
              (broker ? (XKU_SSL_SERVER | XKU_SSL_CLIENT) : XKU_SSL_CLIENT));
        CHECK(X509_get0_authority_key_id(cert.get()) != nullptr);
        CHECK(X509_get0_subject_key_id(cert.get()) != nullptr);
        CHECK(issued.not_before == kNow);
        CHECK(issued.not_after.seconds == kNow.seconds + 365 * kDay);

        const Identity& id = issued.identity;
        CHECK(id.participant_id == "urn:dsx:participant:" + name);
        CHECK(id.name == name);
        CHECK(id.roles == std::vector<std::string>{role});
        CHECK(id.country == std::optional<std::string>("DE"));
        // 159 random bits, the top one set: 40 hex digits, the first 4 to 7.
        REQUIRE(id.serial_hex.size() == 40);
        CHECK(std::string("4567").find(id.serial_hex[0]) != std::string::npos);
        CHECK(id.fingerprint_sha256_hex.size() == 64);
        Identity again = must(read_identity(cert.get()));
        CHECK(again.serial_hex == id.serial_hex);
        CHECK(again.fingerprint_sha256_hex == id.fingerprint_sha256_hex);
        CHECK(must(load_identity(out / "cert.pem")).roles == id.roles);
      }
    }
    CHECK(must(load_index(ca)).certificates.size() == 10);
  }
}

TEST_CASE("the identity extension carries roles, country and attributes exactly", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ca = make_ca(tmp, clock);
  IssueRequest r = request("acme-research", {"provider", "consumer", "provider"});
  r.country = "FR";
  r.attributes["organisation"] = {"ACME Recherche é"};
  r.attributes["memberOf"] = {"https://example.org/alliance/b", "https://example.org/alliance/a"};
  r.attributes["industry"] = {"health"};
  Issued issued = must(issue(ca, r, tmp.path / "acme", clock));
  Identity id = must(load_identity(tmp.path / "acme" / "cert.pem"));
  CHECK(id.participant_id == "urn:dsx:participant:acme-research");
  CHECK(id.roles == std::vector<std::string>{"consumer", "provider"});
  CHECK(id.country == std::optional<std::string>("FR"));
  CHECK(
      id.attributes ==
      Attributes{{"industry", {"health"}},
                 {"memberOf", {"https://example.org/alliance/a", "https://example.org/alliance/b"}},
                 {"organisation", {"ACME Recherche é"}}});
  CHECK(id.serial_hex == issued.identity.serial_hex);

  // The extension's value is the canonical JSON, byte for byte.
  Subject subject = must(canonical_subject({"acme-research", r.roles, r.country, r.attributes}));
  const std::string expected =
      R"({"attributes":{"industry":"health","memberOf":["https://example.org/alliance/a",)"
      R"("https://example.org/alliance/b"],"organisation":"ACME Recherche é"},)"
      R"("country":"FR","roles":["consumer","provider"]})";
  CHECK(must(identity_json(subject)) == expected);
  X509Ptr cert = cert_of(tmp.path / "acme" / "cert.pem");
  ASN1_OBJECT* oid = OBJ_txt2obj(std::string(kIdentityExtensionOid).c_str(), 1);
  const int at = X509_get_ext_by_OBJ(cert.get(), oid, -1);
  ASN1_OBJECT_free(oid);
  REQUIRE(at >= 0);
  X509_EXTENSION* ext = X509_get_ext(cert.get(), at);
  CHECK(X509_EXTENSION_get_critical(ext) == 0);
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  const std::string der(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                        static_cast<size_t>(ASN1_STRING_length(value)));
  REQUIRE(der.size() > 3);
  CHECK(der[0] == '\x0c');  // UTF8String
  CHECK(der.substr(der.size() - expected.size()) == expected);

  // The subject: C, O and CN.
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert.get()), buf, sizeof buf);
  CHECK(std::string(buf).find("/C=FR/O=ACME Recherche") == 0);
  CHECK(std::string(buf).find("/CN=acme-research") != std::string::npos);
  CHECK(alt_names(cert.get()) == std::vector<std::string>{"URI:urn:dsx:participant:acme-research"});

  // No country, no attributes: "country" is left out, "attributes" is empty.
  Subject plain = must(canonical_subject({"bob", {"auditor"}, std::nullopt, {}}));
  CHECK(must(identity_json(plain)) == R"({"attributes":{},"roles":["auditor"]})");
}

TEST_CASE("the broker's certificate names its host or IP address", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ca = make_ca(tmp, clock);
  must(issue(ca, request("broker.example.org", {"broker"}), tmp.path / "dns", clock));
  must(issue(ca, request("127.0.0.1", {"broker"}), tmp.path / "ip4", clock));
  must(issue(ca, request("::1", {"broker"}), tmp.path / "ip6", clock));
  X509Ptr dns = cert_of(tmp.path / "dns" / "cert.pem");
  CHECK(alt_names(dns.get()) == std::vector<std::string>{"DNS:broker.example.org"});
  CHECK(X509_check_host(dns.get(), "broker.example.org", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(dns.get(), "other.example.org", 0, 0, nullptr) == 0);
  X509Ptr ip4 = cert_of(tmp.path / "ip4" / "cert.pem");
  CHECK(alt_names(ip4.get()) == std::vector<std::string>{"IP:4-bytes"});
  CHECK(X509_check_ip_asc(ip4.get(), "127.0.0.1", 0) == 1);
  CHECK(X509_check_ip_asc(ip4.get(), "127.0.0.2", 0) == 0);
  X509Ptr ip6 = cert_of(tmp.path / "ip6" / "cert.pem");
  CHECK(alt_names(ip6.get()) == std::vector<std::string>{"IP:16-bytes"});
  CHECK(X509_check_ip_asc(ip6.get(), "::1", 0) == 1);
  CHECK(must(read_identity(ip6.get())).participant_id == "urn:dsx:participant:::1");
}

TEST_CASE("revoke: the CRL lists the serial and OpenSSL refuses the certificate", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ca = make_ca(tmp, clock);
  Issued alice = must(issue(ca, request("alice", {"consumer"}), tmp.path / "alice", clock));
  Issued bob = must(issue(ca, request("bob", {"provider"}), tmp.path / "bob", clock));
  X509Ptr alice_cert = cert_of(alice.cert_pem);
  X509Ptr bob_cert = cert_of(bob.cert_pem);
  const fs::path crl = ca / "crl.pem";
  CHECK(verify(ca / "ca.pem", alice_cert.get(), X509_PURPOSE_SSL_CLIENT, kNow, crl) == X509_V_OK);
  CHECK(crl_number(crl) == 1);

  clock.advance_seconds(60);
  RevokeOptions options;
  options.reason = "keyCompromise";
  Revoked r = must(revoke(ca, alice.cert_pem, options, clock));
  CHECK_FALSE(r.already_revoked);
  CHECK(r.serial_hex == alice.identity.serial_hex);
  CHECK(r.name == "alice");
  CHECK(r.revoked_at.seconds == kNow.seconds + 60);
  CHECK(r.crl.number == 2);
  CHECK(r.crl.revoked == 1);
  CHECK(r.crl.next_update.seconds == kNow.seconds + 60 + 30 * kDay);
  CHECK(crl_serials(crl) == std::vector<std::string>{alice.identity.serial_hex});
  CHECK(crl_number(crl) == 2);

  const dsx::Instant later{kNow.seconds + 120, 0};
  CHECK(verify_error(verify(ca / "ca.pem", alice_cert.get(), X509_PURPOSE_SSL_CLIENT, later,
                            crl)) == verify_error(X509_V_ERR_CERT_REVOKED));
  CHECK(verify(ca / "ca.pem", bob_cert.get(), X509_PURPOSE_SSL_CLIENT, later, crl) == X509_V_OK);

  CaIndex index = must(load_index(ca));
  IndexEntry* entry = index.find(alice.identity.serial_hex);
  REQUIRE(entry);
  CHECK(entry->revoked == std::optional<dsx::Instant>(r.revoked_at));
  CHECK(entry->reason == "keyCompromise");
  CHECK_FALSE(index.find(bob.identity.serial_hex)->revoked);

  // Revoking again changes nothing but the CRL's number.
  clock.advance_seconds(60);
  Revoked twice = must(revoke(ca, alice.cert_pem, {}, clock));
  CHECK(twice.already_revoked);
  CHECK(twice.revoked_at == r.revoked_at);
  CHECK(twice.reason == "keyCompromise");
  CHECK(twice.crl.number == 3);
  CHECK(crl_serials(crl).size() == 1);

  // crl: a fresh list, numbered on; the revocation stays.
  clock.advance_seconds(60);
  CrlInfo fresh = must(write_crl(ca, 7, clock));
  CHECK(fresh.number == 4);
  CHECK(crl_number(crl) == 4);
  CHECK(fresh.next_update.seconds == clock.now().seconds + 7 * kDay);
  CHECK(crl_serials(crl) == std::vector<std::string>{alice.identity.serial_hex});
  // Past its next update, the CRL itself is refused.
  CHECK(verify(ca / "ca.pem", bob_cert.get(), X509_PURPOSE_SSL_CLIENT,
               dsx::Instant{clock.now().seconds + 8 * kDay, 0}, crl) == X509_V_ERR_CRL_HAS_EXPIRED);
}

TEST_CASE("a certificate outside its validity window does not verify", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(dsx::Instant{kNow.seconds - 60 * kDay, 0});
  const fs::path ca = make_ca(tmp, clock);  // valid long before the certificates below
  clock.set(kNow);
  IssueRequest expired = request("old", {"consumer"});
  expired.not_before = dsx::Instant{kNow.seconds - 30 * kDay, 0};
  expired.not_after = dsx::Instant{kNow.seconds - kDay, 0};
  Issued old = must(issue(ca, expired, tmp.path / "old", clock));
  CHECK(old.not_after.seconds == kNow.seconds - kDay);
  X509Ptr cert = cert_of(old.cert_pem);
  CHECK(verify_error(verify(ca / "ca.pem", cert.get(), X509_PURPOSE_SSL_CLIENT, kNow)) ==
        verify_error(X509_V_ERR_CERT_HAS_EXPIRED));
  // Within its window it was fine: only the time makes it fail.
  CHECK(verify(ca / "ca.pem", cert.get(), X509_PURPOSE_SSL_CLIENT,
               dsx::Instant{kNow.seconds - 2 * kDay, 0}) == X509_V_OK);

  IssueRequest future = request("future", {"consumer"});
  future.not_before = dsx::Instant{kNow.seconds + kDay, 0};
  Issued f = must(issue(ca, future, tmp.path / "future", clock));
  CHECK(f.not_after.seconds == kNow.seconds + 366 * kDay);
  CHECK(verify(ca / "ca.pem", cert_of(f.cert_pem).get(), X509_PURPOSE_SSL_CLIENT, kNow) ==
        X509_V_ERR_CERT_NOT_YET_VALID);

  IssueRequest backwards = request("backwards", {"consumer"});
  backwards.not_before = kNow;
  backwards.not_after = dsx::Instant{kNow.seconds - 1, 0};
  dsx::Result<Issued> bad = issue(ca, backwards, tmp.path / "backwards", clock);
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message().find("ends") != std::string::npos);
}

TEST_CASE("a certificate from a foreign CA neither verifies nor can be revoked", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ours = make_ca(tmp, clock, KeyType::kP256, "ours");
  const fs::path theirs = make_ca(tmp, clock, KeyType::kP256, "theirs");
  Issued mallory = must(issue(theirs, request("alice", {"consumer"}), tmp.path / "m", clock));
  X509Ptr cert = cert_of(mallory.cert_pem);
  // Same name, same shape, other key: OpenSSL finds no issuer in our store.
  CHECK(verify_error(verify(ours / "ca.pem", cert.get(), X509_PURPOSE_SSL_CLIENT, kNow)) ==
        verify_error(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));

  dsx::Result<Revoked> r = revoke(ours, mallory.cert_pem, {}, clock);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == dsx::Status::Code::kInvalidArgument);
  CHECK(r.status().message().find("not issued by this CA") != std::string::npos);
  CHECK(must(load_index(ours)).crl_number == 1);
  CHECK(crl_number(ours / "crl.pem") == 1);

  // Not a certificate at all, and no such file: clear errors too.
  dsx::Result<Revoked> junk = revoke(ours, ours / "index.json", {}, clock);
  REQUIRE_FALSE(junk);
  CHECK(junk.status().message().find("not a PEM certificate") != std::string::npos);
  CHECK_FALSE(revoke(ours, tmp.path / "missing.pem", {}, clock));
  // The CA's own certificate verifies with its key but is no participant's to revoke.
  dsx::Result<Revoked> self = revoke(ours, ours / "ca.pem", {}, clock);
  REQUIRE_FALSE(self);
  CHECK(self.status().message().find("the CA's own certificate") != std::string::npos);
  // And a folder that is no CA.
  dsx::Result<Issued> nowhere = issue(tmp.path / "m", request("x", {"consumer"}), tmp.path / "x");
  REQUIRE_FALSE(nowhere);
  CHECK(nowhere.status().message().find("not a dsx CA folder") != std::string::npos);
}

TEST_CASE("bad requests are refused with a message naming the problem", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ca = make_ca(tmp, clock);
  auto refused = [&](IssueRequest r, const std::string& message) {
    INFO(message);
    dsx::Result<Issued> out = issue(ca, r, tmp.path / "out", clock);
    REQUIRE_FALSE(out);
    CHECK(out.status().code() == dsx::Status::Code::kInvalidArgument);
    CHECK(out.status().message().find(message) != std::string::npos);
    CHECK_FALSE(fs::exists(tmp.path / "out"));
  };
  refused(request("alice", {"admin"}), "unknown role \"admin\"");
  refused(request("alice", {}), "at least one role");
  IssueRequest germany = request("alice", {"consumer"});
  germany.country = "Germany";
  refused(germany, "bad country \"Germany\"");
  IssueRequest lower = request("alice", {"consumer"});
  lower.country = "de";
  refused(lower, "bad country \"de\"");
  refused(request("-alice", {"consumer"}), "bad participant name");
  refused(request("alice smith", {"consumer"}), "bad participant name");
  refused(request("", {"consumer"}), "bad participant name");
  refused(request(std::string(64, 'a'), {"consumer"}), "bad participant name");
  refused(request("urn:dsx:participant:alice", {"consumer"}), "bad participant name");
  refused(request("bad_host", {"broker"}), "bad broker host name");
  refused(request("host..example", {"broker"}), "bad broker host name");
  IssueRequest key = request("alice", {"consumer"});
  key.attributes["Org"] = {"x"};
  refused(key, "bad attribute name \"Org\"");
  IssueRequest empty = request("alice", {"consumer"});
  empty.attributes["org"] = {""};
  refused(empty, "empty value");
  IssueRequest big = request("alice", {"consumer"});
  big.attributes["note"] = {std::string(257, 'x')};
  refused(big, "at most 256");
  IssueRequest latin1 = request("alice", {"consumer"});
  latin1.attributes["note"] = {"caf\xe9"};
  refused(latin1, "not valid UTF-8");
  IssueRequest two = request("alice", {"consumer"});
  two.attributes["organisation"] = {"A", "B"};
  refused(two, "one organisation");
  IssueRequest days = request("alice", {"consumer"});
  days.days = 0;
  refused(days, "between 1 and");

  CHECK(parse_attribute("memberOf=a=b")->second == "a=b");
  CHECK_FALSE(parse_attribute("novalue"));
  CHECK_FALSE(parse_attribute("=x"));
  CHECK_FALSE(parse_attribute("country=DE"));
  CHECK_FALSE(parse_key_type("rsa"));
  CHECK(check_host_name("localhost"));
  CHECK(check_host_name("2001:db8::1"));
  CHECK(must(load_index(ca)).certificates.empty());
}

TEST_CASE("issue refuses to replace a key unless forced", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ca = make_ca(tmp, clock);
  Issued first = must(issue(ca, request("alice", {"consumer"}), tmp.path / "alice", clock));
  dsx::Result<Issued> second = issue(ca, request("alice", {"consumer"}), tmp.path / "alice", clock);
  REQUIRE_FALSE(second);
  CHECK(second.status().message().find("key.pem exists already") != std::string::npos);
  CHECK(must(load_identity(first.cert_pem)).serial_hex == first.identity.serial_hex);
  IssueRequest forced = request("alice", {"consumer"});
  forced.force = true;
  Issued third = must(issue(ca, forced, tmp.path / "alice", clock));
  CHECK(third.identity.serial_hex != first.identity.serial_hex);
  // The same name keeps its participant id across re-issue.
  CHECK(third.identity.participant_id == first.identity.participant_id);
  CHECK(mode_of(third.key_pem) == k0600);
  // Nothing is left behind but the three files.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path / "alice"))
    ++files;
  CHECK(files == 3);
}

TEST_CASE("read_identity refuses certificates without a well-formed dsx extension", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ca = make_ca(tmp, clock);
  dsx::Result<Identity> of_ca = load_identity(ca / "ca.pem");
  REQUIRE_FALSE(of_ca);
  CHECK(of_ca.status().message().find("no dsx identity extension") != std::string::npos);

  auto error_for = [](const std::string& cn, const std::string& der) {
    X509Ptr cert = cert_with_identity_extension(cn, der);
    dsx::Result<Identity> id = read_identity(cert.get());
    // A refusal leaves nothing in OpenSSL's error queue for the broker's next TLS call.
    CHECK(ERR_peek_error() == 0);
    return id ? std::string("accepted") : id.status().message();
  };
  const std::string good = R"({"attributes":{},"roles":["consumer"]})";
  CHECK(error_for("alice", utf8_string_der(good)) == "accepted");
  CHECK(error_for("", utf8_string_der(good)).find("no CN") != std::string::npos);
  CHECK(error_for("bad name", utf8_string_der(good)).find("bad participant name") !=
        std::string::npos);
  CHECK(error_for("alice", good).find("not a DER UTF8String") != std::string::npos);
  CHECK(error_for("alice", utf8_string_der(good) + "x").find("not a DER UTF8String") !=
        std::string::npos);
  for (const char* json :
       {"not json", "[]", R"({"roles":"consumer"})", R"({"attributes":{}})",
        R"({"roles":["root"]})", R"({"roles":[]})", R"({"roles":["consumer"],"country":"Germany"})",
        R"({"roles":["consumer"],"attributes":{"k":1}})",
        R"({"roles":["consumer"],"attributes":{"k":[]}})",
        R"({"roles":["consumer"],"attributes":[]})"}) {
    INFO(json);
    CHECK(error_for("alice", utf8_string_der(json)).find("malformed dsx identity extension") !=
          std::string::npos);
  }
  CHECK_FALSE(read_identity(nullptr));
}

TEST_CASE("concurrent issues on one CA are all recorded in its index", "[certs]") {
  TempDir tmp;
  dsx::ManualClock clock(kNow);
  const fs::path ca = make_ca(tmp, clock);
  constexpr int kThreads = 4, kEach = 3;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string name = "p" + std::to_string(t) + "-" + std::to_string(i);
        if (!issue(ca, request(name, {"consumer"}), tmp.path / name, clock)) ++failures;
      }
    });
  for (std::thread& t : threads)
    t.join();
  CHECK(failures == 0);
  CHECK(must(load_index(ca)).certificates.size() == static_cast<size_t>(kThreads * kEach));
}

TEST_CASE("the index round-trips through its JSON", "[certs]") {
  CaIndex index;
  index.crl_number = 7;
  index.certificates.push_back({"4a",
                                "alice",
                                {"consumer"},
                                kNow,
                                {kNow.seconds + kDay, 0},
                                dsx::Instant{kNow.seconds + 5, 0},
                                "superseded"});
  index.certificates.push_back({"5b", "bob", {"auditor", "provider"}, kNow, kNow, {}, {}});
  CaIndex back = must(parse_index(index_json(index)));
  CHECK(back.crl_number == 7);
  REQUIRE(back.certificates.size() == 2);
  CHECK(back.certificates[0].revoked == index.certificates[0].revoked);
  CHECK(back.certificates[0].reason == "superseded");
  CHECK(back.certificates[1].roles == index.certificates[1].roles);
  CHECK_FALSE(back.certificates[1].revoked);
  CHECK_FALSE(parse_index(R"({"version":2,"crlNumber":1,"certificates":[]})"));
  CHECK_FALSE(parse_index(R"({"version":1,"crlNumber":-1,"certificates":[]})"));
  CHECK_FALSE(parse_index(R"({"version":1,"crlNumber":1,"certificates":[{"serial":"4a"}]})"));
}

// ---- the CLI, through the real binary (wall clock) ----

namespace {

using Run = dsx::testing::DsxRun;
using dsx::testing::run_dsx;

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("dsx certs: init, issue, revoke, crl through the binary", "[certs][cli]") {
  TempDir tmp;
  const std::string ca = (tmp.path / "ca").string();
  const std::string alice = (tmp.path / "alice").string();
  const std::string broker = (tmp.path / "broker").string();

  Run init = run_dsx("certs init --out " + ca + " --key-type ed25519");
  INFO(init.out);
  REQUIRE(init.status == 0);
  CHECK(has(init.out, ca + "/ca.key (0600)"));
  CHECK(mode_of(tmp.path / "ca" / "ca.key") == k0600);

  Run issued = run_dsx("certs issue --ca " + ca +
                       " --name alice --role consumer,provider --country DE"
                       " --attr organisation=ACME --attr memberOf=a --attr memberOf=b --out " +
                       alice);
  INFO(issued.out);
  REQUIRE(issued.status == 0);
  CHECK(has(issued.out, "issued urn:dsx:participant:alice (roles consumer,provider, country DE)"));
  CHECK(has(issued.out, alice + "/key.pem (0600)"));
  Identity id = must(load_identity(tmp.path / "alice" / "cert.pem"));
  CHECK(has(issued.out, "serial " + id.serial_hex));
  CHECK(id.attributes.at("memberOf") == std::vector<std::string>{"a", "b"});

  Run json =
      run_dsx("certs issue --ca " + ca + " --name 127.0.0.1 --role broker --json --out " + broker);
  INFO(json.out);
  REQUIRE(json.status == 0);
  CHECK(has(json.out, R"("participantId": "urn:dsx:participant:127.0.0.1")"));
  CHECK(has(json.out, R"("notAfter": )"));

  // openssl's own command line agrees, when it is installed.
  const bool have_openssl = std::system("openssl version >/dev/null 2>&1") == 0;
  const std::string openssl_verify = "openssl verify -CAfile " + ca +
                                     "/ca.pem -crl_check -CRLfile " + ca + "/crl.pem " + alice +
                                     "/cert.pem >/dev/null 2>&1";
  if (have_openssl) CHECK(std::system(openssl_verify.c_str()) == 0);

  Run revoked = run_dsx("certs revoke --ca " + ca + " --cert " + alice + "/cert.pem");
  INFO(revoked.out);
  REQUIRE(revoked.status == 0);
  CHECK(has(revoked.out, "revoked " + id.serial_hex + " (alice)"));
  CHECK(has(revoked.out, "CRL number 2, 1 revoked"));
  Run again = run_dsx("certs revoke --ca " + ca + " --cert " + alice + "/cert.pem");
  CHECK(again.status == 0);
  CHECK(has(again.out, "already revoked: " + id.serial_hex));
  if (have_openssl) CHECK(std::system(openssl_verify.c_str()) != 0);

  Run crl = run_dsx("certs crl --ca " + ca + " --days 7");
  INFO(crl.out);
  CHECK(crl.status == 0);
  CHECK(has(crl.out, "CRL number 4, 1 revoked"));
  CHECK(crl_number(tmp.path / "ca" / "crl.pem") == 4);
}

TEST_CASE("dsx certs: bad input is one line on stderr and exit 2, --help explains",
          "[certs][cli]") {
  TempDir tmp;
  const std::string ca = (tmp.path / "ca").string();
  REQUIRE(run_dsx("certs init --out " + ca).status == 0);
  const std::string out = " --out " + (tmp.path / "x").string();
  for (const std::string& args : std::vector<std::string>{
           "certs", "certs issue --ca " + ca + " --name alice --role admin" + out,
           "certs issue --ca " + ca + " --name alice --role consumer --country Germany" + out,
           "certs issue --ca " + ca + " --name 'al ice' --role consumer" + out,
           "certs issue --ca " + ca + " --name alice --role consumer --attr Bad=x" + out,
           "certs issue --ca " + ca + " --name alice --role consumer --attr novalue" + out,
           "certs issue --ca " + ca + " --name alice" + out,
           "certs issue --ca " + ca + " --name alice --role consumer --days x" + out,
           "certs issue --ca " + ca + " --name alice --role consumer --not-before soon" + out,
           "certs issue --ca " + (tmp.path / "nothing").string() + " --name a --role consumer" +
               out,
           "certs init --out " + ca, "certs init --out " + ca + "2 --key-type rsa",
           "certs revoke --ca " + ca + " --cert " + ca + "/index.json",
           "certs revoke --ca " + ca + " --cert " + ca + "/ca.pem --reason whim",
           "certs crl --ca " + ca + " --days 0", "certs crl"}) {
    INFO(args);
    Run r = run_dsx(args);
    CHECK(r.status == 2);
    CHECK(r.out.rfind("dsx: ", 0) == 0);
    CHECK(r.out.find('\n') == r.out.size() - 1);
  }
  CHECK_FALSE(fs::exists(tmp.path / "x"));

  for (const char* args : {"certs --help", "certs init --help", "certs issue --help",
                           "certs revoke --help", "certs crl --help"}) {
    INFO(args);
    Run r = run_dsx(args);
    CHECK(r.status == 0);
    CHECK(has(r.out, "Usage"));
  }
  CHECK(has(run_dsx("certs issue --help").out, "--attr"));
  CHECK(has(run_dsx("certs revoke --help").out, "keyCompromise"));
}
