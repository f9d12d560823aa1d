#include "broker/audit_api.h"

#include <nlohmann/json.hpp>

#include "common/hex.h"
#include "common/json.h"
#include "provenance/checkpoint.h"
#include "provenance/entry.h"
#include "provenance/proof.h"

namespace dsx::broker {
namespace {

using json = nlohmann::json;
constexpr uint64_t kMaxEntries = 1000;    // per reply
constexpr uint64_t kMaxScanned = 100000;  // entries read per reply when filtering

HttpResponse bad_query(const Status& s) {
  return error_response(400, "Error", "invalid-query", {s.message()});
}

// The tree size a proof is asked for, or the latest signed checkpoint's when none is given (so
// the proof's root is the one the auditor can check the signature of).
Result<uint64_t> size_or_latest(const provenance::Log& log, const std::optional<uint64_t>& size) {
  if (size) return *size;
  auto c = log.latest_checkpoint();
  if (!c) return c.status();
  return c->tree_size;
}

}  // namespace

void add_audit_routes(Router& router, const provenance::Log& log) {
  const std::vector<std::string> auditors = {"auditor", "operator"};
  router.add({"GET", "/audit/checkpoint", "audit.checkpoint", auditors, "Error",
              [&log](const HttpRequest&, const Caller&, const PathParams&) {
                auto c = log.latest_checkpoint();
                if (!c) return status_response(c.status(), "Error", "no-checkpoint");
                return json_response(200, provenance::to_json(*c));
              }});
  // Public by nature, and every participant needs it: it also signs the agreements.
  router.add({"GET",
              "/audit/public-key",
              "audit.public_key",
              {},
              "Error",
              [&log](const HttpRequest&, const Caller&, const PathParams&) {
                return json_response(200, {{"keyId", log.public_key().key_id()},
                                           {"algorithm", "Ed25519"},
                                           {"publicKey", log.public_key().pem()}});
              }});
  router.add({"GET", "/audit/entries", "audit.entries", auditors, "Error",
              [&log](const HttpRequest& r, const Caller&, const PathParams&) {
                auto from = r.query_u64("from");
                auto to = r.query_u64("to");
                auto limit = r.query_u64("limit");
                for (auto* q : {&from, &to, &limit})
                  if (!*q) return bad_query(q->status());
                const uint64_t size = log.size();
                const uint64_t first = from->value_or(0);
                const uint64_t last = std::min(to->value_or(UINT64_MAX), size == 0 ? 0 : size - 1);
                const uint64_t max = std::clamp<uint64_t>(limit->value_or(100), 1, kMaxEntries);
                const auto actor = r.query.find("actor");
                const auto action = r.query.find("action");
                json entries = json::array();
                uint64_t i = first, scanned = 0;
                for (; size > 0 && i <= last && entries.size() < max && scanned < kMaxScanned;
                     ++i, ++scanned) {
                  auto text = log.entry_text(i);
                  if (!text) return status_response(text.status(), "Error", "log-read-failed");
                  // Parsed once: filtered on, then sent as it is.
                  auto doc = parse_json_text(*text);
                  if (!doc || !doc->is_object())
                    return error_response(500, "Error", "log-read-failed",
                                          {"entry " + std::to_string(i) + " is not a JSON object"});
                  auto field = [&](const char* k) { return doc->value(k, std::string()); };
                  if (actor != r.query.end() && field("actor") != actor->second) continue;
                  if (action != r.query.end() && field("action") != action->second) continue;
                  entries.push_back({{"index", i},
                                     {"leafHash", to_hex(provenance::leaf_hash(*text))},
                                     {"entry", std::move(*doc)}});
                }
                json body = {{"treeSize", size}, {"entries", std::move(entries)}};
                if (size > 0 && i <= last) body["next"] = i;  // continue with from=next
                return json_response(200, body);
              }});
  router.add({"GET", "/audit/proof/inclusion", "audit.inclusion", auditors, "Error",
              [&log](const HttpRequest& r, const Caller&, const PathParams&) {
                auto index = r.query_u64("index");
                auto size = r.query_u64("size");
                for (auto* q : {&index, &size})
                  if (!*q) return bad_query(q->status());
                if (!*index) return bad_query(Status::invalid_argument("index: required"));
                auto n = size_or_latest(log, *size);
                if (!n) return status_response(n.status(), "Error", "no-checkpoint");
                auto p = log.prove_inclusion(**index, *n);
                if (!p) return status_response(p.status(), "Error", "no-proof");
                return json_response(200, provenance::to_json(provenance::Proof{*p}));
              }});
  router.add({"GET", "/audit/proof/consistency", "audit.consistency", auditors, "Error",
              [&log](const HttpRequest& r, const Caller&, const PathParams&) {
                auto first = r.query_u64("first");
                auto second = r.query_u64("second");
                for (auto* q : {&first, &second})
                  if (!*q) return bad_query(q->status());
                if (!*first) return bad_query(Status::invalid_argument("first: required"));
                auto n = size_or_latest(log, *second);
                if (!n) return status_response(n.status(), "Error", "no-checkpoint");
                auto p = log.prove_consistency(**first, *n);
                if (!p) return status_response(p.status(), "Error", "no-proof");
                return json_response(200, provenance::to_json(provenance::Proof{*p}));
              }});
}

}  // namespace dsx::broker
