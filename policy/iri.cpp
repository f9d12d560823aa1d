#include "policy/iri.h"

#include "policy/vocab.h"

namespace dsx::policy {

Prefixes::Prefixes() {
  entries_ = {
      {"odrl", std::string(kOdrlNs)},
      {"rdf", std::string(kRdfNs)},
      {"rdfs", "http://www.w3.org/2000/01/rdf-schema#"},
      {"xsd", std::string(kXsdNs)},
      {"owl", "http://www.w3.org/2002/07/owl#"},
      {"skos", "http://www.w3.org/2004/02/skos/core#"},
      {"dct", "http://purl.org/dc/terms/"},
      {"vcard", "http://www.w3.org/2006/vcard/ns#"},
      {"foaf", "http://xmlns.com/foaf/0.1/"},
      {"schema", "http://schema.org/"},
      {"cc", "http://creativecommons.org/ns#"},
      {"dsx", std::string(kDsxNs)},
  };
}

void Prefixes::define(std::string prefix, std::string iri) {
  for (auto& [p, i] : entries_) {
    if (p == prefix) {
      i = std::move(iri);
      return;
    }
  }
  entries_.emplace_back(std::move(prefix), std::move(iri));
}

bool Prefixes::try_expand(std::string_view text, std::string& out) const {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view prefix = text.substr(0, colon), rest = text.substr(colon + 1);
  if (rest.substr(0, 2) == "//") return false;  // "http://...": already an absolute IRI
  for (const auto& [p, iri] : entries_) {
    if (p == prefix) {
      out.reserve(iri.size() + rest.size());
      out = iri;
      out += rest;
      return true;
    }
  }
  return false;
}

std::string Prefixes::expand_term(std::string_view term) const {
  std::string out;
  if (try_expand(term, out)) return out;
  // A term the @context defines whole ("alice": "http://example.org/alice"), as JSON-LD expands
  // terms in vocabulary positions.
  for (const auto& [p, iri] : entries_)
    if (p == term) return iri;
  if (!term.empty() && term.find(':') == std::string_view::npos && term.front() != '@') {
    out = kOdrlNs;
    out += term;
    return out;
  }
  return std::string(term);
}

std::string Prefixes::expand_id(std::string_view id) const {
  std::string out;
  if (try_expand(id, out)) return out;
  return std::string(id);
}

}  // namespace dsx::policy
