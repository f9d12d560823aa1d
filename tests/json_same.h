#pragma once
// Whether two JSON values are equal and of equal types all the way down (nlohmann's == takes 1
// and 1u for the same; parse_json_text must give nlohmann's types exactly). For the JSON tests
// and the fuzzer.

#include <cmath>
#include <nlohmann/json.hpp>

namespace dsx::testing {

inline bool same_json(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it)
      if (!b.contains(it.key()) || !same_json(it.value(), b[it.key()])) return false;
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!same_json(a[i], b[i])) return false;
    return true;
  }
  if (a.is_number_float())  // bit for bit: -0.0 is not 0.0
    return std::signbit(a.get<double>()) == std::signbit(b.get<double>()) && a == b;
  return a == b;
}

}  // namespace dsx::testing
