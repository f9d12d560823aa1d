#pragma once
// What the DSP 2025-1 JSON codecs (negotiation_messages.cpp, transfer_messages.cpp) share:
// reading a message's members with their JSON path for error messages, the envelope every
// message has ("@context", "@type", the two process ids), the optional explanation (code,
// reason) of terminations, suspensions and errors, and the process-state reply. Internal to
// protocol/: include it from its .cpp files only. Pure functions; a Fields borrows the object it
// reads and must not outlive it.
//
// The readings shared by every DSP message (the codecs' files list the rest):
//
//  R1 "@context": the schemas want an array of strings that includes the 2025-1 context. A single
//     string equal to it means the same in JSON-LD and is accepted too; we write the array.
//  R9 "reason" (termination, suspension, error): when present, an array of at least one item of
//     any JSON type (schema: minItems 1, items {}); kept as JSON.
//  R10 Process ids and callback addresses are non-empty strings (the schemas say string; an
//     empty id names nothing). The error bodies are the exception: their pids are required but
//     may be empty, since a refused message may have named none.

#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dsx::protocol::detail {

// `text` in quotes for an error message, cut at a UTF-8 character boundary when long (the
// message may end up in a JSON reply, which must stay valid UTF-8).
std::string quote(std::string_view text);
// "an object", "a string", "null", ... for "expected X, not Y".
std::string describe(const nlohmann::json& v);

Status bad(const std::string& field, std::string_view what);  // "field: what"
Status wrong_type(const std::string& field, std::string_view expected, const nlohmann::json& v);

// The members of one JSON object, read with their path ("offer.@id") for error messages.
class Fields {
 public:
  Fields(const nlohmann::json& obj, std::string prefix) : obj_(obj), prefix_(std::move(prefix)) {}

  std::string path(const char* key) const { return prefix_ + key; }
  const nlohmann::json* find(const char* key) const;

  // A required non-empty string (R10).
  Status id(const char* key, std::string& out) const;
  // A non-empty string when present.
  Status optional_id(const char* key, std::optional<std::string>& out) const;
  // A required string, possibly empty.
  Status string(const char* key, std::string& out) const;
  // Any string when present.
  Status optional_string(const char* key, std::optional<std::string>& out) const;
  // "@type" equal to `expected`; `required` or else only checked when present.
  Status type(std::string_view expected, bool required) const;
  // R9: absent, or an array of at least one item.
  Status reasons(const char* key, std::vector<nlohmann::json>& out) const;

 private:
  Status non_empty(const char* key, const nlohmann::json& v, std::string& out) const;

  const nlohmann::json& obj_;
  std::string prefix_;
};

// The parts every message shares: an object, "@context" (R1) and "@type".
Status check_envelope(const nlohmann::json& doc, std::string_view type);

// The "@type" of `doc`, which may be any of a process's messages (`what`: "a transfer process
// message"), to choose its reader.
Result<std::string> message_type(const nlohmann::json& doc, std::string_view what);

// Runs a reader; a JSON accessor misused on hostile input is a bug, but never a crash.
template <typename T>
Result<T> guarded(const char* what, Result<T> (*reader)(const nlohmann::json&),
                  const nlohmann::json& doc) {
  try {
    return reader(doc);
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("unreadable ") + what + ": " + e.what());
  }
}

// A reader's result as the variant of a process's messages.
template <typename Variant, typename T>
Result<Variant> as_variant(Result<T> r) {
  if (!r) return r.status();
  return Variant(std::move(*r));
}

// Both process ids, as every message after the first carries them (R10).
Status read_pids(const Fields& f, std::string& provider_pid, std::string& consumer_pid);

// A message of the two process ids and nothing else DSP defines (T: provider_pid, consumer_pid).
template <typename T>
Result<T> read_pids_message(const nlohmann::json& doc, std::string_view type) {
  if (Status s = check_envelope(doc, type); !s) return s;
  T m;
  if (Status s = read_pids(Fields(doc, ""), m.provider_pid, m.consumer_pid); !s) return s;
  return m;
}

// A termination or suspension: both ids and the optional explanation (T: provider_pid,
// consumer_pid, code, reason). With `error_body`, an error body, whose ids may be empty (R10).
template <typename T>
Result<T> read_explained(const nlohmann::json& doc, std::string_view type,
                         bool error_body = false) {
  if (Status s = check_envelope(doc, type); !s) return s;
  Fields f(doc, "");
  T m;
  Status s = error_body ? f.string("providerPid", m.provider_pid)
                        : read_pids(f, m.provider_pid, m.consumer_pid);
  if (s && error_body) s = f.string("consumerPid", m.consumer_pid);
  if (s) s = f.optional_string("code", m.code);
  if (s) s = f.reasons("reason", m.reason);
  if (!s) return s;
  return m;
}

// A required string member that `parse` maps to one of an enum's values; `what` names the
// values for a refusal ("a transfer process state", "ACCEPTED or FINALIZED").
template <typename E>
Status read_enum(const Fields& f, const char* key, std::optional<E> (*parse)(std::string_view),
                 std::string_view what, E& out) {
  std::string text;
  if (Status s = f.string(key, text); !s) return s;
  std::optional<E> value = parse(text);
  if (!value) return bad(f.path(key), quote(text) + " is not " + std::string(what));
  out = *value;
  return Status::ok();
}

// The process as its GET and ACK bodies show it (T: provider_pid, consumer_pid, state).
// `parse_state` reads the wire name; `what` names the states for a refusal.
template <typename T, typename State>
Result<T> read_process(const nlohmann::json& doc, std::string_view type,
                       std::optional<State> (*parse_state)(std::string_view),
                       std::string_view what) {
  if (Status s = check_envelope(doc, type); !s) return s;
  Fields f(doc, "");
  T m;
  Status s = read_pids(f, m.provider_pid, m.consumer_pid);
  if (s) s = read_enum(f, "state", parse_state, what, m.state);
  if (!s) return s;
  return m;
}

// Writers. The envelope: "@context" (as an array) and "@type".
nlohmann::json envelope(std::string_view type);
// The envelope with both process ids, which every message after the first carries.
nlohmann::json envelope(std::string_view type, const std::string& provider_pid,
                        const std::string& consumer_pid);
// `key` set to `value` when it holds one.
void put(nlohmann::json& j, const char* key, const std::optional<std::string>& value);
// `j` with "code" and "reason" when present.
nlohmann::json with_explanation(nlohmann::json j, const std::optional<std::string>& code,
                                const std::vector<nlohmann::json>& reason);

// What read_explained reads.
template <typename T>
nlohmann::json write_explained(std::string_view type, const T& m) {
  return with_explanation(envelope(type, m.provider_pid, m.consumer_pid), m.code, m.reason);
}

// What read_process reads; the state's wire name comes from its to_string().
template <typename T>
nlohmann::json write_process(std::string_view type, const T& m) {
  nlohmann::json j = envelope(type, m.provider_pid, m.consumer_pid);
  j["state"] = std::string(to_string(m.state));
  return j;
}

}  // namespace dsx::protocol::detail
