#pragma once
// What may go into a dsx certificate, and the checks that enforce it with messages an operator
// can act on: participant names, broker host names and IP addresses, roles, the country code and
// the free attributes. The CA checks every request with these before it signs anything, and
// read_identity checks every certificate it reads with them. Pure functions; thread-safe.

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dsx::certs {

// The roles a certificate can carry; `broker` is the broker's own server certificate.
inline constexpr std::array<std::string_view, 5> kRoles = {"auditor", "broker", "consumer",
                                                           "operator", "provider"};
inline constexpr std::string_view kBrokerRole = "broker";

// Attribute name -> its values: one value, or several for a repeated --attr (a list).
using Attributes = std::map<std::string, std::vector<std::string>>;

inline constexpr size_t kMaxAttributeValueBytes = 256;
inline constexpr size_t kMaxAttributeKeyBytes = 64;
inline constexpr size_t kMaxAttributeValues = 64;  // in one certificate, over all keys
// The attribute that also becomes the subject's O=; X.520 bounds it to 64 characters.
inline constexpr std::string_view kOrganisationAttribute = "organisation";

// [A-Za-z0-9][A-Za-z0-9._-]{0,62}
Status check_participant_name(std::string_view name);
// An IPv4 or IPv6 address in its textual form (inet_pton), e.g. 127.0.0.1 or ::1.
bool is_ip_address(std::string_view name);
// A host name (RFC 1123 labels, at most 64 characters: it is also the CN) or an IP address.
Status check_host_name(std::string_view name);
Status check_role(std::string_view role);
// The shape of an ISO 3166-1 alpha-2 code: two upper-case ASCII letters ("DE", not "Germany").
Status check_country(std::string_view country);
// Key [a-z][a-zA-Z0-9_-]*; value non-empty valid UTF-8 of at most 256 bytes.
Status check_attribute(std::string_view key, std::string_view value);
bool is_valid_utf8(std::string_view text);

// "K=V" as given to --attr, split at the first '=' and checked.
Result<std::pair<std::string, std::string>> parse_attribute(std::string_view key_equals_value);

// Checks a whole request and puts it in canonical form: roles sorted without duplicates (at
// least one), each attribute's values sorted without duplicates; the organisation has one value
// of at most 64 characters. `name` is checked as a host name when the roles include broker.
struct Subject {
  std::string name;
  std::vector<std::string> roles;
  std::optional<std::string> country;
  Attributes attributes;
};
Result<Subject> canonical_subject(Subject subject);

}  // namespace dsx::certs
