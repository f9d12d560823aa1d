#pragma once
// Helpers for the DSP codec tests (negotiation_test.cpp, transfer_test.cpp): documents edited at
// a JSON pointer, readers wrapped as checks, round trips through JSON text, and the refusals
// every DSP document shares (envelope, process ids, code and reason, state).

#include <array>
#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "protocol/dsp.h"

namespace dsx::protocol::testing {

// A reader with its value thrown away.
using Check = std::function<Status(const nlohmann::json&)>;

template <typename T>
Check checker(Result<T> (*parse)(const nlohmann::json&)) {
  return [parse](const nlohmann::json& doc) { return parse(doc).status(); };
}

// One kind of document: its @type, an example and its reader.
struct DocKind {
  const char* type;
  const char* example;
  Check check;
};

inline const DocKind& find_kind(const std::vector<DocKind>& kinds, const std::string& type) {
  for (const DocKind& k : kinds)
    if (k.type == type) return k;
  FAIL("no document kind " << type);
  return kinds.front();
}

// `doc` with the member at `pointer` set to `value`, or removed when `value` is nullopt.
inline nlohmann::json edited(nlohmann::json doc, const std::string& pointer,
                             const std::optional<nlohmann::json>& value) {
  nlohmann::json::json_pointer p(pointer);
  if (value)
    doc[p] = *value;
  else
    doc[p.parent_pointer()].erase(p.back());
  return doc;
}

// The message a reader refuses `doc` with ("" when it accepts it).
inline std::string refusal(const Check& check, const nlohmann::json& doc) {
  Status s = check(doc);
  return s ? std::string() : s.message();
}

template <typename T>
T parsed(Result<T> (*parse)(const nlohmann::json&), const char* text) {
  Result<T> r = parse(nlohmann::json::parse(text));
  INFO(r.status().message());
  REQUIRE(r);
  return std::move(*r);
}

// to_json, to text and back through the reader gives the same value.
template <typename T>
void check_round_trip(const T& value, Result<T> (*parse)(const nlohmann::json&), const char* type) {
  nlohmann::json j = to_json(value);
  CHECK(j.at("@type") == type);
  CHECK(j.at("@context") == nlohmann::json::array({std::string(kDspContext)}));
  Result<nlohmann::json> reread = parse_json_text(j.dump());
  REQUIRE(reread);
  Result<T> back = parse(*reread);
  INFO(type << ": " << back.status().message());
  REQUIRE(back);
  CHECK(*back == value);
}

// A process's message reader (parse_negotiation_message, ...) reads each text as a message of
// its kind, and writes it back unchanged. What it refuses before choosing a reader names `what`
// ("a transfer process message").
template <typename Message, typename Kind>
void check_dispatch(Result<Message> (*parse)(const nlohmann::json&), const std::string& what,
                    const std::vector<std::pair<const char*, Kind>>& cases) {
  auto refusal_of_doc = [&](const nlohmann::json& doc) { return parse(doc).status().message(); };
  CHECK(refusal_of_doc(nlohmann::json::array()) ==
        "(root): " + what + " is a JSON object, not an array");
  CHECK(refusal_of_doc(nlohmann::json::object()) == "@type: missing");
  CHECK(refusal_of_doc({{"@type", 3}}) == "@type: expected a string, not a number");
  CHECK(refusal_of_doc({{"@type", "Message"}}) == "@type: \"Message\" is not " + what);
  for (const auto& [text, kind] : cases) {
    Result<Message> m = parse(nlohmann::json::parse(text));
    INFO(text << "\n" << m.status().message());
    REQUIRE(m);
    CHECK(kind_of(*m) == kind);
    CHECK(to_json(*m) == nlohmann::json::parse(text));
  }
}

// Malformed documents and the refusal each must get, checked all at once by check().
class Refusals {
 public:
  explicit Refusals(const std::vector<DocKind>& kinds) : kinds_(kinds) {}

  const char* example(const char* type) const { return find_kind(kinds_, type).example; }

  // `base` edited at `pointer` (see edited()) must be refused with `message`.
  void add(const char* type, const char* base, const std::string& pointer,
           std::optional<nlohmann::json> value, std::string message) {
    add_doc(type, edited(nlohmann::json::parse(base), pointer, value), std::move(message));
  }
  void add_doc(const char* type, nlohmann::json doc, std::string message) {
    cases_.push_back({type, std::move(doc), std::move(message)});
  }

  // What every document shares: an object, "@context", "@type". `other_type` is a @type of the
  // same family that no document has.
  void add_envelopes(const std::string& other_type) {
    const std::string ctx = "\"" + std::string(kDspContext) + "\"";
    const std::string old_ctx = "https://w3id.org/dspace/2024/1/context.json";
    for (const DocKind& k : kinds_) {
      const std::string t = k.type;
      add(k.type, k.example, "/@context", std::nullopt, "@context: missing");
      add(k.type, k.example, "/@context", 5,
          "@context: expected an array of strings, not a number");
      add(k.type, k.example, "/@context", nlohmann::json::object(),
          "@context: expected an array of strings, not an object");
      add(k.type, k.example, "/@context", nlohmann::json::array({old_ctx}),
          "@context: must include " + ctx);
      add(k.type, k.example, "/@context", nlohmann::json::array(), "@context: must include " + ctx);
      add(k.type, k.example, "/@context", nlohmann::json::array({std::string(kDspContext), 7}),
          "@context[1]: expected a string, not a number");
      add(k.type, k.example, "/@context", old_ctx, "@context: \"" + old_ctx + "\" is not " + ctx);
      add(k.type, k.example, "/@type", std::nullopt, "@type: missing");
      add(k.type, k.example, "/@type", nlohmann::json::array({t}),
          "@type: expected a string, not an array");
      add(k.type, k.example, "/@type", "dspace:" + t, "@type: \"dspace:" + t + "\" is not " + t);
      add(k.type, k.example, "/@type", other_type, "@type: \"" + other_type + "\" is not " + t);
      add_doc(k.type, nlohmann::json::array(),
              "(root): a " + t + " is a JSON object, not an array");
      add_doc(k.type, "x", "(root): a " + t + " is a JSON object, not a string");
      add_doc(k.type, nullptr, "(root): a " + t + " is a JSON object, not null");
    }
  }

  // Required ids (R10): present, strings, not empty. `prefix` is the path of their object.
  void add_required_ids(const char* type, const std::vector<std::string>& fields,
                        const std::string& prefix = "") {
    for (const std::string& f : fields) {
      std::string pointer = pointer_of(prefix, f), path = prefix + f;
      add(type, example(type), pointer, std::nullopt, path + ": missing");
      add(type, example(type), pointer, 1, path + ": expected a string, not a number");
      add(type, example(type), pointer, nullptr, path + ": expected a string, not null");
      add(type, example(type), pointer, nlohmann::json::array({"urn:x"}),
          path + ": expected a string, not an array");
      add(type, example(type), pointer, "", path + ": must not be empty");
    }
  }
  // Optional ids and addresses: strings, not empty, when present.
  void add_optional_ids(const char* type, const std::vector<std::string>& fields,
                        const std::string& prefix = "") {
    for (const std::string& f : fields) {
      std::string pointer = pointer_of(prefix, f), path = prefix + f;
      add(type, example(type), pointer, false, path + ": expected a string, not a boolean");
      add(type, example(type), pointer, nlohmann::json::object(),
          path + ": expected a string, not an object");
      add(type, example(type), pointer, "", path + ": must not be empty");
    }
  }
  // An error body's pids: required strings, possibly empty.
  void add_error_ids(const char* type) {
    for (std::string f : {"providerPid", "consumerPid"}) {
      add(type, example(type), "/" + f, std::nullopt, f + ": missing");
      add(type, example(type), "/" + f, 2, f + ": expected a string, not a number");
    }
  }
  // A termination's, suspension's or error's code and reason (R9).
  void add_explanation(const char* type) {
    add(type, example(type), "/code", 99, "code: expected a string, not a number");
    add(type, example(type), "/code", nullptr, "code: expected a string, not null");
    add(type, example(type), "/reason", "too late", "reason: expected an array, not a string");
    add(type, example(type), "/reason", nlohmann::json::object(),
        "reason: expected an array, not an object");
    add(type, example(type), "/reason", nlohmann::json::array(),
        "reason: must hold at least one item when present");
  }
  // A process document's "state"; `what` names the states ("a transfer process state").
  void add_states(const char* type, const std::string& what) {
    add(type, example(type), "/state", std::nullopt, "state: missing");
    add(type, example(type), "/state", 2, "state: expected a string, not a number");
    for (std::string bad : {"DONE", "requested", "dspace:REQUESTED", ""})
      add(type, example(type), "/state", bad, "state: \"" + bad + "\" is not " + what);
  }

  // Runs every case; returns how many there were.
  size_t check() const {
    for (const Case& c : cases_) {
      INFO(c.type << ": " << c.doc.dump());
      CHECK(refusal(find_kind(kinds_, c.type).check, c.doc) == c.message);
    }
    return cases_.size();
  }

 private:
  struct Case {
    const char* type;
    nlohmann::json doc;
    std::string message;
  };

  // "dataAddress." + "endpointType" -> "/dataAddress/endpointType".
  static std::string pointer_of(const std::string& prefix, const std::string& field) {
    std::string pointer = "/";
    for (char c : prefix)
      pointer += c == '.' ? '/' : c;
    return pointer + field;
  }

  const std::vector<DocKind>& kinds_;
  std::vector<Case> cases_;
};

// Sets each of `pointers` (where its parent exists) of each kind's example to each of a set of
// odd values and runs the kind's reader and `dispatch` on it: neither may throw. Returns how many
// documents were tried.
inline size_t check_readers_never_throw(const std::vector<DocKind>& kinds,
                                        const std::vector<std::string>& pointers,
                                        const Check& dispatch) {
  const std::vector<nlohmann::json> values = {nullptr,
                                              true,
                                              0,
                                              -1,
                                              1.5,
                                              "",
                                              "x",
                                              nlohmann::json::array(),
                                              nlohmann::json::object(),
                                              nlohmann::json::array({nullptr}),
                                              nlohmann::json{{"@id", 1}},
                                              nlohmann::json::array({nlohmann::json::object(), 3}),
                                              nlohmann::json(std::string(kDspContext))};
  size_t tried = 0;
  for (const DocKind& k : kinds) {
    for (const std::string& pointer : pointers) {
      for (const nlohmann::json& value : values) {
        nlohmann::json doc = nlohmann::json::parse(k.example);
        nlohmann::json::json_pointer p(pointer);
        if (!doc.contains(p.parent_pointer())) continue;
        const nlohmann::json& parent = doc[p.parent_pointer()];
        if (!parent.is_object() && !parent.is_array()) continue;
        doc[p] = value;
        INFO(k.type << " " << pointer << " = " << value.dump());
        CHECK_NOTHROW(k.check(doc));
        CHECK_NOTHROW(dispatch(doc));
        ++tried;
      }
    }
  }
  return tried;
}

// One valid transition of a state machine, as a test's reference table lists it.
template <typename State, typename Kind>
struct Transition {
  std::optional<State> from;  // std::nullopt: no process yet
  Kind kind;
  Role sender;
  State to;
};

// Runs next_state() on every (state or none, kind, sender). Those in `valid` must lead to their
// state; every other must be refused with kFailedPrecondition and a message that starts with
// "<kind> from the <sender> in state <state>: " (`none` instead of "in state ..." without a
// process) and goes on to say why. Returns how many were refused.
template <typename State, typename Kind, size_t NS, size_t NK>
size_t check_transitions(const std::array<State, NS>& states, const std::array<Kind, NK>& kinds,
                         const std::vector<Transition<State, Kind>>& valid,
                         const std::string& none) {
  std::vector<std::optional<State>> froms = {std::nullopt};
  froms.insert(froms.end(), states.begin(), states.end());
  size_t accepted = 0, refused = 0;
  for (const std::optional<State>& from : froms) {
    for (Kind kind : kinds) {
      for (Role sender : kRoles) {
        const Transition<State, Kind>* row = nullptr;
        for (const auto& r : valid)
          if (r.from == from && r.kind == kind && r.sender == sender) row = &r;
        Result<State> next = next_state(from, kind, sender);
        const std::string prefix =
            std::string(to_string(kind)) + " from the " + std::string(to_string(sender)) + " " +
            (from ? "in state " + std::string(to_string(*from)) : none) + ": ";
        INFO(prefix << next.status().message());
        if (row) {
          REQUIRE(next);
          CHECK(*next == row->to);
          ++accepted;
        } else {
          REQUIRE_FALSE(next);
          CHECK(next.status().code() == Status::Code::kFailedPrecondition);
          CHECK(next.status().message().rfind(prefix, 0) == 0);
          CHECK(next.status().message().size() > prefix.size());
          ++refused;
        }
      }
    }
  }
  CHECK(accepted == valid.size());
  CHECK(accepted + refused == froms.size() * kinds.size() * kRoles.size());
  return refused;
}

// The refusal of a transition next_state() must refuse.
template <typename State, typename Kind>
std::string refusal_of(std::optional<State> from, Kind kind, Role sender) {
  Result<State> r = next_state(from, kind, sender);
  REQUIRE_FALSE(r);
  return r.status().message();
}

// Runs `steps` through next_state() from `state`; each must be valid. Returns the state reached.
template <typename State, typename Kind>
State run_machine(std::optional<State> state, const std::vector<std::pair<Kind, Role>>& steps) {
  for (const auto& [kind, sender] : steps) {
    Result<State> next = next_state(state, kind, sender);
    INFO(next.status().message());
    REQUIRE(next);
    state = *next;
  }
  return *state;
}

// A message whose retry may arrive in a state (see is_repeat_candidate).
template <typename State, typename Kind>
struct Repeat {
  State state;
  Kind kind;
  Role sender;
};

// is_repeat_candidate() holds for exactly the (state, kind, sender) in `repeats`, and
// next_state() refuses each of them: the machines have no self-loops.
template <typename State, typename Kind, size_t NS, size_t NK>
void check_repeat_candidates(const std::array<State, NS>& states, const std::array<Kind, NK>& kinds,
                             const std::vector<Repeat<State, Kind>>& repeats) {
  size_t candidates = 0;
  for (State state : states) {
    for (Kind kind : kinds) {
      for (Role sender : kRoles) {
        bool expected = false;
        for (const auto& r : repeats)
          if (r.state == state && r.kind == kind && r.sender == sender) expected = true;
        INFO(to_string(kind) << " from the " << to_string(sender) << " in " << to_string(state));
        CHECK(is_repeat_candidate(state, kind, sender) == expected);
        if (expected) {
          CHECK_FALSE(next_state(state, kind, sender));
          ++candidates;
        }
      }
    }
  }
  CHECK(candidates == repeats.size());
}

}  // namespace dsx::protocol::testing
