// Documents signed with a participant's certificate key (certs/signature.h): ES256 with a P-256
// certificate, Ed25519 with an Ed25519 one, and every way a check must fail (another text,
// another certificate, a tampered or malformed value, a wrong algorithm or fingerprint).
#include "certs/signature.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "certs/ca.h"

namespace {

namespace fs = std::filesystem;
using dsx::certs::DocumentSignature;
using dsx::certs::KeyType;
using json = nlohmann::json;

const std::string kText = R"({"participant":"urn:dsx:participant:leiden","type":"x"})";

// A CA and two participants, one with a P-256 key and one with an Ed25519 key.
struct Pki {
  fs::path dir;
  Pki() {
    static std::atomic<int> counter{0};
    dir = fs::temp_directory_path() /
          ("dsx-signature-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(dir);
    REQUIRE(dsx::certs::init_ca(dir / "ca", {}));
    issue("leiden", KeyType::kP256);
    issue("delft", KeyType::kEd25519);
  }
  ~Pki() { fs::remove_all(dir); }
  Pki(const Pki&) = delete;
  Pki& operator=(const Pki&) = delete;

  void issue(const std::string& name, KeyType type) const {
    dsx::certs::IssueRequest r;
    r.name = name;
    r.roles = {"consumer"};
    r.key_type = type;
    auto issued = dsx::certs::issue(dir / "ca", r, dir / name);
    INFO(issued.status().message());
    REQUIRE(issued);
  }
  std::string pem(const std::string& name) const {
    std::ifstream in(dir / name / "cert.pem");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

DocumentSignature sign(const Pki& pki, const std::string& who, const std::string& text) {
  auto sig = dsx::certs::sign_text(pki.dir / who, text);
  INFO(sig.status().message());
  REQUIRE(sig);
  return *sig;
}

}  // namespace

TEST_CASE("documents signed with P-256 and Ed25519 certificate keys verify", "[signature]") {
  Pki pki;
  const DocumentSignature es = sign(pki, "leiden", kText);
  CHECK(es.algorithm == "ES256");
  CHECK(es.certificate_sha256.size() == 64);
  CHECK(dsx::certs::verify_text(pki.pem("leiden"), kText, es));
  const DocumentSignature ed = sign(pki, "delft", kText);
  CHECK(ed.algorithm == "Ed25519");
  CHECK(dsx::certs::verify_text(pki.pem("delft"), kText, ed));

  // The wrapper travels as JSON and comes back equal.
  for (const DocumentSignature& sig : {es, ed}) {
    const json wrapped = dsx::certs::signed_document(kText, sig);
    CHECK(wrapped["document"] == kText);
    auto back = dsx::certs::parse_signed_document(json::parse(wrapped.dump()));
    REQUIRE(back);
    CHECK(back->text == kText);
    CHECK(back->signature.algorithm == sig.algorithm);
    CHECK(back->signature.certificate_sha256 == sig.certificate_sha256);
    CHECK(back->signature.value == sig.value);
  }
}

TEST_CASE("a signature fails for another text or certificate or a tampered value", "[signature]") {
  Pki pki;
  for (const char* who : {"leiden", "delft"}) {
    INFO(who);
    const std::string other = std::string(who) == "leiden" ? "delft" : "leiden";
    const DocumentSignature sig = sign(pki, who, kText);
    // Another text: one byte changed.
    std::string text = kText;
    text[text.find("leiden")] = 'L';
    auto s = dsx::certs::verify_text(pki.pem(who), text, sig);
    CHECK_FALSE(s);
    CHECK(s.message().find("signature.value") != std::string::npos);
    // Another certificate: its fingerprint is not the one named.
    s = dsx::certs::verify_text(pki.pem(other), kText, sig);
    CHECK_FALSE(s);
    CHECK(s.message().find("certificateSha256") != std::string::npos);
    // Another certificate named correctly, but the key is not the signer's.
    DocumentSignature renamed = sig;
    renamed.certificate_sha256 = sign(pki, other, kText).certificate_sha256;
    renamed.algorithm = sign(pki, other, kText).algorithm;
    CHECK_FALSE(dsx::certs::verify_text(pki.pem(other), kText, renamed));
    // A tampered value: one base64 digit changed.
    DocumentSignature tampered = sig;
    tampered.value[4] = tampered.value[4] == 'A' ? 'B' : 'A';
    CHECK_FALSE(dsx::certs::verify_text(pki.pem(who), kText, tampered));
    // Malformed base64.
    DocumentSignature malformed = sig;
    malformed.value = "not base64!";
    s = dsx::certs::verify_text(pki.pem(who), kText, malformed);
    CHECK_FALSE(s);
    CHECK(s.message().find("base64") != std::string::npos);
    malformed.value = sig.value.substr(0, sig.value.size() - 1);  // not a multiple of 4
    CHECK_FALSE(dsx::certs::verify_text(pki.pem(who), kText, malformed));
    // The algorithm must fit the key.
    DocumentSignature wrong_algorithm = sig;
    wrong_algorithm.algorithm = sig.algorithm == "ES256" ? "Ed25519" : "ES256";
    CHECK_FALSE(dsx::certs::verify_text(pki.pem(who), kText, wrong_algorithm));
    // Not a certificate at all.
    CHECK_FALSE(dsx::certs::verify_text("-----BEGIN CERTIFICATE-----\nAAAA\n", kText, sig));
  }
}

TEST_CASE("signed documents are parsed strictly", "[signature]") {
  Pki pki;
  const DocumentSignature sig = sign(pki, "leiden", kText);
  const json good = dsx::certs::signed_document(kText, sig);
  CHECK(dsx::certs::parse_signed_document(good));

  auto refused = [&](json doc, const std::string& says) {
    auto parsed = dsx::certs::parse_signed_document(doc);
    REQUIRE_FALSE(parsed);
    INFO(parsed.status().message());
    CHECK(parsed.status().message().find(says) != std::string::npos);
  };
  refused(json::array(), "signed document");
  json d = good;
  d.erase("document");
  refused(d, "document: missing");
  d = good;
  d["document"] = json::object();
  refused(d, "document:");
  d = good;
  d.erase("signature");
  refused(d, "signature: missing");
  d = good;
  d["signature"]["algorithm"] = "RS256";
  refused(d, "signature.algorithm");
  d = good;
  d["signature"]["certificateSha256"] = "ABC";
  refused(d, "signature.certificateSha256");
  d = good;
  d["signature"]["value"] = "QQ=";  // not padded to a multiple of 4
  refused(d, "signature.value");
  d = good;
  d["signature"]["value"] = "QR==";  // bits set beyond the data: not canonical
  refused(d, "signature.value");
  d = good;
  d["signature"].erase("value");
  refused(d, "signature.value: missing");
}

TEST_CASE("signing needs the certificate folder's own key", "[signature]") {
  Pki pki;
  CHECK_FALSE(dsx::certs::sign_text(pki.dir / "nobody", kText));
  // A folder whose key is not its certificate's.
  fs::create_directories(pki.dir / "mixed");
  fs::copy_file(pki.dir / "leiden" / "cert.pem", pki.dir / "mixed" / "cert.pem");
  pki.issue("other", KeyType::kP256);
  fs::copy_file(pki.dir / "other" / "key.pem", pki.dir / "mixed" / "key.pem");
  auto sig = dsx::certs::sign_text(pki.dir / "mixed", kText);
  REQUIRE_FALSE(sig);
  CHECK(sig.status().message().find("is not the key of") != std::string::npos);
}
