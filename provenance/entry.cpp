#include "provenance/entry.h"

#include "common/json.h"
#include "provenance/canonical_json.h"

namespace dsx::provenance {

Result<PreparedEntry> prepare(const Entry& e) {
  // Member by member in canonical order (action, actor, details, seq, subjects, time), without
  // copying the details into a new document.
  PreparedEntry p;
  std::string& head = p.head;
  std::string& tail = p.tail;
  Status s;
  head += "{\"action\":";
  s = append_canonical_json(nlohmann::json(e.action), head);
  head += ",\"actor\":";
  if (s) s = append_canonical_json(nlohmann::json(e.actor), head);
  head += ",\"details\":";
  if (s) s = append_canonical_json(e.details, head);
  head += ",\"seq\":";
  tail += ",\"subjects\":";
  if (s) s = append_canonical_json(nlohmann::json(e.subjects), tail);
  tail += ",\"time\":";
  if (s) s = append_canonical_json(nlohmann::json(format_rfc3339(e.time)), tail);
  tail += '}';
  if (!s) return s;
  return p;
}

std::string PreparedEntry::with_seq(uint64_t seq) const {
  std::string out;
  out.reserve(head.size() + 20 + tail.size());
  out += head;
  out += std::to_string(seq);
  out += tail;
  return out;
}

Result<std::string> canonical(const Entry& e) {
  Result<PreparedEntry> p = prepare(e);
  if (!p) return p.status();
  return p->with_seq(e.seq);
}

Result<Entry> parse_entry(std::string_view text) {
  Result<nlohmann::json> doc = parse_json_text(text);
  if (!doc) return doc.status();
  const nlohmann::json& j = *doc;
  if (!j.is_object()) return Status::invalid_argument("(root): an entry is a JSON object");
  Entry e;
  auto seq = j.find("seq");
  if (seq == j.end() || !seq->is_number_unsigned())
    return Status::invalid_argument("seq: expected an unsigned integer");
  e.seq = seq->get<uint64_t>();
  auto time = j.find("time");
  if (time == j.end() || !time->is_string())
    return Status::invalid_argument("time: expected an RFC 3339 time");
  auto t = parse_xsd_date_time(time->get<std::string>());
  if (!t) return Status::invalid_argument("time: expected an RFC 3339 time");
  e.time = *t;
  for (auto [field, out] : {std::pair{"actor", &e.actor}, std::pair{"action", &e.action}}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string())
      return Status::invalid_argument(std::string(field) + ": expected a string");
    *out = it->get<std::string>();
  }
  auto subjects = j.find("subjects");
  if (subjects == j.end() || !subjects->is_array())
    return Status::invalid_argument("subjects: expected an array of strings");
  for (const auto& s : *subjects) {
    if (!s.is_string()) return Status::invalid_argument("subjects: expected an array of strings");
    e.subjects.push_back(s.get<std::string>());
  }
  auto details = j.find("details");
  if (details == j.end() || !details->is_object())
    return Status::invalid_argument("details: expected an object");
  e.details = *details;
  return e;
}

}  // namespace dsx::provenance
