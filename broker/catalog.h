#pragma once
// The catalog: providers publish datasets with offers (ODRL policies, validated by policy/),
// participants browse them in the Dataspace Protocol 2025-1 shape (DCAT datasets with hasPolicy
// offers and distributions), auditors find every publish, update, withdrawal and refusal in the
// provenance log.
//
// A dataset as a provider publishes it (management API, docs/api.md):
//   {"id": "urn:dsx:dataset:...",  (optional; assigned when absent)
//    "title": "...", "description": "...", "keywords": ["..."], "mediaType": "text/csv",
//    "byteSize": 1234, "offers": [<ODRL policy>, ...]}
// Offers get an @id, the provider as assigner and the dataset as target when they lack them;
// naming another assigner or target is an error.
//
// Visibility: a dataset is listed for a participant when at least one of its offers could still
// be granted to it, judging by what the broker knows (its certificate's country, roles,
// memberships, organisation, and the time): policy::could_permit. A dataset the participant
// could never obtain is not shown, and reads as 404.
//
// The catalog keeps every active dataset, with its compiled offers, in memory (loaded from the
// Store at start-up): listing never touches the disk. Thread-safe: readers share a lock, writers
// (publish, update, withdraw) take it alone after their durable writes.

#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "broker/config.h"
#include "broker/router.h"
#include "broker/store.h"
#include "common/clock.h"
#include "policy/policy.h"
#include "provenance/log.h"

namespace dsx::broker {

class Catalog {
 public:
  // All must outlive the catalog.
  // `broker_id`: the broker's own participant id (the catalog's participantId).
  Catalog(const BrokerConfig& config, Store& store, provenance::Log& log, const Clock& clock,
          std::string broker_id);
  ~Catalog();
  // Loads the active datasets from the store.
  Status load();
  void add_routes(Router& router);
  size_t size() const;

  // Appends a refusal (a 4xx answered to an authenticated participant) to the provenance log.
  void log_refusal(const Caller& caller, const HttpRequest& request, const HttpResponse& response,
                   const std::string& route);

  // One offer of the catalog, as a negotiation starts from it. Keeps its dataset's entry alive.
  struct Offer {
    std::string id, dataset, provider;
    nlohmann::json doc;                            // as published, complete
    std::shared_ptr<const policy::Policy> policy;  // compiled
  };
  // The offer `offer_id` of an active dataset; nullopt when there is none. Not filtered by
  // visibility: a consumer that names an offer it could never obtain gets the policy's reasons
  // from the negotiation, which is more use to it than a 404. An index lookup under the shared
  // lock. An offer id names one offer of one dataset: publishing another with it is refused.
  std::optional<Offer> find_offer(const std::string& offer_id) const;

  struct Entry;  // one dataset with its compiled offers
  struct Probe;  // what the broker knows about a caller, as policy inputs

 private:
  HttpResponse publish(const HttpRequest& r, const Caller& c);
  HttpResponse update(const HttpRequest& r, const Caller& c, const std::string& id);
  HttpResponse withdraw(const Caller& c, const std::string& id);
  HttpResponse list_own(const Caller& c);
  HttpResponse get_own(const Caller& c, const std::string& id);
  HttpResponse catalog_request(const HttpRequest& r, const Caller& c);
  HttpResponse dataset(const Caller& c, const std::string& id);

  // Validates and completes a dataset document; the entry or a 400 reply.
  std::variant<std::shared_ptr<const Entry>, HttpResponse> build(const nlohmann::json& doc,
                                                                 const Caller& provider,
                                                                 const std::string& id);
  HttpResponse store_and_log(std::shared_ptr<const Entry> e, const Caller& c, bool is_update);
  // Why `e`'s offer ids cannot be published (one taken by another dataset, or repeated in `e`);
  // nullopt when they can. Under write_mutex_.
  std::optional<std::string> offer_conflict(const Entry& e) const;
  // Adds `e`'s offers to offers_ (an id already there keeps its offer) / removes them; under
  // mutex_, exclusively.
  void index_offers_locked(const std::shared_ptr<const Entry>& e);
  void unindex_offers_locked(const Entry& e);
  std::unique_ptr<Probe> probe(const Caller& c) const;
  bool visible(const Entry& e, const Caller& c, const Probe* p) const;
  std::string service_id() const { return "urn:dsx:service:" + broker_id_; }
  void remember(const Caller& c);

  const BrokerConfig& config_;
  Store& store_;
  provenance::Log& log_;
  const Clock& clock_;
  const std::string broker_id_;

  // One publication, update or withdrawal at a time, so that checking ids (the dataset's, its
  // offers') and acting on the check are one step. Taken before mutex_.
  std::mutex write_mutex_;
  mutable std::shared_mutex mutex_;                  // guards order_, by_id_ and offers_
  std::vector<std::shared_ptr<const Entry>> order_;  // publication order
  std::unordered_map<std::string, std::shared_ptr<const Entry>> by_id_;
  struct OfferSlot {
    std::shared_ptr<const Entry> entry;
    size_t index = 0;  // in entry->doc["offers"] and entry->offers
  };
  std::unordered_map<std::string, OfferSlot> offers_;  // by offer id

  std::mutex seen_mutex_;                 // guards seen_
  std::unordered_set<std::string> seen_;  // participant id + certificate fingerprint
};

}  // namespace dsx::broker
