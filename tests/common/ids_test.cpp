#include "common/ids.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <string>
#include <thread>

namespace {

// The 8-4-4-4-12 shape in lower-case hex, with the given version and RFC 9562's variant.
void check_shape(const std::string& id, char version) {
  REQUIRE(id.size() == 36);
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      CHECK(id[i] == '-');
    } else {
      const char c = id[i];
      CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    }
  }
  CHECK(id[14] == version);
  CHECK(std::string("89ab").find(id[19]) != std::string::npos);
}

uint64_t unix_ms_of(const std::string& v7) {
  return std::stoull(v7.substr(0, 8) + v7.substr(9, 4), nullptr, 16);
}

}  // namespace

TEST_CASE("random_uuid is a version 4 UUID, different each time", "[ids]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = dsx::random_uuid();
    check_shape(id, '4');
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("time_ordered_uuid carries the time and sorts by it", "[ids]") {
  const auto now_ms = [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  };
  const uint64_t before = now_ms();
  const std::string first = dsx::time_ordered_uuid();
  check_shape(first, '7');
  CHECK(unix_ms_of(first) >= before);
  CHECK(unix_ms_of(first) <= now_ms());

  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  const std::string later = dsx::time_ordered_uuid();
  CHECK(first < later);  // a later millisecond sorts after, as text
  CHECK(unix_ms_of(later) > unix_ms_of(first));

  std::set<std::string> seen;  // 74 random bits: no two alike within one millisecond
  for (int i = 0; i < 1000; ++i)
    seen.insert(dsx::time_ordered_uuid());
  CHECK(seen.size() == 1000);
}
