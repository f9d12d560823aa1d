#include "certs/subject.h"

#include <arpa/inet.h>

#include <algorithm>

namespace dsx::certs {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Code points, for limits stated in characters; the text is valid UTF-8 already.
size_t characters(std::string_view utf8) {
  return static_cast<size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

}  // namespace

Status check_participant_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63 && is_alnum(name[0]) &&
            std::all_of(name.begin(), name.end(),
                        [](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; });
  if (ok) return Status::ok();
  return Status::invalid_argument(
      "bad participant name " + quoted(name) +
      ": 1 to 63 characters, letters, digits, '.', '_' and '-', starting with a letter or digit");
}

bool is_ip_address(std::string_view name) {
  std::string s(name);
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Status check_host_name(std::string_view name) {
  if (is_ip_address(name)) return Status::ok();
  bool ok = !name.empty() && name.size() <= 64;
  size_t start = 0;
  while (ok && start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    ok = !label.empty() && label.size() <= 63 && is_alnum(label.front()) &&
         is_alnum(label.back()) &&
         std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; });
    start = end + 1;
  }
  if (ok) return Status::ok();
  return Status::invalid_argument(
      "bad broker host name " + quoted(name) +
      ": a DNS name (labels of letters, digits and '-', separated by '.', at most 64 characters) "
      "or an IP address");
}

Status check_role(std::string_view role) {
  if (std::find(kRoles.begin(), kRoles.end(), role) != kRoles.end()) return Status::ok();
  return Status::invalid_argument("unknown role " + quoted(role) +
                                  " (known: provider, consumer, auditor, operator, broker)");
}

Status check_country(std::string_view country) {
  bool ok = country.size() == 2 && std::all_of(country.begin(), country.end(),
                                               [](char c) { return c >= 'A' && c <= 'Z'; });
  if (ok) return Status::ok();
  return Status::invalid_argument(
      "bad country " + quoted(country) +
      ": an ISO 3166-1 alpha-2 code, two upper-case letters such as DE");
}

bool is_valid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    size_t len;
    uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      cp = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      cp = b & 0x07u;
    } else {
      return false;
    }
    if (text.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = cp << 6 | (c & 0x3Fu);
    }
    // Overlong forms, UTF-16 surrogates and values beyond U+10FFFF are not UTF-8.
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

Status check_attribute(std::string_view key, std::string_view value) {
  bool key_ok = !key.empty() && key.size() <= kMaxAttributeKeyBytes && key[0] >= 'a' &&
                key[0] <= 'z' && std::all_of(key.begin(), key.end(), [](char c) {
                  return is_alnum(c) || c == '_' || c == '-';
                });
  if (!key_ok)
    return Status::invalid_argument(
        "bad attribute name " + quoted(key) +
        ": a lower-case letter, then letters, digits, '_' or '-' (at most 64)");
  if (key == "country")
    return Status::invalid_argument(
        "the country is not a free attribute: give it as the certificate's country");
  if (value.empty())
    return Status::invalid_argument("attribute " + std::string(key) + " has an empty value");
  if (value.size() > kMaxAttributeValueBytes)
    return Status::invalid_argument("attribute " + std::string(key) + ": the value has " +
                                    std::to_string(value.size()) + " bytes, at most " +
                                    std::to_string(kMaxAttributeValueBytes) + " are allowed");
  if (!is_valid_utf8(value))
    return Status::invalid_argument("attribute " + std::string(key) +
                                    ": the value is not valid UTF-8");
  return Status::ok();
}

Result<std::pair<std::string, std::string>> parse_attribute(std::string_view key_equals_value) {
  size_t eq = key_equals_value.find('=');
  if (eq == std::string_view::npos)
    return Status::invalid_argument("bad attribute " + quoted(key_equals_value) +
                                    ": expected KEY=VALUE, e.g. organisation=ACME");
  std::string key(key_equals_value.substr(0, eq));
  std::string value(key_equals_value.substr(eq + 1));
  if (Status s = check_attribute(key, value); !s) return s;
  return std::make_pair(std::move(key), std::move(value));
}

Result<Subject> canonical_subject(Subject s) {
  if (s.roles.empty())
    return Status::invalid_argument(
        "a certificate needs at least one role (provider, consumer, auditor, operator, broker)");
  for (const std::string& role : s.roles)
    if (Status st = check_role(role); !st) return st;
  sort_unique(s.roles);
  const bool broker = std::binary_search(s.roles.begin(), s.roles.end(), kBrokerRole);
  if (Status st = broker ? check_host_name(s.name) : check_participant_name(s.name); !st) return st;
  if (s.country)
    if (Status st = check_country(*s.country); !st) return st;
  size_t values = 0;
  for (auto& [key, list] : s.attributes) {
    if (list.empty()) return Status::invalid_argument("attribute " + key + " has no value");
    for (const std::string& v : list)
      if (Status st = check_attribute(key, v); !st) return st;
    sort_unique(list);
    values += list.size();
  }
  if (values > kMaxAttributeValues)
    return Status::invalid_argument("too many attribute values (" + std::to_string(values) +
                                    "), at most " + std::to_string(kMaxAttributeValues));
  if (auto org = s.attributes.find(std::string(kOrganisationAttribute));
      org != s.attributes.end()) {
    if (org->second.size() != 1)
      return Status::invalid_argument("a certificate names one organisation, not " +
                                      std::to_string(org->second.size()));
    if (characters(org->second[0]) > 64)
      return Status::invalid_argument(
          "the organisation is the subject's O= and has at most 64 characters");
  }
  return s;
}

}  // namespace dsx::certs
