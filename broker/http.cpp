#include "broker/http.h"

#include <charconv>
#include <variant>

#include "common/json.h"

namespace dsx::broker {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; `plus_is_space` for query components (application/x-www-form-urlencoded).
std::optional<std::string> decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() + 0 && i + 2 > s.size() - 1) return std::nullopt;
      const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Result<std::optional<uint64_t>> HttpRequest::query_u64(std::string_view key) const {
  auto it = query.find(key);
  if (it == query.end()) return std::optional<uint64_t>();
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty())
    return Status::invalid_argument("query parameter " + std::string(key) +
                                    ": expected an unsigned integer, got \"" + s + "\"");
  return std::optional<uint64_t>(v);
}

Status parse_target(std::string_view target, HttpRequest& out) {
  const size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.empty() || path[0] != '/')
    return Status::invalid_argument("the request target must be an absolute path");
  auto decoded = decode(path, false);
  if (!decoded) return Status::invalid_argument("malformed percent-escape in the path");
  out.path = std::move(*decoded);
  out.query.clear();
  if (q == std::string_view::npos) return Status::ok();
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = decode(pair.substr(0, eq), true);
    auto value = decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return Status::invalid_argument("malformed percent-escape in the query");
    out.query[*key] = std::move(*value);
  }
  return Status::ok();
}

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

HttpResponse error_response(int status, std::string_view type, std::string_view code,
                            std::vector<std::string> reasons) {
  const std::string full_code = std::to_string(status) + ":" + std::string(code);
  HttpResponse r = json_response(status, {{"@context", {kDspContext}},
                                          {"@type", type},
                                          {"code", full_code},
                                          {"reason", std::move(reasons)}});
  r.error_code = std::string(code);
  return r;
}

HttpResponse status_response(const Status& s, std::string_view type, std::string_view code) {
  int status = 500;
  switch (s.code()) {
    case Status::Code::kInvalidArgument:
      status = 400;
      break;
    case Status::Code::kNotFound:
      status = 404;
      break;
    case Status::Code::kFailedPrecondition:
      status = 409;
      break;
    default:
      break;
  }
  return error_response(status, type, code, {s.message()});
}

std::variant<nlohmann::json, HttpResponse> parse_json_body(const HttpRequest& r,
                                                           std::string_view error_type) {
  if (!r.content_type.empty()) {
    std::string_view ct = r.content_type;
    ct = ct.substr(0, ct.find(';'));
    while (!ct.empty() && ct.back() == ' ')
      ct.remove_suffix(1);
    if (ct != "application/json" && ct != "application/ld+json")
      return error_response(415, error_type, "unsupported-media-type",
                            {"the body must be application/json, not " + r.content_type});
  }
  auto doc = parse_json_text(r.body);
  if (!doc)
    return error_response(400, error_type, "invalid-json",
                          {"the body is not JSON: " + doc.status().message()});
  return std::move(*doc);
}

}  // namespace dsx::broker
