#pragma once
// Value: one typed literal or IRI as the policy engine compares it (a right operand, or a value a
// request or the state supplies for a left operand). Values are parsed once, when a policy or
// request is compiled, and then only compared. Plain value types; all functions are pure and
// thread-safe.
//
// Comparison follows policy-eval.md rule 4: numbers as exact decimals, times as instants,
// durations as durations (XML Schema's partial order: P1M and P30D cannot be compared), IRIs and
// strings by their text. Values of kinds that cannot be compared are reported as incomparable,
// never silently ordered.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/time.h"

namespace dsx::policy {

// An exact decimal: value = (negative ? -1 : 1) * digits * 10^exponent, where digits has no
// leading or trailing zeros (zero is the empty digit string, never negative).
struct Decimal {
  bool negative = false;
  std::string digits;
  int64_t exponent = 0;

  // Integer or decimal notation with an optional exponent: "5", "-0.50", "1e3", "+2.5E-1".
  static std::optional<Decimal> parse(std::string_view text);
  friend std::strong_ordering operator<=>(const Decimal& a, const Decimal& b);
  friend bool operator==(const Decimal& a, const Decimal& b) = default;
};

// An xsd:duration: a number of months and a number of seconds (with nanoseconds), same sign.
struct Duration {
  int64_t months = 0;
  int64_t seconds = 0;
  int32_t nanos = 0;

  // PnYnMnDTnHnMnS with an optional leading '-'.
  static std::optional<Duration> parse(std::string_view text);
  // XML Schema's partial order; unordered when the months and the seconds disagree.
  friend std::partial_ordering operator<=>(const Duration& a, const Duration& b);
  friend bool operator==(const Duration& a, const Duration& b) = default;
};

class Value {
 public:
  Value() = default;  // the empty string
  enum class Kind { kNumber, kTime, kDuration, kBoolean, kIri, kString };

  static Value number(Decimal d, std::string text);
  static Value time(Instant t, std::string text);
  static Value duration(Duration d, std::string text);
  static Value boolean(bool b);
  static Value iri(std::string iri);
  static Value string(std::string s);
  // A bare lexical form whose type is not declared: a dateTime, date, duration or number when it
  // parses as one, else an IRI when it has a scheme (contains ':'), else a string.
  static Value infer(std::string text);

  Kind kind() const { return kind_; }
  // The lexical form as written (IRIs expanded); what messages show.
  const std::string& text() const { return text_; }
  bool is_textual() const { return kind_ == Kind::kIri || kind_ == Kind::kString; }
  const Decimal& as_number() const { return number_; }
  Instant as_time() const { return time_; }
  const Duration& as_duration() const { return duration_; }

  // Three-way comparison. Textual values (IRIs, strings) compare equal or unordered by their
  // text; a textual value written exactly like a value of another kind is equal to it. nullopt
  // when the two cannot be compared: values of different kinds (a number and a time, a string
  // and a number written differently). Durations XML Schema leaves unordered give unordered.
  friend std::optional<std::partial_ordering> compare(const Value& a, const Value& b);
  // Equality as the set operators and eq use it: false when incomparable.
  friend bool same_value(const Value& a, const Value& b);

 private:
  Value(Kind kind, std::string text) : kind_(kind), text_(std::move(text)) {}

  Kind kind_ = Kind::kString;
  std::string text_;
  Decimal number_;
  Instant time_;
  Duration duration_;
  bool boolean_ = false;
};

std::string_view kind_name(Value::Kind kind);

}  // namespace dsx::policy
