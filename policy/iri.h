#pragma once
// Prefixes: expands the three spellings of a JSON-LD term (compact `read`, prefixed
// `odrl:read`, full IRI) to one full IRI. Built from a policy's @context (plus the well-known
// prefixes of the ODRL context), then immutable: safe to share between threads.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsx::policy {

class Prefixes {
 public:
  // The prefixes the ODRL 2.2 JSON-LD context defines (odrl, rdf, rdfs, xsd, owl, skos, dct,
  // vcard, foaf, schema, cc) and dsx.
  Prefixes();

  // Adds or replaces a prefix (a later @context entry wins, as in JSON-LD).
  void define(std::string prefix, std::string iri);

  // A term in a vocabulary position (action, leftOperand, operator, @type): a bare name is an
  // ODRL term; `prefix:rest` with a known prefix is expanded; anything else is kept as it is.
  std::string expand_term(std::string_view term) const;
  // An identifier (party, asset, @id): `prefix:rest` with a known prefix is expanded; anything
  // else, bare names included, is kept as it is.
  std::string expand_id(std::string_view id) const;

  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  // Expanded form if `text` is a compact IRI with a known prefix.
  bool try_expand(std::string_view text, std::string& out) const;

  std::vector<std::pair<std::string, std::string>> entries_;
};

}  // namespace dsx::policy
