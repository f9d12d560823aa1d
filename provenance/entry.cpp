#include "provenance/entry.h"

#include <charconv>

#include "common/json.h"
#include "provenance/canonical_json.h"

namespace dsx::provenance {

Result<PreparedEntry> prepare(const Entry& e) {
  // Member by member in canonical order (action, actor, details, seq, subjects, time). Only the
  // details go through a JSON value (the caller's); the strings are written as they are, without
  // copying them into temporary values: this runs once per append in the appending thread.
  PreparedEntry p;
  std::string& out = p.text;
  // Room for the members but the details, and 256 bytes for those: usually one allocation.
  size_t reserve = 256 + 64 + e.action.size() + e.actor.size();
  for (const std::string& subject : e.subjects)
    reserve += subject.size() + 3;
  out.reserve(reserve);
  Status s;
  out += "{\"action\":";
  s = append_canonical_string(e.action, out);
  out += ",\"actor\":";
  if (s) s = append_canonical_string(e.actor, out);
  out += ",\"details\":";
  if (s) s = append_canonical_json(e.details, out);
  out += ",\"seq\":";
  p.seq_at = out.size();
  out += ",\"subjects\":[";
  for (size_t i = 0; i < e.subjects.size() && s; ++i) {
    if (i > 0) out += ',';
    s = append_canonical_string(e.subjects[i], out);
  }
  out += "],\"time\":";
  if (s) s = append_canonical_string(format_rfc3339(e.time), out);
  out += '}';
  if (!s) return s;
  return p;
}

std::string PreparedEntry::with_seq(uint64_t seq) const {
  std::string out;
  with_seq(seq, out);
  return out;
}

void PreparedEntry::with_seq(uint64_t seq, std::string& out) const {
  char digits[20];  // 2^64 - 1 has 20 digits
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, seq);
  const std::string_view view(text);
  out.clear();
  out.reserve(text.size() + static_cast<size_t>(end - digits));
  out += view.substr(0, seq_at);
  out.append(digits, end);
  out += view.substr(seq_at);
}

std::string PreparedEntry::without_seq() const {
  // text[0, seq_at) ends with ,"seq": (7 bytes), and the rest begins with ,"subjects":
  constexpr size_t kSeqMember = 7;
  if (seq_at < kSeqMember || seq_at > text.size()) return std::string();  // not from prepare()
  const std::string_view view(text);
  std::string out;
  out.reserve(text.size());
  out += view.substr(0, seq_at - kSeqMember);
  out += view.substr(seq_at);
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
