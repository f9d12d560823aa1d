#include "policy/parser.h"

#include <charconv>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/json.h"

namespace dsx::policy {
namespace {

using json = nlohmann::json;

// Nesting deeper than this (logical constraints inside logical constraints, consequences of
// consequences) is refused: no real policy needs it, and it bounds recursion on hostile input.
constexpr int kMaxDepth = 32;

std::string child(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string quote_text(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
  }
  out += '"';
  return out;
}

// A short rendering of a JSON value for messages. Containers are only summarised: dumping them
// would recurse as deep as the input nests.
std::string excerpt(const json& v) {
  if (v.is_object()) return v.empty() ? "{}" : "an object";
  if (v.is_array()) return v.empty() ? "[]" : "an array";
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string odrl(std::string_view local) {
  return std::string(kOdrlNs) + std::string(local);
}

bool is_xsd(std::string_view iri, std::string_view local) {
  return iri.size() == kXsdNs.size() + local.size() && iri.substr(0, kXsdNs.size()) == kXsdNs &&
         iri.substr(kXsdNs.size()) == local;
}

bool is_country_code(std::string_view s) {
  auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  return s.size() == 2 && alpha(s[0]) && alpha(s[1]);
}

// ISO 3166-1 alpha-2 codes in one spelling, urn:iso:3166:XX: "de", "DE" and "urn:iso:3166:de"
// all mean Germany.
void normalize_spatial(Value& v) {
  if (!v.is_textual()) return;
  constexpr std::string_view kUrn = "urn:iso:3166:";
  std::string_view text = v.text();
  std::string_view code;
  if (is_country_code(text)) {
    code = text;
  } else if (text.size() == kUrn.size() + 2 && text.substr(0, kUrn.size()) == kUrn &&
             is_country_code(text.substr(kUrn.size()))) {
    code = text.substr(kUrn.size());
  } else {
    return;
  }
  std::string iri(kUrn);
  for (char c : code)
    iri += static_cast<char>(c >= 'a' ? c - 'a' + 'A' : c);
  v = Value::iri(std::move(iri));
}

// Parses JSON-LD compact form into the compiled model. One instance per document; the first
// error stops the walk and is kept in error_.
class Reader {
 public:
  explicit Reader(const Prefixes& prefixes) : prefixes_(prefixes) {}

  const Status& error() const { return error_; }
  bool failed() const { return !error_.is_ok(); }

  bool fail(const std::string& path, const std::string& message) {
    if (error_.is_ok()) {
      // One line, whatever the input: keys and values may hold control characters.
      std::string text = (path.empty() ? std::string("(root)") : path) + ": " + message;
      for (char& c : text)
        if (static_cast<unsigned char>(c) < 0x20) c = '?';
      error_ = Status::invalid_argument(std::move(text));
    }
    return false;
  }

  // Counts what the document makes the engine hold (values, parties, assets, actions, rules,
  // with policy-level properties copied into each rule); refuses documents beyond kMaxItems, so
  // a small hostile file cannot make the engine allocate gigabytes.
  bool charge(const std::string& path, size_t n) {
    used_ += n;
    if (used_ <= kMaxItems) return true;
    return fail(path, "too large: more than " + std::to_string(kMaxItems) +
                          " values, parties, assets, actions and rules (with policy-level "
                          "properties applied to every rule)");
  }
  size_t used() const { return used_; }

  // The member spelled `local`, `odrl:local` or with the full ODRL IRI; `path_out` gets the path
  // of the spelling found. Looked up by string_view in a stack buffer: no allocation per lookup.
  const json* member(const json& obj, std::string_view local, const std::string& path,
                     std::string& path_out) const {
    if (!obj.is_object()) return nullptr;
    char buf[128];
    for (std::string_view prefix : {std::string_view(), std::string_view("odrl:"), kOdrlNs}) {
      if (prefix.size() + local.size() > sizeof buf) continue;
      std::copy(prefix.begin(), prefix.end(), buf);
      std::copy(local.begin(), local.end(), buf + prefix.size());
      std::string_view key(buf, prefix.size() + local.size());
      auto it = obj.find(key);
      if (it != obj.end()) {
        path_out = child(path, key);
        return &*it;
      }
    }
    return nullptr;
  }

  // An identifier: "iri" or {"@id": "iri"}.
  bool read_id(const json& v, const std::string& path, std::string& out, bool term) {
    const json* s = &v;
    if (v.is_object()) {
      auto it = v.find("@id");
      if (it == v.end()) return fail(path, "expected an IRI or {\"@id\": IRI}, got " + excerpt(v));
      s = &*it;
    }
    if (!s->is_string() || s->get_ref<const std::string&>().empty())
      return fail(path, "expected an IRI, got " + excerpt(v));
    const auto& text = s->get_ref<const std::string&>();
    out = term ? prefixes_.expand_term(text) : prefixes_.expand_id(text);
    return true;
  }

  // Calls fn(element, element_path) for a value or each element of an array. In JSON-LD an
  // empty array is no value at all; where "no value" would widen a rule (no action, target or
  // party matches any), it is refused instead.
  enum class Empty { kNoValues, kRefused };
  template <typename Fn>
  bool each(const json& v, const std::string& path, Fn&& fn, Empty empty = Empty::kRefused) {
    if (!v.is_array()) return fn(v, path);
    if (v.empty() && empty == Empty::kRefused)
      return fail(path, "empty array: leave the property out, or name at least one");
    for (size_t i = 0; i < v.size(); ++i)
      if (!fn(v[i], index(path, i))) return false;
    return true;
  }

  // ---- values ------------------------------------------------------------------------------

  // A lexical form of a declared datatype.
  bool typed_value(const std::string& text, const std::string& type, const std::string& path,
                   Value& out) {
    auto bad = [&](std::string_view what) {
      return fail(path, quote_text(text) + " is not a valid " + std::string(what));
    };
    if (is_xsd(type, "dateTime") || is_xsd(type, "dateTimeStamp")) {
      auto t = parse_xsd_date_time(text);
      if (!t) return bad("xsd:dateTime");
      out = Value::time(*t, text);
      return true;
    }
    if (is_xsd(type, "date")) {
      auto t = parse_xsd_date(text);
      if (!t) return bad("xsd:date");
      out = Value::time(*t, text);
      return true;
    }
    if (is_xsd(type, "duration") || is_xsd(type, "dayTimeDuration") ||
        is_xsd(type, "yearMonthDuration")) {
      auto d = Duration::parse(text);
      if (!d) return bad("xsd:duration");
      out = Value::duration(*d, text);
      return true;
    }
    for (std::string_view t : {"integer", "int", "long", "short", "byte", "nonNegativeInteger",
                               "positiveInteger", "nonPositiveInteger", "negativeInteger",
                               "unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte"}) {
      if (is_xsd(type, t)) {
        auto d = Decimal::parse(text);
        if (!d || text.find_first_of(".eE") != std::string::npos)
          return bad("xsd:" + std::string(t));
        out = Value::number(std::move(*d), text);
        return true;
      }
    }
    if (is_xsd(type, "decimal") || is_xsd(type, "double") || is_xsd(type, "float")) {
      auto d = Decimal::parse(text);
      if (!d) return bad("number");
      if (is_xsd(type, "decimal") && text.find_first_of("eE") != std::string::npos)
        return bad("xsd:decimal (no exponent; use xsd:double)");
      out = Value::number(std::move(*d), text);
      return true;
    }
    if (is_xsd(type, "boolean")) {
      if (text == "true" || text == "1")
        out = Value::boolean(true);
      else if (text == "false" || text == "0")
        out = Value::boolean(false);
      else
        return bad("xsd:boolean");
      return true;
    }
    if (is_xsd(type, "anyURI")) {
      out = Value::iri(prefixes_.expand_id(text));
      return true;
    }
    if (type.substr(0, kXsdNs.size()) == kXsdNs) {  // string, token, language, ...
      out = Value::string(text);
      return true;
    }
    return untyped_value(text, path, out);  // a datatype of another vocabulary: read the form
  }

  bool untyped_value(const std::string& text, const std::string&, Value& out) {
    out = Value::infer(text);
    if (out.kind() == Value::Kind::kIri) out = Value::iri(prefixes_.expand_id(text));
    return true;
  }

  static std::string number_text(const json& v) {
    if (v.is_number_integer() && !v.is_number_unsigned()) return std::to_string(v.get<long long>());
    if (v.is_number_unsigned()) return std::to_string(v.get<unsigned long long>());
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, v.get<double>());  // shortest round-trip form
    return std::string(buf, res.ptr);
  }

  // One scalar: a JSON string, number or boolean, {"@value": ..., "@type": ...} or {"@id": ...}.
  // `datatype` (a constraint's dataType) types a bare lexical form.
  bool scalar(const json& v, const std::string& path, const std::string& datatype, Value& out) {
    if (!charge(path, 1)) return false;
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      return datatype.empty() ? untyped_value(s, path, out) : typed_value(s, datatype, path, out);
    }
    if (v.is_number()) {
      if (v.is_number_float() && !std::isfinite(v.get<double>()))
        return fail(path, "not a finite number");
      std::string text = number_text(v);
      if (!datatype.empty()) return typed_value(text, datatype, path, out);
      auto d = Decimal::parse(text);
      if (!d) return fail(path, "unreadable number " + text);
      out = Value::number(std::move(*d), text);
      return true;
    }
    if (v.is_boolean()) {
      out = Value::boolean(v.get<bool>());
      return true;
    }
    if (v.is_object()) {
      if (v.contains("@id")) {
        std::string iri;
        if (!read_id(v, path, iri, false)) return false;
        out = Value::iri(std::move(iri));
        return true;
      }
      auto value = v.find("@value");
      if (value == v.end())
        return fail(path,
                    "expected a value, {\"@value\": ...} or {\"@id\": ...}, got " + excerpt(v));
      std::string type = datatype;
      if (auto t = v.find("@type"); t != v.end()) {
        if (!t->is_string()) return fail(child(path, "@type"), "expected a datatype IRI");
        type = prefixes_.expand_id(t->get_ref<const std::string&>());
      }
      if (v.contains("@language")) type.clear();
      if (value->is_string() || value->is_number() || value->is_boolean()) {
        if (value->is_string() && v.contains("@language")) {
          out = Value::string(value->get<std::string>());
          return true;
        }
        return scalar(*value, child(path, "@value"), type, out);
      }
      return fail(child(path, "@value"), "expected a string, number or boolean");
    }
    if (v.is_null()) return fail(path, "null is not a value");
    return fail(path, "expected a single value, got " + excerpt(v));
  }

  // ---- constraints ---------------------------------------------------------------------------

  bool constraints(const json& v, const std::string& path, int depth,
                   std::vector<Constraint>& out) {
    return each(
        v, path,
        [&](const json& c, const std::string& p) {
          Constraint parsed;
          if (!constraint(c, p, depth, parsed)) return false;
          out.push_back(std::move(parsed));
          return true;
        },
        Empty::kNoValues);
  }

  bool constraint(const json& v, const std::string& path, int depth, Constraint& out) {
    if (depth > kMaxDepth) return fail(path, "constraints nested too deeply");
    if (!v.is_object()) return fail(path, "a constraint must be an object, got " + excerpt(v));
    std::string id;
    if (!optional_uid(v, path, id)) return false;

    static constexpr std::pair<std::string_view, LogicalConstraint::Kind> kLogical[] = {
        {"and", LogicalConstraint::Kind::kAnd},
        {"or", LogicalConstraint::Kind::kOr},
        {"xone", LogicalConstraint::Kind::kXone},
        {"andSequence", LogicalConstraint::Kind::kAndSequence},
    };
    const json* operands = nullptr;
    std::string operands_path;
    LogicalConstraint logical;
    for (const auto& [name, kind] : kLogical) {
      std::string p;
      if (const json* m = member(v, name, path, p)) {
        if (operands)
          return fail(p, "a logical constraint has exactly one of and, or, xone, andSequence");
        operands = m;
        operands_path = p;
        logical.kind = kind;
      }
    }
    std::string lo_path;
    const json* left = member(v, "leftOperand", path, lo_path);
    if (!operands && !left && v.contains("@id") && v.size() == 1)
      return fail(path,
                  "constraint references by @id are not supported; write the constraint inline");
    if (operands) {
      if (left)
        return fail(lo_path,
                    "a constraint is either logical (and/or/xone/andSequence) or has a "
                    "leftOperand, not both");
      const json* list = operands;
      if (list->is_object() && list->contains("@list")) {
        list = &(*list)["@list"];
        operands_path = child(operands_path, "@list");
      }
      if (!list->is_array()) return fail(operands_path, "expected an array of constraints");
      if (list->empty())
        return fail(operands_path, "a logical constraint needs at least one constraint");
      logical.id = id;
      for (size_t i = 0; i < list->size(); ++i) {
        Constraint c;
        if (!constraint((*list)[i], index(operands_path, i), depth + 1, c)) return false;
        logical.operands.push_back(std::move(c));
      }
      out.node = std::move(logical);
      return true;
    }

    AtomicConstraint atomic;
    atomic.id = id;
    if (!left)
      return fail(child(path, "leftOperand"),
                  "missing (a constraint needs leftOperand, operator and rightOperand)");
    if (!read_id(*left, lo_path, atomic.left_operand, true)) return false;

    std::string op_path;
    const json* op = member(v, "operator", path, op_path);
    if (!op)
      return fail(child(path, "operator"),
                  "missing (a constraint needs leftOperand, operator and rightOperand)");
    std::string op_iri;
    if (!read_id(*op, op_path, op_iri, true)) return false;
    auto parsed_op = operator_from_iri(op_iri);
    if (!parsed_op) {
      std::string shown = op->is_string() ? op->get<std::string>() : op_iri;
      return fail(op_path, "unknown operator " + quote_text(shown) +
                               " (ODRL 2.2 operators: eq, neq, lt, lteq, gt, gteq, isA, hasPart, "
                               "isPartOf, isAllOf, isAnyOf, isNoneOf)");
    }
    atomic.op = *parsed_op;

    std::string datatype, unit, p;
    if (const json* dt = member(v, "dataType", path, p)) {
      if (!read_id(*dt, p, datatype, false)) return false;
    }
    if (const json* u = member(v, "unit", path, p)) {
      if (!read_id(*u, p, unit, false)) return false;
    }
    atomic.unit = unit;

    std::string ro_path;
    const json* right = member(v, "rightOperand", path, ro_path);
    if (!right) {
      if (member(v, "rightOperandReference", path, p))
        return fail(p, "rightOperandReference is not supported; give the value as rightOperand");
      return fail(child(path, "rightOperand"),
                  "missing (a constraint needs leftOperand, operator and rightOperand)");
    }
    if (right->is_object() && right->contains("@list")) {  // a JSON-LD list: its members
      right = &(*right)["@list"];
      ro_path = child(ro_path, "@list");
      if (!right->is_array()) return fail(ro_path, "expected an array");
    }
    if (right->is_array()) {
      atomic.right_is_list = true;
      if (right->empty()) return fail(ro_path, "empty set");
      for (size_t i = 0; i < right->size(); ++i) {
        const json& e = (*right)[i];
        if (e.is_array()) return fail(index(ro_path, i), "nested arrays are not values");
        Value value;
        if (!scalar(e, index(ro_path, i), datatype, value)) return false;
        atomic.right.push_back(std::move(value));
      }
    } else {
      Value value;
      if (!scalar(*right, ro_path, datatype, value)) return false;
      atomic.right.push_back(std::move(value));
    }
    if (atomic.left_operand == odrl("spatial"))
      for (auto& value : atomic.right)
        normalize_spatial(value);
    if (!check_operands(atomic, ro_path)) return false;
    out.node = std::move(atomic);
    return true;
  }

  // The right operand must be usable with the operator and the left operand.
  bool check_operands(const AtomicConstraint& c, const std::string& path) {
    std::string_view op = operator_name(c.op);
    const bool relation =
        c.op == Operator::kIsA || c.op == Operator::kHasPart || c.op == Operator::kIsPartOf;
    if (relation && left_operand_type(c.left_operand) != OperandType::kAny)
      return fail(path, std::string(op) +
                            " relates IRIs through the state's partOf and types facts; " +
                            std::string(display_term(c.left_operand)) + " is not an IRI");
    if (!is_set_operator(c.op) && c.right.size() != 1)
      return fail(path, std::string(op) + " compares with one value, got a set of " +
                            std::to_string(c.right.size()) + " (use isAnyOf for a set)");
    for (size_t i = 0; i < c.right.size(); ++i) {
      const Value& v = c.right[i];
      std::string vp = c.right_is_list ? index(path, i) : path;
      if (relation && !v.is_textual())
        return fail(vp, std::string(op) + " needs an IRI, not the " +
                            std::string(kind_name(v.kind())) + " " + quote_text(v.text()));
      if (is_ordering(c.op) && v.kind() != Value::Kind::kNumber && v.kind() != Value::Kind::kTime &&
          v.kind() != Value::Kind::kDuration)
        return fail(vp, std::string(op) + " needs a number, date/time or duration, not the " +
                            std::string(kind_name(v.kind())) + " " + quote_text(v.text()));
      OperandType expected = left_operand_type(c.left_operand);
      auto mismatch = [&](Value::Kind k, std::string_view what) {
        if (v.kind() == k) return true;
        return fail(vp, std::string(display_term(c.left_operand)) + " needs " + std::string(what) +
                            ", not the " + std::string(kind_name(v.kind())) + " " +
                            quote_text(v.text()));
      };
      if (expected == OperandType::kTime &&
          !mismatch(Value::Kind::kTime, "an xsd:dateTime or xsd:date"))
        return false;
      if (expected == OperandType::kDuration &&
          !mismatch(Value::Kind::kDuration, "an xsd:duration"))
        return false;
      if (expected == OperandType::kNumber && !mismatch(Value::Kind::kNumber, "a number"))
        return false;
    }
    return true;
  }

  // ---- parties, assets, actions ---------------------------------------------------------------

  bool optional_uid(const json& obj, const std::string& path, std::string& out) {
    for (const char* key : {"uid", "@id"}) {
      auto it = obj.find(key);
      if (it != obj.end()) return read_id(*it, child(path, key), out, false);
    }
    std::string p;
    if (const json* m = member(obj, "uid", path, p)) return read_id(*m, p, out, false);
    return true;
  }

  bool entities(const json& v, const std::string& path, std::string_view collection_type,
                std::vector<Entity>& out) {
    return each(v, path, [&](const json& e, const std::string& p) {
      Entity entity;
      if (e.is_string()) {
        if (!read_id(e, p, entity.id, false)) return false;
      } else if (e.is_object()) {
        if (!optional_uid(e, p, entity.id)) return false;
        if (auto t = e.find("@type"); t != e.end()) {
          bool ok = each(*t, child(p, "@type"), [&](const json& type, const std::string& tp) {
            std::string iri;
            if (!read_id(type, tp, iri, true)) return false;
            if (iri == odrl(collection_type)) entity.collection = true;
            return true;
          });
          if (!ok) return false;
        }
        std::string sp;
        if (const json* s = member(e, "source", p, sp)) {
          if (!read_id(*s, sp, entity.source, false)) return false;
          entity.collection = true;
        }
        if (const json* r = member(e, "refinement", p, sp)) {
          if (!constraints(*r, sp, 0, entity.refinements)) return false;
          entity.collection = true;
        }
        if (entity.id.empty() && entity.source.empty())
          return fail(p, "needs an @id (or a source, for a collection)");
      } else {
        return fail(p, "expected an IRI or an object with @id, got " + excerpt(e));
      }
      if (!charge(p, 1)) return false;
      out.push_back(std::move(entity));
      return true;
    });
  }

  bool actions(const json& v, const std::string& path, std::vector<Action>& out) {
    return each(v, path, [&](const json& a, const std::string& p) {
      Action action;
      if (a.is_string()) {
        if (!read_id(a, p, action.iri, true)) return false;
      } else if (a.is_object()) {
        const json* value = nullptr;
        std::string vp;
        for (std::string key :
             {std::string("rdf:value"), std::string(kRdfNs) + "value", std::string("value")}) {
          if (auto it = a.find(key); it != a.end()) {
            value = &*it;
            vp = child(p, key);
            break;
          }
        }
        if (value) {
          if (!read_id(*value, vp, action.iri, true)) return false;
        } else if (a.contains("@id")) {
          if (!read_id(a["@id"], child(p, "@id"), action.iri, true)) return false;
        } else {
          return fail(p, "an action object needs rdf:value (or @id) naming the action");
        }
        std::string rp;
        if (const json* r = member(a, "refinement", p, rp)) {
          if (!constraints(*r, rp, 0, action.refinements)) return false;
        }
      } else {
        return fail(p, "expected an action IRI or object, got " + excerpt(a));
      }
      action.iri = canonical_action(action.iri);
      if (!charge(p, 1)) return false;
      out.push_back(std::move(action));
      return true;
    });
  }

  // ---- rules and the policy ------------------------------------------------------------------

  // What a policy states once for all its rules.
  struct Defaults {
    std::vector<Entity> targets, assignees, assigners;
    std::vector<Action> actions;
    std::vector<Constraint> constraints;
    size_t cost = 0;  // what copying them into a rule costs, in charge() units
  };

  bool rules(const json& v, const std::string& path, RuleKind kind, const Defaults& defaults,
             int depth, std::vector<Rule>& out) {
    return each(
        v, path,
        [&](const json& r, const std::string& p) {
          Rule rule;
          if (!this->rule(r, p, kind, defaults, depth, rule)) return false;
          out.push_back(std::move(rule));
          return true;
        },
        Empty::kNoValues);
  }

  bool rule(const json& v, const std::string& path, RuleKind kind, const Defaults& defaults,
            int depth, Rule& out) {
    if (depth > kMaxDepth) return fail(path, "rules nested too deeply");
    if (!v.is_object()) return fail(path, "a rule must be an object, got " + excerpt(v));
    if (!charge(path, 1)) return false;
    out.kind = kind;
    if (!optional_uid(v, path, out.id)) return false;
    out.has_uid = !out.id.empty();
    if (!out.has_uid) out.id = path;

    std::string p;
    const bool top_level = kind == RuleKind::kPermission || kind == RuleKind::kProhibition ||
                           kind == RuleKind::kObligation;
    if (top_level && !charge(path, defaults.cost)) return false;  // the copies made below
    if (const json* m = member(v, "target", path, p)) {
      if (!entities(*m, p, "AssetCollection", out.targets)) return false;
    } else if (top_level) {
      out.targets = defaults.targets;
    }
    if (const json* m = member(v, "assignee", path, p)) {
      if (!entities(*m, p, "PartyCollection", out.assignees)) return false;
    } else if (top_level) {
      out.assignees = defaults.assignees;
    }
    if (const json* m = member(v, "assigner", path, p)) {
      if (!entities(*m, p, "PartyCollection", out.assigners)) return false;
    } else if (top_level) {
      out.assigners = defaults.assigners;
    }
    if (const json* m = member(v, "action", path, p)) {
      if (!actions(*m, p, out.actions)) return false;
    } else if (top_level) {
      out.actions = defaults.actions;
    }
    if (const json* m = member(v, "constraint", path, p)) {
      if (!constraints(*m, p, 0, out.constraints)) return false;
    }
    if (top_level)
      out.constraints.insert(out.constraints.end(), defaults.constraints.begin(),
                             defaults.constraints.end());

    const Defaults none;
    struct Nested {
      std::string_view name;
      RuleKind kind;
      bool allowed;
    };
    const bool duty_like = kind != RuleKind::kPermission && kind != RuleKind::kProhibition;
    const Nested nested[] = {
        {"duty", RuleKind::kDuty, kind == RuleKind::kPermission},
        {"remedy", RuleKind::kRemedy, kind == RuleKind::kProhibition},
        {"consequence", RuleKind::kConsequence, duty_like},
    };
    for (const auto& n : nested) {
      const json* m = member(v, n.name, path, p);
      if (!m) continue;
      if (!n.allowed)
        return fail(
            p, std::string(n.name) + " is not allowed on a " + std::string(rule_kind_name(kind)));
      if (!rules(*m, p, n.kind, none, depth + 1, out.duties)) return false;
    }
    return true;
  }

  bool policy(const json& doc, Policy& out) {
    if (!doc.is_object()) return fail("", "a policy must be a JSON object, got " + excerpt(doc));
    out.prefixes = prefixes_;

    if (auto t = doc.find("@type"); t != doc.end()) {
      static constexpr std::string_view kTypes[] = {"Set",       "Offer",   "Agreement", "Policy",
                                                    "Assertion", "Privacy", "Request",   "Ticket"};
      bool ok = each(*t, "@type", [&](const json& type, const std::string& p) {
        std::string iri;
        if (!read_id(type, p, iri, true)) return false;
        for (auto known : kTypes) {
          if (iri == odrl(known)) {
            out.type = iri;
            return true;
          }
        }
        return fail(
            p,
            "unknown policy type " + quote_text(type.is_string() ? type.get<std::string>() : iri) +
                " (expected Set, Offer, Agreement, Policy, Assertion, Privacy, Request or Ticket)");
      });
      if (!ok) return false;
    } else {
      out.type = odrl("Set");  // ODRL: Set is the default Policy subclass
    }
    if (!optional_uid(doc, "", out.uid)) return false;

    std::string p;
    if (const json* c = member(doc, "conflict", "", p)) {
      std::string iri;
      if (!read_id(*c, p, iri, true)) return false;
      if (iri == odrl("perm"))
        out.conflict = ConflictStrategy::kPerm;
      else if (iri == odrl("prohibit"))
        out.conflict = ConflictStrategy::kProhibit;
      else if (iri == odrl("invalid"))
        out.conflict = ConflictStrategy::kInvalid;
      else
        return fail(p, "unknown conflict strategy " +
                           quote_text(c->is_string() ? c->get<std::string>() : iri) +
                           " (expected perm, prohibit or invalid)");
      out.conflict_given = true;
    }
    if (member(doc, "inheritFrom", "", p))
      return fail(p, "inheritFrom is not supported: merge the parent policy's rules into this one");

    Defaults defaults;
    const size_t before_defaults = used();
    if (const json* m = member(doc, "target", "", p);
        m && !entities(*m, p, "AssetCollection", defaults.targets))
      return false;
    if (const json* m = member(doc, "assignee", "", p);
        m && !entities(*m, p, "PartyCollection", defaults.assignees))
      return false;
    if (const json* m = member(doc, "assigner", "", p);
        m && !entities(*m, p, "PartyCollection", defaults.assigners))
      return false;
    if (const json* m = member(doc, "action", "", p); m && !actions(*m, p, defaults.actions))
      return false;
    if (const json* m = member(doc, "constraint", "", p);
        m && !constraints(*m, p, 0, defaults.constraints))
      return false;
    defaults.cost = used() - before_defaults;

    if (const json* m = member(doc, "permission", "", p);
        m && !rules(*m, p, RuleKind::kPermission, defaults, 0, out.permissions))
      return false;
    if (const json* m = member(doc, "prohibition", "", p);
        m && !rules(*m, p, RuleKind::kProhibition, defaults, 0, out.prohibitions))
      return false;
    if (const json* m = member(doc, "obligation", "", p);
        m && !rules(*m, p, RuleKind::kObligation, defaults, 0, out.obligations))
      return false;
    if (out.permissions.empty() && out.prohibitions.empty() && out.obligations.empty())
      return fail("", "a policy needs at least one permission, prohibition or obligation");
    return true;
  }

  // ---- requests and states -------------------------------------------------------------------

  bool operand_value(const json& v, const std::string& path, const std::string& left_operand,
                     OperandValue& out) {
    auto one = [&](const json& e, const std::string& p) {
      if (e.is_array()) return fail(p, "nested arrays are not values");
      Value value;
      if (!scalar(e, p, "", value)) return false;
      if (left_operand == odrl("spatial")) normalize_spatial(value);
      out.values.push_back(std::move(value));
      return true;
    };
    if (v.is_array()) {
      out.is_list = true;
      for (size_t i = 0; i < v.size(); ++i)
        if (!one(v[i], index(path, i))) return false;
      return true;
    }
    return one(v, path);
  }

  bool context(const json& v, const std::string& path, Context& out) {
    if (!v.is_object()) return fail(path, "expected an object of left operand -> value");
    // Context::set is a linear scan: a request declares a handful of values, not thousands.
    constexpr size_t kMaxEntries = 1024;
    if (v.size() > kMaxEntries)
      return fail(path, "more than " + std::to_string(kMaxEntries) + " left operands");
    for (const auto& [key, value] : v.items()) {
      if (value.is_null()) continue;  // no value: the same as leaving it out
      std::string lo = prefixes_.expand_term(key);
      OperandValue ov;
      if (!operand_value(value, child(path, key), lo, ov)) return false;
      out.set(std::move(lo), std::move(ov));
    }
    return true;
  }

  bool request(const json& doc, std::optional<Request>& out) {
    if (!doc.is_object()) return fail("", "a request must be a JSON object, got " + excerpt(doc));
    std::string party, action, target;
    if (auto it = doc.find("party"); it != doc.end() && !read_id(*it, "party", party, false))
      return false;
    if (auto it = doc.find("target"); it != doc.end() && !read_id(*it, "target", target, false))
      return false;
    auto it = doc.find("action");
    if (it == doc.end()) return fail("action", "missing (a request names the action it asks for)");
    if (!read_id(*it, "action", action, true)) return false;
    out.emplace(std::move(party), std::move(action), std::move(target));
    if (auto c = doc.find("context"); c != doc.end() && !context(*c, "context", out->context()))
      return false;
    return true;
  }

  bool iri_lists(const json& v, const std::string& path,
                 std::unordered_map<std::string, std::vector<std::string>>& out) {
    if (!v.is_object()) return fail(path, "expected an object of IRI -> [IRI, ...]");
    for (const auto& [key, value] : v.items()) {
      auto& list = out[prefixes_.expand_id(key)];
      bool ok = each(
          value, child(path, key),
          [&](const json& e, const std::string& p) {
            std::string iri;
            if (!read_id(e, p, iri, false) || !charge(p, 1)) return false;
            list.push_back(std::move(iri));
            return true;
          },
          Empty::kNoValues);
      if (!ok) return false;
    }
    return true;
  }

  bool state(const json& doc, Instant default_now, State& out) {
    if (!doc.is_object()) return fail("", "a state must be a JSON object, got " + excerpt(doc));
    out.now = default_now;
    if (auto it = doc.find("currentTime"); it != doc.end()) {
      Value v;
      if (!scalar(*it, "currentTime", "", v)) return false;
      if (v.kind() != Value::Kind::kTime)
        return fail("currentTime",
                    "expected an xsd:dateTime such as 2024-02-12T11:20:10Z, got " + excerpt(*it));
      out.now = v.as_time();
    }
    if (auto it = doc.find("partOf"); it != doc.end() && !iri_lists(*it, "partOf", out.part_of))
      return false;
    if (auto it = doc.find("types"); it != doc.end() && !iri_lists(*it, "types", out.types))
      return false;
    if (auto it = doc.find("duties"); it != doc.end()) {
      if (!it->is_object()) return fail("duties", "expected an object of duty uid -> state");
      for (const auto& [key, value] : it->items()) {
        std::string p = child("duties", key);
        std::string s = value.is_string() ? value.get<std::string>() : std::string();
        DutyState ds;
        if (s == "unset")
          ds = DutyState::kUnset;
        else if (s == "fulfilled")
          ds = DutyState::kFulfilled;
        else if (s == "violated")
          ds = DutyState::kViolated;
        else
          return fail(p, "unknown duty state " + excerpt(value) +
                             " (expected unset, fulfilled or violated)");
        out.duties[prefixes_.expand_id(key)] = ds;
      }
    }
    if (auto it = doc.find("values"); it != doc.end() && !context(*it, "values", out.values))
      return false;
    return true;
  }

 private:
  static constexpr size_t kMaxItems = 100'000;

  const Prefixes& prefixes_;
  Status error_;
  size_t used_ = 0;
};

// The prefixes a policy's @context defines, on top of the well-known ones.
Result<Prefixes> read_context(const json& doc) {
  Prefixes prefixes;
  if (!doc.is_object()) return prefixes;
  auto ctx = doc.find("@context");
  if (ctx == doc.end()) return prefixes;
  auto add_object = [&](const json& obj, const std::string& path) -> Status {
    for (const auto& [key, value] : obj.items()) {
      if (key.empty() || key.front() == '@') continue;
      if (value.is_string()) {
        prefixes.define(key, value.get<std::string>());
      } else if (value.is_object() && value.contains("@id") && value["@id"].is_string()) {
        prefixes.define(key, value["@id"].get<std::string>());
      } else if (!value.is_object() && !value.is_null()) {
        return Status::invalid_argument(child(path, key) +
                                        ": expected an IRI or a term definition");
      }
    }
    return Status::ok();
  };
  if (ctx->is_string()) return prefixes;
  if (ctx->is_object()) {
    if (Status s = add_object(*ctx, "@context"); !s) return s;
    return prefixes;
  }
  if (ctx->is_array()) {
    for (size_t i = 0; i < ctx->size(); ++i) {
      const json& e = (*ctx)[i];
      if (e.is_string()) continue;
      if (!e.is_object())
        return Status::invalid_argument(index("@context", i) +
                                        ": expected a context IRI or object");
      if (Status s = add_object(e, index("@context", i)); !s) return s;
    }
    return prefixes;
  }
  return Status::invalid_argument("@context: expected a context IRI, object or array");
}

}  // namespace

std::string_view rule_kind_name(RuleKind kind) {
  switch (kind) {
    case RuleKind::kPermission:
      return "permission";
    case RuleKind::kProhibition:
      return "prohibition";
    case RuleKind::kObligation:
      return "obligation";
    case RuleKind::kDuty:
      return "duty";
    case RuleKind::kRemedy:
      return "remedy";
    case RuleKind::kConsequence:
      return "consequence";
  }
  return "rule";
}

std::string_view conflict_name(ConflictStrategy c) {
  switch (c) {
    case ConflictStrategy::kPerm:
      return "perm";
    case ConflictStrategy::kProhibit:
      return "prohibit";
    case ConflictStrategy::kInvalid:
      return "invalid";
  }
  return "invalid";
}

Result<Policy> parse_policy(const nlohmann::json& doc) {
  Result<Prefixes> prefixes = read_context(doc);
  if (!prefixes) return prefixes.status();
  try {
    Reader reader(*prefixes);
    Policy policy;
    if (!reader.policy(doc, policy)) return reader.error();
    return policy;
  } catch (const std::exception&
               e) {  // a JSON accessor misused on hostile input: a bug, but not a crash
    return Status::invalid_argument(std::string("unreadable policy: ") + e.what());
  }
}

Result<Policy> parse_policy_text(std::string_view text) {
  Result<nlohmann::json> doc = parse_json_text(text);
  if (!doc) return doc.status();
  return parse_policy(*doc);
}

Result<Request> parse_request(const nlohmann::json& doc, const Prefixes& prefixes) {
  try {
    Reader reader(prefixes);
    std::optional<Request> request;
    if (!reader.request(doc, request)) return reader.error();
    return std::move(*request);
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("unreadable request: ") + e.what());
  }
}

Result<State> parse_state(const nlohmann::json& doc, const Prefixes& prefixes,
                          Instant default_now) {
  try {
    Reader reader(prefixes);
    State state;
    if (!reader.state(doc, default_now, state)) return reader.error();
    return state;
  } catch (const std::exception& e) {
    return Status::invalid_argument(std::string("unreadable state: ") + e.what());
  }
}

}  // namespace dsx::policy
