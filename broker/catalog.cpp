#include "broker/catalog.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <nlohmann/json.hpp>
#include <variant>

#include "broker/policy_inputs.h"
#include "common/hex.h"
#include "common/ids.h"
#include "policy/evaluator.h"
#include "policy/parser.h"
#include "policy/vocab.h"
#include "provenance/canonical_json.h"
#include "provenance/merkle.h"

namespace dsx::broker {

using json = nlohmann::json;

struct Catalog::Entry {
  std::string id, provider;
  json doc;                            // the management form, complete
  std::vector<policy::Policy> offers;  // compiled, same order as doc["offers"]
  std::string text;                    // lower-case title, description and keywords, for search
  std::vector<std::string> keywords;   // lower-case
  uint64_t seq = 0;
  std::string dsp;  // the DSP Dataset JSON, serialised once: catalog pages are spliced from it
};

namespace {

constexpr const char* kCatalogError = "CatalogError";
constexpr size_t kMaxIdLength = 256;

std::string lower(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > kMaxIdLength || id.find(':') == std::string::npos) return false;
  return std::none_of(id.begin(), id.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == '/' || c == '?' || c == '#' || c == '%' ||
           c == '"' || c == '\\';
  });
}

// An IRI given as "x" or {"@id": "x"}.
std::string iri_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("@id") && v["@id"].is_string()) return v["@id"];
  return {};
}

// An offer's id: its uid or @id.
std::string offer_id_of(const json& offer) {
  return iri_of(offer.contains("uid") ? offer["uid"] : offer["@id"]);
}

HttpResponse bad(std::string reason) {
  return error_response(400, "Error", "invalid-dataset", {std::move(reason)});
}

std::string sha256_hex(const std::string& text) {
  return to_hex(provenance::sha256(text));
}

// A dataset in the Dataspace Protocol's compact JSON shape.
json dsp_dataset(const Catalog::Entry& e, const std::string& service_id) {
  json offers = json::array();
  for (const json& o : e.doc["offers"]) {
    json offer = o;
    offer.erase("@context");
    offers.push_back(std::move(offer));
  }
  json d = {{"@id", e.id},
            {"@type", "Dataset"},
            {"title", e.doc["title"]},
            {"keyword", e.doc.value("keywords", json::array())},
            {"publisher", e.provider},
            {"hasPolicy", std::move(offers)},
            {"distribution", json::array({{{"@type", "Distribution"},
                                           {"format", "dsx:EncryptedRelay"},
                                           {"accessService", service_id}}})}};
  for (const char* k : {"description", "mediaType", "byteSize", "issued", "modified"})
    if (e.doc.contains(k)) d[k] = e.doc[k];
  return d;
}

}  // namespace

Catalog::Catalog(const BrokerConfig& config, Store& store, provenance::Log& log, const Clock& clock,
                 std::string broker_id)
    : config_(config), store_(store), log_(log), clock_(clock), broker_id_(std::move(broker_id)) {}
Catalog::~Catalog() = default;

size_t Catalog::size() const {
  std::shared_lock lock(mutex_);
  return order_.size();
}

Status Catalog::load() {
  auto stored = store_.active_datasets();
  if (!stored) return stored.status();
  std::unique_lock lock(mutex_);
  for (const StoredDataset& d : *stored) {
    auto doc = json::parse(d.body, nullptr, false);
    Caller owner;
    owner.identity.participant_id = d.provider;
    auto built = build(doc, owner, d.id);
    if (auto* reply = std::get_if<HttpResponse>(&built))
      return Status::internal("the stored dataset " + d.id + " no longer reads: " + reply->body);
    auto entry = std::const_pointer_cast<Entry>(std::get<std::shared_ptr<const Entry>>(built));
    entry->seq = d.seq;
    entry->doc = doc;  // as stored, with its dates
    entry->dsp = dsp_dataset(*entry, service_id()).dump();
    order_.push_back(entry);
    by_id_[entry->id] = entry;
    index_offers_locked(entry);  // in publication order: an id stored twice keeps the first
  }
  return Status::ok();
}

void Catalog::index_offers_locked(const std::shared_ptr<const Entry>& e) {
  const json& offers = e->doc["offers"];
  for (size_t i = 0; i < offers.size(); ++i)
    offers_.emplace(offer_id_of(offers[i]), OfferSlot{e, i});
}

void Catalog::unindex_offers_locked(const Entry& e) {
  bool erased = false;
  for (const json& offer : e.doc["offers"])
    if (auto it = offers_.find(offer_id_of(offer));
        it != offers_.end() && it->second.entry.get() == &e) {
      offers_.erase(it);
      erased = true;
    }
  // A store written before offer ids were kept unique may have another dataset with a freed id:
  // indexing the others again gives it to the first of them in publication order, as the scan
  // that find_offer once was would have (rare: an update or a withdrawal).
  if (erased)
    for (const auto& other : order_)
      if (other.get() != &e) index_offers_locked(other);
}

std::optional<std::string> Catalog::offer_conflict(const Entry& e) const {
  const json& offers = e.doc["offers"];
  std::shared_lock lock(mutex_);
  for (size_t i = 0; i < offers.size(); ++i) {
    const std::string id = offer_id_of(offers[i]);
    const std::string where = "offers[" + std::to_string(i) + "]";
    for (size_t k = 0; k < i; ++k)
      if (offer_id_of(offers[k]) == id)
        return where + ": the offer id " + id + " is also offers[" + std::to_string(k) +
               "]'s; each offer needs its own";
    if (auto it = offers_.find(id); it != offers_.end() && it->second.entry->id != e.id)
      return where + ": the offer id " + id + " is already an offer of dataset " +
             it->second.entry->id + "; give this offer another (or none, and the broker makes one)";
  }
  return std::nullopt;
}

void Catalog::add_routes(Router& router) {
  const std::vector<std::string> provider = {"provider"};
  const std::vector<std::string> anyone;
  auto id_of = [](const PathParams& p) { return p.at("id"); };
  router.add(
      {"GET", "/.well-known/dspace-version", "dspace.version", anyone, "Error",
       [](const HttpRequest&, const Caller&, const PathParams&) {
         return json_response(
             200, {{"protocolVersions",
                    json::array({{{"version", "2025-1"}, {"path", "/"}, {"binding", "HTTPS"}}})}});
       }});
  router.add({"GET", "/participants/me", "participants.me", anyone, "Error",
              [this](const HttpRequest&, const Caller& c, const PathParams&) {
                remember(c);
                return json_response(200, certs::to_json(c.identity));
              }});
  router.add({"POST", "/catalog/request", "catalog.request", anyone, kCatalogError,
              [this](const HttpRequest& r, const Caller& c, const PathParams&) {
                return catalog_request(r, c);
              }});
  router.add({"GET", "/catalog/datasets/{id}", "catalog.dataset", anyone, kCatalogError,
              [this, id_of](const HttpRequest&, const Caller& c, const PathParams& p) {
                return dataset(c, id_of(p));
              }});
  router.add(
      {"POST", "/management/datasets", "management.publish", provider, "Error",
       [this](const HttpRequest& r, const Caller& c, const PathParams&) { return publish(r, c); }});
  router.add(
      {"GET", "/management/datasets", "management.list", provider, "Error",
       [this](const HttpRequest&, const Caller& c, const PathParams&) { return list_own(c); }});
  router.add({"GET", "/management/datasets/{id}", "management.get", provider, "Error",
              [this, id_of](const HttpRequest&, const Caller& c, const PathParams& p) {
                return get_own(c, id_of(p));
              }});
  router.add({"PUT", "/management/datasets/{id}", "management.update", provider, "Error",
              [this, id_of](const HttpRequest& r, const Caller& c, const PathParams& p) {
                return update(r, c, id_of(p));
              }});
  router.add({"DELETE", "/management/datasets/{id}", "management.withdraw", provider, "Error",
              [this, id_of](const HttpRequest&, const Caller& c, const PathParams& p) {
                return withdraw(c, id_of(p));
              }});
}

std::variant<std::shared_ptr<const Catalog::Entry>, HttpResponse> Catalog::build(
    const json& doc, const Caller& provider, const std::string& id) {
  if (!doc.is_object()) return bad("(root): a dataset is a JSON object");
  for (const auto& [k, v] : doc.items())
    if (k != "id" && k != "title" && k != "description" && k != "keywords" && k != "mediaType" &&
        k != "byteSize" && k != "offers" && k != "provider" && k != "issued" && k != "modified")
      return bad(k +
                 ": unknown member (a dataset has id, title, description, keywords, "
                 "mediaType, byteSize, offers)");
  auto entry = std::make_shared<Entry>();
  entry->id = id;
  entry->provider = provider.identity.participant_id;
  json out = doc;
  out["id"] = id;
  out["provider"] = entry->provider;
  if (!doc.contains("title") || !doc["title"].is_string() ||
      doc["title"].get<std::string>().empty())
    return bad("title: required, a non-empty string");
  for (const char* k : {"description", "mediaType"})
    if (doc.contains(k) && !doc[k].is_string()) return bad(std::string(k) + ": expected a string");
  if (doc.contains("byteSize") && !doc["byteSize"].is_number_unsigned())
    return bad("byteSize: expected a non-negative integer");
  std::string text =
      lower(doc["title"].get<std::string>() + " " + doc.value("description", std::string()));
  if (doc.contains("keywords")) {
    if (!doc["keywords"].is_array()) return bad("keywords: expected an array of strings");
    for (size_t i = 0; i < doc["keywords"].size(); ++i) {
      const json& k = doc["keywords"][i];
      if (!k.is_string()) return bad("keywords[" + std::to_string(i) + "]: expected a string");
      entry->keywords.push_back(lower(k.get<std::string>()));
      text += " " + entry->keywords.back();
    }
  }
  entry->text = std::move(text);
  if (!doc.contains("offers") || !doc["offers"].is_array() || doc["offers"].empty())
    return bad("offers: required, a non-empty array of ODRL policies");
  json offers = json::array();
  for (size_t i = 0; i < doc["offers"].size(); ++i) {
    const std::string where = "offers[" + std::to_string(i) + "]";
    json offer = doc["offers"][i];
    if (!offer.is_object()) return bad(where + ": an offer is an ODRL policy (a JSON object)");
    if (!offer.contains("uid") && !offer.contains("@id"))
      offer["@id"] = "urn:dsx:offer:" + random_uuid();
    if (!offer.contains("@type") && !offer.contains("type")) offer["@type"] = "Offer";
    if (offer.contains("assigner")) {
      if (iri_of(offer["assigner"]) != entry->provider)
        return bad(where + ".assigner: an offer's assigner is its provider, " + entry->provider +
                   " (the certificate publishing it)");
    } else {
      offer["assigner"] = entry->provider;
    }
    if (offer.contains("target")) {
      if (iri_of(offer["target"]) != id)
        return bad(where + ".target: an offer's target is its dataset, " + id);
    } else {
      offer["target"] = id;
    }
    auto compiled = policy::parse_policy(offer);
    if (!compiled) return bad(where + "." + compiled.status().message());
    entry->offers.push_back(std::move(*compiled));
    offers.push_back(std::move(offer));
  }
  out["offers"] = std::move(offers);
  entry->doc = std::move(out);
  return std::shared_ptr<const Entry>(std::move(entry));
}

HttpResponse Catalog::store_and_log(std::shared_ptr<const Entry> e, const Caller& c,
                                    bool is_update) {
  auto seq = store_.put_dataset({e->id, e->provider, e->doc.dump(), 0});
  if (!seq) return status_response(seq.status(), "Error", "store-failed");
  provenance::Entry record;
  record.time = clock_.now();
  record.actor = c.identity.participant_id;
  record.action = is_update ? "dataset.updated" : "dataset.published";
  record.subjects.push_back(e->id);
  json offers = json::array();
  for (const json& o : e->doc["offers"]) {
    const std::string oid = offer_id_of(o);
    record.subjects.push_back(oid);
    auto canon = provenance::canonical_json(o);
    offers.push_back({{"id", oid}, {"sha256", canon ? sha256_hex(*canon) : ""}});
  }
  record.details = {{"title", e->doc["title"]}, {"offers", std::move(offers)}};
  auto receipt = log_.append(record);
  if (!receipt) {
    if (!is_update) (void)store_.withdraw_dataset(e->id, clock_.now());
    return status_response(receipt.status(), "Error", "log-failed");
  }
  auto entry = std::const_pointer_cast<Entry>(e);
  entry->seq = *seq;
  entry->dsp = dsp_dataset(*entry, service_id()).dump();
  {
    std::unique_lock lock(mutex_);
    auto it = by_id_.find(entry->id);
    if (it != by_id_.end()) {
      unindex_offers_locked(*it->second);
      std::replace(order_.begin(), order_.end(), it->second, std::shared_ptr<const Entry>(entry));
      it->second = entry;
    } else {
      order_.push_back(entry);
      by_id_[entry->id] = entry;
    }
    index_offers_locked(entry);
  }
  json body = entry->doc;
  body["provenance"] = {{"index", receipt->index}, {"leafHash", to_hex(receipt->leaf_hash)}};
  HttpResponse r = json_response(is_update ? 200 : 201, body);
  if (!is_update) r.headers.emplace_back("Location", "/management/datasets/" + entry->id);
  return r;
}

HttpResponse Catalog::publish(const HttpRequest& r, const Caller& c) {
  remember(c);
  auto parsed = parse_json_body(r, "Error");
  if (auto* reply = std::get_if<HttpResponse>(&parsed)) return std::move(*reply);
  const json& doc = std::get<json>(parsed);
  std::string id;
  if (doc.is_object() && doc.contains("id")) {
    if (!doc["id"].is_string() || !valid_id(doc["id"]))
      return bad(
          "id: an IRI (with a scheme, at most 256 characters, no spaces, '/', '?', '#' or "
          "'%'), e.g. urn:dsx:dataset:traffic-2026");
    id = doc["id"];
  } else {
    id = "urn:dsx:dataset:" + random_uuid();
  }
  std::lock_guard write(write_mutex_);
  {
    std::shared_lock lock(mutex_);
    if (by_id_.count(id))
      return error_response(409, "Error", "exists",
                            {"a dataset " + id + " is already published; PUT it to update"});
  }
  auto built = build(doc, c, id);
  if (auto* reply = std::get_if<HttpResponse>(&built)) return std::move(*reply);
  auto entry = std::const_pointer_cast<Entry>(std::get<std::shared_ptr<const Entry>>(built));
  if (auto conflict = offer_conflict(*entry))
    return error_response(409, "Error", "offer-id-taken", {*conflict});
  const std::string now = format_rfc3339(clock_.now());
  entry->doc["issued"] = now;
  entry->doc["modified"] = now;
  return store_and_log(entry, c, false);
}

HttpResponse Catalog::update(const HttpRequest& r, const Caller& c, const std::string& id) {
  std::lock_guard write(write_mutex_);
  std::shared_ptr<const Entry> old;
  {
    std::shared_lock lock(mutex_);
    auto it = by_id_.find(id);
    if (it != by_id_.end() && it->second->provider == c.identity.participant_id) old = it->second;
  }
  if (!old) return error_response(404, "Error", "not-found", {"you have no dataset " + id});
  auto parsed = parse_json_body(r, "Error");
  if (auto* reply = std::get_if<HttpResponse>(&parsed)) return std::move(*reply);
  json doc = std::get<json>(parsed);
  if (doc.is_object() && doc.contains("id") && doc["id"] != id)
    return bad("id: the body names " + doc["id"].dump() + " but the path " + id);
  auto built = build(doc, c, id);
  if (auto* reply = std::get_if<HttpResponse>(&built)) return std::move(*reply);
  auto entry = std::const_pointer_cast<Entry>(std::get<std::shared_ptr<const Entry>>(built));
  if (auto conflict = offer_conflict(*entry))
    return error_response(409, "Error", "offer-id-taken", {*conflict});
  entry->doc["issued"] = old->doc.value("issued", format_rfc3339(clock_.now()));
  entry->doc["modified"] = format_rfc3339(clock_.now());
  return store_and_log(entry, c, true);
}

HttpResponse Catalog::withdraw(const Caller& c, const std::string& id) {
  std::lock_guard write(write_mutex_);
  std::shared_ptr<const Entry> old;
  {
    std::shared_lock lock(mutex_);
    auto it = by_id_.find(id);
    if (it != by_id_.end() && it->second->provider == c.identity.participant_id) old = it->second;
  }
  if (!old) return error_response(404, "Error", "not-found", {"you have no dataset " + id});
  const Instant now = clock_.now();
  if (Status s = store_.withdraw_dataset(id, now); !s)
    return status_response(s, "Error", "store-failed");
  provenance::Entry record;
  record.time = now;
  record.actor = c.identity.participant_id;
  record.action = "dataset.withdrawn";
  record.subjects = {id};
  record.details = {{"title", old->doc["title"]}};
  auto receipt = log_.append(record);
  {
    std::unique_lock lock(mutex_);
    unindex_offers_locked(*old);
    by_id_.erase(id);
    order_.erase(std::remove(order_.begin(), order_.end(), old), order_.end());
  }
  if (!receipt) return status_response(receipt.status(), "Error", "log-failed");
  return json_response(
      200, {{"id", id},
            {"withdrawn", format_rfc3339(now)},
            {"provenance", {{"index", receipt->index}, {"leafHash", to_hex(receipt->leaf_hash)}}}});
}

HttpResponse Catalog::list_own(const Caller& c) {
  json out = json::array();
  std::shared_lock lock(mutex_);
  for (const auto& e : order_)
    if (e->provider == c.identity.participant_id) out.push_back(e->doc);
  return json_response(200, {{"datasets", std::move(out)}});
}

HttpResponse Catalog::get_own(const Caller& c, const std::string& id) {
  std::shared_lock lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second->provider != c.identity.participant_id)
    return error_response(404, "Error", "not-found", {"you have no dataset " + id});
  return json_response(200, it->second->doc);
}

// What the broker knows about a participant, as policy inputs (docs/policy-language.md):
// dsx:country (also odrl:spatial), dsx:role, dsx:memberOf, dsx:organisation, dsx:attr/KEY.
struct Catalog::Probe {
  policy::Request request;
  policy::State state;
};

std::unique_ptr<Catalog::Probe> Catalog::probe(const Caller& c) const {
  auto request = participant_request(c.identity, "urn:dsx:none", "", json::object());
  if (!request) return nullptr;
  return std::make_unique<Probe>(
      Probe{std::move(*request), participant_state(c.identity, clock_.now())});
}

std::optional<Catalog::Offer> Catalog::find_offer(const std::string& offer_id) const {
  OfferSlot slot;
  {
    std::shared_lock lock(mutex_);
    auto it = offers_.find(offer_id);
    if (it == offers_.end()) return std::nullopt;
    slot = it->second;
  }
  const Entry& e = *slot.entry;
  return Offer{offer_id, e.id, e.provider, e.doc["offers"][slot.index],
               std::shared_ptr<const policy::Policy>(slot.entry, &e.offers[slot.index])};
}

bool Catalog::visible(const Entry& e, const Caller& c, const Probe* p) const {
  if (e.provider == c.identity.participant_id || c.has_role("operator") || c.has_role("auditor"))
    return true;
  if (!p) return false;
  policy::Request r(p->request.party(), p->request.action(), e.id);
  r.context() = p->request.context();
  for (const policy::Policy& offer : e.offers)
    if (policy::could_permit(offer, r, p->state)) return true;
  return false;
}

HttpResponse Catalog::catalog_request(const HttpRequest& r, const Caller& c) {
  remember(c);
  auto parsed = parse_json_body(r, kCatalogError);
  if (auto* reply = std::get_if<HttpResponse>(&parsed)) return std::move(*reply);
  const json& msg = std::get<json>(parsed);
  auto refuse = [](std::string why) {
    return error_response(400, kCatalogError, "invalid-request", {std::move(why)});
  };
  if (!msg.is_object()) return refuse("a CatalogRequestMessage is a JSON object");
  const std::string type = msg.value("@type", std::string());
  if (type != "CatalogRequestMessage" && type != "dspace:CatalogRequestMessage")
    return refuse("@type: expected CatalogRequestMessage, got \"" + type + "\"");
  // Filters (all must hold): {"keyword": "traffic"} (exact, case-insensitive) and
  // {"text": "traffic"} (in the title, description or keywords).
  std::vector<std::pair<std::string, std::string>> filters;
  if (msg.contains("filter")) {
    const json& f = msg["filter"];
    if (!f.is_array()) return refuse("filter: expected an array of filter objects");
    for (size_t i = 0; i < f.size(); ++i) {
      const std::string where = "filter[" + std::to_string(i) + "]";
      if (!f[i].is_object() || f[i].size() != 1)
        return refuse(where + ": expected one of {\"keyword\": \"...\"} or {\"text\": \"...\"}");
      const std::string k = f[i].begin().key();
      const json& v = f[i].begin().value();
      if ((k != "keyword" && k != "text") || !v.is_string())
        return refuse(where + ": unsupported filter \"" + k +
                      "\" (supported: keyword and text, with a string)");
      filters.emplace_back(k, lower(v.get<std::string>()));
    }
  }
  auto after = r.query_u64("after");
  auto before = r.query_u64("before");
  auto limit_q = r.query_u64("limit");
  for (auto* q : {&after, &before, &limit_q})
    if (!*q) return refuse(q->status().message());
  const uint64_t limit = std::clamp<uint64_t>(limit_q->value_or(config_.catalog_page_size), 1,
                                              config_.catalog_max_page_size);
  const auto p = probe(c);
  auto matches = [&](const Entry& e) {
    for (const auto& [kind, value] : filters) {
      if (kind == "keyword" &&
          std::find(e.keywords.begin(), e.keywords.end(), value) == e.keywords.end())
        return false;
      if (kind == "text" && e.text.find(value) == std::string::npos) return false;
    }
    return visible(e, c, p.get());
  };
  std::string datasets = "[";
  bool more_before = false, more_after = false;
  uint64_t first_seq = 0, last_seq = 0;
  {
    std::shared_lock lock(mutex_);
    auto by_seq = [](const std::shared_ptr<const Entry>& e, uint64_t s) { return e->seq < s; };
    std::vector<const Entry*> page;
    if (*before) {  // the page that ends just before `before`, scanning backwards
      auto it = std::lower_bound(order_.begin(), order_.end(), **before, by_seq);
      while (it != order_.begin()) {
        --it;
        if (!matches(**it)) continue;
        if (page.size() == limit) {
          more_before = true;
          break;
        }
        page.push_back(it->get());
      }
      std::reverse(page.begin(), page.end());
      more_after = true;
    } else {
      auto it = std::upper_bound(
          order_.begin(), order_.end(), after->value_or(0),
          [](uint64_t s, const std::shared_ptr<const Entry>& e) { return s < e->seq; });
      more_before =
          *after && std::any_of(order_.begin(), it, [&](const auto& e) { return matches(*e); });
      for (; it != order_.end(); ++it) {
        if (!matches(**it)) continue;
        if (page.size() == limit) {
          more_after = true;
          break;
        }
        page.push_back(it->get());
      }
    }
    for (const Entry* e : page) {
      if (datasets.size() > 1) datasets += ',';
      datasets += e->dsp;
    }
    if (!page.empty()) {
      first_seq = page.front()->seq;
      last_seq = page.back()->seq;
    }
  }
  json catalog = {{"@context", {kDspContext}},
                  {"@id", "urn:dsx:catalog:" + broker_id_},
                  {"@type", "Catalog"},
                  {"participantId", broker_id_},
                  {"service", json::array({{{"@id", service_id()},
                                            {"@type", "DataService"},
                                            {"endpointURL", "https://" + r.host + "/"}}})}};
  // The datasets are spliced in as serialised at publication: no JSON tree per request.
  HttpResponse resp = json_response(200, catalog);
  resp.body.pop_back();  // the closing brace
  resp.body += ",\"dataset\":" + datasets + "]}";
  const std::string base = "https://" + r.host + "/catalog/request?limit=" + std::to_string(limit);
  if (more_before && first_seq)
    resp.headers.emplace_back(
        "Link", "<" + base + "&before=" + std::to_string(first_seq) + ">; rel=\"previous\"");
  if (more_after && last_seq)
    resp.headers.emplace_back(
        "Link", "<" + base + "&after=" + std::to_string(last_seq) + ">; rel=\"next\"");
  return resp;
}

HttpResponse Catalog::dataset(const Caller& c, const std::string& id) {
  remember(c);
  const auto p = probe(c);
  std::shared_lock lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !visible(*it->second, c, p.get()))
    return error_response(404, kCatalogError, "not-found", {"no dataset " + id});
  HttpResponse resp;
  resp.body = "{\"@context\":[\"" + std::string(kDspContext) + "\"]," + it->second->dsp.substr(1);
  return resp;
}

void Catalog::remember(const Caller& c) {
  const std::string key = c.identity.participant_id + " " + c.identity.fingerprint_sha256_hex;
  {
    std::lock_guard lock(seen_mutex_);
    if (!seen_.insert(key).second) return;
  }
  (void)store_.participant_seen(c.identity, clock_.now());
}

void Catalog::log_refusal(const Caller& caller, const HttpRequest& request,
                          const HttpResponse& response, const std::string& route) {
  provenance::Entry record;
  record.time = clock_.now();
  record.actor = caller.identity.participant_id;
  record.action = "request.refused";
  record.subjects = {request.path};
  json reasons = json::array();
  auto body = json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("reason")) reasons = body["reason"];
  record.details = {{"method", request.method},
                    {"route", route},
                    {"status", response.status},
                    {"code", response.error_code},
                    {"reasons", std::move(reasons)}};
  (void)log_.append(record);
}

}  // namespace dsx::broker
