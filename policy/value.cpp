#include "policy/value.h"

#include <array>

namespace dsx::policy {
namespace {

// Intermediate arithmetic on durations needs more than 64 bits (years of seconds in nanoseconds).
__extension__ typedef __int128 Int128;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// Reads up to 18 digits (enough for any count of years, months, days or seconds a policy needs;
// larger numbers are rejected rather than wrapped).
bool read_uint(std::string_view s, size_t& i, int64_t& out) {
  size_t start = i;
  int64_t v = 0;
  while (i < s.size() && is_digit(s[i])) {
    if (i - start >= 18) return false;
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  out = v;
  return i > start;
}

}  // namespace

std::optional<Decimal> Decimal::parse(std::string_view s) {
  size_t i = 0;
  Decimal d;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) d.negative = s[i++] == '-';
  std::string digits;
  int64_t exponent = 0;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && is_digit(s[i])) {
    digits += s[i++];
    ++int_digits;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && is_digit(s[i])) {
      digits += s[i++];
      ++frac_digits;
    }
  }
  if (int_digits + frac_digits == 0) return std::nullopt;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool neg_exp = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg_exp = s[i++] == '-';
    size_t start = i;
    while (i < s.size() && is_digit(s[i])) {
      if (i - start >= 9) return std::nullopt;
      exponent = exponent * 10 + (s[i++] - '0');
    }
    if (i == start) return std::nullopt;
    if (neg_exp) exponent = -exponent;
  }
  if (i != s.size()) return std::nullopt;
  if (digits.size() > 100'000) return std::nullopt;
  exponent -= static_cast<int64_t>(frac_digits);
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return Decimal{};  // zero, never negative
  size_t last = digits.find_last_not_of('0');
  exponent += static_cast<int64_t>(digits.size() - 1 - last);
  d.digits = digits.substr(first, last - first + 1);
  d.exponent = exponent;
  return d;
}

std::strong_ordering operator<=>(const Decimal& a, const Decimal& b) {
  if (a.negative != b.negative)
    return a.negative ? std::strong_ordering::less : std::strong_ordering::greater;
  bool a_zero = a.digits.empty(), b_zero = b.digits.empty();
  std::strong_ordering magnitude = std::strong_ordering::equal;
  if (a_zero || b_zero) {
    magnitude = a_zero == b_zero ? std::strong_ordering::equal
                : a_zero         ? std::strong_ordering::less
                                 : std::strong_ordering::greater;
  } else {
    // Position of the most significant digit decides first, then the digits themselves.
    int64_t a_msd = static_cast<int64_t>(a.digits.size()) + a.exponent;
    int64_t b_msd = static_cast<int64_t>(b.digits.size()) + b.exponent;
    if (a_msd != b_msd) {
      magnitude = a_msd <=> b_msd;
    } else {
      int c = a.digits.compare(b.digits);
      magnitude = c < 0   ? std::strong_ordering::less
                  : c > 0 ? std::strong_ordering::greater
                          : std::strong_ordering::equal;
    }
  }
  if (!a.negative) return magnitude;
  return magnitude == std::strong_ordering::less      ? std::strong_ordering::greater
         : magnitude == std::strong_ordering::greater ? std::strong_ordering::less
                                                      : std::strong_ordering::equal;
}

std::optional<Duration> Duration::parse(std::string_view s) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && s[i] == '-') {
    negative = true;
    ++i;
  }
  if (i >= s.size() || s[i] != 'P') return std::nullopt;
  ++i;
  Int128 months = 0, seconds = 0;
  int32_t nanos = 0;
  bool any = false, in_time = false;
  // Designators must appear in this order: Y M D, then T, then H M S.
  constexpr std::string_view kDateOrder = "YMD", kTimeOrder = "HMS";
  size_t next_date = 0, next_time = 0;
  while (i < s.size()) {
    if (s[i] == 'T') {
      if (in_time) return std::nullopt;
      in_time = true;
      ++i;
      if (i >= s.size()) return std::nullopt;  // "PT" alone
      continue;
    }
    int64_t n = 0;
    if (!read_uint(s, i, n)) return std::nullopt;
    int32_t frac = 0;
    bool has_frac = false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      size_t start = i, k = 0;
      int64_t v = 0;
      while (i < s.size() && is_digit(s[i])) {
        if (k < 9) {
          v = v * 10 + (s[i] - '0');
          ++k;
        }
        ++i;
      }
      if (i == start) return std::nullopt;
      for (; k < 9; ++k)
        v *= 10;
      frac = static_cast<int32_t>(v);
      has_frac = true;
    }
    if (i >= s.size()) return std::nullopt;
    char unit = s[i++];
    const std::string_view order = in_time ? kTimeOrder : kDateOrder;
    size_t& next = in_time ? next_time : next_date;
    size_t pos = order.find(unit, next);
    if (pos == std::string_view::npos) return std::nullopt;
    if (has_frac && !(in_time && unit == 'S')) return std::nullopt;  // only seconds have fractions
    next = pos + 1;
    any = true;
    if (!in_time) {
      if (unit == 'Y') months += static_cast<Int128>(n) * 12;
      if (unit == 'M') months += n;
      if (unit == 'D') seconds += static_cast<Int128>(n) * 86400;
    } else {
      if (unit == 'H') seconds += static_cast<Int128>(n) * 3600;
      if (unit == 'M') seconds += static_cast<Int128>(n) * 60;
      if (unit == 'S') {
        seconds += n;
        nanos = frac;
      }
    }
  }
  if (!any) return std::nullopt;
  // A billion years either way; beyond that the calendar arithmetic of the comparison would
  // overflow, and no policy means it.
  constexpr Int128 kMaxMonths = static_cast<Int128>(12) * 1'000'000'000;
  constexpr Int128 kMaxSeconds = static_cast<Int128>(366) * 86400 * 1'000'000'000;
  if (months > kMaxMonths || seconds > kMaxSeconds) return std::nullopt;
  Duration d;
  d.months = static_cast<int64_t>(negative ? -months : months);
  d.seconds = static_cast<int64_t>(negative ? -seconds : seconds);
  d.nanos = negative ? -nanos : nanos;
  return d;
}

std::partial_ordering operator<=>(const Duration& a, const Duration& b) {
  auto total_nanos = [](const Duration& d) {
    return static_cast<Int128>(d.seconds) * 1'000'000'000 + d.nanos;
  };
  if (a.months == b.months) return total_nanos(a) <=> total_nanos(b);
  // XML Schema 1.1 Part 2, 3.3.6.2: order by adding both to four reference instants; if the
  // four results disagree the durations are incomparable.
  struct YearMonth {
    int64_t year;
    int64_t month;
  };
  static constexpr std::array<YearMonth, 4> kReferences{
      {{1696, 9}, {1697, 2}, {1903, 3}, {1903, 7}}};
  auto instant = [&](const YearMonth& ref, const Duration& d) {
    Int128 total = static_cast<Int128>(ref.year) * 12 + (ref.month - 1) + d.months;
    Int128 year = total >= 0 ? total / 12 : (total - 11) / 12;
    int64_t month = static_cast<int64_t>(total - year * 12) + 1;
    // Reference days are always the 1st, so adding months never needs day clamping; parse keeps
    // months within a billion years, where days_from_civil cannot overflow.
    Int128 days = days_from_civil(static_cast<int64_t>(year), static_cast<unsigned>(month), 1);
    return days * 86400 * 1'000'000'000 + total_nanos(d);
  };
  std::partial_ordering result = std::partial_ordering::unordered;
  for (size_t i = 0; i < kReferences.size(); ++i) {
    auto r = instant(kReferences[i], a) <=> instant(kReferences[i], b);
    std::partial_ordering p = r < 0   ? std::partial_ordering::less
                              : r > 0 ? std::partial_ordering::greater
                                      : std::partial_ordering::equivalent;
    if (i == 0) {
      result = p;
    } else if (p != result) {
      return std::partial_ordering::unordered;
    }
  }
  return result;
}

Value Value::number(Decimal d, std::string text) {
  Value v(Kind::kNumber, std::move(text));
  v.number_ = std::move(d);
  return v;
}

Value Value::time(Instant t, std::string text) {
  Value v(Kind::kTime, std::move(text));
  v.time_ = t;
  return v;
}

Value Value::duration(Duration d, std::string text) {
  Value v(Kind::kDuration, std::move(text));
  v.duration_ = d;
  return v;
}

Value Value::boolean(bool b) {
  Value v(Kind::kBoolean, b ? "true" : "false");
  v.boolean_ = b;
  return v;
}

Value Value::iri(std::string iri) {
  return Value(Kind::kIri, std::move(iri));
}

Value Value::string(std::string s) {
  return Value(Kind::kString, std::move(s));
}

Value Value::infer(std::string text) {
  if (!text.empty()) {
    char c = text.front();
    if (is_digit(c) || c == '-' || c == '+' || c == '.') {
      if (auto t = parse_xsd_date_time(text)) return time(*t, std::move(text));
      if (auto t = parse_xsd_date(text)) return time(*t, std::move(text));
      if (auto d = Decimal::parse(text)) return number(std::move(*d), std::move(text));
    }
    if (c == 'P' || c == '-') {
      if (auto d = Duration::parse(text)) return duration(*d, std::move(text));
    }
  }
  if (text.find(':') != std::string::npos && text.find(' ') == std::string::npos)
    return iri(std::move(text));
  return string(std::move(text));
}

std::optional<std::partial_ordering> compare(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_textual() || b.is_textual()) {
    // Written the same, they are the same ("5" as xsd:string and the number 5); two texts that
    // differ are different; a text and a number, time or duration that differ cannot be
    // compared at all.
    if (a.text_ == b.text_) return std::partial_ordering::equivalent;
    if (a.is_textual() && b.is_textual()) return std::partial_ordering::unordered;
    return std::nullopt;
  }
  if (a.kind_ != b.kind_) return std::nullopt;
  switch (a.kind_) {
    case K::kNumber:
      return a.number_ <=> b.number_;
    case K::kTime:
      return a.time_ <=> b.time_;
    case K::kDuration:
      return a.duration_ <=> b.duration_;
    case K::kBoolean:
      return a.boolean_ == b.boolean_ ? std::partial_ordering::equivalent
                                      : std::partial_ordering::unordered;
    case K::kIri:
    case K::kString:
      break;
  }
  return std::nullopt;
}

bool same_value(const Value& a, const Value& b) {
  auto c = compare(a, b);
  return c && *c == std::partial_ordering::equivalent;
}

std::string_view kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::kNumber:
      return "number";
    case Value::Kind::kTime:
      return "date/time";
    case Value::Kind::kDuration:
      return "duration";
    case Value::Kind::kBoolean:
      return "boolean";
    case Value::Kind::kIri:
      return "IRI";
    case Value::Kind::kString:
      return "string";
  }
  return "value";
}

}  // namespace dsx::policy
