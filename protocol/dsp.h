#pragma once
// What the Dataspace Protocol 2025-1 processes (contract negotiation, transfer process) share:
// the JSON-LD context their messages name, and the two parties that send them. Constants and a
// pure function; safe from any thread.

#include <array>
#include <cstdint>
#include <string_view>

namespace dsx::protocol {

inline constexpr std::string_view kDspContext = "https://w3id.org/dspace/2025/1/context.jsonld";

// The party a message comes from. The broker knows it from the sender's certificate and the
// process's record, never from the message body.
enum class Role : uint8_t { kConsumer, kProvider };
inline constexpr std::array<Role, 2> kRoles = {Role::kConsumer, Role::kProvider};

// "consumer", "provider".
constexpr std::string_view to_string(Role role) {
  return role == Role::kConsumer ? "consumer" : "provider";
}

}  // namespace dsx::protocol
