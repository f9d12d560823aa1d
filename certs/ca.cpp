#include "certs/ca.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include "certs/atomic_file.h"
#include "certs/index.h"
#include "certs/pem.h"
#include "common/hex.h"

namespace dsx::certs {
namespace {

namespace fs = std::filesystem;

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
template <typename T, auto Free>
using Owned = std::unique_ptr<T, Deleter<Free>>;

using Asn1Integer = Owned<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1Time = Owned<ASN1_TIME, ASN1_TIME_free>;
using Asn1Object = Owned<ASN1_OBJECT, ASN1_OBJECT_free>;
using Asn1OctetString = Owned<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>;
using Asn1Utf8String = Owned<ASN1_UTF8STRING, ASN1_UTF8STRING_free>;
using Asn1Enumerated = Owned<ASN1_ENUMERATED, ASN1_ENUMERATED_free>;
using Bignum = Owned<BIGNUM, BN_free>;
using Extension = Owned<X509_EXTENSION, X509_EXTENSION_free>;
using GeneralNames = Owned<GENERAL_NAMES, GENERAL_NAMES_free>;
using Revocation = Owned<X509_REVOKED, X509_REVOKED_free>;
using Bio = Owned<BIO, BIO_free>;

constexpr int64_t kSecondsPerDay = 86400;
const fs::perms kPublicMode =
    fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;
const fs::perms kPrivateMode = fs::perms::owner_read | fs::perms::owner_write;

// RFC 5280 section 5.3.1. certificateHold is left out on purpose: dsx revocation is final.
constexpr std::array<std::pair<std::string_view, long>, 6> kReasons = {{{"unspecified", 0},
                                                                        {"keyCompromise", 1},
                                                                        {"affiliationChanged", 3},
                                                                        {"superseded", 4},
                                                                        {"cessationOfOperation", 5},
                                                                        {"privilegeWithdrawn", 9}}};

// The text of OpenSSL's last error, and an empty queue afterwards (so a later call in the same
// thread does not see stale errors).
std::string openssl_error() {
  unsigned long code = ERR_get_error();
  std::string text;
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text = std::string(": ") + buf;
  }
  ERR_clear_error();
  return text;
}

Status openssl_failure(const std::string& what) {
  return Status::internal(what + " failed" + openssl_error());
}

Status check_days(int days, const char* what) {
  if (days >= 1 && days <= kMaxDays) return Status::ok();
  return Status::invalid_argument(std::string(what) + " must be between 1 and " +
                                  std::to_string(kMaxDays) + " days, not " + std::to_string(days));
}

Instant whole_seconds(Instant t) {
  return Instant{t.seconds, 0};
}
Instant plus_days(Instant t, int days) {
  return Instant{t.seconds + days * kSecondsPerDay, 0};
}

// Holds an exclusive flock on DIR/index.lock: one CA operation at a time per folder, across
// processes. The lock file stays (removing it would race with the next locker).
class DirLock {
 public:
  static Result<DirLock> acquire(const fs::path& dir) {
    const fs::path path = dir / "index.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return Status::failed_precondition(path.string() + ": cannot lock: " + std::strerror(errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      std::string error = std::strerror(errno);
      ::close(fd);
      return Status::failed_precondition(path.string() + ": cannot lock: " + error);
    }
    return DirLock(fd);
  }
  DirLock(DirLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  DirLock& operator=(DirLock&&) = delete;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

struct Ca {
  X509Ptr cert;
  EvpPkeyPtr key;
};

// Locks an existing CA folder; the error for any other folder says what a CA folder is.
Result<DirLock> lock_ca(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / "ca.pem", ec) || !fs::exists(dir / "ca.key", ec))
    return Status::failed_precondition(
        dir.string() + ": not a dsx CA folder (no ca.pem and ca.key; `dsx certs init` makes one)");
  return DirLock::acquire(dir);
}

Result<Ca> load_ca(const fs::path& dir) {
  Result<X509Ptr> cert = load_certificate(dir / "ca.pem");
  if (!cert) return cert.status();
  Result<EvpPkeyPtr> key = load_private_key(dir / "ca.key");
  if (!key) return key.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    openssl_error();
    return Status::failed_precondition(dir.string() + ": ca.key is not the private key of ca.pem");
  }
  return Ca{std::move(*cert), std::move(*key)};
}

Result<EvpPkeyPtr> generate_key(KeyType type) {
  EVP_PKEY* key = type == KeyType::kEd25519 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                                            : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!key) return openssl_failure("generating a " + std::string(to_string(type)) + " key");
  return EvpPkeyPtr(key);
}

// SHA-256 with ECDSA; Ed25519 hashes inside the signature scheme and takes no digest.
const EVP_MD* digest_for(const EVP_PKEY* key) {
  return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

// PKCS#8 PEM; the caller cleanses the string once written.
Result<std::string> private_key_pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return openssl_failure("encoding the private key");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  std::string pem(data, static_cast<size_t>(len > 0 ? len : 0));
  OPENSSL_cleanse(data, static_cast<size_t>(len > 0 ? len : 0));
  return pem;
}

Status write_private_key(const fs::path& path, EVP_PKEY* key, Overwrite overwrite) {
  Result<std::string> pem = private_key_pem(key);
  if (!pem) return pem.status();
  Status s = write_file_atomic(path, *pem, kPrivateMode, overwrite);
  OPENSSL_cleanse(pem->data(), pem->size());
  return s;
}

// 159 random bits with the top one set: positive, 20 bytes in DER, as RFC 5280 allows at most,
// and unguessable (CA/Browser Forum baseline: at least 64 random bits).
Result<Asn1Integer> random_serial() {
  Bignum bn(BN_new());
  if (!bn || BN_rand(bn.get(), 159, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1)
    return openssl_failure("drawing a serial number");
  Asn1Integer serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) return openssl_failure("encoding a serial number");
  return serial;
}

Result<Asn1Integer> serial_from_hex(std::string_view hex) {
  std::optional<std::vector<uint8_t>> bytes = from_hex(hex);
  if (!bytes || bytes->empty())
    return Status::invalid_argument("bad serial \"" + std::string(hex) + "\" in the index");
  Bignum bn(BN_bin2bn(bytes->data(), static_cast<int>(bytes->size()), nullptr));
  Asn1Integer serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!serial) return openssl_failure("encoding a serial number");
  return serial;
}

Result<Asn1Time> asn1_time(Instant t) {
  // UTCTime up to 2049, GeneralizedTime from 2050, as RFC 5280 requires.
  Asn1Time time(ASN1_TIME_set(nullptr, static_cast<time_t>(t.seconds)));
  if (!time) return Status::invalid_argument("time " + format_rfc3339(t) + " out of range");
  return time;
}

Instant to_instant(const ASN1_TIME* t) {
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return Instant{};
  const int64_t days = days_from_civil(tm.tm_year + 1900, static_cast<unsigned>(tm.tm_mon + 1),
                                       static_cast<unsigned>(tm.tm_mday));
  return Instant{days * kSecondsPerDay + tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec, 0};
}

Status set_validity(X509* cert, Instant not_before, Instant not_after) {
  Result<Asn1Time> from = asn1_time(not_before);
  if (!from) return from.status();
  Result<Asn1Time> to = asn1_time(not_after);
  if (!to) return to.status();
  if (X509_set1_notBefore(cert, from->get()) != 1 || X509_set1_notAfter(cert, to->get()) != 1)
    return openssl_failure("setting the validity");
  return Status::ok();
}

// An extension from OpenSSL's configuration syntax ("critical,CA:TRUE"); the values here are
// constants, never user input.
Status add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  Extension ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return openssl_failure(std::string("adding ") + OBJ_nid2sn(nid));
  return Status::ok();
}

Status add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    openssl_error();
    return Status::invalid_argument(std::string("cannot put \"") + value + "\" in the subject's " +
                                    field);
  }
  return Status::ok();
}

// The subject alternative name: the broker's DNS name or IP address, or the participant id.
Status add_subject_alt_name(X509* cert, const Subject& subject, bool broker) {
  GeneralNames names(GENERAL_NAMES_new());
  GENERAL_NAME* name = GENERAL_NAME_new();
  if (!names || !name) {
    GENERAL_NAME_free(name);
    return openssl_failure("allocating the subject alternative name");
  }
  if (broker && is_ip_address(subject.name)) {
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(subject.name.c_str());
    if (!ip) {
      GENERAL_NAME_free(name);
      return openssl_failure("encoding the IP address " + subject.name);
    }
    GENERAL_NAME_set0_value(name, GEN_IPADD, ip);
  } else {
    const std::string text = broker ? subject.name : participant_id(subject.name);
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    if (!ia5 || ASN1_STRING_set(ia5, text.data(), static_cast<int>(text.size())) != 1) {
      ASN1_IA5STRING_free(ia5);
      GENERAL_NAME_free(name);
      return openssl_failure("encoding the subject alternative name");
    }
    GENERAL_NAME_set0_value(name, broker ? GEN_DNS : GEN_URI, ia5);
  }
  if (sk_GENERAL_NAME_push(names.get(), name) <= 0) {
    GENERAL_NAME_free(name);
    return openssl_failure("building the subject alternative name");
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return openssl_failure("adding the subject alternative name");
  return Status::ok();
}

// The dsx identity extension: non-critical, its value a DER UTF8String of the canonical JSON.
Status add_identity_extension(X509* cert, const std::string& json) {
  Asn1Utf8String utf8(ASN1_UTF8STRING_new());
  if (!utf8 || ASN1_STRING_set(utf8.get(), json.data(), static_cast<int>(json.size())) != 1)
    return openssl_failure("encoding the identity");
  unsigned char* der = nullptr;
  int len = i2d_ASN1_UTF8STRING(utf8.get(), &der);
  if (len <= 0) return openssl_failure("encoding the identity");
  Asn1OctetString value(ASN1_OCTET_STRING_new());
  bool ok = value && ASN1_OCTET_STRING_set(value.get(), der, len) == 1;
  OPENSSL_free(der);
  if (!ok) return openssl_failure("encoding the identity");
  Asn1Object oid(OBJ_txt2obj(std::string(kIdentityExtensionOid).c_str(), 1));
  Extension ext(oid ? X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 0, value.get()) : nullptr);
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return openssl_failure("adding the identity extension");
  return Status::ok();
}

Status sign(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, digest_for(key)) <= 0) return openssl_failure("signing the certificate");
  return Status::ok();
}

Result<X509Ptr> build_ca_certificate(EVP_PKEY* key, const CaOptions& options, Instant not_before,
                                     Instant not_after) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
    return openssl_failure("creating the CA certificate");
  Result<Asn1Integer> serial = random_serial();
  if (!serial) return serial.status();
  if (X509_set_serialNumber(cert.get(), serial->get()) != 1)
    return openssl_failure("setting the serial number");
  if (Status s = set_validity(cert.get(), not_before, not_after); !s) return s;
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (Status s = add_name_entry(name, "CN", options.name); !s) return s;
  if (X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key) != 1)
    return openssl_failure("building the CA certificate");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}})
    if (Status s = add_extension(cert.get(), &ctx, nid, value); !s) return s;
  if (Status s = sign(cert.get(), key); !s) return s;
  return cert;
}

Result<X509Ptr> build_certificate(const Ca& ca, EVP_PKEY* key, const Subject& subject,
                                  const std::string& identity, Instant not_before,
                                  Instant not_after) {
  const bool broker = std::binary_search(subject.roles.begin(), subject.roles.end(), kBrokerRole);
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
    return openssl_failure("creating the certificate");
  Result<Asn1Integer> serial = random_serial();
  if (!serial) return serial.status();
  if (X509_set_serialNumber(cert.get(), serial->get()) != 1)
    return openssl_failure("setting the serial number");
  if (Status s = set_validity(cert.get(), not_before, not_after); !s) return s;
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (subject.country)
    if (Status s = add_name_entry(name, "C", *subject.country); !s) return s;
  if (auto org = subject.attributes.find(std::string(kOrganisationAttribute));
      org != subject.attributes.end())
    if (Status s = add_name_entry(name, "O", org->second.front()); !s) return s;
  if (Status s = add_name_entry(name, "CN", subject.name); !s) return s;
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.cert.get())) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1)
    return openssl_failure("building the certificate");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, "critical,CA:FALSE"},
        std::pair{NID_key_usage, "critical,digitalSignature"},
        std::pair{NID_ext_key_usage, broker ? "serverAuth,clientAuth" : "clientAuth"},
        std::pair{NID_subject_key_identifier, "hash"},
        std::pair{NID_authority_key_identifier, "keyid:always"}})
    if (Status s = add_extension(cert.get(), &ctx, nid, value); !s) return s;
  if (Status s = add_subject_alt_name(cert.get(), subject, broker); !s) return s;
  if (Status s = add_identity_extension(cert.get(), identity); !s) return s;
  if (Status s = sign(cert.get(), ca.key.get()); !s) return s;
  return cert;
}

long reason_code(std::string_view reason) {
  for (auto [name, code] : kReasons)
    if (name == reason) return code;
  return 0;
}

// Builds, signs and writes crl.pem from the index, with the next CRL number (saved first, so a
// number is never used twice even if writing crl.pem fails). The caller holds the lock.
Result<CrlInfo> write_crl_locked(const fs::path& dir, const Ca& ca, CaIndex& index, int days,
                                 Instant now) {
  if (Status s = check_days(days, "the CRL's validity"); !s) return s;
  CrlInfo info;
  info.crl_pem = dir / "crl.pem";
  info.number = ++index.crl_number;
  info.this_update = whole_seconds(now);
  info.next_update = plus_days(info.this_update, days);
  if (Status s = save_index(dir, index); !s) return s;

  X509CrlPtr crl(X509_CRL_new());
  if (!crl || X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.cert.get())) != 1)
    return openssl_failure("creating the CRL");
  Result<Asn1Time> this_update = asn1_time(info.this_update);
  if (!this_update) return this_update.status();
  Result<Asn1Time> next_update = asn1_time(info.next_update);
  if (!next_update) return next_update.status();
  if (X509_CRL_set1_lastUpdate(crl.get(), this_update->get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update->get()) != 1)
    return openssl_failure("setting the CRL's dates");
  for (const IndexEntry& e : index.certificates) {
    if (!e.revoked) continue;
    Result<Asn1Integer> serial = serial_from_hex(e.serial_hex);
    if (!serial) return serial.status();
    Result<Asn1Time> when = asn1_time(*e.revoked);
    if (!when) return when.status();
    Revocation r(X509_REVOKED_new());
    if (!r || X509_REVOKED_set_serialNumber(r.get(), serial->get()) != 1 ||
        X509_REVOKED_set_revocationDate(r.get(), when->get()) != 1)
      return openssl_failure("adding a revoked certificate to the CRL");
    // RFC 5280 5.3.1: leave the reason code out rather than write "unspecified".
    if (const long code = reason_code(e.reason); code != 0) {
      Asn1Enumerated reason(ASN1_ENUMERATED_new());
      if (!reason || ASN1_ENUMERATED_set(reason.get(), code) != 1 ||
          X509_REVOKED_add1_ext_i2d(r.get(), NID_crl_reason, reason.get(), 0, 0) != 1)
        return openssl_failure("adding a revocation reason to the CRL");
    }
    if (X509_CRL_add0_revoked(crl.get(), r.get()) != 1)
      return openssl_failure("adding a revoked certificate to the CRL");
    r.release();  // owned by the CRL now
    ++info.revoked;
  }
  X509_CRL_sort(crl.get());
  Asn1Integer number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), info.number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1)
    return openssl_failure("adding the CRL number");
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca.cert.get(), nullptr, nullptr, crl.get(), 0);
  Extension aki(X509V3_EXT_nconf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1)
    return openssl_failure("adding the CRL's authority key identifier");
  if (X509_CRL_sign(crl.get(), ca.key.get(), digest_for(ca.key.get())) <= 0)
    return openssl_failure("signing the CRL");
  if (Status s = write_file_atomic(info.crl_pem, to_pem(crl.get()), kPublicMode, Overwrite::kYes);
      !s)
    return s;
  return info;
}

const SystemClock& system_clock() {
  static const SystemClock clock;
  return clock;
}

}  // namespace

Result<KeyType> parse_key_type(std::string_view text) {
  if (text == "p256") return KeyType::kP256;
  if (text == "ed25519") return KeyType::kEd25519;
  return Status::invalid_argument("unknown key type \"" + std::string(text) +
                                  "\" (known: p256, ed25519)");
}

std::string_view to_string(KeyType type) {
  return type == KeyType::kEd25519 ? "ed25519" : "p256";
}

Status check_revocation_reason(std::string_view reason) {
  for (const auto& known : kReasons)
    if (known.first == reason) return Status::ok();
  return Status::invalid_argument(
      "unknown revocation reason \"" + std::string(reason) +
      "\" (known: unspecified, keyCompromise, affiliationChanged, superseded, "
      "cessationOfOperation, privilegeWithdrawn)");
}

Result<CaFiles> init_ca(const fs::path& dir, const CaOptions& options, const Clock& clock) {
  if (Status s = check_days(options.days, "the CA's validity"); !s) return s;
  if (Status s = check_days(options.crl_days, "the CRL's validity"); !s) return s;
  if (options.name.empty() || options.name.size() > 64 || !is_valid_utf8(options.name))
    return Status::invalid_argument("the CA's name must be 1 to 64 bytes of UTF-8");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::failed_precondition(dir.string() + ": " + ec.message());
  Result<DirLock> lock = DirLock::acquire(dir);
  if (!lock) return lock.status();

  CaFiles files{dir / "ca.pem", dir / "ca.key", dir / "crl.pem", dir / kIndexFile, {}, {}, {}};
  if (!options.force && fs::exists(files.ca_key, ec))
    return Status::failed_precondition(
        files.ca_key.string() +
        " exists already: this folder holds a CA (--force replaces it, and every certificate "
        "the old CA issued stops verifying)");
  Result<EvpPkeyPtr> key = generate_key(options.key_type);
  if (!key) return key.status();
  files.not_before = whole_seconds(clock.now());
  files.not_after = plus_days(files.not_before, options.days);
  Result<X509Ptr> cert =
      build_ca_certificate(key->get(), options, files.not_before, files.not_after);
  if (!cert) return cert.status();
  files.serial_hex = serial_hex(cert->get());

  // The key first: a folder with ca.pem but no ca.key would look like a CA that cannot sign.
  if (Status s = write_private_key(files.ca_key, key->get(),
                                   options.force ? Overwrite::kYes : Overwrite::kNo);
      !s)
    return s;
  if (Status s = write_file_atomic(files.ca_pem, to_pem(cert->get()), kPublicMode, Overwrite::kYes);
      !s)
    return s;
  CaIndex index;  // a new CA starts a new index: the old one's serials mean nothing to it
  Ca ca{std::move(*cert), std::move(*key)};
  Result<CrlInfo> crl = write_crl_locked(dir, ca, index, options.crl_days, clock.now());
  if (!crl) return crl.status();
  return files;
}

Result<CaFiles> init_ca(const fs::path& dir, const CaOptions& options) {
  return init_ca(dir, options, system_clock());
}

Result<Issued> issue(const fs::path& ca_dir, const IssueRequest& request, const fs::path& out_dir,
                     const Clock& clock) {
  Result<Subject> subject =
      canonical_subject(Subject{request.name, request.roles, request.country, request.attributes});
  if (!subject) return subject.status();
  if (!request.not_before || !request.not_after)
    if (Status s = check_days(request.days, "a certificate's validity"); !s) return s;
  Issued issued;
  issued.not_before = whole_seconds(request.not_before.value_or(clock.now()));
  issued.not_after =
      whole_seconds(request.not_after.value_or(plus_days(issued.not_before, request.days)));
  if (issued.not_after <= issued.not_before)
    return Status::invalid_argument("the certificate's validity ends (" +
                                    format_rfc3339(issued.not_after) + ") before it begins (" +
                                    format_rfc3339(issued.not_before) + ")");
  Result<std::string> identity = identity_json(*subject);
  if (!identity) return identity.status();

  issued.cert_pem = out_dir / "cert.pem";
  issued.key_pem = out_dir / "key.pem";
  issued.ca_pem = out_dir / "ca.pem";
  std::error_code ec;
  if (!request.force)
    for (const fs::path& p : {issued.key_pem, issued.cert_pem})
      if (fs::exists(p, ec))
        return Status::failed_precondition(p.string() + " exists already (--force replaces it)");

  Result<DirLock> lock = lock_ca(ca_dir);
  if (!lock) return lock.status();
  Result<Ca> ca = load_ca(ca_dir);
  if (!ca) return ca.status();
  Result<CaIndex> index = load_index(ca_dir);
  if (!index) return index.status();

  Result<EvpPkeyPtr> key = generate_key(request.key_type);
  if (!key) return key.status();
  Result<X509Ptr> cert =
      build_certificate(*ca, key->get(), *subject, *identity, issued.not_before, issued.not_after);
  if (!cert) return cert.status();
  Result<Identity> id = read_identity(cert->get());
  if (!id)
    return Status::internal("the new certificate does not read back: " + id.status().message());
  issued.identity = std::move(*id);

  // Recorded before it is handed out: an index entry for a certificate never written is
  // harmless, a certificate the index does not know could not be listed in the CRL by serial.
  index->certificates.push_back(IndexEntry{issued.identity.serial_hex,
                                           subject->name,
                                           subject->roles,
                                           issued.not_before,
                                           issued.not_after,
                                           std::nullopt,
                                           {}});
  if (Status s = save_index(ca_dir, *index); !s) return s;

  fs::create_directories(out_dir, ec);
  if (ec) return Status::failed_precondition(out_dir.string() + ": " + ec.message());
  const Overwrite overwrite = request.force ? Overwrite::kYes : Overwrite::kNo;
  if (Status s = write_private_key(issued.key_pem, key->get(), overwrite); !s) return s;
  if (Status s = write_file_atomic(issued.cert_pem, to_pem(cert->get()), kPublicMode, overwrite);
      !s)
    return s;
  if (Status s =
          write_file_atomic(issued.ca_pem, to_pem(ca->cert.get()), kPublicMode, Overwrite::kYes);
      !s)
    return s;
  return issued;
}

Result<Issued> issue(const fs::path& ca_dir, const IssueRequest& request, const fs::path& out_dir) {
  return issue(ca_dir, request, out_dir, system_clock());
}

Result<Revoked> revoke(const fs::path& ca_dir, const fs::path& cert_file,
                       const RevokeOptions& options, const Clock& clock) {
  if (Status s = check_revocation_reason(options.reason); !s) return s;
  if (Status s = check_days(options.crl_days, "the CRL's validity"); !s) return s;
  Result<X509Ptr> cert = load_certificate(cert_file);
  if (!cert) return cert.status();

  Result<DirLock> lock = lock_ca(ca_dir);
  if (!lock) return lock.status();
  Result<Ca> ca = load_ca(ca_dir);
  if (!ca) return ca.status();
  EVP_PKEY* ca_public = X509_get0_pubkey(ca->cert.get());
  if (!ca_public || X509_verify(cert->get(), ca_public) != 1) {
    openssl_error();
    return Status::invalid_argument(cert_file.string() + ": not issued by this CA (its signature " +
                                    "does not verify with " + (ca_dir / "ca.pem").string() + ")");
  }
  if (X509_cmp(cert->get(), ca->cert.get()) == 0)
    return Status::invalid_argument(cert_file.string() +
                                    ": the CA's own certificate cannot be revoked in its own CRL; "
                                    "to retire the CA, replace it (init --force)");
  Result<CaIndex> index = load_index(ca_dir);
  if (!index) return index.status();

  Revoked out;
  out.serial_hex = serial_hex(cert->get());
  IndexEntry* entry = index->find(out.serial_hex);
  if (!entry) {
    // Signed by this CA but not in the index (issued by hand, or the index was restored from a
    // backup): record it now so that the CRL can list it.
    IndexEntry e;
    e.serial_hex = out.serial_hex;
    Result<Identity> id = read_identity(cert->get());
    if (id) {
      e.name = id->name;
      e.roles = id->roles;
    }
    e.not_before = to_instant(X509_get0_notBefore(cert->get()));
    e.not_after = to_instant(X509_get0_notAfter(cert->get()));
    index->certificates.push_back(std::move(e));
    entry = &index->certificates.back();
  }
  out.name = entry->name;
  out.already_revoked = entry->revoked.has_value();
  if (!out.already_revoked) {
    entry->revoked = whole_seconds(clock.now());
    entry->reason = options.reason;
  }
  out.revoked_at = *entry->revoked;
  out.reason = entry->reason;
  // write_crl_locked saves the index (with the revocation) before it writes crl.pem.
  Result<CrlInfo> crl = write_crl_locked(ca_dir, *ca, *index, options.crl_days, clock.now());
  if (!crl) return crl.status();
  out.crl = *crl;
  return out;
}

Result<Revoked> revoke(const fs::path& ca_dir, const fs::path& cert_file,
                       const RevokeOptions& options) {
  return revoke(ca_dir, cert_file, options, system_clock());
}

Result<CrlInfo> write_crl(const fs::path& ca_dir, int days, const Clock& clock) {
  if (Status s = check_days(days, "the CRL's validity"); !s) return s;
  Result<DirLock> lock = lock_ca(ca_dir);
  if (!lock) return lock.status();
  Result<Ca> ca = load_ca(ca_dir);
  if (!ca) return ca.status();
  Result<CaIndex> index = load_index(ca_dir);
  if (!index) return index.status();
  return write_crl_locked(ca_dir, *ca, *index, days, clock.now());
}

Result<CrlInfo> write_crl(const fs::path& ca_dir, int days) {
  return write_crl(ca_dir, days, system_clock());
}

}  // namespace dsx::certs
