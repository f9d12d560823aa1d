#include "provenance/canonical_json.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace dsx::provenance {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxExactInteger = uint64_t{1} << 53;

// The length of the valid UTF-8 sequence that starts at s[i] (1 for ASCII), or 0 when it is not
// valid (truncated, overlong, a surrogate, beyond U+10FFFF).
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t len = 0;
  uint32_t cp = 0;
  if ((c & 0xe0) == 0xc0)
    len = 2, cp = c & 0x1f;
  else if ((c & 0xf0) == 0xe0)
    len = 3, cp = c & 0x0f;
  else if ((c & 0xf8) == 0xf0)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (cc & 0x3f);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// Whether the byte can stand for itself inside a canonical JSON string: printable ASCII other
// than '"' and '\\'. Control characters need an escape and bytes from 0x80 start a UTF-8 sequence
// that must be checked.
bool plain(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

// The index of the first byte at or after `i` that is not plain (or s.size()). Entries are mostly
// plain ASCII, so many bytes are tested at once. With SSE2 (every x86-64 CPU), sixteen: a signed
// compare with 0x20 catches both the control characters and the bytes from 0x80 (negative as
// signed), and two more compares the quote and the backslash. Elsewhere, eight in a 64-bit word: a
// byte is flagged when it is below 0x20, when it is zero after xor with '"' or '\\', or when its
// high bit is set; the borrows of these subtractions can flag a byte above a flagged one but never
// miss one nor flag a lower one, so on a little-endian machine the lowest flag is the first byte
// that is not plain. The few bytes left at the end are tested one by one.
inline size_t plain_run_end(std::string_view s, size_t i) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20), quote = _mm_set1_epi8('"'),
                backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    const __m128i special =
        _mm_or_si128(_mm_cmplt_epi8(v, space),
                     _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (const auto mask = static_cast<unsigned>(_mm_movemask_epi8(special)); mask != 0)
      return i + static_cast<size_t>(std::countr_zero(mask));
  }
#else
  constexpr uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof w);
    const uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
    const uint64_t flagged = (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) |
                              ((backslash - kOnes) & ~backslash) | w) &
                             kHigh;
    if (flagged == 0) continue;
    if constexpr (std::endian::native == std::endian::little)
      return i + static_cast<size_t>(std::countr_zero(flagged)) / 8;
    break;
  }
#endif
  while (i < s.size() && plain(static_cast<unsigned char>(s[i])))
    ++i;
  return i;
}

// Whether byte order of these UTF-8 names is also their UTF-16 order: it differs only between
// U+E000..U+FFFF (lead bytes 0xEE, 0xEF) and the supplementary planes (0xF0 and up).
bool byte_order_is_utf16_order(std::string_view name) {
  return std::none_of(name.begin(), name.end(),
                      [](char c) { return static_cast<unsigned char>(c) >= 0xee; });
}

// UTF-8 to UTF-16 code units, for ordering member names; nullopt for invalid UTF-8.
std::optional<std::u16string> utf16(const std::string& s) {
  std::u16string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0;
    size_t len = 0;
    if (c < 0x80)
      cp = c, len = 1;
    else if ((c & 0xe0) == 0xc0)
      cp = c & 0x1f, len = 2;
    else if ((c & 0xf0) == 0xe0)
      cp = c & 0x0f, len = 3;
    else if ((c & 0xf8) == 0xf0)
      cp = c & 0x07, len = 4;
    else
      return std::nullopt;
    if (i + len > s.size()) return std::nullopt;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return std::nullopt;
      cp = cp << 6 | (cc & 0x3f);
    }
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xd800 + (cp >> 10));
      out += static_cast<char16_t>(0xdc00 + (cp & 0x3ff));
    } else {
      out += static_cast<char16_t>(cp);
    }
    i += len;
  }
  return out;
}

// A string with JCS's minimal escapes, checked to be valid UTF-8 in the same pass (false when it
// is not; `out` then holds a partial string, which callers discard). Runs of plain characters
// are copied at once.
bool write_string(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t run = 0;
  for (size_t i = plain_run_end(s, 0); i < s.size(); i = plain_run_end(s, i)) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8_sequence(s, i);
      if (len == 0) return false;
      i += len;
      continue;
    }
    out.append(s.data() + run, i - run);
    run = ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
  return true;
}

Status invalid_utf8() {
  return Status::invalid_argument("a string is not valid UTF-8");
}

Status write(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::null:
      out += "null";
      return Status::ok();
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return Status::ok();
    case json::value_t::string:
      return write_string(v.get_ref<const std::string&>(), out) ? Status::ok() : invalid_utf8();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
      const bool negative =
          v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0;
      const uint64_t magnitude =
          negative ? uint64_t(0) - static_cast<uint64_t>(v.get<int64_t>()) : v.get<uint64_t>();
      if (magnitude > kMaxExactInteger)
        return Status::invalid_argument(
            "the integer " + v.dump() +
            " is beyond 2^53: a double cannot hold it exactly (write it as a string)");
      char digits[24];  // to_chars rather than dump(): no string allocated per number
      const auto [end, ec] = negative
                                 ? std::to_chars(digits, digits + sizeof digits, v.get<int64_t>())
                                 : std::to_chars(digits, digits + sizeof digits, magnitude);
      out.append(digits, end);
      return Status::ok();
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!std::isfinite(d))
        return Status::invalid_argument("NaN and infinities have no JSON form");
      // ECMAScript writes these as plain digits, which a reader takes for an integer beyond 2^53
      // (refused above): the text would not read back as itself. Same rule as for integers.
      constexpr double kExact = 9007199254740992.0;  // 2^53
      if ((d > kExact && d < 18446744073709551616.0) ||
          (d < -kExact && d >= -9223372036854775808.0))
        return Status::invalid_argument(
            "the number " + es_number(d) +
            " is beyond 2^53 and would read back as an integer a double cannot hold (write it as "
            "a string)");
      out += es_number(d);
      return Status::ok();
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const json& e : v) {
        if (!first) out += ',';
        first = false;
        if (Status s = write(e, out); !s) return s;
      }
      out += ']';
      return Status::ok();
    }
    case json::value_t::object: {
      // nlohmann keeps members in byte order; that is UTF-16 order unless a name holds
      // characters from U+E000 up, and only then are the names converted and sorted.
      const auto& object = v.get_ref<const json::object_t&>();
      if (std::all_of(object.begin(), object.end(),
                      [](const auto& m) { return byte_order_is_utf16_order(m.first); })) {
        out += '{';
        bool first = true;
        for (const auto& [name, member] : object) {
          if (!first) out += ',';
          first = false;
          if (!write_string(name, out))
            return Status::invalid_argument("a member name is not valid UTF-8");
          out += ':';
          if (Status s = write(member, out); !s) return s;
        }
        out += '}';
        return Status::ok();
      }
      std::vector<std::pair<std::u16string, const json::object_t::value_type*>> members;
      for (const auto& member : v.get_ref<const json::object_t&>()) {
        auto key = utf16(member.first);
        if (!key) return Status::invalid_argument("a member name is not valid UTF-8");
        members.emplace_back(std::move(*key), &member);
      }
      std::sort(members.begin(), members.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      bool first = true;
      for (const auto& [key, member] : members) {
        if (!first) out += ',';
        first = false;
        write_string(member->first, out);  // valid: utf16() converted it
        out += ':';
        if (Status s = write(member->second, out); !s) return s;
      }
      out += '}';
      return Status::ok();
    }
    case json::value_t::binary:
    case json::value_t::discarded:
      break;
  }
  return Status::invalid_argument("a value that has no JSON form");
}

}  // namespace

std::string es_number(double v) {
  if (v == 0) return "0";  // also -0
  std::string out;
  if (v < 0) {
    out += '-';
    v = -v;
  }
  // The shortest digits that round-trip, and the decimal exponent: v = 0.d1d2...dk * 10^n.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // d[.ddd]e[+-]xx
  const size_t e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  int exp10 = 0;
  std::from_chars(sci.data() + e + 1 + (sci[e + 1] == '+'), sci.data() + sci.size(), exp10);
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;
  if (k <= n && n <= 21) {  // an integer: digits then zeros
    out += digits;
    out.append(static_cast<size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {  // a point inside the digits
    out += digits.substr(0, static_cast<size_t>(n));
    out += '.';
    out += digits.substr(static_cast<size_t>(n));
  } else if (-6 < n && n <= 0) {  // 0.000ddd
    out += "0.";
    out.append(static_cast<size_t>(-n), '0');
    out += digits;
  } else {  // exponential
    out += digits[0];
    if (k > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

Result<std::string> canonical_json(const nlohmann::json& value) {
  std::string out;
  if (Status s = write(value, out); !s) return s;
  return out;
}

Status append_canonical_json(const nlohmann::json& value, std::string& out) {
  const size_t size = out.size();
  Status s = write(value, out);
  if (!s) out.resize(size);
  return s;
}

Status append_canonical_string(std::string_view text, std::string& out) {
  const size_t size = out.size();
  if (write_string(text, out)) return Status::ok();
  out.resize(size);
  return invalid_utf8();
}

}  // namespace dsx::provenance

namespace dsx::provenance {
namespace {

// The single-pass checker behind is_canonical_json. Each method consumes one value at pos_ and
// answers whether it is in canonical form; any deviation (white space, an unsorted or repeated
// member, a needless escape, a number not as ECMAScript writes it, invalid UTF-8) is a no.
class CanonicalChecker {
 public:
  explicit CanonicalChecker(std::string_view text) : s_(text) {}

  bool document(std::optional<uint64_t>* top_seq) {
    top_seq_ = top_seq;
    if (top_seq_) *top_seq_ = std::nullopt;
    return value(0) && pos_ == s_.size();
  }

 private:
  static constexpr int kMaxDepth = 100;  // as parse_json_text

  bool value(int depth) {
    if (pos_ >= s_.size()) return false;
    switch (s_[pos_]) {
      case '{':
        return object(depth);
      case '[':
        return array(depth);
      case '"':
        return string();
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return literal("null");
      default:
        return number(nullptr);
    }
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  bool object(int depth) {
    if (depth >= kMaxDepth) return false;
    ++pos_;  // '{'
    if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
    // Names compare as decoded text; most have no escapes and are compared in place.
    std::string_view previous;
    bool previous_high = false;
    std::string previous_buffer, buffer;
    for (bool first = true;; first = false) {
      std::string_view raw, key;
      bool escaped = false, high = false;
      if (pos_ >= s_.size() || s_[pos_] != '"' || !string(&raw, &escaped, &high)) return false;
      key = raw;
      if (escaped) {
        buffer = unescape(raw);
        key = buffer;
      }
      if (!first && !key_less(previous, previous_high, key, high))
        return false;  // unsorted or repeated
      if (pos_ >= s_.size() || s_[pos_++] != ':') return false;
      if (depth == 0 && top_seq_ && key == "seq" && pos_ < s_.size() && s_[pos_] >= '0' &&
          s_[pos_] <= '9') {
        if (!number(top_seq_)) return false;
      } else if (!value(depth + 1)) {
        return false;
      }
      if (pos_ >= s_.size()) return false;
      const char c = s_[pos_++];
      if (c == '}') return true;
      if (c != ',') return false;
      if (escaped) {
        previous_buffer.swap(buffer);
        previous = previous_buffer;
      } else {
        previous = key;
      }
      previous_high = high;
    }
  }

  bool array(int depth) {
    if (depth >= kMaxDepth) return false;
    ++pos_;  // '['
    if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
    for (;;) {
      if (!value(depth + 1) || pos_ >= s_.size()) return false;
      const char c = s_[pos_++];
      if (c == ']') return true;
      if (c != ',') return false;
    }
  }

  // Member names order by UTF-16 code units. Byte order of UTF-8 is code point order, which
  // differs from it only between U+E000..U+FFFF and the supplementary planes: `a_high` and
  // `b_high` say whether a name holds such a character (a lead byte from 0xEE).
  static bool key_less(std::string_view a, bool a_high, std::string_view b, bool b_high) {
    if (!a_high && !b_high) {
      // Byte order, inline: names are short and usually differ early, where a call to memcmp
      // costs more than the comparison.
      const size_t n = std::min(a.size(), b.size());
      for (size_t i = 0; i < n; ++i)
        if (a[i] != b[i])
          return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
      return a.size() < b.size();
    }
    return *utf16(std::string(a)) < *utf16(std::string(b));  // both valid: string() checked
  }

  // A string with the minimal escapes. `raw` receives the text between the quotes, `escaped`
  // whether it holds any escape (then unescape() gives the text), and `high` whether it holds a
  // character from U+E000 up (see key_less).
  bool string(std::string_view* raw = nullptr, bool* escaped = nullptr, bool* high = nullptr) {
    const size_t start = ++pos_;  // after '"'
    const size_t size = s_.size();
    for (pos_ = plain_run_end(s_, pos_); pos_ < size; pos_ = plain_run_end(s_, pos_)) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        if (raw) *raw = s_.substr(start, pos_ - start);
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (pos_ + 1 >= size) return false;
        if (escaped) *escaped = true;
        const char e = s_[pos_ + 1];
        if (e == '"' || e == '\\' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't') {
          pos_ += 2;
          continue;
        }
        // \u only for the control characters without a short escape, in lower-case hex.
        if (e != 'u' || pos_ + 6 > size || s_.substr(pos_ + 2, 2) != "00") return false;
        const int hi = hex(s_[pos_ + 4]), lo = hex(s_[pos_ + 5]);
        if (hi < 0 || hi > 1 || lo < 0) return false;
        const int v = hi * 16 + lo;
        if (v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') return false;
        pos_ += 6;
        continue;
      }
      const size_t len = utf8_sequence(s_, pos_);  // c >= 0x80
      if (len == 0) return false;
      if (high && c >= 0xee) *high = true;
      pos_ += len;
    }
    return false;
  }

  // The text of a checked string's escapes.
  static std::string unescape(std::string_view raw) {
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        out += raw[i];
        continue;
      }
      const char e = raw[++i];
      switch (e) {
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u':
          out += static_cast<char>(hex(raw[i + 3]) * 16 + hex(raw[i + 4]));
          i += 4;
          break;
        default:  // '"' or '\\'
          out += e;
      }
    }
    return out;
  }

  static int hex(char c) {  // lower-case only: canonical escapes are
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  // A number as canonical_json writes it: integers up to 2^53 in magnitude as plain digits,
  // anything else as ECMAScript prints its double. `unsigned_value`, when given, receives a
  // non-negative integer's value.
  bool number(std::optional<uint64_t>* unsigned_value) {
    const size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    const size_t digits_start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
      ++pos_;
    const size_t int_digits = pos_ - digits_start;
    if (int_digits == 0) return false;
    if (int_digits > 1 && s_[digits_start] == '0') return false;  // leading zero: not JSON
    bool integer = true;
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integer = false;
      const size_t f = ++pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
        ++pos_;
      if (pos_ == f) return false;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integer = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      const size_t e = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
        ++pos_;
      if (pos_ == e) return false;
    }
    const std::string_view token = s_.substr(start, pos_ - start);
    const bool negative = token[0] == '-';
    if (integer) {
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(s_.data() + digits_start, s_.data() + pos_, v);
      // The parser keeps an integer that fits 64 bits (signed when negative) as an integer:
      // canonical up to 2^53 in magnitude, never as "-0".
      if (ec == std::errc() && !(negative && v > uint64_t{1} << 63)) {
        if (v > kMaxExactInteger || (negative && v == 0)) return false;
        if (unsigned_value && !negative) *unsigned_value = v;
        return true;
      }
      // Larger ones it reads as a double, like fractions and exponents.
    }
    double d = 0;
    auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), d);
    if (ec != std::errc() || end != token.data() + token.size() || !std::isfinite(d)) return false;
    return es_number(d) == token;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::optional<uint64_t>* top_seq_ = nullptr;
};

}  // namespace

bool is_canonical_json(std::string_view text, std::optional<uint64_t>* top_seq) {
  return CanonicalChecker(text).document(top_seq);
}

}  // namespace dsx::provenance
