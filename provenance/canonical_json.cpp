#include "provenance/canonical_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace dsx::provenance {
namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxExactInteger = uint64_t{1} << 53;

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

void write_string(const std::string& s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
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
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

Status write(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::null:
      out += "null";
      return Status::ok();
    case json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return Status::ok();
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      if (!utf16(s)) return Status::invalid_argument("a string is not valid UTF-8");
      write_string(s, out);
      return Status::ok();
    }
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
      out += v.dump();
      return Status::ok();
    }
    case json::value_t::number_float: {
      const double d = v.get<double>();
      if (!std::isfinite(d))
        return Status::invalid_argument("NaN and infinities have no JSON form");
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
        write_string(member->first, out);
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

}  // namespace dsx::provenance
