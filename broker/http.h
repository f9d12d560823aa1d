#pragma once
// The broker's view of one HTTP exchange, independent of Beast: the server (broker/server.h)
// fills an HttpRequest from the wire and writes the HttpResponse a handler returns, so routes and
// services compile and test without the network stack. Plain values; the helpers are pure.
//
// Every error reply is JSON with a code and human-readable reasons, in the Dataspace Protocol's
// error shape (CatalogError, ContractNegotiationError, ... or plain "Error" outside DSP):
//   {"@context": [...], "@type": "CatalogError", "code": "400:invalid-json",
//    "reason": ["line 1, column 7: ..."]}

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace dsx::broker {

inline constexpr std::string_view kDspContext = "https://w3id.org/dspace/2025/1/context.jsonld";

struct HttpRequest {
  std::string method;                                     // "GET", "POST", ...
  std::string target;                                     // as received: path and query
  std::string path;                                       // percent-decoded path, no query
  std::map<std::string, std::string, std::less<>> query;  // decoded; the last of repeated keys
  std::string content_type;
  std::string host;  // the Host header, for links back to the broker
  std::string body;

  // The query parameter as an unsigned integer: nullopt when absent, an error when malformed.
  Result<std::optional<uint64_t>> query_u64(std::string_view key) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error_code;  // for errors: what went wrong, for logs and metrics
};

// Splits a request target into a decoded path and query; an error for malformed escapes.
Status parse_target(std::string_view target, HttpRequest& out);

HttpResponse json_response(int status, const nlohmann::json& body);
// `type` is the DSP error type ("CatalogError", ...) or "Error".
HttpResponse error_response(int status, std::string_view type, std::string_view code,
                            std::vector<std::string> reasons);
// A Status from a library, as a reply: invalid_argument -> 400, not_found -> 404, ...
HttpResponse status_response(const Status& s, std::string_view type, std::string_view code);

// The body as JSON (depth-limited); an error reply (400, "invalid-json", with the position)
// otherwise. Also refuses a content type other than JSON when one is given.
std::variant<nlohmann::json, HttpResponse> parse_json_body(const HttpRequest& r,
                                                           std::string_view error_type);

}  // namespace dsx::broker
