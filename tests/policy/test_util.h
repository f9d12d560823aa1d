#pragma once
// Helpers for policy tests: parse JSON text into the engine's types, failing the test on error.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/time.h"
#include "policy/parser.h"

namespace dsx::policy::testing {

inline Policy policy_from(const std::string& text) {
  auto p = parse_policy_text(text);
  INFO(p.status().message());
  REQUIRE(p);
  return std::move(*p);
}

inline std::string policy_error(const std::string& text) {
  auto p = parse_policy_text(text);
  REQUIRE_FALSE(p);
  return p.status().message();
}

inline Request request_from(const Policy& policy, const std::string& text) {
  auto r = parse_request(nlohmann::json::parse(text), policy.prefixes);
  INFO(r.status().message());
  REQUIRE(r);
  return std::move(*r);
}

inline State state_at(const char* time) {
  State s;
  s.now = *parse_xsd_date_time(time);
  return s;
}

inline State state_from(const Policy& policy, const std::string& text) {
  auto s = parse_state(nlohmann::json::parse(text), policy.prefixes, Instant{});
  INFO(s.status().message());
  REQUIRE(s);
  return std::move(*s);
}

}  // namespace dsx::policy::testing
