#include "provenance/prov_export.h"

#include <map>
#include <set>

#include "provenance/audit.h"

namespace dsx::provenance {
namespace {

using json = nlohmann::json;

// Subjects whose id names a negotiation or a transfer are processes (activities); every other
// subject is a thing (an entity).
bool is_process(const std::string& id) {
  return id.find(":negotiation:") != std::string::npos ||
         id.find(":transfer:") != std::string::npos;
}

// Actions whose first subject is created by the entry's event.
bool generates(const std::string& action) {
  for (const char* a : {"offer.published", "dataset.published", "agreement.signed",
                        "receipt.signed", "manifest.signed"})
    if (action == a) return true;
  return false;
}

}  // namespace

Result<nlohmann::json> export_prov(const std::string& db_path) {
  json graph = json::array();
  std::set<std::string> agents, entities, processes;
  Status s = for_each_entry(db_path, 0, UINT64_MAX, [&](const Entry& e, const std::string&) {
    json event{
        {"@id", "urn:dsx:log-entry:" + std::to_string(e.seq)},
        {"@type", json::array({"prov:Activity", "dsx:LogEntry"})},
        {"dsx:action", e.action},
        {"dsx:seq", e.seq},
        {"prov:startedAtTime", {{"@value", format_rfc3339(e.time)}, {"@type", "xsd:dateTime"}}},
        {"prov:endedAtTime", {{"@value", format_rfc3339(e.time)}, {"@type", "xsd:dateTime"}}}};
    if (!e.actor.empty()) {
      agents.insert(e.actor);
      event["prov:wasAssociatedWith"] = {{"@id", e.actor}};
    }
    json used = json::array(), informed = json::array();
    for (size_t i = 0; i < e.subjects.size(); ++i) {
      const std::string& id = e.subjects[i];
      if (is_process(id)) {
        processes.insert(id);
        informed.push_back({{"@id", id}});
      } else if (i == 0 && generates(e.action)) {
        entities.insert(id);
        graph.push_back({{"@id", id},
                         {"prov:wasGeneratedBy", {{"@id", event["@id"]}}},
                         {"prov:wasAttributedTo", {{"@id", e.actor}}}});
      } else {
        entities.insert(id);
        used.push_back({{"@id", id}});
      }
    }
    if (!used.empty()) event["prov:used"] = std::move(used);
    if (!informed.empty()) event["prov:wasInformedBy"] = std::move(informed);
    if (!e.details.empty())
      event["dsx:details"] = {{"@value", e.details.dump()}, {"@type", "@json"}};
    graph.push_back(std::move(event));
  });
  if (!s) return s;
  for (const auto& a : agents)
    graph.push_back({{"@id", a}, {"@type", "prov:Agent"}});
  for (const auto& x : entities)
    graph.push_back({{"@id", x}, {"@type", "prov:Entity"}});
  for (const auto& p : processes)
    graph.push_back({{"@id", p}, {"@type", "prov:Activity"}});
  return json{{"@context",
               {{"prov", "http://www.w3.org/ns/prov#"},
                {"xsd", "http://www.w3.org/2001/XMLSchema#"},
                {"dsx", "https://w3id.org/dsx/policy#"}}},
              {"@graph", std::move(graph)}};
}

}  // namespace dsx::provenance
