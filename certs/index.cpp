#include "certs/index.h"

#include <nlohmann/json.hpp>

#include "certs/atomic_file.h"
#include "common/json.h"

namespace dsx::certs {
namespace {

constexpr int kIndexVersion = 1;

Result<Instant> read_time(const nlohmann::json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end() || !it->is_string())
    return Status::invalid_argument(std::string(key) + ": missing or not a string");
  std::optional<Instant> t = parse_xsd_date_time(it->get<std::string>());
  if (!t) return Status::invalid_argument(std::string(key) + ": not an RFC 3339 time");
  return *t;
}

Result<std::string> read_string(const nlohmann::json& entry, const char* key) {
  auto it = entry.find(key);
  if (it == entry.end() || !it->is_string())
    return Status::invalid_argument(std::string(key) + ": missing or not a string");
  return it->get<std::string>();
}

Result<IndexEntry> read_entry(const nlohmann::json& j) {
  if (!j.is_object()) return Status::invalid_argument("not an object");
  IndexEntry e;
  Result<std::string> serial = read_string(j, "serial");
  if (!serial) return serial.status();
  e.serial_hex = *serial;
  Result<std::string> name = read_string(j, "name");
  if (!name) return name.status();
  e.name = *name;
  auto roles = j.find("roles");
  if (roles == j.end() || !roles->is_array())
    return Status::invalid_argument("roles: missing or not a list");
  for (const nlohmann::json& r : *roles) {
    if (!r.is_string()) return Status::invalid_argument("roles: not a list of strings");
    e.roles.push_back(r.get<std::string>());
  }
  Result<Instant> not_before = read_time(j, "notBefore");
  if (!not_before) return not_before.status();
  e.not_before = *not_before;
  Result<Instant> not_after = read_time(j, "notAfter");
  if (!not_after) return not_after.status();
  e.not_after = *not_after;
  if (j.contains("revoked")) {
    Result<Instant> revoked = read_time(j, "revoked");
    if (!revoked) return revoked.status();
    e.revoked = *revoked;
    Result<std::string> reason = read_string(j, "reason");
    if (!reason) return reason.status();
    e.reason = *reason;
  }
  return e;
}

}  // namespace

IndexEntry* CaIndex::find(std::string_view serial_hex) {
  for (IndexEntry& e : certificates)
    if (e.serial_hex == serial_hex) return &e;
  return nullptr;
}

std::string index_json(const CaIndex& index) {
  nlohmann::json list = nlohmann::json::array();
  for (const IndexEntry& e : index.certificates) {
    nlohmann::json j = {{"serial", e.serial_hex},
                        {"name", e.name},
                        {"roles", e.roles},
                        {"notBefore", format_rfc3339(e.not_before)},
                        {"notAfter", format_rfc3339(e.not_after)}};
    if (e.revoked) {
      j["revoked"] = format_rfc3339(*e.revoked);
      j["reason"] = e.reason;
    }
    list.push_back(std::move(j));
  }
  nlohmann::json doc = {
      {"version", kIndexVersion}, {"crlNumber", index.crl_number}, {"certificates", list}};
  // Names and roles were checked when issued (ASCII); dump cannot meet invalid UTF-8 here.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<CaIndex> parse_index(std::string_view text) {
  Result<nlohmann::json> parsed = parse_json_text(text);
  if (!parsed) return parsed.status();
  const nlohmann::json& doc = *parsed;
  if (!doc.is_object()) return Status::invalid_argument("not a JSON object");
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() || *version != kIndexVersion)
    return Status::invalid_argument("version: expected 1");
  CaIndex index;
  auto number = doc.find("crlNumber");
  if (number == doc.end() || !number->is_number_unsigned())
    return Status::invalid_argument("crlNumber: missing or not a non-negative integer");
  index.crl_number = number->get<uint64_t>();
  auto list = doc.find("certificates");
  if (list == doc.end() || !list->is_array())
    return Status::invalid_argument("certificates: missing or not a list");
  for (size_t i = 0; i < list->size(); ++i) {
    Result<IndexEntry> e = read_entry((*list)[i]);
    if (!e)
      return Status::invalid_argument("certificates[" + std::to_string(i) +
                                      "]: " + e.status().message());
    index.certificates.push_back(std::move(*e));
  }
  return index;
}

Result<CaIndex> load_index(const std::filesystem::path& ca_dir) {
  const std::filesystem::path path = ca_dir / kIndexFile;
  Result<std::string> text = read_text_file(path);
  if (!text) return text.status();
  Result<CaIndex> index = parse_index(*text);
  if (!index) return Status::invalid_argument(path.string() + ": " + index.status().message());
  return index;
}

Status save_index(const std::filesystem::path& ca_dir, const CaIndex& index) {
  using std::filesystem::perms;
  return write_file_atomic(
      ca_dir / kIndexFile, index_json(index),
      perms::owner_read | perms::owner_write | perms::group_read | perms::others_read,
      Overwrite::kYes);
}

}  // namespace dsx::certs
