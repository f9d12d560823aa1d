// The pieces the DSP 2025-1 JSON codecs share; see dsp_json.h.

#include "protocol/dsp_json.h"

#include "protocol/dsp.h"

namespace dsx::protocol::detail {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxEcho = 64;  // bytes of a refused value repeated in an error message

}  // namespace

std::string quote(std::string_view text) {
  if (text.size() <= kMaxEcho) return "\"" + std::string(text) + "\"";
  size_t n = kMaxEcho;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;
  return "\"" + std::string(text.substr(0, n)) + "...\"";
}

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::null:
      return "null";
    default:
      return "not JSON";
  }
}

Status bad(const std::string& field, std::string_view what) {
  return Status::invalid_argument(field + ": " + std::string(what));
}

Status wrong_type(const std::string& field, std::string_view expected, const json& v) {
  return bad(field, "expected " + std::string(expected) + ", not " + describe(v));
}

const json* Fields::find(const char* key) const {
  auto it = obj_.find(key);
  return it == obj_.end() ? nullptr : &*it;
}

Status Fields::id(const char* key, std::string& out) const {
  const json* v = find(key);
  if (!v) return bad(path(key), "missing");
  return non_empty(key, *v, out);
}

Status Fields::optional_id(const char* key, std::optional<std::string>& out) const {
  out.reset();
  const json* v = find(key);
  if (!v) return Status::ok();
  std::string s;
  Status status = non_empty(key, *v, s);
  if (status) out = std::move(s);
  return status;
}

Status Fields::string(const char* key, std::string& out) const {
  const json* v = find(key);
  if (!v) return bad(path(key), "missing");
  if (!v->is_string()) return wrong_type(path(key), "a string", *v);
  out = v->get_ref<const std::string&>();
  return Status::ok();
}

Status Fields::optional_string(const char* key, std::optional<std::string>& out) const {
  out.reset();
  const json* v = find(key);
  if (!v) return Status::ok();
  if (!v->is_string()) return wrong_type(path(key), "a string", *v);
  out = v->get_ref<const std::string&>();
  return Status::ok();
}

Status Fields::type(std::string_view expected, bool required) const {
  const json* v = find("@type");
  if (!v) return required ? bad(path("@type"), "missing") : Status::ok();
  if (!v->is_string()) return wrong_type(path("@type"), "a string", *v);
  const std::string& t = v->get_ref<const std::string&>();
  if (t != expected) return bad(path("@type"), quote(t) + " is not " + std::string(expected));
  return Status::ok();
}

Status Fields::reasons(const char* key, std::vector<json>& out) const {
  out.clear();
  const json* v = find(key);
  if (!v) return Status::ok();
  if (!v->is_array()) return wrong_type(path(key), "an array", *v);
  if (v->empty()) return bad(path(key), "must hold at least one item when present");
  out.assign(v->begin(), v->end());
  return Status::ok();
}

Status Fields::non_empty(const char* key, const json& v, std::string& out) const {
  if (!v.is_string()) return wrong_type(path(key), "a string", v);
  if (v.get_ref<const std::string&>().empty()) return bad(path(key), "must not be empty");
  out = v.get_ref<const std::string&>();
  return Status::ok();
}

Status check_envelope(const json& doc, std::string_view type) {
  if (!doc.is_object())
    return bad("(root)", "a " + std::string(type) + " is a JSON object, not " + describe(doc));
  auto ctx = doc.find("@context");
  if (ctx == doc.end()) return bad("@context", "missing");
  if (ctx->is_string()) {
    const std::string& c = ctx->get_ref<const std::string&>();
    if (c != kDspContext) return bad("@context", quote(c) + " is not " + quote(kDspContext));
  } else if (ctx->is_array()) {
    bool found = false;
    for (size_t i = 0; i < ctx->size(); ++i) {
      const json& c = (*ctx)[i];
      if (!c.is_string()) return wrong_type("@context[" + std::to_string(i) + "]", "a string", c);
      if (c.get_ref<const std::string&>() == kDspContext) found = true;
    }
    if (!found) return bad("@context", "must include " + quote(kDspContext));
  } else {
    return wrong_type("@context", "an array of strings", *ctx);
  }
  return Fields(doc, "").type(type, true);
}

Result<std::string> message_type(const json& doc, std::string_view what) {
  if (!doc.is_object())
    return bad("(root)", std::string(what) + " is a JSON object, not " + describe(doc));
  std::string type;
  if (Status s = Fields(doc, "").string("@type", type); !s) return s;
  return type;
}

Status read_pids(const Fields& f, std::string& provider_pid, std::string& consumer_pid) {
  Status s = f.id("providerPid", provider_pid);
  if (s) s = f.id("consumerPid", consumer_pid);
  return s;
}

json envelope(std::string_view type) {
  json j = json::object();
  j["@context"] = json::array({std::string(kDspContext)});
  j["@type"] = std::string(type);
  return j;
}

json envelope(std::string_view type, const std::string& provider_pid,
              const std::string& consumer_pid) {
  json j = envelope(type);
  j["providerPid"] = provider_pid;
  j["consumerPid"] = consumer_pid;
  return j;
}

void put(json& j, const char* key, const std::optional<std::string>& value) {
  if (value) j[key] = *value;
}

json with_explanation(json j, const std::optional<std::string>& code,
                      const std::vector<json>& reason) {
  put(j, "code", code);
  if (!reason.empty()) j["reason"] = json(reason);
  return j;
}

}  // namespace dsx::protocol::detail
