#include "common/time.h"

#include <cstdio>

namespace dsx {
namespace {

constexpr long long kNanosPerSecond = 1'000'000'000LL;

// A small cursor over the text being parsed; every reader returns false when the text does not
// have the expected shape, and never reads past the end.
class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}

  bool done() const { return i_ == s_.size(); }
  bool peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool eat(char c) {
    if (!peek(c)) return false;
    ++i_;
    return true;
  }
  // Exactly n decimal digits.
  bool digits(size_t n, int64_t& out) {
    if (s_.size() - i_ < n) return false;
    int64_t v = 0;
    for (size_t k = 0; k < n; ++k) {
      char c = s_[i_ + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    i_ += n;
    out = v;
    return true;
  }
  // A year: optional '-', at least four digits, no leading zero beyond four digits.
  bool year(int64_t& out) {
    bool negative = eat('-');
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9' && i_ - start < 12)
      ++i_;
    size_t n = i_ - start;
    if (n < 4 || (n > 4 && s_[start] == '0') || (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'))
      return false;
    int64_t v = 0;
    for (size_t k = start; k < i_; ++k)
      v = v * 10 + (s_[k] - '0');
    out = negative ? -v : v;
    return true;
  }
  // Fraction digits after '.', up to nanoseconds (further digits are truncated).
  bool fraction(int32_t& nanos) {
    size_t start = i_;
    int64_t v = 0;
    size_t n = 0;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
      if (n < 9) {
        v = v * 10 + (s_[i_] - '0');
        ++n;
      }
      ++i_;
    }
    if (i_ == start) return false;
    for (; n < 9; ++n)
      v *= 10;
    nanos = static_cast<int32_t>(v);
    return true;
  }
  // Optional zone: Z, or +hh:mm / -hh:mm (|offset| <= 14:00). Offset in seconds east of UTC.
  bool zone(int64_t& offset_seconds) {
    offset_seconds = 0;
    if (done()) return true;
    if (eat('Z')) return true;
    int sign = peek('+') ? 1 : peek('-') ? -1 : 0;
    if (sign == 0) return false;
    ++i_;
    int64_t hh = 0, mm = 0;
    if (!digits(2, hh) || !eat(':') || !digits(2, mm)) return false;
    if (mm > 59 || hh * 60 + mm > 14 * 60) return false;
    offset_seconds = sign * (hh * 3600 + mm * 60);
    return true;
  }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

bool is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

}  // namespace

Instant Instant::from_unix_nanos(long long n) {
  long long s = n / kNanosPerSecond;
  long long r = n % kNanosPerSecond;
  if (r < 0) {
    r += kNanosPerSecond;
    --s;
  }
  return Instant{s, static_cast<int32_t>(r)};
}

// Howard Hinnant's days_from_civil (http://howardhinnant.github.io/date_algorithms.html).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t mp = (m + 9) % 12;
  const int64_t doy = (153 * mp + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool is_valid_date(int64_t year, unsigned month, unsigned day) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1) return false;
  unsigned max = kDays[month - 1] + (month == 2 && is_leap(year) ? 1 : 0);
  return day <= max;
}

namespace {

// Years beyond this range would overflow the seconds arithmetic; no policy needs them.
constexpr int64_t kMaxYear = 1'000'000'000;

bool read_date(Cursor& c, int64_t& days) {
  int64_t y = 0, m = 0, d = 0;
  if (!c.year(y) || !c.eat('-') || !c.digits(2, m) || !c.eat('-') || !c.digits(2, d)) return false;
  if (y > kMaxYear || y < -kMaxYear) return false;
  if (!is_valid_date(y, static_cast<unsigned>(m), static_cast<unsigned>(d))) return false;
  days = days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
  return true;
}

}  // namespace

std::optional<Instant> parse_xsd_date_time(std::string_view text) {
  Cursor c(text);
  int64_t days = 0, hh = 0, mm = 0, ss = 0, offset = 0;
  int32_t nanos = 0;
  if (!read_date(c, days) || !c.eat('T')) return std::nullopt;
  if (!c.digits(2, hh) || !c.eat(':') || !c.digits(2, mm) || !c.eat(':') || !c.digits(2, ss))
    return std::nullopt;
  if (c.eat('.') && !c.fraction(nanos)) return std::nullopt;
  if (!c.zone(offset) || !c.done()) return std::nullopt;
  if (mm > 59 || ss > 59) return std::nullopt;
  if (hh > 24 || (hh == 24 && (mm != 0 || ss != 0 || nanos != 0))) return std::nullopt;
  return Instant{days * 86400 + hh * 3600 + mm * 60 + ss - offset, nanos};
}

std::optional<Instant> parse_xsd_date(std::string_view text) {
  Cursor c(text);
  int64_t days = 0, offset = 0;
  if (!read_date(c, days) || !c.zone(offset) || !c.done()) return std::nullopt;
  return Instant{days * 86400 - offset, 0};
}

std::string format_rfc3339(Instant t) {
  int64_t days = t.seconds >= 0 ? t.seconds / 86400 : (t.seconds - 86399) / 86400;
  int64_t secs = t.seconds - days * 86400;
  // civil_from_days (Hinnant).
  int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2);

  // By hand: snprintf was a good share of the broker's time (three timestamps in every event).
  std::string out;
  const auto put = [&out](size_t at, int64_t value, size_t width) {
    for (size_t i = width; i-- > 0; value /= 10)
      out[at + i] = static_cast<char>('0' + value % 10);
  };
  if (y >= 0 && y <= 9999) {
    out.assign(4, '0');
    put(0, y, 4);
  } else {  // not an RFC 3339 year: written as printf would
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%04lld", static_cast<long long>(y));
    out.assign(buf, static_cast<size_t>(n));
  }
  const size_t at = out.size();
  out += "-00-00T00:00:00";
  put(at + 1, m, 2);
  put(at + 4, d, 2);
  put(at + 7, secs / 3600, 2);
  put(at + 10, secs / 60 % 60, 2);
  put(at + 13, secs % 60, 2);
  if (t.nanos != 0) {
    const size_t digits = t.nanos % 1'000'000 == 0 ? 3 : t.nanos % 1'000 == 0 ? 6 : 9;
    const int64_t value = digits == 3   ? t.nanos / 1'000'000
                          : digits == 6 ? t.nanos / 1'000
                                        : t.nanos;
    out += '.';
    const size_t from = out.size();
    out.append(digits, '0');
    put(from, value, digits);
  }
  out += 'Z';
  return out;
}

}  // namespace dsx
